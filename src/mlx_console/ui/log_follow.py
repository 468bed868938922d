"""Follows one backend log for the log view, in a worker thread: the core's one log pipeline
(`LiveTriage` in history mode) turned into batches the view renders.

The core opens the file as a `LogDocument` (its end indexed at once: a 1 GB log opens in milliseconds; its start
indexed in steps while the view already shows the end), waits for writes (inotify/kqueue), reads appends and
triages them with the catalogue. This module only moves data: what a line means is decided in core/logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlx_console.core import api
from mlx_console.ui.widgets.log_view import LogEvent

HISTORY_LINES = 2_000   # lines triaged from before the console opened the log (all of them are shown)
QUIET_FLUSH = 1.0       # s without lines → close the pending event so the last error shows at once
FRAME_S = 1 / 60        # appends closer together than this are delivered together (one repaint)
STREAM_FRAME_S = 0.2    # a steady stream of lines is delivered 5 times a second (a line after a pause at once)
PAUSED_S = 0.25         # while the log is hidden, look again this often


@dataclass
class Batch:
    lines: list[str]
    events: list[LogEvent]
    reset: bool = False        # the file was opened anew: the view starts over (with `doc`)
    doc: api.LogDocument | None = None  # the document the view pages (reset batches)
    head: tuple[int, bool] | None = None  # the head is indexed up to this many lines (and done?)
    note: str = ""             # e.g. "waiting for the log file to appear"


def to_log_event(t: api.TriagedEvent, first_number: int) -> LogEvent:
    """A core TriagedEvent → the view's LogEvent (line numbers made view-absolute, 0-based)."""
    main = t.main
    return LogEvent(
        start=t.first_line - first_number, end=t.last_line - first_number, severity=t.severity,
        title=t.title, cause=main.cause if main else "", first_move=t.first_move,  # (unknown: a tracker search)
        references=list(t.references), categories=list(t.categories), pattern=main.id if main else "",
    )


def batches(step: api.LiveStep) -> list[Batch]:
    """One step of the pipeline as the view's batches: the old file's last lines before a new document."""
    events = [to_log_event(t, 1) for t in step.events]  # numbered as the document's tail lines, from 1
    if step.opened is None:
        if step.lines or events or step.head is not None or step.note:
            return [Batch(step.lines, events, head=step.head, note=step.note)]
        return []
    out = [Batch(step.lines, events)] if step.lines or events else []
    return [*out, Batch([], [], reset=True, doc=step.opened, note=step.note)]


def follow(path: Path, deliver: Callable[[Batch], None], stopped: Callable[[], bool],
           paused: Callable[[], bool], catalogs: list[Path] | None = None) -> None:
    """Deliver batches (the document, appended lines, events, head progress) until `stopped()`. Blocks: run
    it in a thread. A broken catalogue raises (after the document was shown: the view is emptied again)."""
    live = api.live_triage(path, lambda: api.load_catalog(catalogs or []), history=HISTORY_LINES,
                           quiet=QUIET_FLUSH, hand_over=True, frame=FRAME_S,
                           stream_frame=STREAM_FRAME_S)
    try:
        while not stopped():
            if paused():
                time.sleep(PAUSED_S)
                continue
            try:
                step = live.step(0.5)
            except Exception:
                deliver(Batch([], [], reset=True))  # e.g. a broken catalogue: the view is left empty
                raise
            for batch in batches(step):
                deliver(batch)
    finally:
        live.close()
