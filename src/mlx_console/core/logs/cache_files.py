"""The state dir's cache files (`<state dir>/cache/`): the compiled pattern database (scan.py, `hs-<hash>.db`) and
each parsed catalogue file (catalog_cache.py, `catalog-<hash>.json`). A file is written whole or not at all (a
reader sees no file or the complete one), and only the newest `KEEP` of a kind are kept: every new mlx-console
release or edited catalogue makes a new file, and the old ones (~1 MB each for a pattern database) would pile up.
A cache that cannot be written only costs the work again next time. No fsync: a cache a crash loses is rebuilt
(settings files use core/common/atomic.py, which keeps them through power loss)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

KEEP = 4  # files of one kind: enough for a few versions used side by side


def default_dir() -> Path | None:
    try:
        from mlx_console import paths

        return paths.state_dir() / "cache"
    except OSError:
        return None


def write(path: Path, payload: bytes, kind: str, keep: int = KEEP) -> None:
    """Write `payload` to `path` atomically, then remove all but the newest `keep` files matching `kind` (a glob
    in the same directory, e.g. `hs-*.db`)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):  # (not there, or its directory is a file)
            tmp.unlink()
        return
    prune(path.parent, kind, keep, spare=path)


def prune(directory: Path, kind: str, keep: int = KEEP, spare: Path | None = None) -> None:
    """Remove the oldest files matching `kind` beyond the newest `keep` (never `spare`). A file another process is
    reading at that moment is only a cache miss for it."""
    try:
        found = [(p.stat().st_mtime, p) for p in directory.glob(kind)]
    except OSError:
        return
    found.sort(key=lambda x: x[0], reverse=True)
    for _, p in found[keep:]:
        if p != spare:
            with contextlib.suppress(OSError):
                p.unlink()
