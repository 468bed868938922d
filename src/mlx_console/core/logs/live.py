"""The one log pipeline: follow a log as it grows, read through `LogDocument`, triage it. Used by `triage
--follow` and the console's log pane; the supervising daemon and the metrics sampler read the same way
(`tail.LogTail`) and react through the same catalogue (`Reactions`, below).

    live = LiveTriage(path, catalog)          # the CLI: the whole file is triaged (the fast scan), then appends
    events = live.initial()                   # what the file holds now; OSError if it cannot be read
    while running:
        step = live.step(0.25)                # waits (≤ timeout) for the file to change: step.events, .lines

    live = LiveTriage(path, loader, history=2000, hand_over=True)   # the console: its view pages the document
    step = live.step()                        # step.opened: the document, before the catalogue is even loaded;
                                              # then the last `history` lines triaged, then appends and events

Events are numbered by line of the current file (history mode: by line of the document's tail, from 1). After
a rotation or truncation the new file is opened (`step.opened`, `step.rotated`, `live.generation` goes up) and
numbering starts again. The event open at the end is reported once the log stays quiet for `quiet` seconds, at
once when nobody writes the file (a dead backend's last words).
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlx_console.core.logs.document import TAIL_BYTES, LogDocument
from mlx_console.core.logs.tail import LogTail
from mlx_console.core.logs.watch import FileWatch

if TYPE_CHECKING:  # the triage engine is imported when a document is first triaged: a view shows it before
    from mlx_console.core.logs.patterns import Catalog, Entry
    from mlx_console.core.logs.triage import TriagedEvent, Triager

# Waiting costs nothing with inotify/kqueue (FileWatch); without them the file is looked at every POLL_S
# (80 ms: ~0.2 % of a core, append → visible well under 100 ms).
POLL_S = 0.08
WATCH_S = 1.0          # with them: a look at the file at least this often (rotation, missed events)
MISSING_S = 0.5        # a missing file is looked for this often
HEAD_EVERY_S = 0.1     # how often a step reports how far the start of the file is indexed (history mode)
# A stream: this many writes in a row, each seen less than STREAM_GAP_S after the step before it. Its lines are
# gathered into steps `stream_frame` apart (a view repaints a few times a second, not once a line); a line after
# a pause is still returned at once.
STREAM_STEPS = 4
STREAM_GAP_S = 0.15


@dataclass
class Step:
    """What one step of following found."""

    lines: list[str] = field(default_factory=list)          # new complete lines
    events: list[TriagedEvent] = field(default_factory=list)  # events completed since the last step
    opened: LogDocument | None = None  # a document was opened (the first, or the new file after a rotation)
    rotated: bool = False              # the file was replaced or truncated
    head: tuple[int, bool] | None = None  # history mode: the head is indexed up to this many lines (done?)
    note: str = ""                     # e.g. "waiting for … to appear"


class LiveTriage:
    def __init__(
        self,
        path: str | Path,
        catalog: Catalog | Callable[[], Catalog] | None = None,
        *,
        include_all: bool = False,
        backend: str | None = None,
        quiet: float = 1.0,
        history: int | None = None,
        hand_over: bool = False,
        frame: float = 0.0,
        stream_frame: float = 0.0,
        workers: int = 1,
    ):
        """`catalog`: the catalogue, or a function that loads it (called once, after the document is shown).
        `history`: triage only the last N lines of the file (numbered from 1) and index the rest of it in
        steps, for a view that pages it; else the whole file is triaged at open. `hand_over`: documents are
        the caller's to close. `frame`: appends closer together than this are returned together; `stream_frame`:
        the same for a steady stream of writes (STREAM_STEPS), so that it costs a few steps a second. `workers`:
        the whole file's triage is shared by that many forked processes when it is big (triage_buffer_counted)."""
        self.path = Path(path)
        self.include_all = include_all
        self.backend = backend
        self.quiet = quiet
        self.history = history
        self.frame = frame
        self.stream_frame = stream_frame
        self._streak = 0  # writes in a row seen soon after the step before them
        self.workers = workers
        self._catalog_source = catalog
        self._catalog: Catalog | None = None if catalog is None or callable(catalog) else catalog
        self._tail = LogTail(self.path, tail_bytes=TAIL_BYTES if history is not None else 0, read_opened=False,
                             hand_over=hand_over)
        self._triager: Triager | None = None
        self._watch: FileWatch | None = None
        self._to_triage: LogDocument | None = None  # opened, not yet triaged
        self._last_line_at = time.monotonic()
        self._last_step_at = 0.0
        self._last_head = 0.0
        self._flushed = True

    # ---- state -----------------------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            from mlx_console.core.logs.triage import default_catalog

            source = self._catalog_source
            self._catalog = source() if callable(source) else default_catalog()
        return self._catalog

    @property
    def document(self) -> LogDocument | None:
        return self._tail.document

    @property
    def generation(self) -> int:
        return self._tail.generation

    @property
    def error(self) -> str | None:
        """Why the file cannot be read right now (it is retried), or None."""
        return self._tail.error

    # ---- following -------------------------------------------------------------------------------------

    def initial(self) -> list[TriagedEvent]:
        """Open the file and triage what it holds now. A missing file is followed from its creation; other
        read errors raise OSError."""
        if not self.path.exists():
            return []
        doc = self._tail.open()
        if doc is None:
            raise self._tail.failure or OSError(f"{self.path}: cannot read")
        self._to_triage = doc
        return self._triage_opened()

    def step(self, timeout: float = 0.25) -> Step:
        """Wait up to `timeout` for the file to change (not when there is work at hand); what changed."""
        out = Step()
        if self._to_triage is not None:  # opened in the last step: triage what it held
            out.events = self._triage_opened()
            return out
        doc = self._tail.document
        if doc is None:
            if self._open(out):
                return out
            self.catalog  # noqa: B018 — nothing to show yet: a broken catalogue is reported at once
            out.note = f"waiting for {self.path} to appear"
            time.sleep(min(timeout, MISSING_S))
            return out
        if self.history is not None and not doc.head_done:  # the rest of the file, a chunk per step
            doc.index_head()
            now = time.monotonic()
            if doc.head_done or now - self._last_head > HEAD_EVERY_S:
                out.head, self._last_head = (doc.head_count, doc.head_done), now
        elif not self._tail.behind:
            self._wait(timeout)
        self._poll(out)
        return out

    def _wait(self, timeout: float) -> None:
        if self._watch is None:
            self._watch = FileWatch(self.path)
        if self._watch.wait(min(timeout, WATCH_S if self._watch.kind != "timeout" else POLL_S)) and self.frame:
            # A burst of writes: gather what comes within a frame, one step (one repaint) for it.
            since = time.monotonic() - self._last_step_at
            self._streak = self._streak + 1 if since < STREAM_GAP_S else 0
            frame = max(self.frame, self.stream_frame) if self._streak >= STREAM_STEPS else self.frame
            if frame - since > 0:
                time.sleep(frame - since)

    def _poll(self, out: Step) -> None:
        assert self._triager is not None
        polled = self._tail.poll()
        if polled.lines:
            out.lines = polled.lines
            out.events += self._triager.feed_many(polled.lines)
            self._last_line_at = self._last_step_at = time.monotonic()
            self._flushed = False
        if polled.rotated:
            out.rotated = True
            out.events += self._triager.flush()
            self._flushed = True
            if self._watch is not None:
                self._watch.rewatch()
        if polled.resumed and polled.opened is not None:
            # The dead backend's "last line" went on: it is read again whole, numbered as it was.
            doc = polled.opened
            out.events += self._triager.reset(self._triager.next_line - 1)
            out.lines = doc.tail_lines(0, doc.tail_count)
            out.events += self._triager.feed_many(out.lines)
            self._last_line_at, self._flushed = time.monotonic(), not out.lines
        elif polled.opened is not None:
            out.opened, self._to_triage = polled.opened, polled.opened
        elif (not polled.lines and not self._flushed and time.monotonic() - self._last_line_at > self.quiet
              and not (self._tail.document is not None and self._tail.document.pending)):
            # Quiet: the open event is closed, unless a line is still being written (it may be the event's
            # last words: the document makes it a line once it stays unwritten, DEAD_AFTER_S).
            out.events += self._triager.flush()
            self._flushed = True

    def _open(self, out: Step) -> bool:
        doc = self._tail.open()
        if doc is None:
            return False
        out.opened, self._to_triage = doc, doc
        return True

    def _triage_opened(self) -> list[TriagedEvent]:
        """Triage the document just opened: its last `history` lines, or all of it (the fast scan)."""
        from mlx_console.core.logs.triage import Triager, triage_buffer_counted

        doc, self._to_triage = self._to_triage, None
        assert doc is not None
        catalog = self.catalog
        options = {"include_all": self.include_all, "backend": self.backend}
        if self.history is not None:
            first = max(0, doc.tail_count - self.history)
            self._triager = Triager(catalog, first_line=first + 1, **options)  # type: ignore[arg-type]
            events = self._triager.feed_many(doc.tail_lines(first, doc.tail_count))
            lines = doc.tail_count
        else:
            events, lines = [], 0
            if doc.offset:  # one pass over what the file holds: the scan counts the lines as it goes
                with mmap.mmap(doc.fileno(), doc.offset, access=mmap.ACCESS_READ) as mm:
                    events, lines = triage_buffer_counted(mm, catalog, workers=self.workers,
                                                          **options)  # type: ignore[arg-type]
                    lines += mm[doc.offset - 1] != 0x0A  # a dead backend's unfinished last line
            self._triager = Triager(catalog, first_line=lines + 1, **options)  # type: ignore[arg-type]
        self._last_line_at = time.monotonic()
        self._flushed = not lines
        if lines and time.time() - _mtime(doc.path) > self.quiet:
            # The event open at the end is a dead backend's last words when nobody writes the file: close it
            # now; else a step closes it once the log stays quiet for `quiet` seconds.
            events += self._triager.flush()
            self._flushed = True
        return events

    def finish(self) -> list[TriagedEvent]:
        """Report the event still open (call before close when stopping)."""
        return self._triager.flush() if self._triager is not None else []

    def close(self) -> None:
        self._tail.close()
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def __enter__(self) -> LiveTriage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


