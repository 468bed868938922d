"""What the metering proxy (`meter = true`) costs a client: added latency per request and per chunk, and
decode throughput, through the meter vs a direct connection to the same server.

The server is the scripted stand-in (tests/standins/openai_scripted.py) in its own process with exact timing
(TTFT 50 ms; one token every 5 ms = 200 tok/s, and a fast case of one every 0.2 ms = 5,000 tok/s); the meter
(core/metrics/meter.py) runs in another process, as it does in the supervising process; the client reads raw
`data:` lines with http.client (bench/client_compare.py's reference reader). Runs are interleaved.
Run: .venv/bin/python bench/meter_overhead.py [TRIALS]
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from client_compare import reference  # noqa: E402
from conftest import free_port  # noqa: E402
from harness import Row, emit  # noqa: E402

METER = """
import sys, time
from mlx_console.core.metrics.meter import Meter
seen = []
Meter("127.0.0.1", int(sys.argv[1]), "127.0.0.1", int(sys.argv[2]), seen.append).start()
print("ready", flush=True)
time.sleep(3600)
"""


def start(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            return p
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{cmd} did not listen on {port}")


def small_request(port: int) -> float:
    """A whole non-streamed request, ms."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "fast"}], "max_tokens": 1}),
        {"Content-Type": "application/json"})
    conn.getresponse().read()
    conn.close()
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    tmp = Path(tempfile.mkdtemp(prefix="meter-bench-"))
    script = tmp / "script.json"
    script.write_text(json.dumps([
        {"match": "slow", "ttft_ms": 50, "gap_ms": 5, "content": [f"t{i} " for i in range(200)]},
        {"match": "quick", "ttft_ms": 50, "gap_ms": 0.2, "content": [f"t{i} " for i in range(1000)]},
        {"match": "fast", "ttft_ms": 0, "gap_ms": 0, "content": ["x"]},
    ]))
    sport, mport = free_port(), free_port()
    procs = [start([sys.executable, str(REPO / "tests/standins/openai_scripted.py"), "serve", "--port", str(sport),
                    "--script", str(script)], sport)]
    procs.append(start([sys.executable, "-c", METER, str(mport), str(sport)], mport))
    try:
        for label, prompt in (("200 tok/s stream (5 ms/token)", "slow"), ("5,000 tok/s stream (0.2 ms/token)", "quick")):
            body = {"model": "m", "messages": [{"role": "user", "content": prompt}], "max_tokens": 1000,
                    "stream_options": {"include_usage": True}}
            rows: dict[str, list[tuple[float, float]]] = {"direct": [], "metered": []}
            for _ in range(trials):
                rows["direct"].append(reference(f"http://127.0.0.1:{sport}", body))
                rows["metered"].append(reference(f"http://127.0.0.1:{mport}", body))
            d_ttft, d_tps = (statistics.median(x[i] for x in rows["direct"]) for i in (0, 1))
            m_ttft, m_tps = (statistics.median(x[i] for x in rows["metered"]) for i in (0, 1))
            print(f"{label}, {trials} trials each:")
            print(f"  direct   TTFT {d_ttft:8.2f} ms   decode {d_tps:8.1f} tok/s")
            print(f"  metered  TTFT {m_ttft:8.2f} ms   decode {m_tps:8.1f} tok/s")
            print(f"  added    TTFT {m_ttft - d_ttft:+8.2f} ms   decode {100 * (m_tps / d_tps - 1):+7.2f} % "
                  f"(per chunk {1000 / m_tps - 1000 / d_tps:+.4f} ms)")
            added = 1000 / m_tps - 1000 / d_tps
            emit(Row("meter_overhead", f"metering proxy: time added per streamed token, {label}",
                     round(1000 * added, 2), "µs", "< 100 µs", added < 0.1, {},
                     f"direct {1000 / d_tps:.3f} ms a token; TTFT {m_ttft - d_ttft:+.2f} ms; decode "
                     f"{100 * (m_tps / d_tps - 1):+.2f} %; median of {trials} interleaved trials"))
        direct = [small_request(sport) for _ in range(trials * 5)]
        metered = [small_request(mport) for _ in range(trials * 5)]
        print(f"whole small request ({trials * 5} each): direct {statistics.median(direct):.2f} ms, metered "
              f"{statistics.median(metered):.2f} ms, added {statistics.median(metered) - statistics.median(direct):+.2f} ms")
        d_med, m_med = statistics.median(direct), statistics.median(metered)
        emit(Row("meter_overhead", "metering proxy: a whole small request, added", m_med - d_med, "ms", "< 1 ms",
                 m_med - d_med < 1, {}, f"direct {d_med:.2f} ms, metered {m_med:.2f} ms, median of {trials * 5}"))
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
