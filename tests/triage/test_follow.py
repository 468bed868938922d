"""LogFollower on real files: appends, partial lines, rotation, copytruncate, late creation, bad bytes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlx_console.core.logs.source import MAX_LINE_BYTES, LogFollower


def _texts(fol: LogFollower) -> list[str]:
    return [ln.text for ln in fol.poll()]


@pytest.fixture(params=[True, False], ids=["watchfiles", "polling"])
def watch(request: pytest.FixtureRequest) -> bool:
    return request.param


def test_start_end_skips_existing_and_reads_appends(tmp_path: Path, watch: bool) -> None:
    f = tmp_path / "server.log"
    f.write_text("old 1\nold 2\n")
    with LogFollower(f, use_watchfiles=watch) as fol:
        assert fol.poll() == []
        with f.open("a") as w:
            w.write("new 3\nnew 4\n")
        lines = fol.poll()
        assert [(ln.number, ln.text) for ln in lines] == [(3, "new 3"), (4, "new 4")]
        assert lines[0].offset == len("old 1\nold 2\n")


def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_text("")
    with LogFollower(f, start="begin") as fol:
        with f.open("a") as w:
            w.write("hal")
            w.flush()
            assert _texts(fol) == []
            w.write("f line\nnext")
            w.flush()
            assert _texts(fol) == ["half line"]
            w.write("\n")
        assert _texts(fol) == ["next"]


def test_start_end_with_partial_tail_reads_that_line_once_finished(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_text("done\nhalf")
    with LogFollower(f) as fol:
        assert fol.poll() == []
        with f.open("a") as w:
            w.write(" written\n")
        assert [(ln.number, ln.text) for ln in fol.poll()] == [(2, "half written")]


def test_rename_rotation_loses_and_repeats_nothing(tmp_path: Path, watch: bool) -> None:
    f = tmp_path / "server.log"
    f.write_text("")
    got: list[tuple[int, int, str]] = []
    with LogFollower(f, start="begin", use_watchfiles=watch) as fol:
        w = f.open("a")
        for i in range(50):
            w.write(f"a{i}\n")
        w.write("tail-without-newline")
        w.flush()
        got += [(ln.generation, ln.number, ln.text) for ln in fol.poll()]
        w.write(" and more\n")  # written to the old file after our poll, before the rename
        w.flush()
        os.rename(f, tmp_path / "server.log.2026-11-25")
        w.close()
        with f.open("a") as w2:
            for i in range(5):
                w2.write(f"b{i}\n")
        for _ in range(3):
            got += [(ln.generation, ln.number, ln.text) for ln in fol.poll()]
    texts = [t for _, _, t in got]
    assert texts == [f"a{i}" for i in range(50)] + ["tail-without-newline and more"] + [f"b{i}" for i in range(5)]
    assert got[51] == (1, 1, "b0")
    assert got[50][0] == 0


def test_copytruncate(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("one\ntwo\n")
    with LogFollower(f, start="begin") as fol:
        assert _texts(fol) == ["one", "two"]
        with f.open("r+") as w:
            w.truncate(0)
        with f.open("a") as w:
            w.write("three\n")
        lines = fol.poll()
        assert [(ln.generation, ln.number, ln.text) for ln in lines] == [(1, 1, "three")]


def test_copytruncate_then_refill_to_the_old_size_loses_nothing(tmp_path: Path) -> None:
    """Truncated and written again past the old size before the next poll: the size alone cannot tell,
    the bytes before the offset (a fingerprint) can. Issue 13: 5,000 of 6,000 lines used to be lost."""
    f = tmp_path / "server.log"
    old = [f"2026-12-05 10:00:{i % 60:02d} old line {i}" for i in range(6000)]
    f.write_text("".join(x + "\n" for x in old))
    with LogFollower(f, start="begin") as fol:
        assert len(_texts(fol)) == 6000
        new = [f"2026-12-05 11:00:{i % 60:02d} NEW line {i}" for i in range(6000)]
        with f.open("r+") as w:  # copytruncate, then the server writes as much again at once
            w.truncate(0)
        with f.open("a") as w:
            w.write("".join(x + "\n" for x in new))
        got = []
        while batch := fol.poll():
            got += batch
        assert [ln.text for ln in got] == new and {ln.generation for ln in got} == {1}
        with f.open("a") as w:
            w.write("after\n")
        assert _texts(fol) == ["after"]  # plain appends are not taken for a refill


def test_file_that_does_not_exist_yet(tmp_path: Path, watch: bool) -> None:
    f = tmp_path / "later" / "server.log"
    with LogFollower(f, use_watchfiles=watch) as fol:
        assert fol.poll() == []
        f.parent.mkdir()
        f.write_text("first\nsecond\n")
        # A file created after we started is read from its beginning.
        assert _texts(fol) == ["first", "second"]


def test_invalid_utf8_and_crlf(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(b"ok\r\nbad \xff\xfe byte\n\xe2\x82\n")
    with LogFollower(f, start="begin") as fol:
        assert _texts(fol) == ["ok", "bad \ufffd\ufffd byte", "\ufffd"]


def test_ten_megabyte_line_is_cut_with_bounded_memory(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_text("")
    with LogFollower(f, start="begin") as fol:
        with f.open("ab") as w:
            for _ in range(10):  # 10 MB arriving in pieces, polled as it grows
                w.write(b"y" * (1 << 20))
                w.flush()
                assert fol.poll() == []
                assert len(fol._partial) + len(fol._tail) <= MAX_LINE_BYTES
            w.write(b" END [Errno 98] Address already in use\nshort\n")
        lines = fol.poll()
    assert [ln.truncated for ln in lines] == [True, False]
    assert lines[0].text.startswith("yyyy") and lines[0].text.endswith("END [Errno 98] Address already in use")
    assert f"of {10 * (1 << 20) + 38} bytes cut" in lines[0].text
    assert len(lines[0].text) <= MAX_LINE_BYTES + 100
    assert lines[1].text == "short"


def test_wait_wakes_within_100ms_of_an_append(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("x\n")
    with LogFollower(f) as fol:
        assert fol.poll() == []
        fol.wait(0.01)
        assert fol.watching, "watchfiles should be active for an existing directory"
        time.sleep(0.2)  # let the watcher settle
        fol.wait(0.01)
        delays = []

        def append(i: int) -> None:
            with f.open("a") as w:
                w.write(f"line {i}\n")

        for i in range(5):
            t0 = time.monotonic()
            threading.Timer(0.05, append, (i,)).start()
            got: list = []
            while not got and time.monotonic() - t0 < 2:
                fol.wait(1.0)
                got = fol.poll()
            delays.append(time.monotonic() - t0 - 0.05)
            assert [ln.text for ln in got] == [f"line {i}"]
    assert sorted(delays)[2] < 0.1, delays


def test_polling_fallback_wakes_too(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("")
    with LogFollower(f, use_watchfiles=False, poll_interval=0.05) as fol:
        fol.poll()
        assert not fol.watching
        t0 = time.monotonic()
        with f.open("a") as w:
            w.write("hello\n")
        got: list = []
        while not got:
            fol.wait(1.0)
            got = fol.poll()
        assert time.monotonic() - t0 < 0.5


def test_lines_iterator_and_follow_callback_stop(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("a\nb\n")
    stop = threading.Event()
    seen: list[str] = []
    with LogFollower(f, start="begin") as fol:
        t = threading.Thread(target=fol.follow, args=(lambda b: seen.extend(ln.text for ln in b), stop))
        t.start()
        deadline = time.monotonic() + 3
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        with f.open("a") as w:
            w.write("c\n")
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        t.join(2)
    assert seen == ["a", "b", "c"] and not t.is_alive()


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
    with LogFollower(f, start="begin", use_watchfiles=False) as fol:
        w = f.open("ab")
        for a, b in zip(bounds, bounds[1:], strict=False):
            if a == rotate_at:
                w.close()
                os.rename(f, d / "s.log.1")
                w = f.open("ab")
            w.write(data[a:b])
            w.flush()
            got += [ln.text for ln in fol.poll()]
        w.close()
        got += [ln.text for ln in fol.poll()]
    complete = data[: data.rfind(b"\n") + 1] if b"\n" in data else b""
    expected = [p.decode("utf-8", "replace") for p in complete.split(b"\n")[:-1]]
    # A rotation finishes the old file: an unterminated last line there would be a line of its own,
    # but rotating at a line boundary never leaves one.
    assert got == expected


def test_unreadable_path_reports_an_error_and_recovers(tmp_path: Path) -> None:
    p = tmp_path / "x.log"
    p.mkdir()  # a directory where the log should be
    with LogFollower(p, start="begin") as fol:
        assert fol.poll() == [] and fol.error and "x.log" in fol.error
        p.rmdir()
        p.write_text("now a file\n")
        assert _texts(fol) == ["now a file"] and fol.error is None
