"""Metrics from a real mlx_lm.server under its supervising process: requests sent straight to the server
(not through the console) show up in `ps`/`metrics` within two sample intervals, and the counts survive a
backend restart and a new supervising process. A sampler that cannot write says so in the status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mlx_console import paths
from mlx_console.core.metrics.query import CONTRACT_SERIES
from mlx_console.core.metrics.store import DB_FILE, MetricsDB, db_path

sys.path.insert(0, str(Path(__file__).parent))
from backends_helpers import wait_for  # noqa: E402

pytestmark = pytest.mark.slow
INTERVAL = 1.0


def cli(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "mlx_console", *args], capture_output=True, text=True, timeout=60,
                       env=os.environ.copy())
    assert r.returncode == 0, r.stderr
    return r.stdout


def metrics_json(name: str, series: str) -> dict:
    out = cli("metrics", name, "--since", "1h", "--series", series, "--json")
    lines = out.splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert list(obj) == ["backend", "series"]  # the contract: exactly these keys
    return obj


def ask(port: int, n: int = 3) -> None:
    r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                   json={"messages": [{"role": "user", "content": "hello there"}], "max_tokens": n})
    assert r.status_code == 200


def requests_total(name: str) -> float:
    db = MetricsDB(readonly=True)
    try:
        last = db.latest(name, "requests_total")
        return last[1] if last else -1
    finally:
        db.close()


def test_requests_straight_to_the_server_show_up_and_survive_restarts(make_sup, tiny_model: Path,
                                                                     port: int) -> None:
    MetricsDB().set_setting("interval", str(INTERVAL))
    sup = make_sup({"name": "m", "kind": "mlx-lm", "model": str(tiny_model), "port": port})
    st = sup.start("m", wait=60)
    assert st.status == "ready"
    wait_for(lambda: requests_total("m") >= 0, timeout=10)  # the sampler writes (the probe counts too)
    before = requests_total("m")
    t0 = time.monotonic()
    for _ in range(3):
        ask(port)
    wait_for(lambda: requests_total("m") >= before + 3, timeout=2 * INTERVAL + 1.5)
    assert time.monotonic() - t0 < 2 * INTERVAL + 1.5 + 5  # (the completions themselves take a moment)

    got = metrics_json("m", "requests_total,prompt_tokens_total,rss_bytes,mem_available_bytes,memory_pressure")
    assert got["backend"] == "m" and set(got["series"]) >= {"requests_total", "prompt_tokens_total",
                                                               "rss_bytes", "mem_available_bytes"}
    ts, value = got["series"]["requests_total"][-1]
    assert isinstance(ts, int) and abs(ts - time.time()) < 30 and value >= before + 3
    assert got["series"]["prompt_tokens_total"][-1][1] > 0  # `Prompt processing progress: n/n` lines
    assert got["series"]["rss_bytes"][-1][1] > 10_000_000

    rows = json.loads(cli("ps", "--json"))
    row = next(r for r in rows if r["backend"] == "m")
    assert list(row) == ["backend", "kind", "model", "status", "pid", "rss_bytes", "model_bytes", "uptime_s",
                         "requests_1m", "tok_s_1m", "last_request_s"]
    assert row["status"] == "ready" and row["pid"] == st.pid and row["requests_1m"] >= 3
    assert row["last_request_s"] is not None and row["last_request_s"] < 30
    assert row["model_bytes"] and row["tok_s_1m"] is None  # mlx-lm logs no completion tokens (the meter does)

    # A backend restart (new server, new supervising process): the counter goes on from where it was.
    counted = requests_total("m")
    st2 = sup.restart("m", wait=60)
    assert st2.pid != st.pid
    ask(port)
    wait_for(lambda: requests_total("m") >= counted + 1, timeout=10)
    db = MetricsDB(readonly=True)
    points = db.query("m", ["requests_total"])[("requests_total", "")]
    assert all(b[1] >= a[1] for a, b in zip(points, points[1:], strict=False))  # never reset
    db.close()

    def kinds() -> list[str]:
        db = MetricsDB(readonly=True)
        try:
            return [e.detail.split(":")[0] for e in db.events("m") if e.kind == "status"]
        finally:
            db.close()

    # The restart is on the time axis: the old run's stop, then the new one's start and ready.
    wait_for(lambda: (k := kinds()) and "stopped" in k and k[-1] == "ready", timeout=10)
    sup.stop("m")


def test_a_sampler_that_cannot_write_says_so_in_the_status(make_sup, tiny_model: Path, port: int) -> None:
    (paths.state_dir() / DB_FILE).mkdir()  # a directory where the database file should be
    sup = make_sup({"name": "w", "kind": "mlx-lm", "model": str(tiny_model), "port": port})
    sup.start("w", wait=60)
    st = wait_for(lambda: (s := sup.status("w")).warnings and s, timeout=10)
    assert any(w.startswith(f"metrics: cannot write {db_path()}") for w in st.warnings), st.warnings
    out = cli("backends", "list")
    assert "warning: metrics: cannot write" in out
    sup.stop("w")


def test_omlx_models_memory_and_tokens_per_second(make_sup, tmp_path: Path, tiny_model: Path, port: int) -> None:
    import shutil

    from test_omlx import STANDIN

    base = tmp_path / "omlx"
    shutil.copytree(tiny_model, base / "models" / "tiny-llama")
    MetricsDB().set_setting("interval", str(INTERVAL))
    sup = make_sup({"name": "o", "kind": "omlx", "base_path": str(base), "port": port, "api_key": "k",
                    "command": [sys.executable, str(STANDIN)]})
    sup.start("o", wait=30)
    sup.swap_model("o", "tiny-llama")
    for _ in range(2):
        r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                       headers={"Authorization": "Bearer k"},
                       json={"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}],
                             "max_tokens": 5})
        assert r.status_code == 200
    wait_for(lambda: requests_total("o") >= 2, timeout=2 * INTERVAL + 1.5)

    def row() -> dict | None:
        rows = [r for r in json.loads(cli("ps", "--json")) if r["backend"] == "o"]
        return rows[0] if rows and rows[0]["model"] == "tiny-llama" and rows[0]["model_bytes"] else None

    got = wait_for(row, timeout=10)
    assert got["kind"] == "omlx" and got["model_bytes"] > 0 and got["tok_s_1m"] and got["tok_s_1m"] > 0
    series = metrics_json("o", "completion_tokens_total,model_bytes,decode_tps")["series"]
    assert series["completion_tokens_total"][-1][1] >= 10
    assert series['model_bytes{model="tiny-llama"}'][-1][1] == got["model_bytes"]
    assert series["decode_tps"]
    sup.stop("o")


def test_metered_backend_records_ttft_and_tokens(make_sup, tiny_model: Path, port: int) -> None:
    from mlx_console.core.lifecycle.state import read_spec

    MetricsDB().set_setting("interval", str(INTERVAL))
    sup = make_sup({"name": "mt", "kind": "mlx-lm", "model": str(tiny_model), "port": port, "meter": True})
    st = sup.start("mt", wait=60)
    spec = read_spec(sup.dir("mt"))
    assert st.port == port and spec.meter_port == port and spec.port != port  # the server listens privately
    body = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 6, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}}

    def stream(p: int) -> tuple[list[bytes], float]:
        t0, first = time.perf_counter(), None
        lines = []
        with httpx.stream("POST", f"http://127.0.0.1:{p}/v1/chat/completions", json=body, timeout=30) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data: {") and '"content"' in line and first is None:
                    first = time.perf_counter() - t0
                if line.startswith("data:"):
                    lines.append(json.loads(line[5:])["choices"] if line[5:].strip() != "[DONE]" else "[DONE]")
        return lines, first or 0.0

    direct, _ = stream(spec.port)
    metered, _ = stream(port)
    # The same events through the meter as straight from the server (text is deterministic at temperature 0).
    assert [json.dumps(c) for c in metered] == [json.dumps(c) for c in direct]
    r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                   json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 4
    wait_for(lambda: requests_total("mt") >= 2, timeout=2 * INTERVAL + 1.5)
    series = metrics_json("mt", "requests_total,completion_tokens_total,ttft_ms,decode_tps")["series"]
    assert series["completion_tokens_total"][-1][1] >= 10  # 6 (usage of the stream) + 4 (non-stream usage)
    assert 0 < series["ttft_ms"][-1][1] < 30_000 and series["decode_tps"]
    # Every series the contract names is there for a metered backend (a never-measured one is absent, not 0).
    every = json.loads(cli("metrics", "mt", "--since", "1h", "--json"))["series"]
    assert set(CONTRACT_SERIES) <= set(every), set(CONTRACT_SERIES) - set(every)
    with_events = json.loads(cli("metrics", "mt", "--since", "1h", "--json", "--events"))
    assert list(with_events) == ["backend", "series", "events"]
    assert [e[2].split(":")[0] for e in with_events["events"] if e[1] == "status"][-1:] == ["ready"]
    row = next(r for r in json.loads(cli("ps", "--json")) if r["backend"] == "mt")
    assert row["tok_s_1m"] and row["tok_s_1m"] > 0
    sup.stop("mt")
    wait_for(lambda: not _listening(port), timeout=10)  # the meter goes with its supervising process


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
