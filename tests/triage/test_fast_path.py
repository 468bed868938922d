"""The fast path (scanner over mmap/bytes) returns exactly what the plain path (`re`, line by line) does."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlx_console.core.logs import forked, scan
from mlx_console.core.logs import triage as triage_mod
from mlx_console.core.logs.patterns import Catalog
from mlx_console.core.logs.scan import Scanner
from mlx_console.core.logs.source import decode_line
from mlx_console.core.logs.triage import (
    default_catalog,
    explain,
    triage_buffer,
    triage_file,
    triage_lines,
    triage_text,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "logs"
ENGINES = ["re"] + (["hyperscan"] if scan.hyperscan is not None else [])


def _plain(data: bytes, include_all: bool) -> list[dict]:
    lines = [decode_line(b) for b in data.split(b"\n")]
    if data.endswith(b"\n"):
        lines.pop()
    return [e.to_json() for e in triage_lines(lines, include_all=include_all)]


def _fast(data: bytes, include_all: bool, engine: str, workers: int = 1) -> list[dict]:
    # workers > 1: shared by forked processes, in parts of any size (the CLI's thresholds are for big logs)
    return [e.to_json() for e in triage_buffer(data, include_all=include_all, engine=engine, workers=workers,
                                               min_part=1, min_candidates=1)]


def _corpus_blob() -> bytes:
    parts = []
    for p in sorted(FIXTURES.iterdir()):
        if p.suffix == ".log":
            parts.append(p.read_bytes())
        elif p.suffix == ".jsonl":
            import json

            parts.extend(json.loads(line)["excerpt"].encode() + b"\n" for line in p.read_text().splitlines())
    return b"\n".join(parts)


BLOB = _corpus_blob()
BLOB_LINES = BLOB.split(b"\n")


def test_hyperscan_is_used_when_installed() -> None:
    if scan.hyperscan is None:
        pytest.skip("hyperscan wheel not installed: the `re` engine is the fallback")
    assert Scanner(default_catalog()).engine == "hyperscan"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("include_all", [False, True])
def test_fast_equals_plain_on_all_fixtures(engine: str, include_all: bool) -> None:
    fast = _fast(BLOB, include_all, engine)
    assert fast == _plain(BLOB, include_all)
    assert len(fast) > 40


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 120), include_all=st.booleans())
def test_fast_equals_plain_on_shuffled_lines(engine: str, seed: int, n: int, include_all: bool) -> None:
    rng = random.Random(seed)
    picked = [rng.choice(BLOB_LINES) for _ in range(n)]
    data = b"\n".join(picked) + rng.choice([b"", b"\n"])
    assert _fast(data, include_all, engine) == _plain(data, include_all)


@pytest.mark.parametrize("engine", ENGINES)
def test_pattern_across_lines_never_matches(engine: str) -> None:
    # `\s*` could cross a newline in a whole-buffer scan; triage matches one line at a time, like grep.
    data = b'{"content":\n"<tool_call>{}</tool_call>"}\n'
    assert _fast(data, False, engine) == _plain(data, False) == []


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("before", [b"x", b"RuntimeError: boom", b"RuntimeError: There is no Stream(gpu, 1) in current thread."])
def test_a_raw_tool_call_line_is_found_whatever_line_comes_before(engine: str, before: bytes) -> None:
    # Hyperscan 0.9.1 missed this line after some lines (not after `x`) while `^\s*` led the pattern: scan.py
    # hands it the pattern without that prefix.
    buf = before + b"\n\n <|tool_call>call:bash{command:<|\"|>ls -la<|\"|>}<tool_call|>\n"
    got = triage_buffer(buf, engine=engine, min_part=1, min_candidates=1)
    assert [(t.event.first_line, list(t.categories)) for t in got if t.event.first_line == 3] == [(3, ["tool_call_plaintext"])]


def test_user_pattern_hyperscan_cannot_compile_falls_back_to_re(tmp_path: Path) -> None:
    if scan.hyperscan is None:
        pytest.skip("hyperscan not installed")
    f = tmp_path / "c.toml"
    f.write_text(
        "[[entry]]\nid='x'\ncategory='server_hang'\npatterns=['stuck(?#a comment) \\d+ times']\nseverity='error'\n"
        "title='t'\ncause='c'\nfirst_move='m'\n"
    )
    cat = Catalog.load([f])
    sc = Scanner(cat)
    data = b"ok\nthe widget got stuck 3 times\n"
    assert [e.main.id for e in triage_buffer(data, cat, scanner=sc)] == ["x"]


def test_triage_file_on_a_big_file_with_a_long_line(tmp_path: Path) -> None:
    f = tmp_path / "big.log"
    body = b"2026-11-25 13:22:38,803 - INFO - Prompt processing progress: 14/14\n" * 20000
    f.write_bytes(body + b"x" * 3_000_000 + b" OSError: [Errno 48] Address already in use\n" + body)
    [ev] = triage_file(f)
    # The line is cut (head and tail kept, marked), so the error at its end is still seen.
    assert (ev.first_line, ev.last_line, ev.categories) == (20001, 20001, ["port_in_use"])
    assert "line truncated: " in ev.event.lines[0] and len(ev.event.lines[0]) < 70_000


def test_without_hyperscan_auto_falls_back_to_re(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan, "hyperscan", None)
    sc = Scanner(default_catalog())
    assert sc.engine == "re"
    data = b"ok\nOSError: [Errno 98] Address already in use\n"
    assert [e.categories for e in triage_buffer(data, scanner=sc)] == [["port_in_use"]]
    with pytest.raises(RuntimeError, match="hyperscan is not installed"):
        Scanner(default_catalog(), engine="hyperscan")


def _corpus_events() -> list:
    import json

    corpus = FIXTURES / "upstream_corpus.jsonl"
    out = [t for line in corpus.read_text().splitlines() if line.strip()
           for t in triage_text(json.loads(line)["excerpt"], include_all=True)]
    return out + triage_buffer(BLOB, include_all=True)


def test_evidence_literal_prefilter_only_skips_entries_that_would_be_rejected() -> None:
    # `match` skips an evidence entry whose required literals are absent from the event; `explain` tries every
    # entry with every regex: the entries it chooses must be exactly the ones `match` returned.
    cat = default_catalog()
    events = _corpus_events()
    assert len(events) > 150
    assert any(cat.entries[i].evidence_literals for i in range(len(cat.entries)))
    for t in events:
        chosen = {v.id for v in explain(t, cat) if v.chosen}
        assert {m.id for m in t.matches} == chosen, t.event.lines[:3]


@pytest.fixture
def forking(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The forked path taken even when an earlier test of the session left an idle thread behind (in a user's
    process `can_fork` refuses any second thread); returns the job counts of each map_forked call."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform: the plain path is the only one")
    calls: list[int] = []
    real = forked.map_forked

    def spy(fn, jobs):  # type: ignore[no-untyped-def]
        calls.append(len(jobs))
        return real(fn, jobs)

    for mod in (triage_mod, scan):
        monkeypatch.setattr(mod, "can_fork", lambda: True)
        monkeypatch.setattr(mod, "map_forked", spy)
    return calls


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("include_all", [False, True])
@pytest.mark.parametrize("workers", [2, 5])
def test_forked_equals_plain_on_all_fixtures(engine: str, include_all: bool, workers: int,
                                             forking: list[int]) -> None:
    assert _fast(BLOB, include_all, engine, workers) == _plain(BLOB, include_all)
    assert forking and max(forking) > 1  # the scan and the events were really shared by forked processes


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 120), include_all=st.booleans(), workers=st.integers(2, 7))
def test_forked_equals_plain_on_shuffled_lines(engine: str, seed: int, n: int, include_all: bool, workers: int,
                                               forking: list[int]) -> None:
    # Runs of candidates are cut anywhere, inside tracebacks too: the merge keeps one process's answer.
    rng = random.Random(seed)
    picked = [rng.choice(BLOB_LINES) for _ in range(n)]
    data = b"\n".join(picked) + rng.choice([b"", b"\n"])
    assert _fast(data, include_all, engine, workers) == _plain(data, include_all)


def test_forked_scan_counts_lines_across_parts(forking: list[int]) -> None:
    data = BLOB * 3
    sc = Scanner(default_catalog())
    assert sc.scan(data, workers=4, min_part=1) == sc.scan(data)
    assert sc.scan(data, workers=4, min_part=1)[2] == data.count(b"\n")


def _pid(k: int) -> tuple[int, int]:
    return k, os.getpid()


def _dies_in_child(parent: int, k: int) -> int:
    if os.getpid() != parent:
        os._exit(3)
    return k * 10


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this system")
def test_map_forked_runs_jobs_in_children_and_makes_up_for_a_dead_one() -> None:
    got = forked.map_forked(_pid, [(k,) for k in range(4)])
    assert [k for k, _ in got] == [0, 1, 2, 3]
    assert got[0][1] == os.getpid() and len({p for _, p in got}) == 4  # jobs 1-3 ran in 3 other processes
    assert forked.map_forked(_dies_in_child, [(os.getpid(), k) for k in range(3)]) == [0, 10, 20]
    assert forked.map_forked(_pid, []) == []


def test_backend_hint_literals_never_hide_a_hint() -> None:
    # detect_backend tests each hint's literals before its regex: the answer is the regexes' alone.
    from mlx_console.core.logs.evidence import _BACKEND_HINTS, detect_backend

    def by_regex(f) -> tuple[str | None, str]:
        probes = ([f.logger] if f.logger else []) + [fr.path for fr in reversed(f.frames)] + f.event.lines[:50]
        for text in probes:
            for name, rx in _BACKEND_HINTS:
                if rx.search(text):
                    return name, text.strip()[:160]
        return None, ""

    facts = [t.facts for t in _corpus_events() if t.facts is not None]
    assert sum(detect_backend(f)[0] is not None for f in facts) > 50
    assert all(detect_backend(f) == by_regex(f) for f in facts)
    for text in ("LM STUDIO crashed", "LM Studio", "ᴌM Studio", "the lmſtudio engine", "OMLX"):  # caseless hints
        f = facts[0]
        probe = type(f)(type(f.event)(1, [text], "unknown", "ERROR"))
        assert detect_backend(probe) == by_regex(probe)


def test_literal_finder_equals_in_on_the_corpus_and_odd_text() -> None:
    from mlx_console.core.logs.literals import LiteralFinder
    from mlx_console.core.logs.patterns import _universe

    cat = default_catalog()
    finder, _ = cat._evidence_finder
    lits = finder.literals
    assert len(lits) > 50
    texts = [_universe(t.facts) for t in _corpus_events() if t.facts is not None]
    texts += ["", "Exception", "ünïcödé Error: \udcff surrogate", "\\x41 [METAL] (?:x) .*", "a\nb"]
    for text in texts:
        want = {i for i, x in enumerate(lits) if x in text}
        assert finder.present(text) in (want, None if scan.hyperscan is None else want)
    odd = LiteralFinder(["a.c", "\\d", "(?:", "ß", "[x]"])
    if scan.hyperscan is not None:
        assert odd.present("abc \\d ß [x]") == {1, 3, 4}  # regex syntax in a literal is only text
    assert LiteralFinder([]).present("anything") == set()


def test_re_engine_finds_a_literal_for_every_pattern_that_has_a_selective_one() -> None:
    # The `re` engine (no hyperscan) runs a regex pass over the whole log for each pattern without a required
    # literal, and a bytes.find for the others: a rare character above ASCII is a literal, and no literal may be
    # on every line of a clean log (each hit of a literal is a line to check).
    from mlx_console.core.logs.literals import required_literals

    assert required_literals("[a-z,]Ġ[a-z]") == ["Ġ"]
    assert required_literals("[A-Za-z:] ?��") == ["��"]
    sc = Scanner(Catalog.load([]), engine="re", cache_dir=None)
    assert len(sc._rest) <= 3, [sc._pats[k][0] for k, _ in sc._rest]
    clean = (FIXTURES / "mlx_lm_clean.log").read_bytes()
    lines = clean.count(b"\n")
    common = {lit for lit in sc._literals if clean.count(lit) > lines // 4}
    assert not common, common
