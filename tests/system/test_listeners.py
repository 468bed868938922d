"""Ports → pid → process → backend kind, on real listeners: a real mlx_lm.server, plain sockets, HTTP servers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psutil
import pytest

from mlx_console.core.machine import ports as system_ports
from mlx_console.core.machine import system
from mlx_console.core.machine.parse import parse_lsof_listen


@pytest.fixture
def plain_listener() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


def _http_server(status: int, body: bytes, routes: dict[str, tuple[int, bytes]] | None = None,
                 ) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            code, data = (routes or {}).get(self.path, (status, body))
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    return srv, srv.server_address[1]


@pytest.fixture
def http_models() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(status: int, body: bytes, routes: dict[str, tuple[int, bytes]] | None = None) -> int:
        srv, port = _http_server(status, body, routes)
        servers.append(srv)
        return port

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.mark.parametrize(("cmdline", "kind"), [
    (["/usr/bin/python3", "-m", "mlx_lm.server", "--model", "x", "--port", "8080"], "mlx-lm"),
    (["/opt/venv/bin/python3.12", "/opt/venv/bin/mlx_lm.server", "--model", "x"], "mlx-lm"),
    (["python", "-m", "mlx_lm", "server", "--port", "1"], "mlx-lm"),
    (["mlx_lm", "server"], "mlx-lm"),
    (["/opt/homebrew/bin/omlx", "serve", "--port", "8000"], "omlx"),
    (["python3", "-m", "omlx.cli", "serve"], "omlx"),
    (["omlx-server"], "omlx"),  # oMLX's process title
    (["/usr/bin/python3", "tests/standins/omlx_standin.py", "serve", "--base-path", "/tmp/b"], "omlx"),
    (["/usr/local/bin/llama-server", "-m", "model.gguf"], "llama.cpp"),
    (["/usr/local/bin/ollama", "serve"], "ollama"),
    (["vllm", "serve", "Qwen/Qwen3-8B"], "vllm"),
    (["python", "-m", "vllm.entrypoints.openai.api_server"], "vllm"),
    (["python", "-m", "http.server", "--directory", "/srv/mlx_lm.server"], "unknown"),  # flags' values ignored
    (["omlx", "start"], "unknown"),
    (["sshd"], "unknown"),
    ([], "unknown"),
])
def test_guess_backend(cmdline: list[str], kind: str) -> None:
    assert system.guess_backend(cmdline) == kind


def test_plain_socket_is_unknown_with_our_pid(plain_listener: int) -> None:
    found = system.listeners([plain_listener], probe=True, probe_ports=[plain_listener], timeout=0.3)
    assert len(found) == 1
    x = found[0]
    assert (x.port, x.pid, x.backend, x.confirmed) == (plain_listener, os.getpid(), "unknown", False)
    assert x.addresses == ["127.0.0.1"] and x.loopback_only
    assert x.process == psutil.Process().name() and x.cmdline == psutil.Process().cmdline()
    assert x.probe is not None and x.probe.startswith("GET /v1/models")  # no HTTP: the probe says so


def test_all_listeners_include_ours_and_filter_works(plain_listener: int, port: int) -> None:
    assert plain_listener in {x.port for x in system.listeners()}
    assert system.listeners([port]) == []  # a free port
    assert system.owner_of(port) is None


def test_own_process_fallback_finds_listener(plain_listener: int) -> None:
    """The macOS-without-root path: ask our own processes instead of the global table."""
    raw = system_ports._listen_own_processes()
    assert ("127.0.0.1", plain_listener, os.getpid()) in raw


@pytest.mark.skipif(shutil.which("lsof") is None, reason="lsof not installed")
def test_lsof_parser_on_real_lsof_output(plain_listener: int) -> None:
    out = subprocess.run(["lsof", "-nP", "-iTCP", "-sTCP:LISTEN"], capture_output=True, text=True,
                         timeout=10).stdout
    mine = [e for e in parse_lsof_listen(out) if e.port == plain_listener]
    assert [(e.pid, e.address) for e in mine] == [(os.getpid(), "127.0.0.1")]
    assert ("127.0.0.1", plain_listener, os.getpid()) in system_ports._listen_lsof()


def test_probe_confirms_omlx_from_owned_by(http_models: Any) -> None:
    body = {"object": "list", "data": [{"id": "qwen3-8b", "object": "model", "created": 1, "owned_by": "omlx"}]}
    p = http_models(200, json.dumps(body).encode())
    [x] = system.listeners([p], probe=True, probe_ports=[p])
    assert (x.backend, x.confirmed, x.models) == ("omlx", True, ["qwen3-8b"])
    assert "is omlx" in x.describe()


def test_probe_unknown_openai_server_and_auth_and_empty_body(http_models: Any) -> None:
    other = http_models(200, json.dumps({"object": "list", "data": [{"id": "m", "owned_by": "me"}]}).encode())
    locked = http_models(401, b'{"detail":"Invalid API key"}')
    empty = http_models(200, b"")
    found = {x.port: x for x in system.listeners([other, locked, empty], probe=True,
                                                 probe_ports=[other, locked, empty])}
    assert (found[other].backend, found[other].confirmed) == ("openai", True)
    assert found[locked].auth_required and found[locked].backend == "unknown"
    assert "empty body" in (found[empty].probe or "")


def test_omlx_behind_api_key_confirmed_by_open_health(http_models: Any) -> None:
    health = {"status": "healthy", "default_model": None, "engine_pool": {"model_count": 0, "loaded_count": 0}}
    p = http_models(401, b'{"error":{"message":"API key required"}}', {"/health": (200, json.dumps(health).encode())})
    [x] = system.listeners([p], probe=True, probe_ports=[p])
    assert (x.backend, x.confirmed, x.auth_required) == ("omlx", True, True)
    # an mlx_lm.server-style /health ({"status": "ok"}) confirms nothing
    q = http_models(401, b"{}", {"/health": (200, b'{"status": "ok"}')})
    [y] = system.listeners([q], probe=True, probe_ports=[q])
    assert (y.backend, y.confirmed) == ("unknown", False)


@pytest.mark.slow
def test_real_mlx_server_is_identified_with_its_pid(mlx_server: Any) -> None:
    # no probe_ports: the command line alone marks it as an LLM backend worth probing
    found = system.listeners(probe=True)
    [x] = [x for x in found if x.port == mlx_server.port]
    assert x.pid == mlx_server.proc.pid
    assert (x.backend, x.confirmed) == ("mlx-lm", True)
    assert "mlx_lm.server" in x.command
    assert x.models and x.models[-1].endswith("tiny-llama")  # its --model, listed by /v1/models
    owner = system.owner_of(mlx_server.port)
    assert owner is not None and owner.pid == mlx_server.proc.pid
    assert owner.describe().startswith(f"pid {mlx_server.proc.pid} (") and "is mlx-lm" in owner.describe()


def test_command_line_secrets_are_redacted() -> None:
    cmd = ["omlx", "serve", "--api-key", "sekrit", "--hf-token=abc", "--key-check", "--port", "8000"]
    assert system_ports.redact(cmd) == ["omlx", "serve", "--api-key", "***", "--hf-token=***", "--key-check",
                                        "--port", "8000"]
    x = system.Listener(port=1, pid=2, cmdline=cmd)
    assert "sekrit" not in x.command and "sekrit" not in x.describe() and "sekrit" not in json.dumps(x.to_json())
    assert "of user" not in x.describe()
    x.user = "someone-else"
    assert x.describe().startswith("pid 2 (omlx serve --api-key *** ") and " of user someone-else, " in x.describe()


@pytest.mark.slow
def test_real_mlx_server_without_hub_cache_answers_an_empty_models_body(
        tiny_model: Any, start_mlx_server: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """backends.md §5: a missing HF hub cache dir makes /v1/models answer 200 with no body."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-such-hub"))
    srv = start_mlx_server(tiny_model)
    [x] = system.listeners([srv.port], probe=True, probe_ports=[srv.port])
    assert (x.pid, x.backend, x.confirmed) == (srv.proc.pid, "mlx-lm", False)
    assert x.probe is not None and "empty body" in x.probe
