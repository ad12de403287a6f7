"""What each table of a run folder holds: its row struct, its polars schema, its units.

A run folder's ``<kind>.parquet`` has one row per struct the engine emitted for that kind
(``RunRecorder``). The schema comes from the row struct, not from the rows, so a table with no
rows still has its columns and dtypes (a reader can select ``fee`` from an empty ``fills``).
Nested fields (tuples, dicts, structs) are stored as JSON text, as ``RunRecorder`` writes them.

Units: integer columns are share, price or cash micros (1e6 = one share or $1), except times
(``*_ns``, ns since the epoch) and the counts in ``COUNT_COLUMNS``. ``micros_name`` gives a
column's name with its unit (``fee`` → ``fee_micros``) for JSON meant for people and scripts.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec
import polars as pl
from msgspec import inspect as mi

from polylab.analysis.opportunities import DepthWindow
from polylab.analysis.windows import Window
from polylab.domain import OrderReport
from polylab.engine import ErrorRecord, IntentRecord, RejectionRecord
from polylab.execution.base import ResidualRecord
from polylab.risk.records import Fill, MergeRecord, PositionMark, SettleRecord

__all__ = [
    "COUNT_COLUMNS",
    "ROW_TYPES",
    "micros_columns",
    "micros_name",
    "row_schema",
    "table_schema",
]

ROW_TYPES: dict[str, type[msgspec.Struct]] = {
    "opportunities": Window,
    "depth_opportunities": DepthWindow,
    "intents": IntentRecord,
    "rejections": RejectionRecord,
    "orders": OrderReport,
    "fills": Fill,
    "merges": MergeRecord,
    "settlements": SettleRecord,
    "positions": PositionMark,
    "errors": ErrorRecord,
    "residuals": ResidualRecord,
}
"""The row struct of every table the engine, a backtest or a paper session writes."""

COUNT_COLUMNS = frozenset({"leg", "legs", "updates"})
"""Integer columns that count things (leg index, number of legs, book checks): no unit."""


def _dtype(t: mi.Type) -> pl.DataType:
    if isinstance(t, mi.UnionType):
        rest = [x for x in t.types if not isinstance(x, mi.NoneType)]
        return _dtype(rest[0]) if len(rest) == 1 else pl.Utf8()
    if isinstance(t, mi.BoolType):
        return pl.Boolean()
    if isinstance(t, mi.IntType):
        return pl.Int64()
    if isinstance(t, mi.FloatType):
        return pl.Float64()
    if isinstance(t, mi.EnumType) and issubclass(t.cls, enum.IntEnum):
        return pl.Int64()
    # str, literals, str enums, and nested values written as JSON text
    return pl.Utf8()


def row_schema(row_type: type[msgspec.Struct]) -> dict[str, pl.DataType]:
    """The polars schema of a table of ``row_type`` rows, in field order."""
    info = mi.type_info(row_type)
    assert isinstance(info, mi.StructType)
    return {f.name: _dtype(f.type) for f in info.fields}


def table_schema(kind: str, rows: list[Any] | None = None) -> dict[str, pl.DataType] | None:
    """The schema of table ``kind``: from its declared row struct, else from the type of its
    first row (a kind a plugin emits); None when neither is known."""
    row_type = ROW_TYPES.get(kind)
    if row_type is None and rows:
        row_type = type(rows[0])
    if row_type is None or not issubclass(row_type, msgspec.Struct):
        return None
    return row_schema(row_type)


def micros_columns(schema: dict[str, pl.DataType]) -> list[str]:
    """The columns of ``schema`` holding micro-units (see the module docstring)."""
    return [
        name
        for name, dt in schema.items()
        if dt == pl.Int64() and not name.endswith(("_ns", "_micros")) and name not in COUNT_COLUMNS
    ]


def micros_name(name: str) -> str:
    """``name`` with its unit: ``fee`` → ``fee_micros`` (unchanged if it already ends so)."""
    return name if name.endswith("_micros") else f"{name}_micros"
