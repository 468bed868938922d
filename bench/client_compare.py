"""The bench client against reference clients, side by side against known timing: decode accuracy, TTFT error
and the client's own CPU per request.

Starts the scripted stand-in (tests/standins/openai_scripted.py, its own process) with an exact TTFT and token
spacing, then measures the same streams, interleaved, with (a) core/bench/client.py over httpx, (b) a minimal
reader on the standard library's http.client that timestamps raw `data:` lines, and (c) NVIDIA's aiperf
(`aiperf profile`, in .venv-bench-peers/aiperf; `make bench` installs it) when it is installed; the script says
so when it is not. Prints each against the truth and the ratios.
Run: .venv/bin/python bench/client_compare.py [TRIALS] [--url BASE_URL --model M] (a real server too).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, Row, emit, find_tool, missing  # noqa: E402
from mlx_console.core.bench.client import chat_url, stream_chat  # noqa: E402

TTFT_MS, GAP_MS, TOKENS = 80.0, 5.0, 101
SCRIPTED = REPO / "tests" / "standins" / "openai_scripted.py"


def reference(base_url: str, body: dict) -> tuple[float, float]:
    """(ttft_ms, decode_tps) from raw lines: first data line with non-empty content → last one."""
    u = urlsplit(chat_url(base_url))
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    payload = json.dumps({**body, "stream": True, "stream_options": {"include_usage": True}})
    t0 = time.perf_counter()
    conn.request("POST", u.path, payload, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    first = last = None
    n = 0
    usage = None
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        obj = json.loads(line[6:])
        if obj.get("usage"):
            usage = obj["usage"]["completion_tokens"]
        ch = obj.get("choices") or [{}]
        if obj.get("model") != "keepalive" and (ch[0].get("delta") or {}).get("content"):
            t = time.perf_counter() - t0
            first = first if first is not None else t
            last = t
            n += 1
    conn.close()
    tokens = usage or n
    return 1000 * first, (tokens - 1) / (last - first)


class Ours:
    """The bench client as `mlx-console bench` uses it: one event loop and one httpx client for a whole run."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.client = self.runner.run(self._client())

    @staticmethod
    async def _client() -> httpx.AsyncClient:
        return httpx.AsyncClient()

    def __call__(self, base_url: str, body: dict) -> tuple[float, float]:
        r = self.runner.run(stream_chat(self.client, base_url, body))
        assert r.ok, r.error
        return r.ttft_ms, r.decode_tps

    def close(self) -> None:
        self.runner.run(self.client.aclose())
        self.runner.close()


def cpu_of_self(fn, *args) -> tuple[tuple[float, float], float]:
    """fn's result and the CPU seconds this process spent on it (the server runs in its own process)."""
    c0 = time.process_time()
    out = fn(*args)
    return out, time.process_time() - c0


def aiperf_once(aiperf: str, base_url: str, model: str, tokenizer: Path, work: Path, n: int
                ) -> tuple[float, float, float]:
    """One `aiperf profile` of n sequential streams: (median TTFT ms, decode tok/s, CPU seconds of aiperf and
    its children per request, its start-up included). All metrics from aiperf's own export."""
    out = work / f"aiperf-{time.monotonic_ns()}"
    argv = [aiperf, "profile", "--model", model, "--url", base_url, "--endpoint-type", "chat", "--streaming",
            "--tokenizer", str(tokenizer), "--request-count", str(n), "--concurrency", "1",
            "--output-tokens-mean", str(TOKENS), "--output-tokens-stddev", "0",
            "--synthetic-input-tokens-mean", "8", "--synthetic-input-tokens-stddev", "0",
            "--artifact-dir", str(out), "--ui-type", "none",
            "--use-server-token-count"]  # the usage chunk's count, as ours: the tiny tokenizer splits differently
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Not HF_HUB_OFFLINE: with it, aiperf takes the local tokenizer path for a hub repo id and fails.
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])[:300]
        raise RuntimeError(f"aiperf exited {done.returncode}: {tail}")
    found = sorted(out.rglob("profile_export_aiperf.json"))
    if not found:
        raise RuntimeError(f"aiperf wrote no profile_export_aiperf.json under {out}")
    data = json.loads(found[0].read_text())
    metrics = data.get("records", data)

    def stat(*names: str) -> float:
        for name in names:
            m = metrics.get(name)
            if isinstance(m, dict):
                for k in ("p50", "avg"):
                    if m.get(k) is not None:
                        return float(m[k])
        raise RuntimeError(f"aiperf's export has none of {names}")

    ttft = stat("time_to_first_token", "ttft")
    try:
        tps = stat("output_token_throughput_per_user")
    except RuntimeError:
        tps = 1000.0 / stat("inter_token_latency")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return ttft, tps, cpu / n


def start_scripted(work: Path) -> tuple[subprocess.Popen[str], str]:
    script = work / "script.json"
    # content None: echo mode, max_tokens tokens (aiperf asks for TOKENS, as we do)
    script.write_text(json.dumps([{"ttft_ms": TTFT_MS, "gap_ms": GAP_MS, "keepalive": True, "comments": 2}]))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(SCRIPTED), "serve", "--port", str(port), "--script", str(script)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # "scripted OpenAI server on …": listening
    return proc, f"http://127.0.0.1:{port}"


