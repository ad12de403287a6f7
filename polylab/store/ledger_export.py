"""The ledger's tables as Parquet files: ``<table>.parquet`` per table, schema kept when empty.

Column types map exactly: BIGINT → Int64 (money stays integer micros, in ``*_micros``
columns), INTEGER → Int32, TEXT → Utf8, BOOLEAN → Boolean, JSON → Utf8 holding the JSON text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import polars as pl
from sqlalchemy import JSON, BigInteger, Boolean, Integer, Table, Text, select

from polylab.store import ledger_schema as S
from polylab.store.ledger import Ledger

__all__ = ["export_tables", "polars_schema"]

_BATCH = 50_000  # rows fetched at a time


def polars_schema(table: Table) -> dict[str, pl.DataType]:
    """The polars dtype of each of ``table``'s columns."""
    out: dict[str, pl.DataType] = {}
    for c in table.c:
        t = c.type
        if isinstance(t, BigInteger):
            out[c.name] = pl.Int64()
        elif isinstance(t, Integer):
            out[c.name] = pl.Int32()
        elif isinstance(t, Boolean):
            out[c.name] = pl.Boolean()
        elif isinstance(t, JSON | Text):
            out[c.name] = pl.Utf8()
        else:  # a new column type must be mapped here, not guessed
            raise TypeError(f"no Parquet type for {table.name}.{c.name} ({t!r})")
    return out


def export_tables(ledger: Ledger, out_dir: str | Path) -> dict[str, int]:
    """Write every ledger table to ``out_dir/<table>.parquet``; returns rows per table."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with ledger.engine.connect() as conn:
        for table in S.metadata.sorted_tables:
            schema = polars_schema(table)
            json_cols = [c.name for c in table.c if isinstance(c.type, JSON)]
            frames = [pl.DataFrame(schema=schema)]
            q = select(table).order_by(*table.primary_key.columns)
            res = conn.execution_options(yield_per=_BATCH).execute(q)
            for part in res.partitions():
                rows: list[dict[str, Any]] = []
                for r in part:
                    d = {str(k): v for k, v in r._mapping.items()}
                    for name in json_cols:
                        d[name] = msgspec.json.encode(d[name]).decode()
                    rows.append(d)
                frames.append(pl.DataFrame(rows, schema=schema, orient="row"))
            df = pl.concat(frames)
            df.write_parquet(out / f"{table.name}.parquet")
            counts[table.name] = df.height
    return counts
