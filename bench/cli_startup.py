"""Start-up of the whole CLI, process start to exit, side by side with a bare interpreter (`python -c pass`).

Goal (issue 10): `mlx-console --help`, `triage` of a small file and `backends list --json` in about 0.1 s.
Each command runs --runs times, interleaved with the reference (same load, same cache state); the first
run of each is a warm-up (it writes .pyc files and the pattern cache) and is not counted.
Run: .venv/bin/python bench/cli_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL_LOG = ROOT / "tests" / "fixtures" / "logs" / "mlx_lm_port_in_use.log"
GOAL_S = 0.1


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20, method="inclusive")[-1] if len(xs) > 1 else xs[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    py = sys.executable
    cli = [py, "-m", "mlx_console"]
    cases = {
        "python -c pass": [py, "-c", "pass"],
        "mlx-console --help": [*cli, "--help"],
        "mlx-console triage SMALL --json": [*cli, "triage", str(SMALL_LOG), "--json"],
        "mlx-console backends list --json": [*cli, "backends", "list", "--json"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text('[[backend]]\nname = "a"\nkind = "mlx-lm"\nmodel = "/nonexistent"\nport = 1\n')
        env = dict(os.environ, MLX_CONSOLE_CONFIG=str(cfg), MLX_CONSOLE_STATE_DIR=tmp)
        times: dict[str, list[float]] = {k: [] for k in cases}
        for argv in cases.values():  # warm-up
            timed(argv, env)
        for _ in range(args.runs):
            for k, argv in cases.items():
                times[k].append(timed(argv, env))
    base = statistics.median(times["python -c pass"])
    print(f"CLI start-up, process start to exit, {args.runs} interleaved runs (goal ≈ {GOAL_S:.1f} s)")
    print(f"{'command':36} {'median':>8} {'p95':>8} {'× python -c pass':>17}")
    for k, xs in times.items():
        med = statistics.median(xs)
        print(f"{k:36} {med:8.3f} {p95(xs):8.3f} {med / base:16.1f}x")
    sys.path.insert(0, str(Path(__file__).parent))
    from harness import Row, emit

    for k, xs in times.items():
        if k != "python -c pass":
            med = statistics.median(xs)
            emit(Row("cli_startup", f"`{k.removeprefix('mlx-console ')}`: start to exit (median)", med, "s",
                     f"≈ {GOAL_S:.1f} s", med <= GOAL_S * 1.2, {"python -c pass": f"{base:.3f} s"},
                     f"p95 {p95(xs):.3f} s, {med / base:.1f}× python -c pass"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
