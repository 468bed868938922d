"""CPU of the console on a terminal with a real backend running: its first minute, at rest after it, with the
log on screen growing 10 lines/s, and with the log off screen growing.

Peers in the same run and the same time windows, each on its own file doing the same thing (quiet, then
growing 10 lines/s): lnav and toolong, where installed. Starts a real mlx_lm.server on the tiny model it builds
and stops it at the end. Goal (issues 6, 16): ≤ 1 % of a core at rest.
Run: .venv/bin/python bench/ui_idle_cpu.py [--seconds S]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from harness import CONSOLE, PtyScreen, Row, emit, find_tool, missing  # noqa: E402

GOAL = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cpu:
    """CPU seconds of a process (threads included) between two marks, as % of one core."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)

    def mark(self) -> tuple[float, float]:
        t = self.proc.cpu_times()
        return time.monotonic(), t.user + t.system

    @staticmethod
    def since(a: tuple[float, float], b: tuple[float, float]) -> float:
        return 100.0 * (b[1] - a[1]) / (b[0] - a[0])


class Grower:
    """Appends a log line every 0.1 s to each of its files while on."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, files: list[Path]) -> None:
        self.files, self.stop = files, threading.Event()

        def run() -> None:
            i = 0
            while not self.stop.wait(0.1):
                for f in self.files:
                    with f.open("a") as fh:
                        fh.write(f"2026-01-01 00:00:00,000 - INFO - bench line {i}\n")
                i += 1

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def halt(self) -> None:
        self.stop.set()
        if self.thread:
            self.thread.join()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each steady-state window")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        model = t / "tiny"
        subprocess.run([sys.executable, "-m", "mlx_console", "demo-model", str(model)], check=True,
                       capture_output=True)
        cfg = t / "config.toml"
        cfg.write_text("".join(f'[[backend]]\nname = "{n}"\nkind = "mlx-lm"\nmodel = "{model}"\nport = {free_port()}\n'
                               for n in ("a", "b")))
        env = dict(os.environ, MLX_CONSOLE_CONFIG=str(cfg), MLX_CONSOLE_STATE_DIR=str(t / "state"),
                   HF_HUB_OFFLINE="1")
        screens: dict[str, PtyScreen] = {}
        peer_logs: dict[str, Path] = {}
        quit_keys = {"console": b"q", "lnav": b"q", "toolong": b"\x1b\x1bq"}
        try:
            for n in ("a", "b"):
                subprocess.run([str(CONSOLE), "backends", "start", n, "--wait", "120"], env=env, check=True,
                               capture_output=True)
            screens["console"] = PtyScreen([str(CONSOLE)], env, 80, 24)
            for name, tool, how in (("lnav", find_tool("lnav"), "apt-get install lnav / brew install lnav"),
                                    ("toolong", find_tool("tl"), "make bench installs it in .venv-bench-peers")):
                if not tool:
                    missing(name, how)
                    continue
                peer_logs[name] = t / f"{name}.log"
                peer_logs[name].write_text("2026-01-01 00:00:00,000 - INFO - peer ready\n")
                screens[name] = PtyScreen([tool, str(peer_logs[name])], env, 80, 24)
            screens["console"].wait_for("ready", 30)
            for name in peer_logs:
                screens[name].wait_for("peer ready", 60)
            cpus = {k: Cpu(s.proc.pid) for k, s in screens.items()}
            stop_drain = threading.Event()

            def drain() -> None:  # keep every pty read, as a terminal would, and the screens current
                while not stop_drain.is_set():
                    for s in screens.values():
                        s.pump(0)
                    time.sleep(0.02)

            threading.Thread(target=drain, daemon=True).start()

            def window(seconds: float, grow: list[Path] | None = None) -> dict[str, float]:
                g = Grower()
                if grow:
                    g.start(grow)
                    time.sleep(1.0)
                a = {k: c.mark() for k, c in cpus.items()}
                time.sleep(seconds)
                b = {k: c.mark() for k, c in cpus.items()}
                g.halt()
                return {k: Cpu.since(a[k], b[k]) for k in cpus}

            first = window(55.0)  # the console's first minute with the backends up
            time.sleep(max(0.0, 62.0 - 55.0))
            rest = window(args.seconds)
            state_logs = t / "state" / "backends"
            on_screen = window(args.seconds, [state_logs / "a" / "server.log", *peer_logs.values()])
            off_screen = window(args.seconds, [state_logs / "b" / "server.log"])
            stop_drain.set()
        finally:
            for k, s in screens.items():
                s.close(quit_keys[k])
            for n in ("a", "b"):
                subprocess.run([str(CONSOLE), "backends", "stop", n], env=env, capture_output=True)

    def peers(w: dict[str, float]) -> dict[str, str]:
        return {k: f"{v:.2f} %" for k, v in w.items() if k != "console"}

    emit(Row("ui_idle_cpu", "console CPU, first minute, 2 backends ready", first["console"], "% core",
             f"≤ {GOAL:g} %", first["console"] <= GOAL, peers(first), "55 s window from the first frame"))
    emit(Row("ui_idle_cpu", "console CPU at rest after the first minute", rest["console"], "% core",
             f"≤ {GOAL:g} %", rest["console"] <= GOAL, peers(rest), f"{args.seconds:.0f} s window"))
    emit(Row("ui_idle_cpu", "console CPU, log on screen growing 10 lines/s", on_screen["console"], "% core",
             "", None, peers(on_screen), "peers follow their own file growing at the same rate"))
    emit(Row("ui_idle_cpu", "console CPU, another backend's log growing 10 lines/s off screen",
             off_screen["console"], "% core", f"≤ {GOAL:g} %", off_screen["console"] <= GOAL, {},
             f"{args.seconds:.0f} s window"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
