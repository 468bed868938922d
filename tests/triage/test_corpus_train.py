"""Recall on the train split of the real upstream corpus (patterns were written from the bug families these
show; the held-out split is measured by its own test and never read while writing patterns)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlx_console.core.logs.triage import triage_text

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "logs" / "upstream_corpus.jsonl"


def _train() -> list[dict]:
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS.name} is not on this branch yet (it comes from the corpus branch)")
    rows = [json.loads(x) for x in CORPUS.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [r for r in rows if r.get("split") == "train"]


def test_train_split_recall_and_precision() -> None:
    rows = _train()
    assert rows
    missed, wrong = [], []
    for r in rows:
        cats = {c for ev in triage_text(r["excerpt"]) for c in ev.categories}
        if r["category"] in ("none", "clean"):
            if cats:
                wrong.append((r["id"], sorted(cats)))
        elif r["category"] not in cats:
            missed.append((r["id"], r["category"], sorted(cats)))
    bugs = [r for r in rows if r["category"] not in ("none", "clean")]
    assert len(missed) <= 0.05 * len(bugs), missed
    assert not wrong, wrong
