"""The watcher tells an open editor that the file was replaced under it (as oMLX and editors do)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from mlx_console.core.common.atomic import content_hash, write_atomic
from mlx_console.core.settings.watch import SettingsWatcher


def test_watcher_reports_atomic_replace_and_plain_write(tmp_path: Path) -> None:
    path = tmp_path / "model_settings.json"
    path.write_text(json.dumps({"version": 1, "models": {}}))
    seen: list[str] = []
    got = threading.Event()

    def on_change(h: str) -> None:
        seen.append(h)
        got.set()

    with SettingsWatcher(path, on_change):
        (tmp_path / "other.json").write_text("{}")  # other files are ignored
        time.sleep(0.3)
        assert not seen
        new = b'{"version": 1, "models": {"a": {}}}'
        write_atomic(path, new)  # rename over it, like oMLX's save
        assert got.wait(5)
        assert seen[-1] == content_hash(new)
        got.clear()
        path.write_bytes(b"{}")
        assert got.wait(5)
        assert seen[-1] == content_hash(b"{}")


def test_async_watch_yields_new_hashes(tmp_path: Path) -> None:
    import asyncio

    from mlx_console.core.settings.watch import watch_hashes

    path = tmp_path / "model_settings.json"
    path.write_text("{}")
    new = b'{"version": 1}'

    async def main() -> str:
        stop = asyncio.Event()

        async def writer() -> None:
            # The watcher has no "ready" signal: write until it has seen the change (same bytes, same hash).
            while not stop.is_set():
                write_atomic(path, new)
                await asyncio.sleep(0.2)

        task = asyncio.create_task(writer())
        async for h in watch_hashes(path, stop_event=stop):
            stop.set()
            await task
            return h
        raise AssertionError("watcher ended without a change")

    assert asyncio.run(asyncio.wait_for(main(), 10)) == content_hash(new)
