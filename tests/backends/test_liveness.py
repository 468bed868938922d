"""Liveness that does not change what it observes: proof of life from the server's own log, no probe that keeps an
oMLX model's TTL alive or loads a model, per-model verdicts (real mlx_lm.server and the oMLX stand-in)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from mlx_console.core.lifecycle.control import Supervisor

sys.path.insert(0, str(Path(__file__).parent))
from backends_helpers import FAST, wait_for  # noqa: E402

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "omlx_standin.py"
pytestmark = pytest.mark.slow
QUICK = replace(FAST, probe_interval=0.5, probe_timeout=5.0, models_interval=0.3)
PING = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 2, "temperature": 0}


@pytest.fixture
def omlx_base(tmp_path: Path, tiny_model: Path) -> Path:
    base = tmp_path / "omlx"
    shutil.copytree(tiny_model, base / "models" / "tiny-llama")
    return base


def omlx(base: Path, port: int, **kw: object) -> dict:
    return {"name": "o", "kind": "omlx", "base_path": str(base), "port": port,
            "command": [sys.executable, str(STANDIN)], **kw}


def total_requests(base_url: str) -> int:
    return httpx.get(f"{base_url}/api/status", timeout=5).json()["total_requests"]


def test_an_idle_omlx_model_with_a_ttl_is_not_probed_and_unloads(write_config, omlx_base: Path, port: int) -> None:
    (omlx_base / "model_settings.json").write_text(json.dumps({"version": 1, "models": {"tiny-llama": {
        "ttl_seconds": 3}}}))
    sup = Supervisor(write_config(omlx(omlx_base, port, model="tiny-llama")), timings=QUICK)
    st = sup.start("o", wait=30)
    before = total_requests(st.base_url)  # the readiness check asked the model once
    verdict = wait_for(lambda: sup.status("o").liveness.get("tiny-llama", ""), timeout=10)
    assert verdict.startswith("idle, not probed (unloads after 3s idle")
    # oMLX's TTL expires although the supervisor checked every 0.5 s: its probes never touched the model.
    wait_for(lambda: sup.status("o").loaded_models == [], timeout=15)
    assert "TTL expired for model 'tiny-llama'" in (omlx_base / "logs" / "server.log").read_text()
    assert total_requests(st.base_url) == before
    # An unloaded model is never probed (a probe would load it); the process is still checked.
    wait_for(lambda: "tiny-llama" not in sup.status("o").liveness, timeout=5)
    assert sup.status("o").status == "ready" and total_requests(st.base_url) == before
    sup.stop("o")


def test_omlx_completions_in_the_log_are_proof_of_life(write_config, omlx_base: Path, port: int) -> None:
    (omlx_base / "model_settings.json").write_text(json.dumps({"version": 1, "models": {"tiny-llama": {
        "is_pinned": True}}}))
    sup = Supervisor(write_config(omlx(omlx_base, port, model="tiny-llama")), timings=QUICK)
    st = sup.start("o", wait=30)
    # The pinned model has no TTL: with no traffic it is probed.
    wait_for(lambda: sup.status("o").liveness.get("tiny-llama", "").startswith("alive: 1-token"), timeout=10)
    start = total_requests(st.base_url)
    sent = 0
    deadline = time.monotonic() + 4.0  # 8 liveness periods
    while time.monotonic() < deadline:
        r = httpx.post(f"{st.base_url}/v1/chat/completions", json={**PING, "model": "tiny-llama"}, timeout=10)
        assert r.status_code == 200
        sent += 1
        time.sleep(0.1)
    probes = total_requests(st.base_url) - start - sent
    assert probes <= 1, f"{probes} probes while completions were being served"
    assert "not probed" in sup.status("o").liveness["tiny-llama"]
    sup.stop("o")


def test_mlx_lm_served_completions_replace_probes(write_config, tiny_model: Path, port: int) -> None:
    sup = Supervisor(write_config({"name": "m", "kind": "mlx-lm", "model": str(tiny_model), "port": port}),
                     timings=QUICK)
    st = sup.start("m", wait=60)
    log = sup.log_path("m")

    def posts() -> int:
        return log.read_text(errors="replace").count('"POST /v1/chat/completions HTTP/1.1" 200')

    wait_for(lambda: sup.status("m").liveness.get("server", "").startswith("alive: 1-token"), timeout=10)
    start, sent = posts(), 0
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        assert httpx.post(f"{st.base_url}/v1/chat/completions", json=PING, timeout=10).status_code == 200
        sent += 1
        time.sleep(0.1)
    wait_for(lambda: posts() >= start + sent, timeout=5)
    assert posts() - start - sent <= 1
    assert "not probed" in sup.status("m").liveness["server"]
    # Idle again: probed (mlx_lm.server has no idle unload a probe could defeat).
    wait_for(lambda: sup.status("m").liveness["server"].startswith("alive: 1-token"), timeout=10)
    sup.stop("m")
