"""Crash-safe file replacement: temp file in the same dir, fsync, rename, fsync the dir; plus backups and a lock.

A reader (or oMLX at start) sees the old bytes or the new bytes, never a mix, even after kill -9 or power loss.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlx_console import paths

BACKUP_GENERATIONS = 5
_TMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]+\.mlx-console-tmp$")


def content_hash(data: bytes | None) -> str:
    """sha256 of the file's bytes; "absent" for a file that does not exist."""
    import hashlib  # here and in _key_of: not at import (every `backends` command loads this module)

    return "absent" if data is None else hashlib.sha256(data).hexdigest()


def hash_matches(expected: str, actual: str) -> bool:
    """--if-hash accepts the full hash or a prefix of at least 8 hex digits."""
    expected = expected.strip().lower()
    if expected == actual:
        return True
    return len(expected) >= 8 and actual != "absent" and actual.startswith(expected)


def read_current(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _key_of(path: Path) -> str:
    import hashlib

    resolved = str(path.expanduser().resolve())
    return hashlib.sha1(resolved.encode()).hexdigest()[:12] + "-" + path.name


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialize our own writers of `path` (other mlx-console processes); oMLX itself takes no lock."""
    lock_dir = paths.private_dir(paths.state_dir() / "settings-locks")
    fd = os.open(lock_dir / (_key_of(path) + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(path: Path) -> None:
    """Temp files left by a writer killed mid-save (only ours, only of dead processes). Their bytes go to the
    backups first: after a kill inside a swap, a temp file can hold the version that was displaced."""
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            m = _TMP_RE.match(entry.name)
            if m and m.group("name") == path.name and not _pid_alive(int(m.group("pid"))):
                with contextlib.suppress(OSError):
                    write_backup(path, entry.read_bytes())
                    entry.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename is still atomic
    finally:
        os.close(fd)


class ReplacedChanged(Exception):
    """The file that a checked replace would have replaced was not the expected one; `theirs` is what is there."""

    def __init__(self, theirs: bytes | None) -> None:
        super().__init__("the file changed just before it was replaced")
        self.theirs = theirs


ANY: Any = object()  # write_atomic(expected=ANY): replace whatever is there
_RENAME_EXCHANGE = 2  # Linux renameat2 flag; macOS renamex_np RENAME_SWAP has the same value
_AT_FDCWD = -100


def _load_exchange() -> Callable[[Path, Path], bool] | None:
    """An atomic swap of two names (Linux renameat2 RENAME_EXCHANGE, macOS renamex_np RENAME_SWAP), if any."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    if sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        fn = libc.renamex_np
        fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]

        def call(a: bytes, b: bytes) -> int:
            return int(fn(a, b, _RENAME_EXCHANGE))
    elif sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        fn = libc.renameat2
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]

        def call(a: bytes, b: bytes) -> int:
            return int(fn(_AT_FDCWD, a, _AT_FDCWD, b, _RENAME_EXCHANGE))
    else:
        return None
    fn.restype = ctypes.c_int

    def exchange(a: Path, b: Path) -> bool:
        if call(os.fsencode(a), os.fsencode(b)) == 0:
            return True
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            return False  # this kernel or filesystem cannot swap: the caller falls back to a rename
        raise OSError(err, os.strerror(err), str(b))

    return exchange


_exchange_impl = _load_exchange()


def _exchange(a: Path, b: Path) -> bool:
    return _exchange_impl is not None and _exchange_impl(a, b)


def _checked_replace(tmp: Path, path: Path, expected: bytes | None) -> None:
    """Put `tmp` at `path` only if `path` holds `expected` (None: does not exist) at that instant.

    With an exchange, the name swap is atomic and the displaced file is then compared: if it is not the
    expected one, it is swapped back (nothing lost). Without one, a plain rename after the last check.
    """
    if expected is None:
        try:
            os.link(tmp, path)  # fails if the file appeared meanwhile
        except FileExistsError:
            raise ReplacedChanged(read_current(path)) from None
        except OSError:
            if path.exists():
                raise ReplacedChanged(read_current(path)) from None
            os.replace(tmp, path)  # a filesystem without hard links
            return
        tmp.unlink()
        return
    if not _exchange(tmp, path):
        os.replace(tmp, path)
        return
    displaced = tmp.read_bytes()  # what was at `path` the instant before
    if displaced == expected:
        tmp.unlink()
        return
    _exchange(tmp, path)  # put theirs back
    raise ReplacedChanged(displaced)


def write_atomic(path: Path, data: bytes, mode: int | None = None,
                 before_replace: Callable[[], None] | None = None, expected: Any = ANY) -> None:
    """Replace `path` with `data` atomically; keep `mode` (default: the current file's, else 0666 & ~umask).

    `before_replace` runs after the temp file is durable and just before the rename: it may raise to
    abort (the temp file is removed, the target untouched). With `expected` (the bytes the file must still
    hold, None = must not exist) the replace itself is checked too and raises ReplacedChanged otherwise.
    """
    directory = path.parent
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
    tmp = directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.mlx-console-tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:  # the message names the file being written, not our temp name
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        if before_replace is not None:
            before_replace()
        if expected is ANY:
            os.replace(tmp, path)
        else:
            _checked_replace(tmp, path, expected)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError) and not isinstance(e, ReplacedChanged) and e.filename in (None, str(tmp)):
            raise OSError(e.errno, e.strerror, str(path)) from None  # ENOSPC, EROFS, EDQUOT …: the old file
        raise                                                         # is untouched
    _fsync_dir(directory)


def backup_dir(path: Path) -> Path:
    return paths.state_dir() / "settings-backups" / _key_of(path)


def write_backup(path: Path, data: bytes, keep: int = BACKUP_GENERATIONS) -> Path:
    """Keep `data` (the version about to be replaced) in the state dir; prune to the newest `keep`."""
    directory = paths.private_dir(backup_dir(path))
    source = directory / "SOURCE"
    if not source.exists():
        source.write_text(str(path.expanduser().resolve()) + "\n", encoding="utf-8")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = directory / f"{path.name}.{stamp}"
    n = 0
    while target.exists():
        n += 1
        target = directory / f"{path.name}.{stamp}.{n}"
    write_atomic(target, data, mode=0o600)
    backups = list_backups(path)
    for old in backups[keep:]:
        with contextlib.suppress(OSError):
            old.unlink()
    return target


def list_backups(path: Path) -> list[Path]:
    """Backups of `path`, newest first."""
    directory = backup_dir(path)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.name.startswith(path.name + ".")]
    return sorted(found, key=lambda p: p.name, reverse=True)

