"""The quick suite end to end against a real mlx_lm.server on the tiny random models."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlx_console.core.bench import suites
from mlx_console.core.bench.runner import run_suite

pytestmark = pytest.mark.slow


def test_quick_cli_end_to_end_on_the_tiny_llama(tiny_model: Path, start_mlx_server: Callable, tmp_path: Path,
                                                isolated_state: Path) -> None:
    srv = start_mlx_server(tiny_model)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "mlx_console", "bench", "run", "--url", srv.base_url + "/v1",
                           "--model", str(tiny_model), "--runs", "2", "--label", "tiny", "--json", "--out", str(out)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)  # stdout is only the record
    assert "[9/9] cache.prefix" in proc.stderr  # progress went to stderr
    assert rec["backend"]["kind"] == "mlx-lm" and rec["backend"]["version"] and rec["label"] == "tiny"
    cells = rec["cells"]
    # Throughput and concurrency work for real.
    for cid in ("throughput.short", "throughput.long", "concurrency.4"):
        assert cells[cid]["status"] == "ok", cells[cid]
        assert cells[cid]["decode_tps"]["median"] > 10 and cells[cid]["token_count_source"] == "usage"
    assert cells["throughput.long"]["prompt_tokens"] > 5 * cells["throughput.short"]["prompt_tokens"] / 2
    assert cells["throughput.short"]["cached_tokens_max"] < 10  # the nonce busts the prefix cache
    assert cells["concurrency.4"]["aggregate_tps"]["median"] > 0
    # The random model talks gibberish: quality cells fail, each with a reason, none errors.
    for cid in ("chat.capital", "chat.recall", "coding.fizzbuzz", "tool.weather"):
        assert cells[cid]["status"] == "fail" and cells[cid]["reason"], cells[cid]
    assert cells["coding.fizzbuzz"]["result"] in ("no code",) or cells["coding.fizzbuzz"]["result"].startswith("failed")
    assert cells["tool.weather"]["layer"] == "transport"
    # The llama's prompt cache is correct.
    assert cells["cache.prefix"]["status"] == "pass", cells["cache.prefix"]
    assert cells["cache.prefix"]["cached_tokens"] > 0
    stored = isolated_state / "bench" / f"{rec['run_id']}.json"
    assert json.loads(stored.read_text()) == rec
    assert (out / f"{rec['run_id']}.requests.jsonl").is_file()


def test_cache_consistency_catches_the_llama4_prompt_cache_bug(tiny_llama4_model: Path,
                                                               start_mlx_server: Callable) -> None:
    srv = start_mlx_server(tiny_llama4_model)
    rec = run_suite(srv.base_url, str(tiny_llama4_model), suites.load("quick").select("cache_consistency"),
                    save=False)
    cell = rec.cells["cache.prefix"]
    # backends.md §5: the cache cannot be trimmed back past the 32-token attention chunk.
    assert cell["window"] == 32 and "attention_chunk_size=32" in cell["window_source"]
    assert cell["status"] == "fail", cell
    assert "prompt-cache bug" in cell["reason"] and cell["busted_answer"] != cell["cached_answer"]
