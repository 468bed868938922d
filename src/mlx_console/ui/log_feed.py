"""Feeds the log view: new lines of a backend's log, through the core's follower.

Until core/logs provides `LogFollower`, a minimal tail stands in (appends, truncation, replacement);
triage marks appear only when the core's `triage_lines` is present.
"""

from __future__ import annotations

import os
from pathlib import Path

TAIL_BYTES = 256 * 1024   # how much history is shown when a log is opened


class _Tail:
    """Stand-in follower: new complete lines since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = None
        self._ino: int | None = None
        self._pos = 0
        self._partial = b""

    def _open(self, from_end: bool) -> bool:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - kept open across reads
        except OSError:
            return False
        st = os.fstat(fh.fileno())
        self._fh, self._ino = fh, st.st_ino
        self._pos = max(0, st.st_size - TAIL_BYTES) if from_end else 0
        self._partial = b""
        if self._pos:
            fh.seek(self._pos)
            fh.readline()  # start at a line boundary
            self._pos = fh.tell()
        return True

    def read(self) -> list[str]:
        if self._fh is None and not self._open(from_end=True):
            return []
        try:
            st = os.stat(self.path)
        except OSError:
            return []
        if st.st_ino != self._ino:
            out = self._drain()
            self.close()
            self._open(from_end=False)
            return out + self._drain()
        if st.st_size < self._pos:  # truncated
            self._fh.seek(0)
            self._pos = 0
            self._partial = b""
        if st.st_size == self._pos:
            return []
        return self._drain()

    def _drain(self) -> list[str]:
        assert self._fh is not None
        self._fh.seek(self._pos)
        data = self._fh.read(8 * 1024 * 1024)
        self._pos += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        return [c.decode("utf-8", "replace").rstrip("\r") for c in complete]

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class LogFeed:
    """New lines of one file, read in a worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._src = _Tail(path)

    def read(self) -> list[str]:
        return self._src.read()

    def close(self) -> None:
        self._src.close()
