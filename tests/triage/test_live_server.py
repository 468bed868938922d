"""Triage against the real mlx_lm.server on the tiny model: a working server's log has no bug events,
and a second server on the same port is recognised as it happens, through the follower."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from mlx_console.core.logs.live import LiveTriage
from mlx_console.core.logs.triage import triage_file

pytestmark = pytest.mark.slow


def _traffic(base: str) -> None:
    chat = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
    assert httpx.post(f"{base}/v1/chat/completions", json=chat, timeout=30).status_code == 200
    with httpx.stream("POST", f"{base}/v1/chat/completions", json={**chat, "stream": True}, timeout=30) as r:
        assert r.status_code == 200 and "[DONE]" in r.read().decode()
    assert httpx.post(f"{base}/v1/completions", json={"prompt": "once", "max_tokens": 4}, timeout=30).status_code == 200
    bad = httpx.post(f"{base}/v1/chat/completions", content=b"{bad", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400
    assert httpx.get(f"{base}/nope").status_code == 404
    assert httpx.get(f"{base}/health").status_code == 200


def test_working_server_log_has_no_bug_events(mlx_server) -> None:
    _traffic(mlx_server.base_url)
    deadline = time.monotonic() + 30  # the server has logged the last request of the traffic
    while '"GET /health' not in mlx_server.log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert triage_file(mlx_server.log) == []
    unknown = triage_file(mlx_server.log, include_all=True)
    # The bad-JSON request is an ERROR line (seen with --all) that no pattern claims.
    assert any("JSONDecodeError" in e.title and not e.categories for e in unknown)


def test_second_server_on_same_port_is_seen_live(mlx_server, start_mlx_server, tiny_model: Path) -> None:
    second = start_mlx_server(tiny_model, "--port", str(mlx_server.port), wait=False)
    found = []
    with LiveTriage(second.log, quiet=0.5) as live:  # the log as `triage --follow` and the console follow it
        found = live.initial()
        deadline = time.monotonic() + 60
        while not found and time.monotonic() < deadline:
            found = live.step(0.5).events
    assert found and found[0].categories == ["port_in_use"]
    assert second.proc.poll() is None  # mlx_lm.server stays alive after failing to bind: the console must kill it
    second.stop()
