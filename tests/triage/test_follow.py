"""LogTail (the one log reader followed by path) on real files: appends, partial lines, rotation,
copytruncate, late creation, bad bytes, very long lines; LiveTriage wakes on a write."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlx_console.core.logs.document import MAX_POLL_BYTES
from mlx_console.core.logs.live import LiveTriage
from mlx_console.core.logs.source import MAX_LINE_BYTES
from mlx_console.core.logs.tail import LogTail


def _texts(tail: LogTail) -> list[str]:
    return tail.poll().lines


def test_from_the_end_skips_existing_and_reads_appends(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("old 1\nold 2\n")
    with LogTail(f, tail_bytes=0) as tail:
        assert _texts(tail) == []
        with f.open("a") as w:
            w.write("new 3\nnew 4\n")
        assert _texts(tail) == ["new 3", "new 4"]
        assert tail.offset == f.stat().st_size


def test_resume_at_an_offset_reads_from_there(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("before\nafter 1\nafter 2\n")
    with LogTail(f, start=len("before\n")) as tail:
        assert _texts(tail) == ["after 1", "after 2"]
        assert _texts(tail) == []


def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_text("")
    with LogTail(f, start=0) as tail:
        with f.open("a") as w:
            w.write("hal")
            w.flush()
            assert _texts(tail) == []
            w.write("f line\nnext")
            w.flush()
            assert _texts(tail) == ["half line"]
            w.write("\n")
        assert _texts(tail) == ["next"]


def test_from_the_end_with_a_partial_tail_reads_that_line_once_finished(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_text("done\nhalf")
    with LogTail(f, tail_bytes=0) as tail:
        assert _texts(tail) == []
        with f.open("a") as w:
            w.write(" written\n")
        assert _texts(tail) == ["half written"]


def test_rename_rotation_loses_and_repeats_nothing(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("")
    got: list[tuple[int, str]] = []
    with LogTail(f, start=0) as tail:
        w = f.open("a")
        for i in range(50):
            w.write(f"a{i}\n")
        w.write("tail-without-newline")
        w.flush()
        got += [(tail.generation, t) for t in _texts(tail)]
        w.write(" and more\n")  # written to the old file after our poll, before the rename
        w.flush()
        os.rename(f, tmp_path / "server.log.2026-11-25")
        w.write("last words\n")  # still written to the old file, after the rename
        w.close()
        with f.open("a") as w2:
            for i in range(5):
                w2.write(f"b{i}\n")
        for _ in range(3):
            polled = tail.poll()
            got += [(tail.generation, t) for t in polled.lines]
    texts = [t for _, t in got]
    assert texts == [f"a{i}" for i in range(50)] + ["tail-without-newline and more", "last words"] + \
        [f"b{i}" for i in range(5)]
    assert got[-1][0] == 1 and got[0][0] == 0


def test_deleted_then_created_again(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("one\n")
    with LogTail(f, start=0) as tail:
        assert _texts(tail) == ["one"]
        f.unlink()
        polled = tail.poll()
        assert polled.rotated and polled.lines == [] and tail.document is None
        f.write_text("two\n")
        assert _texts(tail) == ["two"] and tail.generation == 1


def test_copytruncate(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("one\ntwo\n")
    with LogTail(f, start=0) as tail:
        assert _texts(tail) == ["one", "two"]
        with f.open("r+") as w:
            w.truncate(0)
        with f.open("a") as w:
            w.write("three\n")
        polled = tail.poll()
        assert polled.lines == ["three"] and polled.rotated and tail.generation == 1


def test_copytruncate_then_refill_past_the_old_size_loses_nothing(tmp_path: Path) -> None:
    """Truncated and written again past the old size before the next poll: the size alone cannot tell,
    the bytes before the offset (a fingerprint) can. Issue 13: 5,000 of 6,000 lines used to be lost."""
    f = tmp_path / "server.log"
    old = [f"2026-12-05 10:00:{i % 60:02d} old line {i}" for i in range(6000)]
    f.write_text("".join(x + "\n" for x in old))
    with LogTail(f, start=0) as tail:
        assert len(_texts(tail)) == 6000
        new = [f"2026-12-05 11:00:{i % 60:02d} NEW line {i}" for i in range(7000)]
        with f.open("r+") as w:  # copytruncate, then the server writes more than before at once
            w.truncate(0)
        with f.open("a") as w:
            w.write("".join(x + "\n" for x in new))
        polled = tail.poll()
        assert polled.lines == new and polled.rotated and tail.generation == 1
        with f.open("a") as w:
            w.write("after\n")
        assert _texts(tail) == ["after"]  # plain appends are not taken for a refill


def test_file_that_does_not_exist_yet_is_read_from_its_start(tmp_path: Path) -> None:
    f = tmp_path / "later" / "server.log"
    with LogTail(f, tail_bytes=0) as tail:
        assert _texts(tail) == [] and tail.error is None
        f.parent.mkdir()
        f.write_text("first\nsecond\n")
        polled = tail.poll()
        assert polled.opened is not None
        # A file created after we started is all new: the whole of it is the opened document's.
        assert polled.opened.offset == f.stat().st_size


def test_invalid_utf8_and_crlf(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(b"ok\r\nbad \xff\xfe byte\n\xe2\x82\n")
    with LogTail(f, start=0) as tail:
        assert _texts(tail) == ["ok", "bad \ufffd\ufffd byte", "\ufffd"]


def test_ten_megabyte_line_is_cut(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_text("")
    with LogTail(f, start=0) as tail:
        with f.open("ab") as w:
            for _ in range(10):  # 10 MB arriving in pieces, polled as it grows
                w.write(b"y" * (1 << 20))
                w.flush()
                assert _texts(tail) == []
            w.write(b" END [Errno 98] Address already in use\nshort\n")
        lines = _texts(tail)
    assert len(lines) == 2 and lines[1] == "short"
    assert lines[0].startswith("yyyy") and lines[0].endswith("END [Errno 98] Address already in use")
    assert f"of {10 * (1 << 20) + 38} bytes cut" in lines[0]
    assert len(lines[0]) <= MAX_LINE_BYTES + 100


def test_a_big_append_comes_in_bounded_polls(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_text("")
    line = "x" * 99
    n = (MAX_POLL_BYTES // 100) * 2 + 10
    with LogTail(f, start=0) as tail:
        tail.poll()
        f.write_text((line + "\n") * n)
        first = _texts(tail)
        assert 0 < len(first) < n and tail.behind
        rest: list[str] = []
        while tail.behind:
            rest += _texts(tail)
        assert len(first) + len(rest) == n and not tail.behind


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=3000).map(lambda b: b.replace(b"\r", b"")),
    cuts=st.lists(st.integers(0, 3000), max_size=12),
    rotate_at=st.one_of(st.none(), st.integers(0, 3000)),
)
def test_random_chunked_writes_read_back_exactly(tmp_path_factory, data: bytes, cuts: list[int], rotate_at) -> None:
    """Whatever the chunking (and one rename rotation at a line boundary), lines come back whole and once."""
    d = tmp_path_factory.mktemp("rnd")
    f = d / "s.log"
    f.write_bytes(b"")
    if rotate_at is not None:  # rotate only at a line boundary, as a logging handler does
        nl = data.find(b"\n", min(rotate_at, len(data)))
        rotate_at = None if nl < 0 else nl + 1
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data)), *([rotate_at] if rotate_at else [])})
    got: list[str] = []
    with LogTail(f, start=0) as tail:
        w = f.open("ab")
        for a, b in zip(bounds, bounds[1:], strict=False):
            if a == rotate_at:
                w.close()
                os.rename(f, d / "s.log.1")
                w = f.open("ab")
            w.write(data[a:b])
            w.flush()
            got += _texts(tail)
        w.close()
        got += _texts(tail)
    complete = data[: data.rfind(b"\n") + 1] if b"\n" in data else b""
    expected = [p.decode("utf-8", "replace") for p in complete.split(b"\n")[:-1]]
    # A rotation finishes the old file: an unterminated last line there would be a line of its own,
    # but rotating at a line boundary never leaves one.
    assert got == expected


def test_unreadable_path_reports_an_error_and_recovers(tmp_path: Path) -> None:
    p = tmp_path / "x.log"
    p.mkdir()  # a directory where the log should be
    with LogTail(p, start=0) as tail:
        assert _texts(tail) == [] and tail.error and "x.log" in tail.error
        p.rmdir()
        p.write_text("now a file\n")
        assert _texts(tail) == ["now a file"] and tail.error is None


def test_a_step_wakes_within_100ms_of_an_append(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("x\n")
    with LiveTriage(f) as live:
        live.initial()
        delays = []

        def append(i: int) -> None:
            with f.open("a") as w:
                w.write(f"line {i}\n")

        for i in range(5):
            t0 = time.monotonic()
            threading.Timer(0.05, append, (i,)).start()
            got: list[str] = []
            while not got and time.monotonic() - t0 < 3:
                got = live.step(2.0).lines
            delays.append(time.monotonic() - t0 - 0.05)
            assert got == [f"line {i}"]
    assert sorted(delays)[2] < 0.1, delays


def test_a_dead_last_line_that_goes_on_is_not_a_new_file(tmp_path: Path) -> None:
    """An unfinished last line older than a few seconds is taken for a dead backend's last words; when the
    backend was only quiet (a download's progress bar) and writes on, a reader of appends (the supervising
    daemon, the metrics sampler) resumes at that line: nothing earlier is read again."""
    f = tmp_path / "server.log"
    f.write_text("OSError: [Errno 98] Address already in use\nFetching 9 files:   0%|")
    old = time.time() - 60
    os.utime(f, (old, old))
    with LogTail(f, start=0) as tail:
        assert _texts(tail) == ["OSError: [Errno 98] Address already in use", "Fetching 9 files:   0%|"]
        with f.open("a") as w:
            w.write(" 100%|\nready\n")
        polled = tail.poll()
        assert polled.lines == ["Fetching 9 files:   0%| 100%|", "ready"]
        assert polled.resumed and not polled.rotated and tail.generation == 0
        with f.open("a") as w:
            w.write("more\n")
        assert _texts(tail) == ["more"]


def test_an_unfinished_last_line_left_unwritten_becomes_a_line_while_followed(tmp_path: Path) -> None:
    """A backend that dies in the middle of a line while it is followed: once the file has stayed unwritten
    for a while, that line is its last words (as when the file is opened), and if it goes on after all the
    reader resumes at it."""
    f = tmp_path / "server.log"
    f.write_text("INFO: serving\n")
    with LogTail(f, start=0) as tail:
        assert _texts(tail) == ["INFO: serving"]
        with f.open("a") as w:
            w.write("libc++abi: terminating due to uncaught exception")
        assert _texts(tail) == []  # just written: maybe still being written
        old = time.time() - 60
        os.utime(f, (old, old))
        assert _texts(tail) == ["libc++abi: terminating due to uncaught exception"]
        assert _texts(tail) == []
        with f.open("a") as w:
            w.write(" of type std::runtime_error\nnext\n")
        polled = tail.poll()
        assert polled.resumed and polled.lines == [
            "libc++abi: terminating due to uncaught exception of type std::runtime_error", "next"]
