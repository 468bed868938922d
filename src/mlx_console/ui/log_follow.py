"""Follows one backend log for the log view, in a worker thread, through core/logs.

The one log pipeline of core/logs/live.py does the work (the newest lines from the mmap index, then appends,
triaged into events with catalogue matches); this module only moves its output to the view.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlx_console.core import api
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


def to_log_event(t: api.TriagedEvent, first_number: int) -> LogEvent:
    """A core TriagedEvent → the view's LogEvent (line numbers made view-absolute, 0-based)."""
    main = t.main
    return LogEvent(
        start=t.first_line - first_number, end=t.last_line - first_number, severity=t.severity,
        title=t.title, cause=main.cause if main else "", first_move=t.first_move,  # (unknown: a tracker search)
        references=list(t.references), categories=list(t.categories), pattern=main.id if main else "",
    )


def follow(path: Path, deliver: Callable[[Batch], None], stopped: Callable[[], bool],
           paused: Callable[[], bool], catalogs: list[Path] | None = None) -> None:
    """Deliver batches of (lines, events) until `stopped()`. Blocks: run it in a thread."""
    from mlx_console.core import api

    catalog = api.load_catalog(catalogs or [])
    while not path.exists():
        deliver(Batch([], [], note=f"waiting for {path} to appear"))
        time.sleep(0.5)
        if stopped():
            return
    # The view numbers lines from 1 at the first one shown, on across rotations: continuous numbering.
    live = api.live_triage(path, catalog=catalog, include_all=True, quiet=QUIET_FLUSH, use_watchfiles=False,
                           poll_interval=POLL_S, continuous=True)
    try:
        events = live.initial(tail=HISTORY_LINES)
        deliver(Batch(live.history, [to_log_event(t, 1) for t in events], reset=True))
        while not stopped():
            if paused():
                time.sleep(0.25)
                continue
            step = live.step_lines(POLL_S)
            if step.lines or step.events:
                deliver(Batch([ln.text for ln in step.lines], [to_log_event(t, 1) for t in step.events]))
    finally:
        live.close()
