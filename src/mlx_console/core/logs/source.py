"""Follow a log file by path: appends, partial lines, rotation, copytruncate, late creation, bad bytes.

API: `LogFollower(path, start="end"|"begin")`; `.poll() -> list[Line]` (non-blocking: every complete new line);
`.wait(timeout) -> bool` (blocks until the file may have changed: watchfiles, else polling); `.lines(stop)`
(blocking iterator); `.follow(callback, stop)`. A Textual worker thread loops `wait()` + `poll()`.
Line numbers restart at 1 (and `generation` goes up) when the file is rotated or truncated. Lines are
decoded as UTF-8 with replacement; a line longer than `max_line_bytes` keeps its head and says it was cut.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


def _debug(msg: str, *args: object) -> None:
    """A debug record of a fallback (logging is imported here, not at start-up: `triage` never needs it)."""
    import logging

    logging.getLogger(__name__).debug(msg, *args)


MAX_LINE_BYTES = 64 * 1024  # longer lines keep their first 64 KiB: bounded memory, patterns still see the head
_READ_CHUNK = 1 << 20
_MAX_POLL_BYTES = 16 << 20  # one poll() reads at most this much; the rest comes on the next call
_FP_BYTES = 64  # fingerprint of the bytes before the read offset (copytruncate + refill detection)
_SAFETY_POLL = 1.0  # even with watchfiles, look at the file at least this often (missed events, NFS)


def decode_line(raw: bytes | bytearray, max_bytes: int = MAX_LINE_BYTES) -> str:
    """Bytes of one line (no newline) → text: CR dropped, invalid UTF-8 replaced, long lines cut and marked."""
    if len(raw) > max_bytes:
        half = max_bytes // 2
        return cut_line(raw[:half], raw[-half:], len(raw))
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw.decode("utf-8", "replace")


def cut_line(head: bytes | bytearray, tail: bytes | bytearray, total: int) -> str:
    """A line too long to keep: its head and tail (errors are often at the end), with what was cut."""
    cut = total - len(head) - len(tail)
    end = tail.removesuffix(b"\r").decode("utf-8", "replace")
    return f"{head.decode('utf-8', 'replace')} [… line truncated: {cut} of {total} bytes cut …] {end}"


def stream_lines(read: Callable[[int], bytes], max_bytes: int = MAX_LINE_BYTES) -> Iterator[str]:
    """Lines of a stream (a pipe: `read` returns what is there, b"" at the end) as they complete, each
    bounded like the file follower's: a line longer than `max_bytes` keeps its head and tail, marked cut."""
    half = max_bytes // 2
    head, tail, total = bytearray(), bytearray(), 0
    while True:
        data = read(_READ_CHUNK)
        start = 0
        while data:
            nl = data.find(b"\n", start)
            piece = data[start:] if nl < 0 else data[start:nl]
            total += len(piece)
            if total <= max_bytes:
                head += piece
            else:  # too long: keep the head and a rolling tail
                if len(head) > half:
                    tail += head[half:]
                    del head[half:]
                room = max(0, half - len(head))
                head += piece[:room]
                tail += piece[room:][-half:]
                del tail[:-half]
            if nl < 0:
                break
            yield decode_line(bytes(head), max_bytes) if total <= max_bytes else cut_line(bytes(head), bytes(tail), total)
            head, tail, total = bytearray(), bytearray(), 0
            start = nl + 1
        if not data:
            if total:
                yield decode_line(bytes(head)) if total <= max_bytes else cut_line(bytes(head), bytes(tail), total)
            return


def split_text(text: str) -> list[str]:
    """Split like the file readers do: on newlines only, CR dropped, no empty last line."""
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return [p[:-1] if p.endswith("\r") else p for p in parts]


def complete_end(fd: int, size: int) -> int:
    """The offset just after the file's last complete line (its last newline within `size` bytes): where
    a reader starts following, leaving a line still being written for later. 0 when no line is complete
    yet; `size` when one unfinished line is longer than a read chunk (skipped)."""
    if size <= 0:
        return 0
    tail = os.pread(fd, min(size, _READ_CHUNK), max(0, size - _READ_CHUNK))
    nl = tail.rfind(b"\n")
    if nl >= 0:
        return size - len(tail) + nl + 1
    return 0 if size <= _READ_CHUNK else size


def count_newlines(fd: int, end: int) -> int:
    n, pos = 0, 0
    while pos < end:
        chunk = os.pread(fd, min(_READ_CHUNK * 8, end - pos), pos)
        if not chunk:
            break
        n += chunk.count(b"\n")
        pos += len(chunk)
    return n


