"""Triage a log file as it is and then as it grows: the engine behind `triage --follow` and the UI's log pane.

    live = LiveTriage(path, catalog, include_all=False)
    events = live.initial()          # the file as it is now (fast path); OSError if it cannot be read
    while running:                   # in a worker thread
        events = live.step(0.25)     # waits for changes (≤ timeout), returns events completed since
    live.close()

Line numbers are those of the current file; after a rotation or truncation they restart at 1 and
`live.generation` goes up. The last event of a burst is reported after `quiet` seconds without new lines.
"""

from __future__ import annotations

import mmap
import os
import stat
import time
from pathlib import Path

from mlx_console.core.logs.patterns import Catalog
from mlx_console.core.logs.source import LogFollower
from mlx_console.core.logs.triage import TriagedEvent, Triager, default_catalog, triage_buffer_counted

_TAIL_PROBE = 1 << 20
DEAD_AFTER_S = 5.0  # a file unwritten this long with an unfinished last line: that line is its last words


def _complete_end(fd: int, size: int) -> int:
    """Offset just after the last newline: a line still being written is left to the follower."""
    if size == 0:
        return 0
    tail = os.pread(fd, min(size, _TAIL_PROBE), max(0, size - _TAIL_PROBE))
    if tail.endswith(b"\n"):
        return size
    nl = tail.rfind(b"\n")
    if nl >= 0:
        return size - len(tail) + nl + 1
    return 0 if size <= _TAIL_PROBE else size  # one huge unfinished line: skip it


class LiveTriage:
    def __init__(
        self,
        path: str | os.PathLike[str],
        catalog: Catalog | None = None,
        *,
        include_all: bool = False,
        quiet: float = 1.0,
        use_watchfiles: bool = True,
    ):
        self.path = Path(path)
        self.catalog = catalog if catalog is not None else default_catalog()
        self.include_all = include_all
        self.quiet = quiet
        self._use_watchfiles = use_watchfiles
        self._follower: LogFollower | None = None
        self._triager: Triager | None = None
        self._last_line_at = time.monotonic()
        self.generation = 0

    def initial(self) -> list[TriagedEvent]:
        """Triage what the file holds now (up to its last complete line) and get ready to follow it.
        A missing file is followed from its creation; other read errors raise OSError."""
        offset = lines = 0
        events: list[TriagedEvent] = []
        if self.path.exists():
            with self.path.open("rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise IsADirectoryError(f"{self.path}: not a regular file")
                offset = _complete_end(f.fileno(), st.st_size)
                if offset < st.st_size and time.time() - st.st_mtime > DEAD_AFTER_S:
                    offset = st.st_size  # nobody is writing it (a dead backend): its last line is complete
                if offset:  # one pass: the scan counts the lines as it goes
                    with mmap.mmap(f.fileno(), offset, access=mmap.ACCESS_READ) as mm:
                        events, lines = triage_buffer_counted(mm, self.catalog, include_all=self.include_all)
                        lines += mm[offset - 1] != 0x0A  # the unfinished last line read as complete
            start = {"start_offset": offset, "start_line": lines}
        else:
            start = {"start": "begin"}
        self._follower = LogFollower(self.path, use_watchfiles=self._use_watchfiles, **start)
        self._triager = Triager(self.catalog, include_all=self.include_all, first_line=lines + 1)
        return events

    def step(self, timeout: float = 0.25) -> list[TriagedEvent]:
        """Wait up to `timeout` for the file to change; return the events completed since the last call."""
        if self._follower is None or self._triager is None:
            raise RuntimeError("call initial() first")
        self._follower.wait(timeout)
        out: list[TriagedEvent] = []
        batch = self._follower.poll()
        for ln in batch:
            if ln.generation != self.generation:
                self.generation = ln.generation
                out += self._triager.reset(ln.number)
            out += self._triager.feed(ln.text)
        now = time.monotonic()
        if batch:
            self._last_line_at = now
        elif now - self._last_line_at >= self.quiet:
            out += self._triager.flush()
            self._last_line_at = now
        return out

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
