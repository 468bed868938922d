"""Wake when a file is written: inotify on Linux, kqueue on macOS (both from the standard library and libc),
else a plain timeout. Costs nothing while the file is quiet, unlike stat polling or watchfiles' 5 ms loop.

    w = FileWatch(path)
    w.wait(0.5)     # True when the file changed (or may have), False on timeout
    w.close()

A watch follows the inode: after a rotation, call `rewatch()` (the caller notices through its own stat).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import sys
import time
from pathlib import Path

_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x2, 0x4, 0x8
_IN_MOVE_SELF, _IN_DELETE_SELF = 0x800, 0x400
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000
_MASK = _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVE_SELF | _IN_DELETE_SELF

_libc: ctypes.CDLL | None = None


def _inotify() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            lib.inotify_init1.argtypes = [ctypes.c_int]
            lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            _libc = lib
        except (OSError, AttributeError):
            return None
    return _libc


class FileWatch:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = -1            # inotify instance, or the watched file (kqueue)
        self._kq: select.kqueue | None = None  # type: ignore[name-defined,unused-ignore]
        self.kind = "timeout"
        self.rewatch()

    def rewatch(self) -> None:
        """Watch the file now at `path` (after a rotation); a missing file is waited for by timeout."""
        self.close()
        try:
            lib = _inotify()
            if lib is not None:
                fd = lib.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
                if fd >= 0:
                    if lib.inotify_add_watch(fd, os.fsencode(self.path), _MASK) >= 0:
                        self._fd, self.kind = fd, "inotify"
                        return
                    os.close(fd)
            elif hasattr(select, "kqueue"):
                fd = os.open(self.path, os.O_RDONLY)
                kq = select.kqueue()
                ev = select.kevent(fd, filter=select.KQ_FILTER_VNODE,  # type: ignore[attr-defined,unused-ignore]
                                   flags=select.KQ_EV_ADD | select.KQ_EV_CLEAR,  # type: ignore[attr-defined,unused-ignore]
                                   fflags=select.KQ_NOTE_WRITE | select.KQ_NOTE_EXTEND  # type: ignore[attr-defined,unused-ignore]
                                   | select.KQ_NOTE_DELETE | select.KQ_NOTE_RENAME)  # type: ignore[attr-defined,unused-ignore]
                kq.control([ev], 0, 0)
                self._fd, self._kq, self.kind = fd, kq, "kqueue"
        except OSError:
            self.close()

    def wait(self, timeout: float) -> bool:
        """Block until the file is written or `timeout` passes; True when it was written."""
        if self.kind == "inotify":
            ready, _, _ = select.select([self._fd], [], [], timeout)
            if ready:
                try:
                    while os.read(self._fd, 4096):
                        pass
                except BlockingIOError:
                    pass
                return True
            return False
        if self.kind == "kqueue" and self._kq is not None:
            return bool(self._kq.control(None, 8, timeout))
        time.sleep(timeout)
        return False

    def close(self) -> None:
        if self._kq is not None:
            self._kq.close()
            self._kq = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.kind = "timeout"

    def __enter__(self) -> FileWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
