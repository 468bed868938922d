"""Triage against the real mlx_lm.server on the tiny model: a working server's log has no bug events,
and a second server on the same port is recognised as it happens, through the follower."""

from __future__ import annotations

import json
import shutil
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


def _without_tool_parser(model: Path, dest: Path) -> Path:
    """The tiny model with a chat template that names no tool-call marker: mlx-lm then has no tool parser, and
    a `<tool_call>` the model writes stays in the reply's content (the bug)."""
    shutil.copytree(model, dest)
    cfg_path = dest / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = cfg["chat_template"].replace("<tool_call>", "CALL ").replace("</tool_call>", " END")
    cfg_path.write_text(json.dumps(cfg))
    return dest


def test_debug_log_of_a_reply_with_the_call_left_in_content(tiny_model: Path, start_mlx_server, tmp_path: Path) -> None:
    srv = start_mlx_server(_without_tool_parser(tiny_model, tmp_path / "no-parser"), "--log-level", "DEBUG")
    tok = json.loads((tiny_model / "tokenizer.json").read_text())
    call_id = next(t["id"] for t in tok["added_tokens"] if t["content"] == "<tool_call>")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    ask = {"messages": [{"role": "user", "content": "weather?"}], "max_tokens": 3, "temperature": 0}
    plain = httpx.post(f"{srv.base_url}/v1/chat/completions", json=ask, timeout=30).json()
    forced = httpx.post(f"{srv.base_url}/v1/chat/completions", timeout=30,
                        json={**ask, "tools": tools, "logit_bias": {str(call_id): 100}}).json()
    assert "<tool_call>" not in plain["choices"][0]["message"]["content"]
    assert forced["choices"][0]["message"]["content"].startswith("<tool_call>")
    deadline = time.monotonic() + 30
    while srv.log.read_text(errors="replace").count("Outgoing Response:") < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = srv.log.read_text(errors="replace").splitlines()
    replies = [n for n, t in enumerate(lines, 1) if "DEBUG - Outgoing Response:" in t]
    assert len(replies) == 3  # the readiness probe's, the plain one, the forced one
    by_line = {e.event.first_line: e.categories for e in triage_file(srv.log)}
    # the reply that carried the call as text, and mlx-lm's own warning that tools were sent to a model with no
    # parser; the plain reply, the request bodies and the DEBUG stream of raw tokens stay quiet
    assert by_line.get(replies[2]) == ["tool_call_plaintext"] and replies[1] not in by_line
    assert sorted(by_line) == sorted([replies[2], *(n for n, t in enumerate(lines, 1) if "Received tools" in t)])