def measure(base_url: str, model: str, trials: int, truth: tuple[float, float] | None,
            aiperf: str | None = None, tokenizer: Path | None = None, work: Path | None = None) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "go"}], "max_tokens": TOKENS, "temperature": 0}
    ours = Ours()
    clients = {"ours (httpx async)": ours, "reference (http.client)": reference}
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in clients}
    cpu: dict[str, list[float]] = {k: [] for k in clients}
    ai: list[tuple[float, float, float]] = []
    ai_error = ""
    # aiperf runs as one process per batch, so its CPU per request is the difference between a batch of
    # `trials` requests and one of 2 (its start-up and service spin-up cancel out); its TTFT comes from both.
    ai_sizes = {0: 2, trials // 2: trials} if trials > 2 else {}
    for i in range(trials):  # interleaved so all see the same machine load
        for name, fn in clients.items():
            out, spent = cpu_of_self(fn, base_url, body)
            got[name].append(out)
            cpu[name].append(spent)
        if aiperf and tokenizer and work and not ai_error and i in ai_sizes:
            try:
                ai.append(aiperf_once(aiperf, base_url, model, tokenizer, work, ai_sizes[i]))
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                ai_error = str(e)
                print(f"  note: aiperf is installed but its run failed: {ai_error}", flush=True)
    if len(ai) == 2:
        (t1, d1, c1), (t2, d2, c2) = ai
        n1, n2 = ai_sizes.values()
        ai = [((t1 * n1 + t2 * n2) / (n1 + n2), (d1 * n1 + d2 * n2) / (n1 + n2), (c2 * n2 - c1 * n1) / (n2 - n1))]
    else:
        ai = []
    ours.close()
    print(f"{base_url}  ({trials} trials each, interleaved)")
    if truth:
        print(f"  {'truth':<26} TTFT {truth[0]:8.2f} ms   decode {truth[1]:8.1f} tok/s")
    med: dict[str, tuple[float, float, float]] = {}
    for name in clients:
        xs = got[name]
        med[name] = (statistics.median(x[0] for x in xs), statistics.median(x[1] for x in xs),
                     statistics.median(cpu[name]))
    if ai:
        med["aiperf"] = ai[0]
    for name, (t, d, c) in med.items():
        print(f"  {name:<26} TTFT {t:8.2f} ms   decode {d:8.1f} tok/s   client CPU {1000 * c:8.2f} ms/request")
    a = med["ours (httpx async)"]
    for name, b in med.items():
        if name != "ours (httpx async)":
            print(f"  ratio ours/{name:<15} TTFT {a[0] / b[0]:8.3f}×     decode {a[1] / b[1]:8.3f}×   "
                  f"CPU {a[2] / b[2]:8.3f}×")
    if truth is None:
        return
    t_err = {k: v[0] - truth[0] for k, v in med.items()}
    d_err = {k: 100 * (v[1] / truth[1] - 1) for k, v in med.items()}
    peers = {k: v for k, v in med.items() if k != "ours (httpx async)"}
    if not ai:
        note = ai_error or "aiperf not installed"
    else:
        note = f"aiperf: {' and '.join(map(str, ai_sizes.values()))} requests (its CPU: the difference)"
    emit(Row("client_compare", "bench client TTFT error against the scripted truth (median)",
             t_err["ours (httpx async)"], "ms", "≤ 2 ms", abs(t_err["ours (httpx async)"]) <= 2,
             {k: f"{t_err[k]:+.2f} ms" for k in peers}, f"truth {truth[0]:.0f} ms; {trials} trials; {note}"))
    emit(Row("client_compare", "bench client decode rate error against the truth (median)",
             d_err["ours (httpx async)"], "%", "within ±2 %", abs(d_err["ours (httpx async)"]) <= 2,
             {k: f"{d_err[k]:+.2f} %" for k in peers}, f"truth {truth[1]:.0f} tok/s"))
    emit(Row("client_compare", "bench client CPU per streamed request (median)", 1000 * a[2], "ms", "", None,
             {k: f"{1000 * v[2]:.2f} ms" for k, v in peers.items()}, f"{TOKENS} tokens a request"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("trials", nargs="?", type=int, default=9)
    ap.add_argument("--url")
    ap.add_argument("--model", default="default_model")
    a = ap.parse_args()
    aiperf = find_tool("aiperf")
    if not aiperf:
        missing("aiperf", "make bench installs it in .venv-bench-peers")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tokenizer = None
        if aiperf:  # aiperf needs a tokenizer, and the machine may be offline: the tiny demo model's
            tokenizer = work / "tiny"
            subprocess.run([sys.executable, "-m", "mlx_console", "demo-model", str(tokenizer)], check=True,
                           capture_output=True)
        proc, base_url = start_scripted(work)
        try:
            measure(base_url, "m", a.trials, (TTFT_MS, 1000 / GAP_MS), aiperf, tokenizer, work)
        finally:
            proc.terminate()
            proc.wait(10)
    if a.url:
        measure(a.url, a.model, a.trials, None)


if __name__ == "__main__":
    main()
