"""Fixtures for the oMLX stand-in tests; the harness lives in tests/standins/omlx_harness.py."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "standins"))

from omlx_harness import StandinFactory  # noqa: E402


@pytest.fixture
def start_standin(tmp_path: Path) -> Iterator[StandinFactory]:
    """Factory: start_standin(*extra_args, base=None, api_key="sekrit", env=None, models=True, wait=True)."""
    factory = StandinFactory(tmp_path)
    yield factory
    factory.stop_all()
