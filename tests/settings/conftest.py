"""Settings fixtures: a running oMLX stand-in (tests/standins/omlx_standin.py) on a base path with one model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
STANDIN = Path(os.environ.get("OMLX_STANDIN_SCRIPT", REPO / "tests" / "standins" / "omlx_standin.py"))
API_KEY = "test-key-1234"


@dataclass
class Omlx:
    base: Path
    port: int
    url: str
    api_key: str
    proc: subprocess.Popen[bytes]
    config_path: Path

    @property
    def settings_file(self) -> Path:
        return self.base / "model_settings.json"

    def admin(self) -> httpx.Client:
        c = httpx.Client(base_url=self.url, timeout=10)
        c.post("/admin/api/login", json={"api_key": self.api_key, "remember": False}).raise_for_status()
        return c

    def server_settings(self, model: str = "tiny-llama") -> dict:
        c = self.admin()
        try:
            models = c.get("/admin/api/models").json()["models"]
        finally:
            c.close()
        return next(m for m in models if m["id"] == model).get("settings") or {}

    def load(self, model: str = "tiny-llama") -> None:
        httpx.post(f"{self.url}/v1/models/{model}/load", headers={"Authorization": f"Bearer {self.api_key}"},
                   timeout=30).raise_for_status()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def omlx(tmp_path: Path, port: int) -> Iterator[Omlx]:
    if not STANDIN.is_file():
        pytest.skip(f"the oMLX stand-in is not in this tree yet ({STANDIN})")
    base = tmp_path / "omlx-base"
    model = base / "models" / "tiny-llama"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    # Weights (a minimal safetensors file): oMLX skips a model folder without any.
    header = b'{"w": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}'
    (model / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))
    log = (tmp_path / "standin.log").open("wb")
    proc = subprocess.Popen([sys.executable, str(STANDIN), "serve", "--base-path", str(base), "--port", str(port),
                             "--api-key", API_KEY], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[[backend]]\nname = "omlx"\nkind = "omlx"\nport = {port}\nbase_path = "{base}"\n'
                   f'api_key = "{API_KEY}"\ncommand = ["{sys.executable}", "{STANDIN}"]\n')
    server = Omlx(base, port, url, API_KEY, proc, cfg)
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"stand-in did not start: {(tmp_path / 'standin.log').read_text()[-2000:]}")
        time.sleep(0.05)
    try:
        yield server
    finally:
        server.stop()
        log.close()
