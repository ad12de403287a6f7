"""Shared test fixtures: where ../shared lives, and whether its absence is a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """``../shared/fixtures`` beside the clone; skips with a reason when absent, fails in CI
    (``POLYLAB_REQUIRE_FIXTURES=1``, set by ``.ci/run``)."""
    if not SHARED.is_dir():
        msg = f"recorded venue fixtures not found at {SHARED} (clone polylab next to ../shared)"
        if os.environ.get("POLYLAB_REQUIRE_FIXTURES") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED
