"""A proxy in the environment never sees calls to servers on this machine (core/common/net.py).

With HTTP_PROXY pointing at a dead proxy, liveness, the port scan's probe, the bench client and the oMLX
admin client still reach a real local server."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
import pytest
from openai_scripted import ScriptedServer

from mlx_console.core.backends.base import ping_completion
from mlx_console.core.backends.omlx_admin import OmlxAdmin
from mlx_console.core.bench import suites
from mlx_console.core.bench.runner import run_suite
from mlx_console.core.common.net import is_loopback, trust_env
from mlx_console.core.machine.ports import Listener, probe_models

pytestmark = pytest.mark.slow


@pytest.fixture
def dead_proxy(monkeypatch: pytest.MonkeyPatch) -> str:
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(var, url)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    return url


def test_loopback_calls_ignore_a_dead_proxy(scripted: Callable[..., ScriptedServer], dead_proxy: str) -> None:
    srv = scripted(preset="good")
    with pytest.raises(httpx.HTTPError):  # the environment's proxy is in force for a plain client
        httpx.get(srv.base_url + "/v1/models", timeout=5)

    probe = ping_completion(srv.base_url, None, timeout=10)
    assert probe.ok and probe.listening, probe.detail

    listener = Listener(port=srv.port, addresses=["127.0.0.1"])
    probe_models(listener, timeout=5)
    assert listener.probe is None, listener.probe

    record = run_suite(srv.base_url, "m", suites.load("quick").select("chat.capital"), save=False)
    assert record.cells["chat.capital"]["status"] == "pass", record.cells

    with OmlxAdmin(srv.base_url, None, timeout=5) as admin:  # its session (login, reload) uses the same client
        assert admin._client.get("/v1/models").status_code == 200


def test_loopback_definition() -> None:
    for host in ("127.0.0.1", "127.3.4.5", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "10.0.0.1", "example.org", "::", "128.0.0.1", ""):
        assert not is_loopback(host), host
    assert trust_env("http://10.1.2.3:8080") and not trust_env("http://[::1]:8080/v1")
