"""Follows one backend log for the log view, in a worker thread, through core/logs.

The file is a core `LogDocument` (its end indexed at once: a 1 GB log opens in milliseconds; its start indexed
here in steps while the view already shows the end), appends are read by the document when inotify/kqueue
says the file was written (`FileWatch`), and `Triager` turns them into events with catalogue matches. This
module only moves data: what a line means is decided in core/logs.
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
# Stat polling every 80 ms costs ~0.2 % of a core; the follower's watchfiles mode costs ~0.9 % idle on this
# machine (its Rust loop wakes every 5 ms), most of the idle budget. 80 ms keeps append → visible
# well under 100 ms.
POLL_S = 0.08            # without inotify/kqueue
WATCH_S = 1.0            # with them: a look at the file at least this often (rotation, missed events)
FRAME_S = 1 / 60         # appends closer together than this are delivered together
HEAD_EVERY_S = 0.1       # how often the view hears how far the start of the file is indexed


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


def _open(path: Path, catalog: Callable[[], api.Catalog], deliver: Callable[[Batch], None]
          ) -> tuple[api.LogDocument, api.Triager, bool]:
    """Open the file as a document (its end indexed at once) and hand it to the view, then load the catalogue
    (the first time) and triage its last lines: the log's end is on screen before either. Also says whether the
    open event is closed."""
    doc = api.log_document(path)
    deliver(Batch([], [], reset=True, doc=doc))
    try:
        patterns = catalog()
    except Exception:
        deliver(Batch([], [], reset=True))  # a broken catalogue: the view is left empty, as before it was read
        raise
    first = max(0, doc.tail_count - HISTORY_LINES)
    triager = api.triager(patterns, first_line=first + 1)  # numbered as tail lines, from 1
    triaged = triager.feed_many(doc.tail_lines(first, doc.tail_count))
    # The event open at the end is a dead backend's last words when nobody writes the file: close it now;
    # else the quiet timer in follow() closes it once the log stays quiet.
    dead = not doc.tail_count or time.time() - _mtime(path) > QUIET_FLUSH
    if dead:
        triaged += triager.flush()
    if triaged:
        deliver(Batch([], [to_log_event(t, 1) for t in triaged]))
    return doc, triager, dead


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def follow(path: Path, deliver: Callable[[Batch], None], stopped: Callable[[], bool],
           paused: Callable[[], bool], catalogs: list[Path] | None = None) -> None:
    """Deliver batches (the document, appended lines, events, head progress) until `stopped()`. Blocks: run
    it in a thread. Event line numbers are the document's tail lines (0-based); the view places them."""
    loaded: list[api.Catalog] = []

    def catalog() -> api.Catalog:  # loaded once, after the document is shown (_open)
        if not loaded:
            loaded.append(api.load_catalog(catalogs or []))
        return loaded[0]

    if not path.exists():
        catalog()  # nothing to show yet: a broken catalogue is reported at once, not when the file appears
    while not path.exists():
        deliver(Batch([], [], note=f"waiting for {path} to appear"))
        time.sleep(0.5)
        if stopped():
            return
    doc, triager, flushed = _open(path, catalog, deliver)
    watch = api.file_watch(path)
    last_line_at = last_head = last_deliver = time.monotonic()
    try:
        while not stopped():
            if paused():
                time.sleep(0.25)
                continue
            if not doc.head_done:  # the rest of the file, a chunk at a time, between looks at its end
                doc.index_head()
                now = time.monotonic()
                if doc.head_done or now - last_head > HEAD_EVERY_S:
                    deliver(Batch([], [], head=(doc.head_count, doc.head_done)))
                    last_head = now
            new = doc.poll()
            if new is None:  # rotated or truncated: the new file is shown from its start (lines are
                evs = triager.flush()  # numbered by the file they are in)
                if evs:
                    deliver(Batch([], [to_log_event(t, 1) for t in evs]))
                doc, triager, flushed = _open(path, catalog, deliver)
                watch.rewatch()
                continue
            now = time.monotonic()
            if new:
                deliver(Batch(new, [to_log_event(t, 1) for t in triager.feed_many(new)]))
                last_line_at = last_deliver = now
                flushed = False
            elif not flushed and now - last_line_at > QUIET_FLUSH:
                evs = triager.flush()
                flushed = True
                if evs:
                    deliver(Batch([], [to_log_event(t, 1) for t in evs]))
            if not doc.head_done:
                continue
            if watch.wait(WATCH_S if watch.kind != "timeout" else POLL_S):
                # A burst of writes: gather what comes within a frame, one delivery (and one repaint) for it.
                wait = FRAME_S - (time.monotonic() - last_deliver)
                if wait > 0:
                    time.sleep(wait)
    finally:
        watch.close()
