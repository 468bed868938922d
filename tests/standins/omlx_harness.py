"""Harness for tests that need an oMLX 0.5.0 stand-in: fake model dirs, and `StandinFactory` running
tests/standins/omlx_standin.py as a real subprocess (see tests/standins/README.md for use from other test areas)."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "standins" / "omlx_standin.py"
REAL = REPO / "tests" / "fixtures" / "omlx-real"
API_KEY = "sekrit"  # the key of the recorded real run

# config.json of `mlx-console demo-model` (llama), the model of the recorded real run.
TINY_LLAMA_CONFIG = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "tie_word_embeddings": True,
    "torch_dtype": "float32", "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-05,
    "vocab_size": 512, "max_position_embeddings": 4096, "rope_theta": 10000.0, "bos_token_id": 1,
    "eos_token_id": 2,
}


def write_safetensors(path: Path, keys: list[str], data_bytes: int, header_bytes: int | None = None) -> None:
    """A structurally valid .safetensors file: 8-byte header length, JSON header (padded), then data."""
    per = data_bytes // max(1, len(keys))
    header: dict[str, object] = {}
    off = 0
    for i, k in enumerate(keys):
        n = per if i < len(keys) - 1 else data_bytes - off
        header[k] = {"dtype": "U8", "shape": [n], "data_offsets": [off, off + n]}
        off += n
    raw = json.dumps(header).encode()
    if header_bytes is not None:
        raw = raw.ljust(header_bytes, b" ")
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * data_bytes)


def make_model(models: Path, name: str, config: dict | None = None, *, keys: list[str] | None = None,
               data_bytes: int = 427272, header_bytes: int | None = 2028) -> Path:
    """A model dir the stand-in discovers. Defaults reproduce the real tiny-llama's sizes (estimated 450773)."""
    d = models / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(config if config is not None else TINY_LLAMA_CONFIG, indent=2))
    write_safetensors(d / "model.safetensors", keys or ["model.embed_tokens.weight"], data_bytes, header_bytes)
    return d


@dataclass
class Standin:
    proc: subprocess.Popen[bytes]
    base: Path
    port: int
    api_key: str | None
    stdout_path: Path
    stderr_path: Path
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def server_log(self) -> Path:
        return self.base / "logs" / "server.log"

    def client(self, *, auth: bool = True, timeout: float = 10.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.api_key}"} if auth and self.api_key else {}
        c = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        self._clients.append(c)
        return c

    def admin(self) -> httpx.Client:
        """A client logged in to the admin API (cookie omlx_admin_session)."""
        c = self.client()
        r = c.post("/admin/api/login", json={"api_key": self.api_key, "remember": False})
        assert r.status_code == 200, r.text
        return c

    def control(self, route: str, **body: object) -> dict:
        r = httpx.post(f"{self.base_url}/standin/{route}", json=body, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def log_text(self) -> str:
        return self.server_log.read_text(encoding="utf-8") if self.server_log.exists() else ""

    def wait_log(self, needle: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_text()
            if needle in text:
                return text
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in server.log:\n{self.log_text()[-3000:]}")

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_healthy(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"stand-in exited {self.proc.returncode}:\n{self.stdout()}\n{self.stderr()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"stand-in not healthy:\n{self.stderr()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        for c in self._clients:
            c.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(STANDIN), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


class StandinFactory:
    """Starts stand-ins in `tmp`; `stop_all()` ends them (SIGKILL for those still running)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started: list[Standin] = []

    def __call__(self, *extra: str, base: Path | None = None, api_key: str | None = API_KEY,
                 port: int | None = None, env: dict[str, str] | None = None, models: bool = True,
                 wait: bool = True, port_flag: bool = True) -> Standin:
        n = len(self.started)
        base = base or self.tmp / f"omlx-{n}"
        if models and not (base / "models").exists():
            make_model(base / "models", "tiny-llama")
        port = port or free_port()
        args = [sys.executable, str(STANDIN), "serve", "--base-path", str(base)]
        if port_flag:
            args += ["--port", str(port), "--host", "127.0.0.1"]
        if api_key:
            args += ["--api-key", api_key]
        args += list(extra)
        out, err = self.tmp / f"stdout-{n}.txt", self.tmp / f"stderr-{n}.txt"
        with out.open("wb") as o, err.open("wb") as e:
            env = {**os.environ, "OMLX_STANDIN_EXIT_WITH_PARENT": str(os.getpid()), **(env or {})}
            proc = subprocess.Popen(args, stdout=o, stderr=e, env=env,
                                    start_new_session=True)
        s = Standin(proc, base, port, api_key, out, err)
        self.started.append(s)
        if wait:
            s.wait_healthy()
        return s

    def stop_all(self) -> None:
        for s in self.started:
            s.stop(signal.SIGKILL)
