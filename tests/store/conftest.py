"""Ledger fixtures: the same tests run on a SQLite file and on the machine's real PostgreSQL.

PostgreSQL: ``POLYLAB_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``); each
test gets its own schema (``search_path`` in the URL), dropped afterwards. When the server is
not reachable the PostgreSQL variants skip, or fail under ``POLYLAB_REQUIRE_POSTGRES=1`` (or
``POLYLAB_REQUIRE_SERVICES=1``, set by ``.ci/run``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from store.ledger_data import PG_BASE, pg_admin, pg_url

from polylab.store.ledger import Ledger


def _pg_available() -> str | None:
    try:
        with pg_admin() as c:
            c.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_BASE} not reachable: {str(exc).strip().splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def pg_base() -> str:
    """The PostgreSQL base URL; skips (or fails, see module doc) when unreachable."""
    why = _pg_available()
    if why is not None:
        if "1" in (
            os.environ.get("POLYLAB_REQUIRE_POSTGRES"),
            os.environ.get("POLYLAB_REQUIRE_SERVICES"),
        ):
            pytest.fail(why)
        pytest.skip(why)
    return PG_BASE


@pytest.fixture
def pg_schema(pg_base: str) -> Iterator[str]:
    """A fresh schema, dropped afterwards; its URL is ``pg_url(pg_base, schema)``."""
    name = f"t_ledger_{uuid.uuid4().hex[:12]}"
    with pg_admin() as c:
        c.execute(f'CREATE SCHEMA "{name}"')
    yield name
    with pg_admin() as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    schema = request.getfixturevalue("pg_schema")
    return pg_url(request.getfixturevalue("pg_base"), schema)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    """An opened (migrated) ledger on each kind of database."""
    led = Ledger.open(ledger_url, application_name=f"polylab-test-{uuid.uuid4().hex[:8]}")
    yield led
    led.close()
