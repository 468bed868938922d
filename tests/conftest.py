"""Shared fixtures: the tiny real models, free ports, a real mlx_lm.server, an isolated state dir.

Every test gets its own MLX_CONSOLE_STATE_DIR and MLX_CONSOLE_CONFIG (pointing at a file that does
not exist) so nothing touches the user's real state. Servers started here are killed at teardown.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

# A run started in the background by a script (`make test &`, nohup, CI runners) inherits SIGINT *ignored*,
# and so does every process a test starts: Python then installs no KeyboardInterrupt handler, and the tests
# that stop `triage --follow` or `bench run` with Ctrl-C would wait forever. Give the children the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("MLX_CONSOLE_STATE_DIR", str(state))
    monkeypatch.setenv("MLX_CONSOLE_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hf = tmp_path / "hf-cache"
    hf.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(hf))
    return state


def _build_model(dest: Path, arch: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "mlx_console", "demo-model", str(dest), "--arch", arch],
        check=True, capture_output=True, timeout=120,
    )
    return dest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight llama that a real mlx_lm.server serves offline."""
    return _build_model(tmp_path_factory.mktemp("models") / "tiny-llama", "llama")


@pytest.fixture(scope="session")
def tiny_llama4_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama-4 text model (chunked attention: ChunkedKVCache cannot batch)."""
    return _build_model(tmp_path_factory.mktemp("models") / "tiny-llama4", "llama4")


def wait_ready(base_url: str, timeout: float = 60.0) -> None:
    """Ready = a real 1-token completion answers 200 (not /health: it lies while generation is dead)."""
    deadline = time.monotonic() + timeout
    body = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1, "temperature": 0}
    last: object = None
    while time.monotonic() < deadline:
        try:
            r = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=10)
            if r.status_code == 200:
                return
            last = r.status_code
        except httpx.HTTPError as e:
            last = e
        time.sleep(0.2)
    raise TimeoutError(f"{base_url} not ready after {timeout}s: {last}")


class RunningServer:
    def __init__(self, proc: subprocess.Popen, port: int, log: Path):
        self.proc, self.port, self.log = proc, port, log
        self.base_url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def start_mlx_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Factory: start a real mlx_lm.server on a model (waits until a completion answers)."""
    started: list[RunningServer] = []

    def start(model: Path, *extra: str, wait: bool = True) -> RunningServer:
        p = free_port()
        log = tmp_path / f"mlx-server-{p}.log"
        cmd = [sys.executable, "-m", "mlx_lm.server", "--model", str(model), "--port", str(p), *extra]
        proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        srv = RunningServer(proc, p, log)
        started.append(srv)
        if wait:
            wait_ready(srv.base_url)
        return srv

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def mlx_server(tiny_model: Path, start_mlx_server: Callable[..., RunningServer]) -> RunningServer:
    """A real mlx_lm.server on the tiny llama, ready."""
    return start_mlx_server(tiny_model)
