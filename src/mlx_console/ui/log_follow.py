"""Follows one backend log for the log view, in a worker thread, through core/logs.

The newest lines come from the mmap index (a 1 GB log opens at once), then `LogFollower` delivers appends
(watchfiles, ≤ 100 ms), and `Triager` turns them into events with catalogue matches. This module only
moves data: what a line means is decided in core/logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlx_console.ui.widgets.log_view import LogEvent

HISTORY_LINES = 2_000   # lines shown from before the console opened the log
QUIET_FLUSH = 1.0       # s without lines → close the pending event so the last error shows at once
# Stat polling every 80 ms costs ~0.2 % of a core; the follower's watchfiles mode costs ~0.9 % idle on this
# machine (its Rust loop wakes every 5 ms), most of the idle budget. 80 ms keeps append → visible
# well under 100 ms.
POLL_S = 0.08


@dataclass
class Batch:
    lines: list[str]
    events: list[LogEvent]
    reset: bool = False        # the file was opened anew: the view starts over
    note: str = ""             # e.g. "waiting for the log file to appear"


def to_log_event(t: Any, first_number: int) -> LogEvent:
    """A core TriagedEvent → the view's LogEvent (line numbers made view-absolute, 0-based)."""
    main = t.main
    return LogEvent(
        start=t.first_line - first_number, end=t.last_line - first_number, severity=t.severity,
        title=t.title, cause=main.cause if main else "", first_move=main.first_move if main else "",
        references=list(t.references), categories=list(t.categories), pattern=main.id if main else "",
    )


def _tail_start(path: Path) -> tuple[list[str], int]:
    """The last lines of the file and the byte offset just after the last complete line."""
    from mlx_console.core.logs.index import LineIndex

    idx = LineIndex(path)
    try:
        size = idx.size
        lines = idx.tail(HISTORY_LINES) if size else []
    finally:
        idx.close()
    if size:
        with path.open("rb") as fh:  # a partial last line is left to the follower
            fh.seek(max(0, size - 65536))
            chunk = fh.read(size - fh.tell())
        if not chunk.endswith(b"\n"):
            nl = chunk.rfind(b"\n")
            size = size - len(chunk) + nl + 1 if nl >= 0 else (size if len(chunk) < size else 0)
            if lines:
                lines = lines[:-1]
    return lines, size


def follow(path: Path, deliver: Callable[[Batch], None], stopped: Callable[[], bool],
           paused: Callable[[], bool], catalogs: list[Path] | None = None) -> None:
    """Deliver batches of (lines, events) until `stopped()`. Blocks: run it in a thread."""
    from mlx_console.core.logs.patterns import Catalog
    from mlx_console.core.logs.source import LogFollower
    from mlx_console.core.logs.triage import Triager

    catalog = Catalog.load(catalogs or [])
    while not path.exists():
        deliver(Batch([], [], note=f"waiting for {path} to appear"))
        time.sleep(0.5)
        if stopped():
            return
    history, offset = _tail_start(path)
    count = 0           # lines delivered since the view was reset
    triager = Triager(catalog, include_all=True, first_line=1)
    events = [to_log_event(t, 1) for t in triager.feed_many(history)]
    deliver(Batch(history, events, reset=True))
    count = len(history)
    follower = LogFollower(path, start_offset=offset, start_line=0, use_watchfiles=False, poll_interval=POLL_S)
    generation = follower.generation
    last_line_at = time.monotonic()
    # A log that ends in a traceback (a dead backend: post-mortem) has an event still open after the history:
    # flushed once the file stays quiet, like any other last event, or the traceback that killed it is unmarked.
    flushed = not history
    try:
        while not stopped():
            if paused():
                time.sleep(0.25)
                continue
            batch = follower.poll()
            if follower.generation != generation:  # rotated or truncated: numbering goes on in the view
                generation = follower.generation
                evs = triager.reset(first_line=count + 1)
                if evs:
                    deliver(Batch([], [to_log_event(t, 1) for t in evs]))
            if batch:
                texts = [ln.text for ln in batch]
                evs = triager.feed_many(texts)
                count += len(texts)
                deliver(Batch(texts, [to_log_event(t, 1) for t in evs]))
                last_line_at = time.monotonic()
                flushed = False
            elif not flushed and time.monotonic() - last_line_at > QUIET_FLUSH:
                evs = triager.flush()
                flushed = True
                if evs:
                    deliver(Batch([], [to_log_event(t, 1) for t in evs]))
            follower.wait(POLL_S)
    finally:
        follower.close()
