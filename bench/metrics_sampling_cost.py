"""What the metrics sampler costs: CPU seconds per sample against a real mlx_lm.server, as a share of one
core at the default interval (goal: under 0.5 %), with the server idle and with requests flowing (its log
growing).

Starts a real mlx_lm.server on the tiny demo model (built on first use), runs the same Sampler the
supervising process runs (core/metrics/sampler.py) in this process, and times `sample()` with
time.thread_time() (CPU of this thread only: the server's own work is not counted).
Run: .venv/bin/python bench/metrics_sampling_cost.py [SAMPLES]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from mlx_console.core.metrics.sampler import SampledBackend, Sampler
from mlx_console.core.metrics.store import DEFAULTS, MetricsDB

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from conftest import free_port, wait_ready  # noqa: E402


def measure(sampler: Sampler, n: int) -> list[float]:
    cpu = []
    for _ in range(n):
        t0 = time.thread_time()
        sampler.sample()
        cpu.append(time.thread_time() - t0)
        time.sleep(0.05)  # let the log grow between samples, as between real ticks
    return cpu


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    tmp = Path(tempfile.mkdtemp(prefix="metrics-bench-"))
    model = tmp / "tiny"
    subprocess.run([sys.executable, "-m", "mlx_console", "demo-model", str(model)], check=True, capture_output=True)
    port, log = free_port(), tmp / "server.log"
    proc = subprocess.Popen([sys.executable, "-m", "mlx_lm.server", "--model", str(model), "--port", str(port)],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        db_file = tmp / "metrics.sqlite3"
        sampler = Sampler(SampledBackend(name="bench", kind="mlx-lm", log=log, base_url=url, pid=lambda: proc.pid),
                          db_file)
        sampler.sample()  # opens the database, primes the CPU counter
        idle = measure(sampler, n)
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=60) as c:
                while not stop.is_set():
                    c.post(f"{url}/v1/chat/completions",
                           json={"messages": [{"role": "user", "content": "hello"}], "max_tokens": 8})

        t = threading.Thread(target=load, daemon=True)
        t.start()
        busy = measure(sampler, n)
        stop.set()
        t.join(60)
        interval = DEFAULTS["interval"]
        db = MetricsDB(db_file)
        rows = db.conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        size = db.size_bytes()
        db.close()
        print(f"sampler CPU per sample against a real mlx_lm.server ({n} samples each, default interval "
              f"{interval:g}s):")
        sys.path.insert(0, str(REPO / "bench"))
        from harness import Row, emit

        for label, xs in (("idle server", idle), ("requests flowing", busy)):
            med, p95 = statistics.median(xs), sorted(xs)[int(0.95 * (len(xs) - 1))]
            print(f"  {label:<17} median {med * 1000:6.2f} ms  p95 {p95 * 1000:6.2f} ms  "
                  f"→ {100 * med / interval:.3f} % of a core (goal < 0.5 %)")
            share = 100 * med / interval
            emit(Row("metrics_sampling_cost", f"metrics sampler CPU at the {interval:g} s default, {label}", share,
                     "% core", "< 0.5 %", share < 0.5, {},
                     f"{med * 1000:.2f} ms CPU a sample (p95 {p95 * 1000:.2f} ms), real mlx_lm.server, {n} samples"))
        print(f"  database after {sampler.ticks} samples: {rows} rows (one per series and second), "
              f"{size / 1024:.0f} KiB with its WAL")
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
