"""Triage test fixtures: the logs directory and the JSONL excerpts as parametrized fixtures.

Tests ask for `corpus_item` (upstream_bugs.jsonl entries with a triage category), `garbage_item`
(quantization_garbage entries) or `heldout_item` (heldout.jsonl) and run once per excerpt.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "logs"
NOT_TRIAGED = {"quantization_garbage", "other"}  # corpus categories that are not log-triage targets


def _jsonl(name: str) -> list[dict]:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    corpus = _jsonl("upstream_bugs.jsonl")
    sets = {
        "corpus_item": [c for c in corpus if c["category"] not in NOT_TRIAGED],
        "garbage_item": [c for c in corpus if c["category"] == "quantization_garbage"],
        "heldout_item": _jsonl("heldout.jsonl"),
    }
    for name, items in sets.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, items, ids=[i["source"].split("github.com/")[-1] for i in items])


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def all_excerpts() -> list[dict]:
    return _jsonl("upstream_bugs.jsonl") + _jsonl("heldout.jsonl")
