"""Tell an open editor that model_settings.json changed under it (watchfiles on the directory).

The directory is watched, not the file: oMLX and we both replace the file by renaming a temp file over it,
which a watch on the old inode would miss. Callbacks get the new content hash; the editor compares it
with the hash it loaded (its own saves then look like no change).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import watchfiles

from mlx_console.core.common.atomic import content_hash, read_current


def _filter_for(path: Path) -> Callable[[watchfiles.Change, str], bool]:
    name = path.name
    return lambda _change, changed: Path(changed).name == name


class SettingsWatcher:
    """Calls `on_change(new_hash)` from a background thread whenever the file's content hash changes."""

    def __init__(self, path: str | Path, on_change: Callable[[str], None], debounce_ms: int = 50) -> None:
        self.path = Path(path).expanduser()
        self._on_change = on_change
        self._debounce = debounce_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_hash = content_hash(read_current(self.path))
        self._ready = threading.Event()

    def start(self) -> SettingsWatcher:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"watch {self.path.name}", daemon=True)
        self._thread.start()
        self._ready.wait(5)
        return self

    def _run(self) -> None:
        watcher = watchfiles.watch(self.path.parent, watch_filter=_filter_for(self.path), stop_event=self._stop,
                                   debounce=self._debounce, step=20, rust_timeout=200, yield_on_timeout=True,
                                   recursive=False)
        for changes in watcher:
            self._ready.set()  # the first (timeout) yield means the OS watch is in place
            if self._stop.is_set():
                break
            if not changes:
                continue
            current = content_hash(read_current(self.path))
            if current != self.last_hash:
                self.last_hash = current
                self._on_change(current)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SettingsWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def watch_hashes(path: str | Path, stop_event: object | None = None,
                       debounce_ms: int = 50) -> AsyncIterator[str]:
    """Async variant for a Textual app: yields the new content hash each time the file's content changes."""
    p = Path(path).expanduser()
    last = content_hash(read_current(p))
    async for _changes in watchfiles.awatch(p.parent, watch_filter=_filter_for(p), stop_event=stop_event,  # type: ignore[arg-type]
                                            debounce=debounce_ms, recursive=False):
        current = content_hash(read_current(p))
        if current != last:
            last = current
            yield current
