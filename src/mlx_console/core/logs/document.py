"""A log file paged from disk: every line reachable, bounded memory, the end shown at once.

    doc = LogDocument(path)            # indexes only the last `tail_bytes` (a 1 GB log opens in milliseconds)
    doc.tail_count                     # complete lines in the tail segment (the end of the file)
    doc.tail_line(p)                   # line p of the tail segment
    while not doc.head_done:           # in a worker: index the rest, from the start of the file
        doc.index_head()               # one chunk; doc.head_count lines of the head are reachable
    doc.head_line(i)                   # line i of the file (0-based), i < doc.head_count
    new = doc.poll()                   # the complete lines appended since; when the file was replaced or
                                       # truncated, the old file's last lines and doc.replaced (open anew)
    doc = LogDocument(path, start=off) # or: the lines from a byte offset on (a reader resuming where it was)

The file is cut in two segments at a line start T near its end: the head [0, T) and the tail [T, end). Once
the head is indexed, line n of the file is head line n (n < head_count) or tail line n - head_count.

The index is sparse: per block of BLOCK bytes, its offset and the newlines before it (16 bytes per 64 KiB: a
1 GB log costs 256 KiB). A line is found by skipping newlines inside its block; decoded blocks are kept in a
small LRU cache. Reads go through pread into a reused buffer, never mmap: the file's pages do not count in
the process's RSS. Writers (index_head, poll) run in one thread, readers in another: the index only grows
(array appends) and reads use pread, so they need no lock.

This is the one reader of a log in the project (the console's view, `triage --follow`, the supervising daemon
and the metrics sampler all read through it): where complete lines end (`complete_end`), rotation, copytruncate
and a dead backend's unfinished last line are decided here only.
"""

from __future__ import annotations

import bisect
import os
import re
import stat
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from mlx_console.core.logs.source import MAX_LINE_BYTES, cut_line, decode_line

BLOCK = 64 << 10            # bytes per index entry
CHUNK = 8 << 20             # bytes read per index step
TAIL_BYTES = 1 << 20        # the tail segment indexed when the file is opened
CACHE_BLOCKS = 64           # decoded blocks kept (≈ 64 × 64 KiB of text)
DEAD_AFTER_S = 5.0          # an unfinished last line unwritten this long is complete (a dead backend's last words)
MAX_POLL_BYTES = 16 << 20   # one poll() reads at most about this much; the rest comes on the next call
_FP_BYTES = 64              # the bytes before the end read so far: a copytruncate refilled past it changes them

# The first line a server writes when it starts: where one run of a backend ends and the next begins in a log
# appended across runs. mlx_lm.server warns first (its UserWarning), then binds; oMLX prints where it listens.
RUN_START = re.compile(r"mlx_lm\.server is not recommended for production|Starting httpd at |"
                       r"Starting server at https?://")
_RUN_FIRST = re.compile(r"mlx_lm\.server is not recommended for production")


def complete_end(fd: int, start: int, stop: int) -> int:
    """The offset just after the last newline of [start, stop) of the file: where its complete lines end
    (`start` when none is complete). Read backwards in 1 MiB steps."""
    pos = stop
    while pos > start:
        n = min(1 << 20, pos - start)
        nl = os.pread(fd, n, pos - n).rfind(b"\n")
        if nl >= 0:
            return pos - n + nl + 1
        pos -= n
    return start


def last_lines(path: str | os.PathLike[str], n: int, since: int = 0, window: int = 64 << 10) -> list[str]:
    """The last n non-blank lines of a log among its last `window` bytes, from byte offset `since` on (a
    server run's output; ignored when the file is now shorter); [] when it cannot be read."""
    try:
        size = os.stat(path).st_size
        start = since if since <= size and size - since <= window else None
        with LogDocument(path, start=start, tail_bytes=window) as doc:
            lines = doc.tail_lines(max(0, doc.tail_count - 4 * n), doc.tail_count)
    except OSError:
        return []
    return [ln for ln in lines if ln.strip()][-n:]


