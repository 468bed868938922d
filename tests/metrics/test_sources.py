"""The log parsers on real recorded output (oMLX 0.5.0 server.log, mlx_lm.server 0.32.2 captured log)."""

from __future__ import annotations

from pathlib import Path

from mlx_console.core.metrics.sources import tally_lines

FIX = Path(__file__).resolve().parent.parent / "fixtures"


def test_omlx_completion_lines_from_a_real_server_log() -> None:
    lines = (FIX / "omlx-real" / "server.log").read_text().splitlines()
    done = [ln for ln in lines if "Completion: " in ln.replace("Chat completion: ", "Completion: ") and " tokens in " in ln]
    errors = [ln for ln in lines if "POST /v1/chat/completions →" in ln]
    t = tally_lines("omlx", lines)
    assert done  # the fixture has them
    assert t.requests.get("2xx") == len(done)
    assert sum(t.requests.values()) == len(done) + len(errors)
    first = tally_lines("omlx", [done[0]])  # "... Chat completion: 6 tokens in 0.67s (9.0 tok/s), prompt: 8"
    assert first.completion_tokens == int(done[0].split("Chat completion: ")[1].split()[0])
    assert first.prompt_tokens > 0 and first.decode_tps and first.request_seconds


def test_mlx_lm_access_progress_and_cache_lines_from_a_real_log() -> None:
    lines = (FIX / "logs" / "mlx_lm_clean.log").read_text().splitlines()
    t = tally_lines("mlx-lm", lines)
    ok = [ln for ln in lines if '"POST /v1/' in ln and ln.endswith('" 200 -')]
    bad = [ln for ln in lines if '"POST /v1/' in ln and ln.endswith('" 400 -')]
    assert ok and bad and t.requests == {"2xx": len(ok), "4xx": len(bad)}
    finished = [ln for ln in lines if "Prompt processing progress:" in ln
                and ln.split(": ")[-1].split("/")[0] == ln.split("/")[-1]]
    assert t.prompt_tokens == sum(int(ln.split("/")[-1]) for ln in finished) > 0
    assert t.kv_cache_bytes is not None
    assert t.completion_tokens == 0  # mlx_lm.server does not log them


def test_older_kv_caches_line_and_health_probes_are_not_requests() -> None:
    t = tally_lines("mlx-lm", [
        "2026-01-02 10:00:00,000 - INFO - KV Caches: 1 seq, 7.06 GB, latest user cache 120 tokens",
        '127.0.0.1 - - [25/Nov/2026 13:22:38] "GET /health HTTP/1.1" 200 -',
        '127.0.0.1 - - [25/Nov/2026 13:22:39] "POST /v1/completions HTTP/1.1" 404 -',
    ])
    assert t.kv_cache_bytes == 7.06 * 1024**3 and t.cached_tokens == 120 and t.requests == {"4xx": 1}
