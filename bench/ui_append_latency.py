"""Append → on screen: a line written to a log until it is drawn on the terminal, read from the screen.

The console shows a backend's log on a pty; lines are appended at random gaps (so they land anywhere in the
console's polling cycle, as a server's lines do) and each is timed until its text is on the emulated screen.
Interleaved in the same run, each on its own file: `tail -f` (the floor: inotify and a write), lnav and
toolong where installed. Goal (issue 11): p95 ≤ 50 ms.
Run: .venv/bin/python bench/ui_append_latency.py [--n N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import CONSOLE, PtyScreen, Row, emit, find_tool, missing, pct  # noqa: E402

GOAL_MS = 50.0
SEED_LINES = 200


def line(tag: str, i: int) -> str:
    return f"2026-11-25 10:00:00,000 - INFO - {tag} appended {i:05d}\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60, help="appends per program")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        cfg = t / "config.toml"
        cfg.write_text('[[backend]]\nname = "a"\nkind = "mlx-lm"\nmodel = "/nonexistent"\nport = 1\n')
        env = dict(os.environ, MLX_CONSOLE_CONFIG=str(cfg), MLX_CONSOLE_STATE_DIR=str(t / "state"))
        seed = "".join(f"2026-11-25 10:00:00,000 - INFO - seed line {i}\n" for i in range(SEED_LINES))

        def log_for(name: str) -> Path:
            p = t / "state" / "backends" / "a" / "server.log" if name == "console" else t / f"{name}.log"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(seed)
            return p

        programs: dict[str, tuple[list[str], bytes | None]] = {}
        programs["console"] = ([str(CONSOLE)], b"q")
        programs["tail -f"] = (["tail", "-n", "5", "-f"], None)
        lnav, tl = find_tool("lnav"), find_tool("tl")
        if lnav:
            programs["lnav"] = ([lnav], b"q")
        else:
            missing("lnav", "apt-get install lnav / brew install lnav")
        if tl:
            programs["toolong"] = ([tl], b"\x1b\x1bq")
        else:
            missing("toolong", "make bench installs it in .venv-bench-peers")
        screens: dict[str, tuple[PtyScreen, Path]] = {}
        try:
            for name, (argv, _) in programs.items():
                log = log_for(name)
                full = argv if name == "console" else argv + [str(log)]
                s = PtyScreen(full, env, 100, 30)
                s.wait_for(f"seed line {SEED_LINES - 1}", 60)
                screens[name] = (s, log)
            samples: dict[str, list[float]] = {k: [] for k in screens}
            for i in range(args.n):
                for name in rng.sample(list(screens), len(screens)):  # interleaved, in random order
                    s, log = screens[name]
                    s.drain(rng.uniform(0.05, 0.6))  # a random gap, the screen kept current meanwhile
                    text = line(name.replace(" ", ""), i)
                    t0 = time.perf_counter()
                    with log.open("a") as fh:
                        fh.write(text)
                    samples[name].append(s.wait_for(text.strip().rsplit(" - ", 1)[1], 10, since=t0) * 1000)
        finally:
            for name, (s, _) in screens.items():
                s.close(programs[name][1])
    c = samples["console"]
    peers = {k: f"{pct(v, 0.95):.1f} ms (p50 {statistics.median(v):.0f})" for k, v in samples.items()
             if k != "console"}
    p95 = pct(c, 0.95)
    emit(Row("ui_append_latency", "append → on screen, p95 (random gaps)", p95, "ms", f"≤ {GOAL_MS:.0f} ms",
             p95 <= GOAL_MS, peers, f"median {statistics.median(c):.1f} ms, max {max(c):.0f} ms, n={len(c)}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
