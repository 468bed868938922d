"""`make bench`: run every benchmark script in bench/, one after the other, and write one Markdown table.

Each script prints its figures for a person and appends one JSON row per figure to $MLX_BENCH_OUT
(bench/harness.py). This collects the rows into bench/RESULTS.md (and prints it): the goal beside the
measured figure and the peers' figures from the same run, with the date and the machine. The README's
performance section is that table. A script that fails is listed as failed with its last lines; the others
still run. Benchmarks never gate CI.
Run: .venv/bin/python bench/run_all.py [--quick] [--only NAME,...] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import BENCH, Row, fmt, machine  # noqa: E402

# script → (arguments for a full run, arguments for --quick)
SCRIPTS: dict[str, tuple[list[str], list[str]]] = {
    "cli_startup.py": ([], ["--runs", "5"]),
    "triage_vs_grep.py": ([], ["--size-mb", "50"]),
    "ui_startup.py": ([], ["--runs", "3"]),
    "ui_append_latency.py": ([], ["--n", "20"]),
    "ui_big_log.py": ([], ["--size-mb", "200", "--runs", "1"]),
    "ui_idle_cpu.py": ([], ["--seconds", "10"]),
    "client_compare.py": ([], ["5"]),
    "client_parse.py": ([], []),
    "metrics_sampling_cost.py": ([], []),
    "meter_overhead.py": ([], []),
    "distributed_start.py": ([], ["--runs", "3"]),
}


def table(rows: list[Row], failed: dict[str, str], started: datetime, seconds: float, quick: bool = False) -> str:
    how = "`make bench ARGS=--quick` (fewer samples, smaller files)" if quick else "`make bench`"
    out = [
        f"Measured {started:%Y-%m-%d %H:%M} UTC on {machine()}; {how} took {seconds / 60:.1f} min.",
        "Every figure is process start (or a key, or a write) to the answer on stdout or the text on the "
        "terminal's screen; peers ran in the same run, interleaved.",
        "",
        "| benchmark | figure | measured | goal | met | peers, same run | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "" if r.met is None or not r.goal else ("yes" if r.met else "**no**")
        peers = "; ".join(f"{k}: {v}" for k, v in r.peers.items())
        out.append(f"| {r.bench} | {r.metric} | {fmt(r.measured, r.unit)} | {r.goal} | {met} | {peers} | "
                   f"{r.note} |")
    for name, why in failed.items():
        out.append(f"| {name} | failed | | | | | {why} |")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer samples and smaller files (minutes, not tens)")
    ap.add_argument("--only", help="comma-separated script names (without .py)")
    ap.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    ap.add_argument("--readme", action="store_true",
                    help="also put the table in README.md's performance section (not with --only)")
    args = ap.parse_args()
    names = [n for n in SCRIPTS if not args.only or n.removesuffix(".py") in args.only.split(",")]
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        # Without .pyc files every start compiles part of the package again: not what a user's install does.
        print("note: PYTHONDONTWRITEBYTECODE unset for the benchmarks (a user's install has its .pyc files)")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(BENCH.parent / "src")], capture_output=True)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    rows: list[Row] = []
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            path = BENCH / name
            if not path.exists():
                failed[name.removesuffix(".py")] = "script missing"
                continue
            out = Path(tmp) / f"{name}.jsonl"
            full, quick = SCRIPTS[name]
            print(f"== {name} {' '.join(quick if args.quick else full)}", flush=True)
            env = dict(os.environ, MLX_BENCH_OUT=str(out))
            done = subprocess.run([sys.executable, str(path), *(quick if args.quick else full)], env=env,
                                  capture_output=True, text=True)
            print(done.stdout, end="", flush=True)
            if done.returncode != 0:
                tail = " ".join(done.stderr.strip().splitlines()[-2:])[:300]
                failed[name.removesuffix(".py")] = f"exit {done.returncode}: {tail}"
                print(done.stderr, file=sys.stderr)
            got = [Row(**json.loads(line)) for line in out.read_text().splitlines() if line.strip()] \
                if out.exists() else []
            if not got and done.returncode == 0:  # a script that prints its figures but emits no row yet
                last = [ln.strip() for ln in done.stdout.strip().splitlines()[-3:]]
                got = [Row(name.removesuffix(".py"), "printed (see the script's output)", None, "",
                           note=" / ".join(last).replace("|", "/"))]
            rows += got
    text = table(rows, failed, started, time.monotonic() - t0, args.quick)
    args.out.write_text(text)
    print()
    print(text)
    print(f"written to {args.out}")
    if args.readme and not args.only:
        if put_in_readme(README, text):
            print(f"and into {README}'s performance section")
        else:
            print(f"{README} has no {BEGIN} … {END} markers: not updated", file=sys.stderr)
    return 0


README = BENCH.parent / "README.md"
BEGIN, END = "<!-- bench:begin (make bench writes this table) -->", "<!-- bench:end -->"


def put_in_readme(readme: Path, text: str) -> bool:
    """Replace the table between the README's markers with this run's (its header says when it was --quick)."""
    old = readme.read_text(encoding="utf-8")
    head, sep, rest = old.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        return False
    readme.write_text(f"{head}{BEGIN}\n{text}{END}{tail}", encoding="utf-8")
    return True


if __name__ == "__main__":
    raise SystemExit(main())
