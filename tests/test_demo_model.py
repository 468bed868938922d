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


_BATCH = """
import sys
from mlx_lm import batch_generate, load
model, tok = load(sys.argv[1])
prompts = [tok.apply_chat_template([{"role": "user", "content": "hello there " * n}], add_generation_prompt=True)
           for n in (3, 40)]
batch_generate(model, tok, prompts, max_tokens=4)
print("batched fine")
"""


@pytest.mark.slow
def test_llama4_reproduces_the_chunked_cache_batching_bug_and_triage_names_it(tiny_llama4_model: Path) -> None:
    run = subprocess.run([sys.executable, "-c", _BATCH, str(tiny_llama4_model)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0, run.stdout
    assert "ChunkedKVCache'> does not yet support batching with history" in run.stderr
    triage = subprocess.run([sys.executable, "-m", "mlx_console", "triage", "-", "--json"], input=run.stderr,
                            capture_output=True, text=True, timeout=60)
    events = [json.loads(line) for line in triage.stdout.splitlines()]
    assert any("batch_cache_shape" in e["categories"] for e in events), triage.stdout


@pytest.mark.slow
def test_llama_batches_fine(tiny_model: Path) -> None:
    run = subprocess.run([sys.executable, "-c", _BATCH, str(tiny_model)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "batched fine" in run.stdout, run.stderr