def is_run_start(line: str, previous: str | None) -> bool:
    """Whether `line` starts a new server run (`previous`: the few lines before it, newline-joined; None at the
    start of the file). mlx_lm.server's bind line just after its start-up warning (which Python prints with the
    `warnings.warn(` source line under it) belongs to the run the warning started."""
    if not RUN_START.search(line):
        return False
    return not (previous is not None and "Starting httpd at " in line and _RUN_FIRST.search(previous))


def _matching_lines(rx: re.Pattern[str], multi: re.Pattern[str], text: str) -> list[int]:
    """Indexes of the lines of `text` (newline-terminated) that `rx` finds, searching the text at once with
    `multi` (rx with re.MULTILINE: ^ and $ at each line); a match that spans lines is checked on its line."""
    out: list[int] = []
    pos = counted = line = 0
    while (m := multi.search(text, pos)) is not None:
        start = text.rfind("\n", pos, m.start()) + 1 or pos
        end = text.find("\n", start)
        if end < 0:
            break
        line += text.count("\n", counted, start)
        counted = start
        if (start <= m.start() and m.end() <= end) or rx.search(text[start:end]):
            out.append(line)
        pos = end + 1
    return out


class _Segment:
    """Lines of [start, end) of a file, `start` a line start: line i begins after the i-th newline from start."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.end = start
        self.lines = 0                      # newlines in [start, end): the complete lines
        self.offs = array("Q", [start])     # block starts
        self.cum = array("Q", [0])          # newlines in [start, offs[k])

    def add(self, pos: int, data: bytes | bytearray, n: int) -> None:
        """Account for the bytes data[0:n] found at `pos` (== self.end)."""
        i = 0
        while i < n:
            boundary = self.offs[-1] + BLOCK
            if pos + i >= boundary:
                self.offs.append(pos + i)
                self.cum.append(self.lines)
                boundary = pos + i + BLOCK
            stop = min(n, boundary - pos)
            self.lines += data.count(b"\n", i, stop)
            i = stop
        self.end = pos + n

    def block_of(self, i: int) -> int:
        """The block holding the newline before line i (i ≥ 1)."""
        return bisect.bisect_left(self.cum, i) - 1

    def block_end(self, k: int) -> int:
        return self.offs[k + 1] if k + 1 < len(self.offs) else self.end


class LogDocument:
    def __init__(self, path: str | os.PathLike[str], *, tail_bytes: int | None = None,
                 start: int | None = None) -> None:
        """Open the file at `path`, its last `tail_bytes` indexed (the tail). `start`: the tail begins at this
        byte offset instead (a line start, ≤ the file's size: a reader resuming where it stopped; no head)."""
        tail_bytes = TAIL_BYTES if tail_bytes is None else tail_bytes
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        st = os.fstat(self._fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(self._fd)
            raise IsADirectoryError(f"{self.path}: not a regular file")
        self.ident = (st.st_dev, st.st_ino)
        self.replaced = False       # poll() saw the file replaced or truncated: open a new document
        self.resume_at: int | None = None  # replaced because the line taken for a dead backend's last one goes
        #                                    on: the same file, its lines from this offset (that line's start) on
        self.behind = False         # poll() stopped at MAX_POLL_BYTES: more is waiting
        self.pending = False        # at the last poll the file ended in an unfinished line (still being written)
        self._buf = bytearray()
        self._cache: OrderedDict[tuple[int, int, int], list[str]] = OrderedDict()
        self._fp = b""
        size = st.st_size
        end = self._open_end(size, st.st_mtime)
        if start is not None:
            cut = min(start, end)
        else:
            cut = min(self._line_start_at_or_after(max(0, size - tail_bytes), size), end)
            if cut >= end and end and self._last_byte(end) != 0x0A:  # the unfinished last line is the tail
                cut = complete_end(self._fd, 0, end)
        self.head = _Segment(0)
        self.tail = _Segment(cut)
        self._index(self.tail, end)
        self._no_newline_to = self.tail.end  # [tail.end, this) is known to hold no newline (a long line)
        self._fp = os.pread(self._fd, min(end, _FP_BYTES), end - min(end, _FP_BYTES))

    # ---- indexing (one writer thread) ----------------------------------------------------------------

    def _line_start_at_or_after(self, pos: int, size: int) -> int:
        """The first line start ≥ pos (pos itself when it follows a newline or is 0)."""
        if pos == 0:
            return 0
        q = pos - 1
        while q < size:
            data = os.pread(self._fd, 1 << 16, q)
            if not data:
                break
            nl = data.find(b"\n")
            if nl >= 0:
                return q + nl + 1
            q += len(data)
        return size

    def _open_end(self, size: int, mtime: float) -> int:
        """Where the complete lines end at open; the whole file when its unfinished last line is old."""
        if size == 0 or self._last_byte(size) == 0x0A or time.time() - mtime > DEAD_AFTER_S:
            return size   # (an old unfinished last line is counted by _index: nobody writes it any more)
        return complete_end(self._fd, 0, size)

    def _buffer(self, n: int) -> memoryview:
        """A reused read buffer of at least min(n, CHUNK) bytes (grown on demand: a follower of a quiet log
        never holds CHUNK)."""
        n = min(n, CHUNK)
        if len(self._buf) < n:
            self._buf = bytearray(max(n, min(CHUNK, 2 * len(self._buf)), 1 << 16))
        return memoryview(self._buf)

    def _index(self, seg: _Segment, end: int) -> None:
        """Index [seg.end, end) of the file into seg, in chunks (no newline is left unmatched: a final
        unfinished line, when end says it is complete, counts as a line)."""
        mv = self._buffer(end - seg.end)
        while seg.end < end:
            n = os.preadv(self._fd, [mv[: min(len(mv), end - seg.end)]], seg.end)
            if n <= 0:
                break
            seg.add(seg.end, self._buf, n)
            if seg is self.tail:
                self._fp = (self._fp + bytes(mv[max(0, n - _FP_BYTES):n]))[-_FP_BYTES:]
        if seg.end > seg.start and seg is self.tail and self._last_byte(seg.end) != 0x0A:
            seg.lines += 1  # the dead backend's unfinished last line
            self._partial_at = seg.end
            self._partial_start = complete_end(self._fd, seg.start, seg.end)
        mv.release()

    _partial_at = -1
    _partial_start = 0

    def _last_byte(self, end: int) -> int:
        return os.pread(self._fd, 1, end - 1)[0]

    @property
    def head_done(self) -> bool:
        return self.head.end >= self.tail.start

    @property
    def head_count(self) -> int:
        """Lines of the head reachable now (all of it once head_done)."""
        return self.head.lines

    @property
    def tail_count(self) -> int:
        return self.tail.lines

    @property
    def offset(self) -> int:
        """The byte offset after the last line read: where a reader resumes (LogDocument(start=offset))."""
        return self.tail.end

    @property
    def progress(self) -> float:
        return 1.0 if self.tail.start == 0 else min(1.0, self.head.end / self.tail.start)

    def index_head(self, max_bytes: int | None = None) -> int:
        """Index the next `max_bytes` (default CHUNK) of the head; returns the lines it added."""
        max_bytes = CHUNK if max_bytes is None else max_bytes
        before = self.head.lines
        self._index(self.head, min(self.tail.start, self.head.end + max_bytes))
        return self.head.lines - before

    @property
    def total(self) -> int | None:
        """Lines in the file, once the head is indexed."""
        return self.head.lines + self.tail.lines if self.head_done else None

    def poll(self, max_bytes: int = MAX_POLL_BYTES) -> list[str]:
        """The complete lines appended since the last look (at most about `max_bytes` of them: `behind` says
        more is waiting), indexed into the tail. When the file at `path` was replaced (rotated, deleted) or
        truncated, the old file's last lines (its unterminated last line is a line: the file is finished) and
        `replaced` is set: open a new document for what comes next."""
        if self.replaced:
            return []
        try:
            st: os.stat_result | None = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != self.ident:   # rotated or deleted: finish the old file
            self.replaced = True
            if self._partial_at >= 0:
                return []
            return self._read_on(os.fstat(self._fd).st_size, finish=True)
        self.pending = st.st_size > self.tail.end
        if st.st_size == self.tail.end:
            return []
        if st.st_size < self.tail.end or self._refilled():
            # Truncated (copytruncate: maybe already written again past where we were): a new file to us.
            self.replaced = True
            return []
        if self._partial_at >= 0:
            # The line taken for a dead backend's last one goes on: the lines counted so far are not the file's
            # (a view opens it anew); a reader of appends resumes at that line's start (`resume_at`).
            self.replaced, self.resume_at = True, self._partial_start
            return []
        lines = self._read_on(st.st_size, limit=max_bytes)
        self.pending = self.tail.end < st.st_size
        if self.pending and not self.behind and time.time() - st.st_mtime > DEAD_AFTER_S:
            # An unfinished last line nobody has written to for a while: the dead backend's last words, as at
            # open (if it goes on after all, `resume_at` says where).
            lines += self._read_on(st.st_size, finish=True)
            self.pending = False
        return lines

    def _refilled(self) -> bool:
        """The bytes before the end read so far are not the ones read: truncated and written again past it."""
        n = len(self._fp)
        return bool(n) and os.pread(self._fd, n, self.tail.end - n) != self._fp

    def _read_on(self, size: int, *, limit: int | None = None, finish: bool = False) -> list[str]:
        """Index and return the complete lines in [tail.end, size) (up to about `limit` bytes); `finish`: the
        file is done, an unterminated last line counts."""
        start, lines = self.tail.end, self.tail.lines
        stop = size if limit is None else min(size, start + limit)
        known = max(start, self._no_newline_to)  # [start, known) holds no newline (seen before)
        end = complete_end(self._fd, known, stop)
        if end == known and stop < size:  # one line longer than the limit: read it whole
            end = complete_end(self._fd, stop, size)
            end = known if end == stop else end
        if end == known:  # no complete line yet
            self._no_newline_to, end = size, start
        if finish:
            end = size
        self.behind = not finish and stop < size
        if end == start:
            return []
        self._index(self.tail, end)
        self._no_newline_to = self.tail.end
        return self._read_lines(self.tail, lines, self.tail.lines, start, end)

    # ---- reading (any thread) --------------------------------------------------------------------------

    def head_line(self, i: int) -> str:
        return self._line(self.head, i)

    def tail_line(self, p: int) -> str:
        return self._line(self.tail, p)

    def line(self, n: int) -> str:
        """Line n of the file (0-based); needs head_done for lines past the head indexed so far."""
        if n < self.head.lines:
            return self._line(self.head, n)
        if not self.head_done:
            raise IndexError(n)
        return self._line(self.tail, n - self.head.lines)

    def tail_lines(self, first: int, stop: int) -> list[str]:
        """Tail lines first..stop-1 read in one go, without the cache (for the writer thread)."""
        stop = min(stop, self.tail.lines)
        if first >= stop:
            return []
        return self._read_lines(self.tail, first, stop, self._offset(self.tail, first), self.tail.end)

    def scan(self, rx: re.Pattern[str], first: int, stop: int, *, invert: bool = False,
             progress: Callable[[int, array[int]], bool] | None = None) -> array[int]:
        """File line numbers n in [first, stop) (stop ≤ total: needs head_done) whose line `rx` finds (invert:
        does not find), reading the file in chunks: a 1 GB log in about a second. `progress(line reached,
        found so far)` is called per chunk; returning False stops the scan."""
        found: array[int] = array("q")
        if first >= stop:
            return found
        multi = re.compile(rx.pattern, rx.flags | re.MULTILINE)
        seg, i = (self.head, first) if first < self.head.lines else (self.tail, first - self.head.lines)
        pos = self._offset(seg, i)
        n = first
        while n < stop:
            end = self.tail.end
            data = os.pread(self._fd, min(CHUNK, end - pos), pos)
            if not data:
                break
            cut = data.rfind(b"\n") + 1
            if cut <= 0:  # one line longer than a chunk: judge it by its (cut) text
                text = self._read_line(pos, end)
                if (rx.search(text) is None) == invert:
                    found.append(n)
                n += 1
                pos = self._find_newline(pos, end) + 1
                continue
            text = data[:cut].decode("utf-8", "replace")
            lines = text.count("\n")
            hits = _matching_lines(rx, multi, text)
            if invert:
                hit = set(hits)
                found.extend(n + j for j in range(min(lines, stop - n)) if j not in hit)
            else:
                found.extend(n + j for j in hits if n + j < stop)
            n += lines
            pos += cut
            if progress is not None and not progress(n, found):
                break
        return found

    def _offset(self, seg: _Segment, i: int) -> int:
        """Where line i of seg begins."""
        if i == 0:
            return seg.start
        k = seg.block_of(i)
        skip, pos = i - seg.cum[k], seg.offs[k]
        while True:
            data = os.pread(self._fd, BLOCK, pos)
            if not data:
                return pos
            n = data.count(b"\n")
            if n >= skip:
                at = -1
                for _ in range(skip):
                    at = data.find(b"\n", at + 1)
                return pos + at + 1
            skip -= n
            pos += len(data)

    def _line(self, seg: _Segment, i: int) -> str:
        if not 0 <= i < seg.lines:
            raise IndexError(i)
        if i == 0:
            return self._read_line(seg.start, seg.end)
        k = seg.block_of(i)
        end = seg.block_end(k)
        key = (id(seg), k, end)
        lines = self._cache.get(key)
        if lines is None:
            lines = self._block_lines(seg, k, end)
            self._cache[key] = lines
            if len(self._cache) > CACHE_BLOCKS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return lines[i - seg.cum[k] - 1]

    def _block_lines(self, seg: _Segment, k: int, end: int) -> list[str]:
        """The lines that begin after a newline of block k (the last one may run on past the block)."""
        start = seg.offs[k]
        data = os.pread(self._fd, end - start, start)
        first = data.find(b"\n")
        if first < 0:
            return []
        pieces = data[first + 1:].split(b"\n")
        out = [decode_line(p) for p in pieces[:-1]]
        last_start = end - len(pieces[-1])
        if last_start < seg.end:   # the last line begins in this block and ends later
            out.append(self._read_line(last_start, seg.end))
        return out

    def _read_line(self, start: int, limit: int) -> str:
        """The line starting at `start` (up to its newline, or `limit`), long lines cut as the follower does."""
        head = os.pread(self._fd, min(MAX_LINE_BYTES + 1, max(0, limit - start)), start)
        nl = head.find(b"\n")
        if nl >= 0:
            return decode_line(head[:nl])
        if len(head) <= MAX_LINE_BYTES:
            return decode_line(head)
        pos = start + len(head)   # a very long line: find its end, keep its head and tail
        while pos < limit:
            data = os.pread(self._fd, min(1 << 20, limit - pos), pos)
            if not data:
                break
            nl = data.find(b"\n")
            if nl >= 0:
                pos += nl
                break
            pos += len(data)
        half = MAX_LINE_BYTES // 2
        return cut_line(head[:half], os.pread(self._fd, half, max(start, pos - half)), pos - start)

    def _read_lines(self, seg: _Segment, first: int, stop: int, start: int, end: int) -> list[str]:
        """Lines first..stop-1 of seg, known to lie in [start, end) (fresh appends: read once, not cached)."""
        out: list[str] = []
        pos = start
        while pos < end and len(out) < stop - first:
            data = os.pread(self._fd, min(end - pos, CHUNK), pos)
            if not data:
                break
            cut = data.rfind(b"\n") + 1 if pos + len(data) < end else len(data)
            if cut <= 0:   # one line longer than a chunk
                out.append(self._read_line(pos, end))
                pos = self._find_newline(pos, end) + 1
                continue
            pieces = data[:cut].split(b"\n")
            if pieces and pieces[-1] == b"":
                pieces.pop()
            out.extend(decode_line(p) for p in pieces)
            pos += cut
        return out[: stop - first]

    def _find_newline(self, pos: int, end: int) -> int:
        while pos < end:
            data = os.pread(self._fd, min(1 << 20, end - pos), pos)
            nl = data.find(b"\n")
            if nl >= 0:
                return pos + nl
            pos += len(data)
        return end

    def fileno(self) -> int:
        """The open file (the one indexed, even after `path` names another)."""
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> LogDocument:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