@dataclass(frozen=True)
class Line:
    number: int  # 1-based within the current file (restarts after rotation/truncation)
    text: str
    offset: int  # byte offset of the line's start in its file
    generation: int = 0  # bumped on each rotation or truncation
    truncated: bool = False


class _Watcher:
    """watchfiles on the file's directory in a daemon thread; sets `changed` on any event for the file."""

    def __init__(self, path: Path, changed: threading.Event):
        self.path, self.changed = path, changed
        self._stop = threading.Event()
        self.alive = False
        self._thread = threading.Thread(target=self._run, name=f"watch:{path.name}", daemon=True)

    def start(self) -> bool:
        try:
            import watchfiles  # noqa: F401
        except ImportError:
            return False
        if not self.path.parent.is_dir():
            return False
        self.alive = True
        self._thread.start()
        return True

    def _run(self) -> None:
        import watchfiles

        name = self.path.name
        try:
            for changes in watchfiles.watch(
                self.path.parent,
                watch_filter=lambda _c, p: os.path.basename(p).startswith(name),
                debounce=10,
                step=5,
                stop_event=self._stop,
                rust_timeout=500,
                yield_on_timeout=True,
                recursive=False,
                raise_interrupt=False,
            ):
                if changes:
                    self.changed.set()
        except Exception as e:  # the directory vanished, inotify limits, …: fall back to polling
            _debug("watchfiles stopped for %s: %s", self.path, e)
        finally:
            self.alive = False
            self.changed.set()

    def stop(self) -> None:
        self._stop.set()


