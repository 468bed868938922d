"""Append → visible: time from a line written to a backend's log to the log view holding it (and a frame
being asked for), through the real follower (watchfiles) and triage, in a headless console.

Goal (issue 6): ≤ 100 ms. Also prints the same measure for a bare `LogFollower` poll loop side by side,
so the console's own share is visible. Run: .venv/bin/python bench/ui_append_latency.py [--n N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from mlx_console.core.config import Config, Profile
from mlx_console.ui.app import ConsoleApp
from mlx_console.ui.backends_source import Backends


class OneLog(Backends):
    """The real console, with the status poll answering from the config (no servers needed)."""

    def __init__(self, config: Config, log: Path) -> None:
        super().__init__(config)
        self.log = log

    def rows(self) -> list[dict[str, Any]]:
        return self.placeholder_rows("ready")

    def log_path(self, name: str) -> Path | None:
        return self.log


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def console_latency(log: Path, n: int) -> list[float]:
    config = Config(path=log.parent / "c.toml", exists=True, backends=[Profile(name="a", kind="mlx-lm", model="m")])
    app = ConsoleApp(config, backends=OneLog(config, log), autostart=False, memory_reader=lambda: None)
    out: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.log_view
        while app.log_path is None:
            await pilot.pause(0.05)
        await pilot.pause(1.0)
        for i in range(n):
            before = view.line_count
            t0 = time.perf_counter()
            with log.open("a") as fh:
                fh.write(f"2026-01-01 00:00:00,000 - INFO - line {i}\n")
            while view.line_count == before:
                await asyncio.sleep(0.001)
            out.append(time.perf_counter() - t0)
            await asyncio.sleep(0.15)
    return out


def follower_latency(log: Path, n: int) -> list[float]:
    from mlx_console.core.logs.source import LogFollower

    f = LogFollower(log, start="end")
    got = threading.Event()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            if f.poll():
                got.set()
            f.wait(0.5)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    time.sleep(1.0)
    out = []
    for i in range(n):
        got.clear()
        t0 = time.perf_counter()
        with log.open("a") as fh:
            fh.write(f"bare {i}\n")
        got.wait(5)
        out.append(time.perf_counter() - t0)
        time.sleep(0.15)
    stop.set()
    f.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        log.write_text("start\n")
        bare = follower_latency(log, args.n)
        ui = asyncio.run(console_latency(log, args.n))
    for name, xs in (("bare LogFollower", bare), ("console log view", ui)):
        print(f"{name:18}: median {statistics.median(xs) * 1000:6.1f} ms  p95 {pct(xs, 0.95) * 1000:6.1f} ms  "
              f"max {max(xs) * 1000:6.1f} ms  (n={len(xs)})")
    ratio = statistics.median(ui) / statistics.median(bare)
    print(f"console / bare follower median: {ratio:.2f}x; goal ≤ 100 ms at p95: "
          f"{'met' if pct(ui, 0.95) <= 0.1 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
