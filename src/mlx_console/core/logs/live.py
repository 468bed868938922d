"""The one log pipeline: follow a log as it grows, index it, triage it. Used by `triage --follow`, the
console's log pane and the supervising daemon (through `Reactions`).

    live = LiveTriage(path, catalog, include_all=False)
    events = live.initial()          # the file as it is now (fast path); OSError if it cannot be read
    while running:                   # in a worker thread
        events = live.step(0.25)     # waits for changes (≤ timeout), returns events completed since
    live.close()

Line numbers are those of the current file; after a rotation or truncation they restart at 1 and
`live.generation` goes up. The last event of a burst is reported after `quiet` seconds without new lines.

The console starts from the last lines instead (`initial(tail=N)`, kept in `live.history`) and numbers lines
as its view does: from 1 at the first line shown, on across rotations (`continuous=True`); `step_lines()`
returns the new lines with the events.
"""

from __future__ import annotations

import mmap
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlx_console.core.logs.index import LineIndex
from mlx_console.core.logs.patterns import Catalog, Entry
from mlx_console.core.logs.source import Line, LogFollower, complete_end
from mlx_console.core.logs.triage import TriagedEvent, Triager, default_catalog, triage_buffer_counted

DEAD_AFTER_S = 5.0  # a file unwritten this long with an unfinished last line: that line is its last words


@dataclass
class Step:
    """What one step of following found: the new complete lines and the events completed since."""

    lines: list[Line] = field(default_factory=list)
    events: list[TriagedEvent] = field(default_factory=list)
    rotated: bool = False  # the file was replaced or truncated during this step


class LiveTriage:
    def __init__(
        self,
        path: str | os.PathLike[str],
        catalog: Catalog | None = None,
        *,
        include_all: bool = False,
        quiet: float = 1.0,
        use_watchfiles: bool = True,
        poll_interval: float = 0.1,
        continuous: bool = False,
        workers: int = 1,
    ):
        self.path = Path(path)
        self.workers = workers  # initial(): a big file's triage shared by forked processes (triage_buffer_counted)
        self.catalog = catalog if catalog is not None else default_catalog()
        self.include_all = include_all
        self.quiet = quiet
        self.continuous = continuous
        self._use_watchfiles = use_watchfiles
        self._poll_interval = poll_interval
        self._follower: LogFollower | None = None
        self._triager: Triager | None = None
        self._last_line_at = time.monotonic()
        self._flushed = True
        self.generation = 0
        self.history: list[str] = []  # initial(tail=N): the lines it started from
        self.count = 0  # continuous numbering: lines numbered so far

    def initial(self, tail: int | None = None) -> list[TriagedEvent]:
        """Triage what the file holds now (up to its last complete line) and get ready to follow it.
        tail=N: only its last N lines (kept in `history`), numbered from 1. A missing file is followed
        from its creation; other read errors raise OSError."""
        offset = lines = 0
        events: list[TriagedEvent] = []
        if self.path.exists():
            with self.path.open("rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise IsADirectoryError(f"{self.path}: not a regular file")
                if tail is not None:
                    offset, self.history = _tail(self.path, f.fileno(), tail)
                else:
                    offset = complete_end(f.fileno(), st.st_size)
                    if offset < st.st_size and time.time() - st.st_mtime > DEAD_AFTER_S:
                        offset = st.st_size  # nobody is writing it (a dead backend): its last line is complete
                    if offset:  # one pass: the scan counts the lines as it goes
                        with mmap.mmap(f.fileno(), offset, access=mmap.ACCESS_READ) as mm:
                            events, lines = triage_buffer_counted(mm, self.catalog, include_all=self.include_all,
                                                                  workers=self.workers)
                            lines += mm[offset - 1] != 0x0A  # the unfinished last line read as complete
            start: dict[str, int | str] = {"start_offset": offset, "start_line": lines}
        else:
            start = {"start": "begin"}
        self._follower = LogFollower(self.path, use_watchfiles=self._use_watchfiles,
                                     poll_interval=self._poll_interval, **start)  # type: ignore[arg-type]
        self.generation = self._follower.generation
        self._triager = Triager(self.catalog, include_all=self.include_all,
                                first_line=1 if tail is not None else lines + 1)
        if tail is not None:
            events = self._triager.feed_many(self.history)
            self.count = len(self.history)
        if self.history or lines:
            # The event open at the end is a dead backend's last words when nobody writes the file: close it
            # now; else step() closes it once the log stays quiet for `quiet` seconds.
            mtime = self.path.stat().st_mtime if self.path.exists() else time.time()
            if time.time() - mtime > self.quiet:
                events += self._triager.flush()
            else:
                self._flushed = False
        return events

    def step_lines(self, timeout: float = 0.25) -> Step:
        """Wait up to `timeout` for the file to change; the lines and events completed since the last call."""
        if self._follower is None or self._triager is None:
            raise RuntimeError("call initial() first")
        self._follower.wait(timeout)
        out = Step()
        batch = self._follower.poll()
        for ln in batch:
            if ln.generation != self.generation:
                self.generation, out.rotated = ln.generation, True
                out.events += self._triager.reset(self.count + 1 if self.continuous else ln.number)
            out.events += self._triager.feed(ln.text)
            self.count += 1
        if self._follower.generation != self.generation:  # truncated, nothing new yet
            self.generation, out.rotated = self._follower.generation, True
            out.events += self._triager.reset(self.count + 1 if self.continuous else 1)
        out.lines = batch
        now = time.monotonic()
        if batch:
            self._last_line_at, self._flushed = now, False
        elif not self._flushed and now - self._last_line_at >= self.quiet:
            out.events += self._triager.flush()
            self._flushed = True
        return out

    def step(self, timeout: float = 0.25) -> list[TriagedEvent]:
        """Wait up to `timeout` for the file to change; return the events completed since the last call."""
        return self.step_lines(timeout).events

    @property
    def error(self) -> str | None:
        """Why the file cannot be read right now (it is retried), or None."""
        return self._follower.error if self._follower is not None else None

    def finish(self) -> list[TriagedEvent]:
        """Report the event still open (call before close when stopping)."""
        return self._triager.flush() if self._triager is not None else []

    def close(self) -> None:
        if self._follower is not None:
            self._follower.close()

    def __enter__(self) -> LiveTriage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tail(path: Path, fd: int, n: int) -> tuple[int, list[str]]:
    """The last n complete lines (through the mmap index: a 1 GB log opens at once) and the offset after
    them; a line still being written is left to the follower."""
    idx = LineIndex(path)
    try:
        size = idx.size
        lines = idx.tail(n) if size else []
    finally:
        idx.close()
    end = complete_end(fd, size)
    if end < size and lines:
        lines = lines[:-1]
    return end, lines


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
        source = catalog if catalog is not None else default_catalog()
        self.catalog = Catalog([e for e in source.entries if e.action and (not e.backends or kind in e.backends)])

    def react(self, line: str) -> Reaction | None:
        hits = self.catalog.line_hits(line)
        if not hits:
            return None
        # `stop` outranks `degraded`; catalogue order breaks ties.
        e: Entry = min((self.catalog.entries[i] for i in hits), key=lambda e: e.action != "stop")
        said = " ".join(line.split())[:200]
        return Reaction(str(e.action), f"{e.title[0].lower()}{e.title[1:]} (the log says: {said})", e.id)
