"""Line-offset index of a (huge) log over mmap: newest lines first, 8 bytes a line, grows on append.

API: `LineIndex(path)`; `.scan_back(max_bytes)` indexes older lines from the end in batches (call it from a
worker until `.complete`); `.tail(n)` the last n lines (indexing only what they need); `.line(i)` line i
(1-based, needs the index complete: `.scan_all()`); `.from_end(j)`; `.refresh()` after the file grew
(rotation/truncation resets the index); `len()` lines indexed so far. The file is never read whole.
"""

from __future__ import annotations

import mmap
import os
import re
from array import array
from pathlib import Path

from mlx_console.core.logs.source import MAX_LINE_BYTES, cut_line, decode_line

_BATCH = 4 << 20
_NL = re.compile(b"\n")


class LineIndex:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        self._ident = self._stat_ident(os.fstat(self._fd))
        self._mm: mmap.mmap | None = None
        self._size = 0
        self._back = array("Q")  # line starts found scanning backwards from the size at open: descending
        self._fwd = array("Q")  # line starts appended after open: ascending
        self._low = 0  # every line start >= _low is indexed (in _back or _fwd)
        self._complete = False
        self._map(os.fstat(self._fd).st_size)
        self._low = self._size
        if self._size == 0:
            self._complete = True

    @staticmethod
    def _stat_ident(st: os.stat_result) -> tuple[int, int]:
        return st.st_dev, st.st_ino

    def _map(self, size: int) -> None:
        if self._mm is not None:
            self._mm.close()
        self._mm = mmap.mmap(self._fd, size, access=mmap.ACCESS_READ) if size else None
        self._size = size

    # -- indexing -------------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        return self._complete

    @property
    def size(self) -> int:
        return self._size

    def scan_back(self, max_bytes: int = _BATCH) -> int:
        """Index the lines in up to `max_bytes` more of the file, going backwards. Returns lines added."""
        if self._complete:
            return 0
        mm = self._mm
        assert mm is not None
        hi = self._low  # newlines strictly before hi - 1 start lines below _low
        lo = max(0, hi - max_bytes)
        before = len(self._back)
        starts = [m.end() for m in _NL.finditer(mm, lo, max(lo, hi - 1))]
        starts.reverse()
        self._back.extend(starts)
        if lo == 0:
            self._back.append(0)
            self._complete = True
            self._low = 0
        else:
            self._low = starts[-1] if starts else hi
            if not starts:  # no newline in this batch: keep the position, widen next time
                self._low = hi
                return self.scan_back(max_bytes * 2) if max_bytes < self._size else 0
        return len(self._back) - before

    def scan_all(self) -> None:
        while not self._complete:
            self.scan_back(_BATCH * 4)

    def _ensure_from_end(self, j: int) -> bool:
        while j >= len(self) and not self._complete:
            self.scan_back()
        return j < len(self)

    def __len__(self) -> int:
        return len(self._back) + len(self._fwd)

    def refresh(self) -> int:
        """Pick up appended lines (returns how many); a rotated or truncated file resets the index (-1)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return 0
        if self._stat_ident(st) != self._ident or st.st_size < self._size:
            self._reset()
            return -1
        old = self._size
        if st.st_size == old:
            return 0
        self._map(st.st_size)
        mm = self._mm
        assert mm is not None
        added = array("Q")
        if old == 0:
            added.append(0)
        added.extend(m.end() for m in _NL.finditer(mm, max(0, old - 1), st.st_size - 1))
        if old == 0:
            self._low = 0
            self._complete = True
        self._fwd.extend(added)
        return len(added)

    def _reset(self) -> None:
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        os.close(self._fd)
        self.__init__(self.path)  # type: ignore[misc]

    # -- reading --------------------------------------------------------------------------------------
    def _start_from_end(self, j: int) -> int:
        nf = len(self._fwd)
        return self._fwd[nf - 1 - j] if j < nf else self._back[j - nf]

    def _text(self, start: int) -> str:
        mm = self._mm
        assert mm is not None
        nl = mm.find(b"\n", start)
        end = self._size if nl < 0 else nl
        if end - start > MAX_LINE_BYTES:
            half = MAX_LINE_BYTES // 2
            return cut_line(mm[start : start + half], mm[end - half : end], end - start)
        return decode_line(mm[start:end])

    def from_end(self, j: int) -> str:
        """The j-th line from the end (0 = last line)."""
        if not self._ensure_from_end(j):
            raise IndexError(j)
        return self._text(self._start_from_end(j))

    def tail(self, n: int) -> list[str]:
        """The last n lines (fewer if the file is shorter), oldest first."""
        self._ensure_from_end(n - 1)
        k = min(n, len(self))
        return [self._text(self._start_from_end(j)) for j in range(k - 1, -1, -1)]

    def offset(self, number: int) -> int:
        """Byte offset of line `number` (1-based); needs the complete index."""
        self.scan_all()
        if not 1 <= number <= len(self):
            raise IndexError(number)
        i = number - 1
        nb = len(self._back)
        return self._back[nb - 1 - i] if i < nb else self._fwd[i - nb]

    def line(self, number: int) -> str:
        """Line `number` (1-based)."""
        return self._text(self.offset(number))

    def close(self) -> None:
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        os.close(self._fd)

    def __enter__(self) -> LineIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
