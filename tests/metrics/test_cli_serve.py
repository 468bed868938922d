"""`metrics --serve` scraped and parsed by prometheus_client's own parser; `metrics --json` shape; refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlx_console.core.metrics.store import MetricsDB

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "backends"))
from backends_helpers import wait_for  # noqa: E402


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlx_console", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


@pytest.fixture
def filled() -> float:
    now = time.time()
    db = MetricsDB()
    for i in range(5):
        t = now - 40 + 10 * i
        db.add("alpha", t, [("requests_total", "", 3.0 * i), ("rss_bytes", "", 1e9 + i),
                            ("memory_pressure", "", 0.0), ("model_bytes", "tiny", 4e6)])
    db.add("beta", now - 5, [("requests_total", "", 7.0), ("decode_tps", "", 55.5)])
    db.add("beta", now - 7200, [("decode_tps", "", 1.0)])
    db.event("alpha", now - 20, "pressure", "memory pressure normal -> warn")
    db.close()
    return now


@pytest.fixture
def serve(port: int) -> Iterator[subprocess.Popen[str]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*extra: str) -> subprocess.Popen[str]:
        p = subprocess.Popen([sys.executable, "-m", "mlx_console", "metrics", "--serve", f"127.0.0.1:{port}",
                              *extra], stderr=subprocess.PIPE, text=True)
        procs.append(p)
        wait_for(lambda: _up(port), timeout=20)
        return p

    yield start  # type: ignore[misc]
    for p in procs:
        p.terminate()
        p.wait(10)


def _up(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        return True
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_prometheus_scrape_parses(filled: float, serve, port: int) -> None:
    serve()
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    req = fams["mlx_console_requests"]
    assert req.type == "counter"
    values = {(s.labels["backend"], s.name): s.value for s in req.samples}
    assert values[("alpha", "mlx_console_requests_total")] == 12.0
    assert values[("beta", "mlx_console_requests_total")] == 7.0
    model = fams["mlx_console_model_bytes"].samples[0]
    assert model.labels == {"backend": "alpha", "model": "tiny"} and model.value == 4e6
    assert fams["mlx_console_decode_tps"].samples[0].value == 55.5
    assert fams["mlx_console_rss_bytes"].type == "gauge"


@pytest.mark.slow
def test_a_token_is_required_when_given(filled: float, serve, port: int) -> None:
    serve("--token", "s3cret")
    assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 401
    r = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer s3cret"}, timeout=5)
    assert r.status_code == 200 and "mlx_console_requests_total" in r.text


def test_non_loopback_without_token_is_refused() -> None:
    r = run("metrics", "--serve", "0.0.0.0:9")
    assert r.returncode == 1
    assert "refusing to serve metrics on 0.0.0.0 (not loopback) without a token" in r.stderr
    r = run("metrics", "--serve", "nope")
    assert r.returncode == 1 and "use [HOST:]PORT" in r.stderr


def test_metrics_json_one_object_per_backend_per_line(filled: float) -> None:
    r = run("metrics", "--since", "1h", "--json")
    assert r.returncode == 0, r.stderr
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["backend"] for o in objs] == ["alpha", "beta"]
    assert all(list(o) == ["backend", "series"] for o in objs)
    alpha = objs[0]["series"]
    assert [p[1] for p in alpha["requests_total"]] == [0.0, 3.0, 6.0, 9.0, 12.0]
    assert alpha['model_bytes{model="tiny"}'][0][1] == 4e6
    assert all(isinstance(p[0], int) for p in alpha["rss_bytes"])
    assert objs[1]["series"]["decode_tps"] == [[int(filled - 5), 55.5]]  # the 2 h old point is outside 1h
    one = run("metrics", "beta", "--since", "3h", "--series", "decode_tps", "--json").stdout.splitlines()
    assert len(one) == 1 and list(json.loads(one[0])["series"]) == ["decode_tps"]
    assert len(json.loads(one[0])["series"]["decode_tps"]) == 2
    bad = run("metrics", "nobody", "--json")
    assert bad.returncode == 1 and "no backend named 'nobody'; known: alpha, beta, demo" in bad.stderr
    bad = run("metrics", "--since", "soon")
    assert bad.returncode == 1 and "'soon' is not a duration" in bad.stderr


def test_settings_from_the_cli() -> None:
    r = run("metrics", "--set", "interval=10s", "--set", "raw_keep=12h", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"interval": 10.0, "raw_keep": 43200.0,
                                                         "minute_keep": 604800.0}
    r = run("metrics", "--set", "minute_keep=1h")
    assert r.returncode == 1 and "minute_keep must be at least raw_keep" in r.stderr
