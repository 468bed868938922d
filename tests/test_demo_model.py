"""The tiny demo model: deterministic, small, and served for real by mlx_lm.server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest


def test_files_and_size(tiny_model: Path) -> None:
    names = {p.name for p in tiny_model.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert sum(p.stat().st_size for p in tiny_model.iterdir()) < 3_000_000
    assert "chat_template" in json.loads((tiny_model / "tokenizer_config.json").read_text())


def test_deterministic(tiny_model: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    subprocess.run([sys.executable, "-m", "mlx_console", "demo-model", str(again)], check=True, capture_output=True)
    assert (again / "model.safetensors").read_bytes() == (tiny_model / "model.safetensors").read_bytes()
    assert (again / "tokenizer.json").read_bytes() == (tiny_model / "tokenizer.json").read_bytes()


def test_refuses_non_empty_dir(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    r = subprocess.run([sys.executable, "-m", "mlx_console", "demo-model", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode != 0 and "not empty" in r.stderr
    assert (tmp_path / "x").read_text() == "keep me"


@pytest.mark.slow
def test_real_server_serves_it(mlx_server) -> None:  # type: ignore[no-untyped-def]
    r = httpx.post(f"{mlx_server.base_url}/v1/chat/completions",
                   json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}, timeout=30)
    assert r.status_code == 200
    assert r.json()["usage"]["completion_tokens"] == 5
