"""LogDocument: every line of a file reachable through the sparse index, the end at once, appends, rotation."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlx_console.core.logs import document
from mlx_console.core.logs.document import LogDocument, is_run_start


def read_all(doc: LogDocument) -> list[str]:
    while not doc.head_done:
        doc.index_head(1000)
    assert doc.total is not None
    return [doc.line(n) for n in range(doc.total)]


def expected(data: bytes) -> list[str]:
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    return [p.removesuffix(b"\r").decode("utf-8", "replace") for p in parts]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.text(alphabet="ab\r\u00e9x ", max_size=300), max_size=80),
       tail=st.integers(1, 4000), final_nl=st.booleans())
def test_every_line_matches_a_plain_split(tmp_path_factory: pytest.TempPathFactory, lines: list[str], tail: int,
                                          final_nl: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(document, "BLOCK", 97)
    data = "\n".join(lines).encode() + (b"\n" if final_nl and lines else b"")
    path = tmp_path_factory.mktemp("doc") / "a.log"
    path.write_bytes(data)
    old = time.time() - 60   # an unfinished last line of a file nobody writes is a line
    os.utime(path, (old, old))
    with LogDocument(path, tail_bytes=tail) as doc:
        assert doc.tail_count <= len(expected(data))
        assert read_all(doc) == expected(data)


def test_tail_first_then_head_then_appends(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_text("".join(f"line {i}\n" for i in range(100_000)))
    with LogDocument(path, tail_bytes=10_000) as doc:
        assert not doc.head_done and doc.total is None
        p = doc.tail_count
        assert doc.tail_line(p - 1) == "line 99999"
        while not doc.head_done:
            doc.index_head(100_000)
        assert doc.total == 100_000
        assert doc.line(0) == "line 0" and doc.line(54_321) == "line 54321"
        with path.open("a") as fh:
            fh.write("new 1\nnew 2\nhalf")
        assert doc.poll() == ["new 1", "new 2"]
        assert doc.total == 100_002 and doc.line(100_001) == "new 2"
        with path.open("a") as fh:
            fh.write(" done\n")
        assert doc.poll() == ["half done"]
        assert doc.poll() == []
        path.write_text("rotated\n")   # truncated in place and written again: a new file to the reader
        assert doc.poll() == [] and doc.replaced


def test_long_line_is_cut_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"short\n" + b"x" * 300_000 + b"END\nafter\n")
    with LogDocument(path, tail_bytes=100) as doc:
        lines = read_all(doc)
    assert lines[0] == "short" and lines[2] == "after"
    assert "line truncated" in lines[1] and lines[1].endswith("END")


def test_run_start_lines() -> None:
    warn = ".../mlx_lm/server.py:1894: UserWarning: mlx_lm.server is not recommended for production as it..."
    bind = "2026-11-25 13:22:31,030 - INFO - Starting httpd at 127.0.0.1 on port 8080..."
    assert is_run_start(warn, None)
    assert not is_run_start(bind, warn)           # the same run
    assert not is_run_start(bind, f"{warn}\n  warnings.warn(")  # as Python prints a warning: the same run
    assert is_run_start(bind, "2026-11-25 - INFO - Prompt processing progress: 1/1")
    assert is_run_start("Starting server at http://127.0.0.1:8000", None)
    assert not is_run_start("POST /v1/chat/completions", None)


def test_tail_lines_in_one_go(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text("".join(f"l{i}\n" for i in range(50_000)))
    with LogDocument(path, tail_bytes=200_000) as doc:
        n = doc.tail_count
        assert doc.tail_lines(n - 3, n + 5) == [doc.tail_line(p) for p in range(n - 3, n)]
        assert doc.tail_lines(0, 2) == [doc.tail_line(0), doc.tail_line(1)]
        assert doc.tail_lines(1234, 1236) == [doc.tail_line(1234), doc.tail_line(1235)]


def test_file_watch_wakes_on_append(tmp_path: Path) -> None:
    from mlx_console.core.logs.watch import FileWatch

    path = tmp_path / "a.log"
    path.write_text("x\n")
    with FileWatch(path) as w:
        if w.kind == "timeout":
            pytest.skip("no inotify/kqueue here")
        assert not w.wait(0.05)
        with path.open("a") as fh:
            fh.write("y\n")
        t0 = time.monotonic()
        assert w.wait(5)
        assert time.monotonic() - t0 < 1


@settings(max_examples=80, deadline=None)
@given(lines=st.lists(st.sampled_from(["", "a", "ab", "ba", "abc", "xa b", "A"]), max_size=40),
       pattern=st.sampled_from(["a", "^a", "b$", "a\\s*b", "^$", "", "A", "(?i)a", "\\n"]), invert=st.booleans())
def test_scan_finds_what_a_line_by_line_search_finds(tmp_path_factory: pytest.TempPathFactory, lines: list[str],
                                                     pattern: str, invert: bool) -> None:
    import re

    path = tmp_path_factory.mktemp("scan") / "a.log"
    path.write_text("".join(f"{x}\n" for x in lines))
    rx = re.compile(pattern)
    with LogDocument(path, tail_bytes=20) as doc:
        while not doc.head_done:
            doc.index_head(7)
        got = list(doc.scan(rx, 0, doc.total or 0, invert=invert))
    assert got == [n for n, x in enumerate(lines) if (rx.search(x) is None) == invert]
