"""LineIndex: newest lines first over mmap, random access, growth, rotation; agrees with a plain split."""

from __future__ import annotations

import os
from array import array
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlx_console.core.logs.index import LineIndex
from mlx_console.core.logs.source import decode_line


def _expected(data: bytes) -> list[str]:
    parts = data.split(b"\n")
    if data.endswith(b"\n"):
        parts.pop()
    return [decode_line(p) for p in parts] if data else []


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=60),
    trailing=st.booleans(),
    batch=st.integers(1, 64),
)
def test_index_matches_split(tmp_path: Path, lines: list[bytes], trailing: bool, batch: int) -> None:
    data = b"\n".join(lines) + (b"\n" if trailing and lines else b"")
    f = tmp_path / "x.log"
    f.write_bytes(data)
    exp = _expected(data)
    with LineIndex(f) as idx:
        # Newest first, in small batches, as a viewer would.
        while not idx.complete:
            idx.scan_back(batch)
        assert len(idx) == len(exp)
        assert idx.tail(len(exp) + 3) == exp
        assert [idx.line(i) for i in range(1, len(exp) + 1)] == exp
        assert [idx.from_end(j) for j in range(len(exp))] == exp[::-1]


def test_last_screen_without_indexing_the_whole_file(tmp_path: Path) -> None:
    f = tmp_path / "big.log"
    line = b"2026-11-25 13:22:38,803 - INFO - Prompt processing progress: 14/14\n"
    f.write_bytes(line * 200_000 + b"the last line\n")
    with LineIndex(f) as idx:
        tail = idx.tail(50)
        assert tail[-1] == "the last line" and len(tail) == 50
        assert not idx.complete and len(idx) < 200_000
        assert isinstance(idx._back, array) and idx._back.itemsize == 8
        idx.scan_all()
        assert len(idx) == 200_001 and idx.line(200_001) == "the last line"
        assert idx.offset(2) == len(line)


def test_refresh_extends_on_append_and_resets_on_rotation(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(b"one\ntwo\npart")
    with LineIndex(f) as idx:
        assert idx.tail(5) == ["one", "two", "part"]
        with f.open("ab") as w:
            w.write(b"ial\nfour\n")
        assert idx.refresh() == 1
        assert idx.tail(5) == ["one", "two", "partial", "four"]
        idx.scan_all()
        assert idx.line(4) == "four"
        os.rename(f, tmp_path / "a.log.1")
        f.write_bytes(b"fresh\n")
        assert idx.refresh() == -1
        assert idx.tail(5) == ["fresh"]


def test_empty_file_then_growth(tmp_path: Path) -> None:
    f = tmp_path / "e.log"
    f.write_bytes(b"")
    with LineIndex(f) as idx:
        assert len(idx) == 0 and idx.complete and idx.tail(3) == []
        f.write_bytes(b"a\nb\n")
        assert idx.refresh() == 2
        assert idx.tail(3) == ["a", "b"] and idx.line(1) == "a"


def test_long_line_keeps_head_and_tail(tmp_path: Path) -> None:
    f = tmp_path / "l.log"
    f.write_bytes(b"start" + b"z" * 5_000_000 + b"end\nok\n")
    with LineIndex(f) as idx:
        first, second = idx.tail(2)
        assert first.startswith("startzz") and first.endswith("zzend") and "line truncated" in first
        assert second == "ok"
