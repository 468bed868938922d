"""Recall on real upstream failure excerpts (tests/fixtures/logs/upstream_corpus.jsonl).

Each excerpt goes through the public triage API as an operator's paste would (`triage_text`). The
file is split, by a seeded draw per category, into "train" rows (patterns may be written from them) and
"heldout" rows (never read while writing patterns): recall on held-out rows is the honest measure.
"none" rows are real error excerpts that belong to no category: the engine must not label them.
The report (recall per split and category, every miss with id, expected and got) is printed and is
also the assertion message, so a failing run says what to look at.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from mlx_console.core.logs.patterns import CATEGORIES
from mlx_console.core.logs.triage import triage_text

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "logs" / "upstream_corpus.jsonl"
# The fixed vocabulary of issue 10: the catalogue's ids plus settings_invalid (added by that issue).
VOCABULARY = tuple(dict.fromkeys((*CATEGORIES, "settings_invalid")))
FIELDS = ("id", "source", "backend", "category", "split", "excerpt", "note")
SPLIT_SEED = "mlx-console-upstream-corpus-1"  # the draw is described in upstream_corpus.README.md
MIN_RECALL_HELDOUT = 0.90
MIN_RECALL_TRAIN = 0.90  # patterns are written from these rows: they must at least recognise them
SOURCE = re.compile(r"^https://github\.com/[\w.-]+/[\w.-]+/(issues|pull|discussions)/\d+$")


def _rows() -> list[dict]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _drawn_split(category: str, index: int) -> str:
    """The split of the index-th row (file order) of a category: in each block of five rows of that
    category, two positions drawn with a seeded RNG are held out."""
    block, pos = divmod(index, 5)
    held = random.Random(f"{SPLIT_SEED}:{category}:{block}").sample(range(5), 2)
    return "heldout" if pos in held else "train"


def _got(excerpt: str) -> list[str]:
    seen: dict[str, None] = {}
    for ev in triage_text(excerpt):
        seen.update(dict.fromkeys(ev.categories))
    return list(seen)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return _rows()


@pytest.fixture(scope="module")
def triaged(rows: list[dict]) -> dict[str, list[str]]:
    return {r["id"]: _got(r["excerpt"]) for r in rows}


def _recall_report(rows: list[dict], triaged: dict[str, list[str]], split: str) -> tuple[float, str]:
    picked = [r for r in rows if r["split"] == split and r["category"] != "none"]
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    misses: list[str] = []
    for r in picked:
        totals[r["category"]] += 1
        got = triaged[r["id"]]
        if r["category"] in got:
            hits[r["category"]] += 1
        else:
            misses.append(f"  {r['id']}: expected {r['category']}, got {got or 'nothing'}")
    recall = sum(hits.values()) / len(picked)
    lines = [f"{split} recall {sum(hits.values())}/{len(picked)} = {recall:.1%}"]
    lines += [f"  {c:<27} {hits[c]}/{totals[c]}" for c in VOCABULARY if totals[c]]
    if misses:
        lines += [f"{split} misses ({len(misses)}):", *misses]
    return recall, "\n".join(lines)


def test_corpus_rows_are_well_formed(rows: list[dict]) -> None:
    assert len(VOCABULARY) == 15
    assert len(rows) >= 100
    ids = Counter(r["id"] for r in rows)
    assert [i for i, n in ids.items() if n > 1] == []
    index: Counter[str] = Counter()
    for r in rows:
        assert tuple(r) == FIELDS, r.get("id")
        assert all(isinstance(r[k], str) and r[k].strip() for k in FIELDS), r["id"]
        assert r["category"] in (*VOCABULARY, "none"), r["id"]
        assert SOURCE.match(r["source"]), (r["id"], r["source"])
        assert r["split"] == _drawn_split(r["category"], index[r["category"]]), r["id"]
        index[r["category"]] += 1


def test_every_category_is_covered_and_held_out(rows: list[dict]) -> None:
    by_cat: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        by_cat[r["category"]][r["split"]] += 1
    assert sorted(by_cat) == sorted((*VOCABULARY, "none"))
    assert sum(by_cat["none"].values()) >= 15
    # Issue 10: at least a third held out, in every category (the draw holds out two rows in each full block of
    # five; a category's last, partial block may hold fewer) and over the whole file.
    thin = {c: dict(n) for c, n in by_cat.items() if n["heldout"] < 2 or n["heldout"] / sum(n.values()) < 1 / 3}
    assert thin == {}, f"categories with too few held-out rows: {thin}"
    assert sum(r["split"] == "heldout" for r in rows) / len(rows) >= 0.35


# Held-out recall at the last count: 217/252 (86.1 %): 75/85 of rows 1-244, 34/43 of rows 245-367, 10/10 of
# rows 368-409, 3/5 of rows 410-429, 7/8 of rows 430-453, 2/3 of rows 454-469, 5/7 of rows 470-493, 0/1 of
# rows 494-499, 2/2 of rows 500-506, 5/5 of rows 507-550, 10/12 of rows 551-590, 11/12 of rows 591-635, 5/7 of
# rows 636-666, 5/5 of rows 667-684, 23/24 of rows 685-769, 12/13 of rows 770-844 and 8/10 of rows 845-879 (the
# third to twenty-fifth recall rounds, collected
# blind and committed before any pattern was written from their train rows).
# The report printed by the test lists each miss; patterns are never written from it.
@pytest.mark.xfail(reason="known gap, issue 10 open: the engine recognises 217 of 252 held-out excerpts (86.1 %, "
                   "goal 90 %; 75/85 of rows 1-244, 34/43 of rows 245-367, 10/10 of rows 368-409, 3/5 of rows "
                   "410-429, 7/8 of rows 430-453, 2/3 of rows 454-469, 5/7 of rows 470-493, 0/1 of rows 494-499, "
                   "2/2 of rows 500-506, 5/5 of rows 507-550, 10/12 of rows 551-590, 11/12 of rows 591-635, 5/7 of rows "
                   "636-666, 5/5 of rows 667-684, 23/24 of rows 685-769, 12/13 of rows 770-844, 8/10 of rows 845-879); the report "
                   "lists each miss",
                   strict=False)
def test_recall_on_heldout_excerpts(rows: list[dict], triaged: dict[str, list[str]]) -> None:
    recall, report = _recall_report(rows, triaged, "heldout")
    print("\n" + report)
    assert recall >= MIN_RECALL_HELDOUT, report


def test_recall_on_train_excerpts(rows: list[dict], triaged: dict[str, list[str]]) -> None:
    recall, report = _recall_report(rows, triaged, "train")
    print("\n" + report)
    assert recall >= MIN_RECALL_TRAIN, report


def _none_report(rows: list[dict], triaged: dict[str, list[str]], split: str) -> tuple[list[str], str]:
    picked = [r for r in rows if r["category"] == "none" and r["split"] == split]
    wrong = [f"  {r['id']} ({r['split']}): expected none, got {triaged[r['id']]}" for r in picked if triaged[r["id"]]]
    report = f"{split} 'none' rows labelled: {len(wrong)}/{len(picked)}" + ("\n" + "\n".join(wrong) if wrong else "")
    return wrong, report


def test_no_category_on_train_excerpts_that_belong_to_none(rows: list[dict], triaged: dict[str, list[str]]) -> None:
    wrong, report = _none_report(rows, triaged, "train")
    print("\n" + report)
    assert wrong == [], report


# Held-out `none` rows are measured, never tuned on, like the held-out recall above. At the last count 1 of 95 is
# labelled: exo#1043, a peer's *outgoing* connection that failed with `Address already in use` (round 24), read
# as a server that cannot bind its port.
@pytest.mark.xfail(reason="known gap, issue 10 open: 1 of 95 held-out 'none' excerpts is labelled (exo#1043, "
                   "read as port_in_use); the report lists it", strict=False)
def test_no_category_on_heldout_excerpts_that_belong_to_none(rows: list[dict], triaged: dict[str, list[str]]) -> None:
    wrong, report = _none_report(rows, triaged, "heldout")
    print("\n" + report)
    assert wrong == [], report