# ---- what a supervisor does on a line ---------------------------------------------------------------------

@dataclass(frozen=True)
class Reaction:
    action: str  # degraded | stop (patterns.ACTIONS)
    reason: str
    entry: str  # the catalogue entry's id


class Reactions:
    """The catalogue entries with an `action` that apply to one backend kind: what the supervising daemon
    does when a line of its server's log matches (`degraded`: mark it so and restart per policy; `stop`:
    the server cannot work, stop it as dead)."""

    def __init__(self, kind: str, catalog: Catalog | None = None) -> None:
        from mlx_console.core.logs.patterns import Catalog
        from mlx_console.core.logs.triage import default_catalog

        source = catalog if catalog is not None else default_catalog()
        self.catalog = Catalog([e for e in source.entries if e.action and (not e.backends or kind in e.backends)])
        self.cause = source  # a reaction's line may also name the cause (`generation thread died: <why>`)

    def react(self, line: str) -> Reaction | None:
        hits = self.catalog.line_hits(line)
        if not hits:
            return None
        # `stop` outranks `degraded`; catalogue order breaks ties.
        e: Entry = min((self.catalog.entries[i] for i in hits), key=lambda e: e.action != "stop")
        said = " ".join(line.split())[:200]
        what = f"{e.title[0].lower()}{e.title[1:]}"
        # The same line naming the cause in another category's words (mlx-lm 0.32: `generation thread died: No
        # safetensors found in …`): that title first, it says what to fix.
        why = next((c for c in (self.cause.entries[i] for i in self.cause.line_hits(line))
                    if not c.action and not set(c.categories) & set(e.categories)), None)
        if why is not None:
            what = f"{why.title[0].lower()}{why.title[1:]}: {what}"
        return Reaction(str(e.action), f"{what} (the log says: {said})", e.id)
