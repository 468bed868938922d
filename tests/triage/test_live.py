"""LiveTriage: the file as it is, then as it grows, across a rotation; a file that appears later; the console's
history mode (the document first, then its last lines triaged)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlx_console.core.logs.live import LiveTriage
from mlx_console.core.logs.triage import TriagedEvent

HANG = (
    "2026-11-25 14:36:08,771 - ERROR - mlx_lm.server generation thread died: [broadcast_shapes] Shapes (1,8,3,64) "
    "and (1,8,2,64) cannot be broadcast.\nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
    "ValueError: [broadcast_shapes] Shapes (1,8,3,64) and (1,8,2,64) cannot be broadcast.\n"
)


def _drain(live: LiveTriage, until: int, seconds: float = 10) -> list[TriagedEvent]:
    """Steps until `until` events came (or `seconds` passed)."""
    out: list[TriagedEvent] = []
    end = time.monotonic() + seconds
    while len(out) < until and time.monotonic() < end:
        out += live.step(0.05).events
    return out


def test_initial_then_growth_then_rotation(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("OSError: [Errno 48] Address already in use\nhalf")
    with LiveTriage(f, quiet=0.2) as live:
        [first] = live.initial()
        assert (first.first_line, first.categories) == (1, ["port_in_use"])
        with f.open("a") as w:
            w.write(" a line\n" + HANG)
        evs = _drain(live, 1)
        assert [(e.first_line, e.last_line, e.categories) for e in evs] == [
            (3, 6, ["batch_cache_shape", "server_hang"])
        ]
        os.rename(f, tmp_path / "server.log.2026-11-25")
        f.write_text("INFO:     Started\n" + HANG)
        evs = _drain(live, 1)
        assert live.generation == 1
        assert [(e.first_line, e.last_line) for e in evs] == [(2, 5)]


def test_missing_file_is_followed_from_its_creation(tmp_path: Path) -> None:
    f = tmp_path / "later.log"
    with LiveTriage(f, quiet=0.1) as live:
        assert live.initial() == []
        assert live.step(0.05).note == f"waiting for {f} to appear"
        f.write_text(HANG)
        evs = _drain(live, 1)
        assert [(e.first_line, e.categories) for e in evs] == [(1, ["batch_cache_shape", "server_hang"])]


def test_a_dead_backends_log_yields_its_last_event_at_once(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("INFO: ok\n" + HANG.rstrip("\n"))  # the traceback's last line never got its newline
    old = time.time() - 60
    os.utime(f, (old, old))
    with LiveTriage(f, quiet=30) as live:
        [ev] = live.initial()
        assert (ev.first_line, ev.last_line, ev.categories) == (2, 5, ["batch_cache_shape", "server_hang"])


def test_history_mode_shows_the_document_before_loading_the_catalogue(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("".join(f"INFO line {i}\n" for i in range(5000)) + HANG)
    loaded: list[int] = []

    def load():  # type: ignore[no-untyped-def]
        from mlx_console.core.logs.triage import default_catalog

        loaded.append(1)
        return default_catalog()

    with LiveTriage(f, load, history=100, quiet=0.2, hand_over=True) as live:
        opened = live.step(0.05)
        assert opened.opened is not None and not loaded
        doc = opened.opened
        assert doc.tail_line(doc.tail_count - 1).startswith("ValueError")
        evs = live.step(0.05).events + _drain(live, 1)
        assert loaded == [1]
        # Numbered by line of the document's tail, from 1.
        n = doc.tail_count
        assert [(e.first_line, e.last_line) for e in evs] == [(n - 3, n)]
        while not doc.head_done:  # the start of the file is indexed in steps
            live.step(0.05)
        assert doc.total == 5004
        with f.open("a") as w:
            w.write("new line\n")
        lines: list[str] = []
        end = time.monotonic() + 5
        while not lines and time.monotonic() < end:
            lines = live.step(0.5).lines
        assert lines == ["new line"]
    doc.close()  # handed over: the caller closes it


def test_a_dead_last_line_that_goes_on_is_triaged_on_not_again(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("OSError: [Errno 48] Address already in use\nINFO: loading")
    old = time.time() - 60
    os.utime(f, (old, old))
    with LiveTriage(f, quiet=0.2) as live:
        [first] = live.initial()
        assert first.categories == ["port_in_use"]
        with f.open("a") as w:
            w.write(" done\n" + HANG)
        evs = _drain(live, 1)
        # The earlier event is not reported again; the new one keeps the file's line numbers.
        assert [(e.first_line, e.last_line, e.categories) for e in evs] == [
            (3, 6, ["batch_cache_shape", "server_hang"])
        ]
        assert live.generation == 0


def test_a_traceback_whose_last_line_stops_unfinished_is_one_event(tmp_path: Path) -> None:
    """A backend dies while its last line is being written: the quiet timer does not cut the traceback
    before that line; once the file stays unwritten the line ends the event."""
    f = tmp_path / "server.log"
    f.write_text("INFO: serving\n")
    with LiveTriage(f, quiet=0.1) as live:
        assert live.initial() == []
        with f.open("a") as w:
            w.write(HANG.rstrip("\n"))
        end = time.monotonic() + 0.6
        early: list[TriagedEvent] = []
        while time.monotonic() < end:  # quiet for longer than `quiet`: the event stays open
            early += live.step(0.05).events
        assert early == []
        old = time.time() - 60
        os.utime(f, (old, old))
        evs = _drain(live, 1)
        assert [(e.first_line, e.last_line, e.categories) for e in evs] == [
            (2, 5, ["batch_cache_shape", "server_hang"])
        ]


def _steps_with_lines(f: Path, stream_frame: float, n: int = 30, gap: float = 0.05) -> tuple[int, list[str]]:
    """Write n lines `gap` apart from a thread while stepping a console-mode LiveTriage: how many steps carried
    lines, and every line delivered."""
    import threading

    got: list[str] = []
    steps = 0
    with LiveTriage(f, quiet=0.5, frame=1 / 60, stream_frame=stream_frame) as live:
        live.initial()

        def write() -> None:
            with f.open("a") as w:
                for i in range(n):
                    w.write(f"2026-01-01 00:00:00,000 - INFO - line {i}\n")
                    w.flush()
                    time.sleep(gap)

        t = threading.Thread(target=write)
        t.start()
        end = time.monotonic() + n * gap + 10
        while len(got) < n and time.monotonic() < end:
            lines = live.step(0.25).lines
            steps += bool(lines)
            got += lines
        t.join()
    return steps, got


def test_a_steady_stream_is_gathered_into_a_few_steps_a_second(tmp_path: Path) -> None:
    # the console repaints once a step: 20 lines a second must not cost 20 repaints a second
    f = tmp_path / "server.log"
    f.write_text("2026-01-01 00:00:00,000 - INFO - start\n")
    steps, got = _steps_with_lines(f, stream_frame=0.2)
    assert got == [f"2026-01-01 00:00:00,000 - INFO - line {i}" for i in range(30)]
    # 1.5 s of writes: the first few steps come one a write, then about five a second (without it, ~30)
    assert steps <= 4 + 1.5 * 5 + 3
