"""Our async streaming client vs a reference client, side by side against known timing.

Starts the scripted stand-in (tests/standins/openai_scripted.py) with an exact TTFT and token spacing,
then measures the same streams with (a) core/bench/client.py over httpx and (b) a reference reader on
the standard library's http.client that timestamps raw `data:` lines. Prints both against the truth.
Run: .venv/bin/python bench/client_compare.py [TRIALS] [--url BASE_URL --model M] (a real server too).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "standins"))
from openai_scripted import Script, ScriptedServer  # noqa: E402

from mlx_console.core.bench.client import chat_url, stream_chat  # noqa: E402

TTFT_MS, GAP_MS, TOKENS = 80.0, 5.0, 101


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


async def ours(base_url: str, body: dict) -> tuple[float, float]:
    async with httpx.AsyncClient() as c:
        r = await stream_chat(c, base_url, body)
    assert r.ok, r.error
    return r.ttft_ms, r.decode_tps


def measure(base_url: str, model: str, trials: int, truth: tuple[float, float] | None) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "go"}], "max_tokens": TOKENS, "temperature": 0}
    rows = {"ours (httpx async)": [], "reference (http.client)": []}
    for _ in range(trials):  # interleaved so both see the same machine load
        rows["ours (httpx async)"].append(asyncio.run(ours(base_url, body)))
        rows["reference (http.client)"].append(reference(base_url, body))
    print(f"{base_url}  ({trials} trials each, interleaved)")
    if truth:
        print(f"  {'truth':<26} TTFT {truth[0]:8.2f} ms   decode {truth[1]:8.1f} tok/s")
    med = {}
    for name, xs in rows.items():
        med[name] = (statistics.median(x[0] for x in xs), statistics.median(x[1] for x in xs))
        print(f"  {name:<26} TTFT {med[name][0]:8.2f} ms   decode {med[name][1]:8.1f} tok/s")
    a, b = med.values()
    print(f"  ratio ours/reference       TTFT {a[0] / b[0]:8.3f}×     decode {a[1] / b[1]:8.3f}×")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("trials", nargs="?", type=int, default=10)
    ap.add_argument("--url")
    ap.add_argument("--model", default="default_model")
    a = ap.parse_args()
    with ScriptedServer(default=Script(ttft_ms=TTFT_MS, gap_ms=GAP_MS, keepalive=True, comments=2)) as srv:
        measure(srv.base_url, "m", a.trials, (TTFT_MS, 1000 / GAP_MS))
    if a.url:
        measure(a.url, a.model, a.trials, None)


if __name__ == "__main__":
    main()
