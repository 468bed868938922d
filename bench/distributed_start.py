"""Start of a two-rank distributed backend, as a user waits for it, beside the same start of a one-rank backend.

The figure is `mlx-console backends start NAME --wait` from process start to exit: the command returns when the
backend is ready, i.e. rank 0 answers a 1-token completion. The distributed backend is two ring ranks on this
machine (`hosts = ["127.0.0.1", "127.0.0.1"]`, `mlx.launch` with `mlx_lm.server` as the program); the reference is
a one-rank mlx-lm backend on the same model, started the same way, interleaved with it (same load, same cache
state). The model is the tiny demo model the project builds offline (`mlx-console demo-model DIR`). Each run has
its own state dir, config and free ports, checks a completion after the start (not timed), and stops the backend
with `backends stop NAME` (any rank left over is killed and reported). The first run of each is a warm-up (page
cache, .pyc files) and is not counted.
Run: .venv/bin/python bench/distributed_start.py [--runs 5] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from harness import Row, emit, pct  # noqa: E402

WAIT_S = 240  # --wait: a start that takes longer than this is a failed run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def console(*args: str, env: dict[str, str], timeout: float = WAIT_S + 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlx_console", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)


def procs_on(port: int) -> list[psutil.Process]:
    """Every mlx_lm.server process serving (or ranked under) this run's --port, whatever its parent."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "mlx_lm" in " ".join(cmd) and str(port) in cmd:
            out.append(p)
    return out


def one_start(kind: str, model: Path, root: Path) -> float:
    """A fresh state dir and config; `backends start NAME --wait`, timed; a completion; `backends stop NAME`."""
    run = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=root))
    state = run / "state"
    state.mkdir()
    port = free_port()
    lines = ['[[backend]]', f'name = "{kind}"', 'kind = "mlx-lm"', f'model = "{model}"', f"port = {port}"]
    if kind == "duo":
        lines += ['hosts = ["127.0.0.1", "127.0.0.1"]', 'distributed_backend = "ring"', f"ring_port = {free_port()}"]
    cfg = run / "config.toml"
    cfg.write_text("\n".join(lines) + "\n")
    (run / "hf").mkdir()
    env = dict(os.environ, MLX_CONSOLE_STATE_DIR=str(state), MLX_CONSOLE_CONFIG=str(cfg), HF_HUB_OFFLINE="1",
               HF_HUB_CACHE=str(run / "hf"))
    try:
        t0 = time.perf_counter()
        done = console("backends", "start", kind, "--wait", str(WAIT_S), "--json", env=env)
        took = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"backends start {kind} exited {done.returncode}: {done.stderr.strip()[-400:]}")
        st = json.loads(done.stdout)
        if st.get("status") != "ready":
            raise RuntimeError(f"backends start {kind} returned status {st.get('status')!r}")
        if kind == "duo" and len(st.get("ranks") or []) != 2:
            raise RuntimeError(f"backends start duo: {len(st.get('ranks') or [])} ranks, not 2")
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=60,
                       json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, "temperature": 0})
        if r.status_code != 200:
            raise RuntimeError(f"{kind}: completion after the start answered {r.status_code}")
        return took
    finally:
        stop = console("backends", "stop", kind, "--json", env=env, timeout=60)
        if stop.returncode != 0:
            print(f"  note: backends stop {kind} exited {stop.returncode}: {stop.stderr.strip()[-200:]}", flush=True)
        deadline = time.monotonic() + 15
        while procs_on(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        for p in procs_on(port):
            print(f"  note: pid {p.pid} left after `backends stop {kind}`: killed", flush=True)
            try:
                os.kill(p.pid, signal.SIGKILL)
            except OSError:
                pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="counted runs of each (after one warm-up each)")
    ap.add_argument("--model", type=Path, help="a model directory (default: build the tiny demo model)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp:
        root = Path(tmp)
        model = args.model
        if model is None:
            model = root / "tiny-llama"
            subprocess.run([sys.executable, "-m", "mlx_console", "demo-model", str(model)], check=True,
                           capture_output=True, timeout=300)
        times: dict[str, list[float]] = {"duo": [], "solo": []}
        for i in range(args.runs + 1):
            for kind in ("duo", "solo") if i % 2 == 0 else ("solo", "duo"):  # alternate which goes first
                took = one_start(kind, model, root)
                print(f"  run {i}{' (warm-up)' if i == 0 else ''}: {kind} {took:.3f} s", flush=True)
                if i:
                    times[kind].append(took)
    duo, solo = times["duo"], times["solo"]
    med, ref = statistics.median(duo), round(statistics.median(solo), 3)  # the ratio as the table prints it
    print(f"`backends start NAME --wait`, process start to exit (ready: rank 0 answers a completion), "
          f"{args.runs} interleaved runs each")
    for name, xs in (("two ring ranks (127.0.0.1 ×2)", duo), ("one rank (mlx_lm.server)", solo)):
        print(f"  {name:32} median {statistics.median(xs):.3f} s  min {min(xs):.3f}  max {max(xs):.3f}  "
              f"p95 {pct(xs, 0.95):.3f}")
    print(f"  ratio two ranks / one rank: {med / ref:.2f}×")
    emit(Row("distributed_start", "`backends start NAME --wait`, two ring ranks on this machine: start to ready "
             "(median)", med, "s", peers={"one-rank mlx-lm backend": f"{ref:.3f} s"},
             note=f"min–max {min(duo):.3f}–{max(duo):.3f} s, one rank {min(solo):.3f}–{max(solo):.3f} s; "
                  f"{args.runs} interleaved runs each; tiny demo model; each run stopped with `backends stop`"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
