"""Fault injection: wedged inference, cache corruption, crashes, memory pressure, log rotation."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from omlx_harness import StandinFactory as StartStandin

pytestmark = pytest.mark.slow

BODY = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
CORRUPTION_SEQUENCE = [
    r"omlx\.scheduler - WARNING - \[-\] - Cache corruption detected: (.+), clearing cache and re-prefilling\.\.\.",
    r"omlx\.scheduler - INFO - \[-\] - Cache recovery completed",
    r"omlx\.scheduler - INFO - \[-\] - Rescheduled 1 requests for re-prefill",
]


def read_for(c: httpx.Client, body: dict, seconds: float) -> str:
    """What a completion sends within `seconds` (the keepalives keep a read timeout from ever firing)."""
    got = b""
    deadline = time.monotonic() + seconds
    with c.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            got += chunk
            if time.monotonic() > deadline:
                break
    return got.decode()


def test_wedged_health_ok_but_completions_hang(start_standin: StartStandin) -> None:
    s = start_standin(env={"OMLX_STANDIN_KEEPALIVE_SECONDS": "0.3"})
    c = s.client()
    c.post("/v1/models/tiny-llama/load")
    s.control("wedge", on=True)
    assert httpx.get(f"{s.base_url}/health", timeout=2).json()["status"] == "healthy"
    assert c.get("/api/status").status_code == 200
    # Non-streaming: 200 and keepalive spaces, never the JSON (#2852: headers, no body).
    assert read_for(c, BODY, 1.2).strip() == ""
    # Streaming: the keepalive chunk repeats, no content.
    lines = [ln for ln in read_for(c, {**BODY, "stream": True}, 1.2).split("\n") if ln]
    assert len(lines) >= 2 and all('"model":"keepalive"' in ln for ln in lines)
    s.control("wedge", on=False)
    assert c.post("/v1/chat/completions", json=BODY).status_code == 200


def test_wedged_from_start(start_standin: StartStandin) -> None:
    s = start_standin("--standin-wedged")
    assert httpx.get(f"{s.base_url}/standin/state").json()["wedged"] is True


def test_cache_corruption_stream_and_non_stream(start_standin: StartStandin) -> None:
    s = start_standin()
    c = s.client()
    s.control("cache-corruption", count=2, error="[broadcast_shapes] Shapes (1,4,9,16) and (2,4,9,16) cannot be broadcast.")
    with c.stream("POST", "/v1/chat/completions", json={**BODY, "stream": True}) as r:
        lines = [ln for ln in r.iter_lines() if ln]
    assert '"type": "server_error"' in lines[-2] and "Cache corruption not recoverable after retries" in lines[-2]
    assert lines[-1] == "data: [DONE]"
    with pytest.raises(httpx.RemoteProtocolError):  # curl: (18) transfer closed with outstanding read data
        c.post("/v1/chat/completions", json=BODY)
    log = s.log_text()
    for pat in CORRUPTION_SEQUENCE:
        assert re.search(pat, log)
    assert ("Error during chat streaming: Cache corruption not recoverable after retries: [broadcast_shapes]"
            in log)
    assert re.search(r"omlx\.server - ERROR - \[-\] - POST /v1/chat/completions → 500 \(unhandled\): "
                     r"Cache corruption not recoverable after retries: \[broadcast_shapes\]", log)
    assert c.post("/v1/chat/completions", json=BODY).status_code == 200  # count used up


def test_crash_route_exits_with_code(start_standin: StartStandin) -> None:
    s = start_standin()
    httpx.post(f"{s.base_url}/standin/crash", json={"code": 134}, timeout=5)
    assert s.proc.wait(5) == 134
    assert "Fatal Python error: Aborted" in (s.base / "logs" / "crash.log").read_text()


def test_crash_after_and_exit_on_load(start_standin: StartStandin) -> None:
    s = start_standin("--standin-crash-after", "0.5")
    assert s.proc.wait(5) == 134
    s2 = start_standin()
    s2.control("exit-on-load", code=3)
    with pytest.raises(httpx.HTTPError):
        s2.client().post("/v1/models/tiny-llama/load")
    assert s2.proc.wait(5) == 3
    assert "Loading model: tiny-llama" in s2.log_text()


def test_memory_pressure_and_arbitrary_log_lines(start_standin: StartStandin) -> None:
    s = start_standin()
    s.control("memory-pressure", level="soft", previous="ok")
    s.control("log", logger="omlx.engine_core", level="ERROR", lines=["Engine loop error: boom", "Traceback x"])
    log = s.log_text()
    assert re.search(r"omlx\.process_memory_enforcer - INFO - \[-\] - Memory pressure level: ok -> soft "
                     r"\(current=[\d.]+GB, soft=[\d.]+GB, hard=[\d.]+GB, ceiling=[\d.]+GB\)", log)
    assert "omlx.engine_core - ERROR - [-] - Engine loop error: boom" in log


def test_rotate_log_and_admin_logs(start_standin: StartStandin) -> None:
    s = start_standin()
    a = s.admin()
    s.control("rotate-log", day="2026-01-31")
    assert (s.base / "logs" / "server.log.2026-01-31").exists()
    a.post("/v1/models/tiny-llama/load")
    r = a.get("/admin/api/logs", params={"lines": 2}).json()
    assert r["log_file"] == "server.log" and set(r["available_files"]) == {"server.log", "server.log.2026-01-31"}
    assert r["total_lines"] == 2
    assert re.search(r"Loaded model: tiny-llama \(actual: 417\.2\dKB, estimated: 440\.21KB, total: 440\.21KB\)\n$",
                     r["logs"])
    old = a.get("/admin/api/logs", params={"file": "server.log.2026-01-31"}).json()
    assert "Default model: tiny-llama" in old["logs"]


def test_slow_generation_speed(start_standin: StartStandin) -> None:
    s = start_standin("--standin-tokens-per-second", "20")
    t0 = time.monotonic()
    r = s.client().post("/v1/chat/completions", json={**BODY, "max_tokens": 10})
    assert r.json()["usage"]["completion_tokens"] == 10
    assert time.monotonic() - t0 >= 0.45


def test_log_rate_and_version_override(start_standin: StartStandin) -> None:
    s = start_standin(env={"OMLX_STANDIN_VERSION": "0.6.4"})
    assert s.client().get("/api/status").json()["version"] == "0.6.4"
    s.control("log-rate", lines_per_second=20, seconds=0.5, message="tick {n}")
    s.wait_log("omlx.scheduler - INFO - [-] - tick 5", timeout=5)