class LogFollower:
    """Tail one path across rotations. Not thread-safe: use it from one thread (wait/poll loop)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        start: str = "end",
        start_offset: int | None = None,
        start_line: int = 0,
        max_line_bytes: int = MAX_LINE_BYTES,
        poll_interval: float = 0.1,
        use_watchfiles: bool = True,
    ):
        """`start`: "end" skips what the file holds now, "begin" reads it all. `start_offset`/`start_line`
        resume at a byte offset (a line start) where `start_line` lines were already read."""
        if start not in ("end", "begin"):
            raise ValueError("start must be 'end' or 'begin'")
        self.path = Path(path)
        self.max_line_bytes = max_line_bytes
        self.poll_interval = poll_interval
        self.generation = 0
        self._start = start
        self._start_offset = start_offset
        self._start_line = start_line
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        self._pos = 0
        self._number = 0
        self._partial = bytearray()  # the line being read: whole while short, else its head
        self._tail = bytearray()  # the last max_line_bytes/2 bytes of a line too long to keep whole
        self._partial_len = 0
        self._partial_off = 0
        self._fp = b""  # the last bytes read before _pos: a copytruncate refilled past _pos changes them
        self._changed = threading.Event()
        self._watcher: _Watcher | None = None
        self._use_watchfiles = use_watchfiles
        self._closed = False
        self.error: str | None = None  # why the file cannot be read right now, if it cannot

    # -- reading -------------------------------------------------------------------------------------
    def _open(self, st: os.stat_result, first: bool) -> None:
        self._fd = os.open(self.path, os.O_RDONLY)
        fst = os.fstat(self._fd)
        if stat.S_ISDIR(fst.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        self._ident = (fst.st_dev, fst.st_ino)
        self._partial.clear()
        self._tail.clear()
        self._partial_len = 0
        if first and self._start_offset is not None:
            self._pos, self._number = self._start_offset, self._start_line
        elif first and self._start == "end":
            # Start after the last complete line; a partial last line is read once it is finished.
            self._pos = complete_end(self._fd, fst.st_size)
            self._number = count_newlines(self._fd, self._pos)
        else:
            self._pos, self._number = 0, 0
        self._partial_off = self._pos
        self._fp = os.pread(self._fd, min(self._pos, _FP_BYTES), self._pos - min(self._pos, _FP_BYTES))

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self._ident = None, None

    def _emit(self, piece: bytes, out: list[Line]) -> None:
        total = self._partial_len + len(piece)
        if total <= self.max_line_bytes:
            text = decode_line(bytes(self._partial) + piece if self._partial_len else piece, self.max_line_bytes)
        else:
            self._keep_partial(piece)
            half = self.max_line_bytes // 2
            text = cut_line(bytes(self._partial[:half]), bytes(self._tail[-half:]), total)
        self._number += 1
        out.append(Line(self._number, text, self._partial_off, self.generation, total > self.max_line_bytes))
        self._partial.clear()
        self._tail.clear()
        self._partial_len = 0

    def _keep_partial(self, piece: bytes) -> None:
        half = self.max_line_bytes // 2
        if self._partial_len + len(piece) <= self.max_line_bytes:
            self._partial += piece
        else:  # too long to keep whole: keep the head, and a rolling tail
            if len(self._partial) > half:
                self._tail += self._partial[half:]
                del self._partial[half:]
            room = half - len(self._partial)
            if room > 0:
                self._partial += piece[:room]
            if len(piece) >= half:
                self._tail[:] = piece[-half:]
            else:
                self._tail += piece
            if len(self._tail) > half:
                del self._tail[:-half]
        self._partial_len += len(piece)

    def _read(self, out: list[Line], limit: int | None = _MAX_POLL_BYTES) -> bool:
        """Read complete lines from the open fd; True when it stopped at `limit` with more to read."""
        assert self._fd is not None
        budget = limit
        while budget is None or budget > 0:
            data = os.pread(self._fd, _READ_CHUNK, self._pos)
            if not data:
                return False
            start = 0
            while True:
                nl = data.find(b"\n", start)
                if nl < 0:
                    self._keep_partial(data[start:])
                    break
                self._emit(data[start:nl], out)
                start = nl + 1
                self._partial_off = self._pos + start
            self._pos += len(data)
            self._fp = (self._fp + data[-_FP_BYTES:])[-_FP_BYTES:]
            if budget is not None:
                budget -= len(data)
        return True

    def _refilled(self) -> bool:
        """The bytes before our offset are not the ones we read: truncated and written again past it."""
        if not self._fp or self._fd is None:
            return False
        try:
            return os.pread(self._fd, len(self._fp), self._pos - len(self._fp)) != self._fp
        except OSError:
            return False

    def _finish_partial(self, out: list[Line]) -> None:
        """The file is done (rotated/truncated): its unterminated last line is a line too."""
        if self._partial_len:
            self._emit(b"", out)

    def poll(self) -> list[Line]:
        """Every complete line added since the last call (non-blocking)."""
        out: list[Line] = []
        try:
            st: os.stat_result | None = os.stat(self.path)
        except FileNotFoundError:
            st = None
        except OSError as e:
            _debug("stat %s: %s", self.path, e)
            return out
        if self._fd is not None:
            fst = os.fstat(self._fd)
            if st is None or (st.st_dev, st.st_ino) != self._ident:
                self._read(out, None)  # rotated away or deleted: drain the old file to its end
                self._finish_partial(out)
                self._close_fd()
                self.generation += 1
            elif fst.st_size < self._pos or self._refilled():  # copytruncate: same file, shorter than what
                self._finish_partial(out)                      # we read, or already refilled past it
                self.generation += 1
                self._pos = self._partial_off = 0
                self._number = 0
                self._fp = b""
        if self._fd is None and st is None and self.generation == 0:
            # Not there yet: when it appears, everything in it is new.
            self._start, self._start_offset = "begin", None
        if self._fd is None and st is not None:
            first = self.generation == 0
            try:
                self._open(st, first)
                self.error = None
            except FileNotFoundError:
                return out
            except OSError as e:  # permission, a directory, …: keep trying, say why
                self.error = f"{self.path}: {e.strerror or e}"
                self._close_fd()
                return out
        if self._fd is not None and self._read(out):
            self._changed.set()  # more is waiting: the next wait() returns at once
        return out

    # -- waiting -------------------------------------------------------------------------------------
    def _ensure_watcher(self) -> None:
        if not self._use_watchfiles or (self._watcher is not None and self._watcher.alive):
            return
        w = _Watcher(self.path, self._changed)
        if w.start():
            self._watcher = w

    @property
    def watching(self) -> bool:
        """True when change notification (watchfiles) is active, False when polling."""
        return self._watcher is not None and self._watcher.alive

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the file may have changed or `timeout` passes. True if a change was signalled."""
        self._ensure_watcher()
        step = _SAFETY_POLL if self.watching else self.poll_interval
        step = step if timeout is None else min(step, timeout)
        hit = self._changed.wait(step)
        self._changed.clear()
        return hit

    def lines(self, stop: threading.Event | None = None) -> Iterator[Line]:
        """Blocking iterator over new lines until `stop` is set (or the follower is closed)."""
        while not self._closed and not (stop is not None and stop.is_set()):
            yield from self.poll()
            self.wait(0.5)

    def follow(self, callback: Callable[[list[Line]], None], stop: threading.Event) -> None:
        """Call `callback(lines)` with each batch of new lines until `stop` is set."""
        while not stop.is_set() and not self._closed:
            batch = self.poll()
            if batch:
                callback(batch)
            self.wait(0.5)

    def close(self) -> None:
        self._closed = True
        if self._watcher is not None:
            self._watcher.stop()
        self._close_fd()

    def __enter__(self) -> LogFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
