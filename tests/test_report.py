"""`mlx-console report`: an upstream issue draft for one event of a real log file, secrets redacted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlx_console.core.report import redact

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "logs"
KEYS = ["title", "markdown", "line", "end_line", "categories", "pattern", "references", "backend", "environment",
        "command"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlx_console", *args], capture_output=True, text=True,
                          timeout=120, env=os.environ.copy())


def test_redact_secrets_and_home() -> None:
    text = ("curl -H 'Authorization: Bearer abc.def-123' --api-key sekrit9 x\n"
            '{"api_key": "k-1", "hf_token": "hf_abcdefghijklmnopqrstu"} sk-proj-abcdefghijklmnop\n'
            "/Users/alice/models/m and /home/bob/x and /srv/me/y/z and /srv/me")
    out = redact(text, home="/srv/me")
    for secret in ("abc.def-123", "sekrit9", "k-1", "hf_abcdefghijklmnopqrstu", "sk-proj", "alice", "bob", "/srv/me"):
        assert secret not in out, secret
    assert "/Users/<user>/models/m" in out and "~/y/z" in out and "--api-key [REDACTED]" in out


def test_report_of_the_last_error_event_as_json() -> None:
    r = _run("report", str(FIXTURES / "mlx_lm_no_safetensors.log"), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert list(d) == KEYS
    assert (d["line"], d["categories"][0], d["pattern"]) == (5, "model_load_missing_weights", "weights-missing")
    md = d["markdown"]
    for section in ("### Environment", "### Backend", "### What happened", "### Log excerpt", "### Reproduction"):
        assert section in md
    assert "| Python |" in md and "| mlx-lm |" in md and "No safetensors found" in md
    assert d["references"][0] in md
    assert set(d["environment"]) == {"chip", "memory", "os", "python", "mlx", "mlx_lm", "omlx"}


def test_report_line_and_errors(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("2026-01-01 10:00:00,000 - INFO - fine\n"
                   "2026-01-01 10:00:01,000 - ERROR - Something odd happened\n"
                   "OSError: [Errno 48] Address already in use\n")
    r = _run("report", str(log), "--line", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("## Something odd happened")
    assert "Searched for: https://github.com/" in r.stdout
    r = _run("report", str(log))
    assert r.stdout.startswith("## OSError: [Errno 48] Address already in use") and "`port_in_use`" in r.stdout
    r = _run("report", str(log), "--line", "1")
    assert r.returncode == 1 and "no warning/error event covers line 1 (events at lines: 2, 3)" in r.stderr
    r = _run("report", str(tmp_path / "nope.log"))
    assert r.returncode == 1 and "nope.log: no such file" in r.stderr


def test_report_names_the_backend_whose_log_it_is(tmp_path: Path) -> None:
    cfg = Path(os.environ["MLX_CONSOLE_CONFIG"])
    cfg.write_text('[[backend]]\nname = "lm"\nkind = "mlx-lm"\nmodel = "/Users/alice/models/tiny"\nport = 8123\n'
                   'env = { HF_TOKEN = "hf_abcdefghijklmnopqrstu" }\n')
    log = Path(os.environ["MLX_CONSOLE_STATE_DIR"]) / "backends" / "lm" / "server.log"
    log.parent.mkdir(parents=True)
    log.write_text((FIXTURES / "mlx_lm_port_in_use.log").read_text())
    bench = Path(os.environ["MLX_CONSOLE_STATE_DIR"]) / "bench"
    bench.mkdir()
    (bench / "r1.json").write_text(json.dumps({"schema": 1, "run_id": "r1", "ts": "2026-01-01T00:00:00Z",
                                               "suite": "quick", "model": "tiny", "cells": {},
                                               "backend": {"base_url": "http://127.0.0.1:8123"}}))
    (bench / "r1.requests.jsonl").write_text(json.dumps({"cell": "chat-short", "max_tokens": 64, "stream": True}))
    r = _run("report", str(log), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["backend"] == "lm" and d["command"] and "--port 8123" in d["command"]
    md = d["markdown"]
    assert "hf_abc" not in md and "alice" not in md and "HF_TOKEN=[REDACTED]" in md
    assert "curl -s http://127.0.0.1:8123/v1/chat/completions" in md and '"max_tokens": 64' in md
    assert d["title"].startswith("[mlx-lm] ")
    r = _run("report", str(log), "--backend", "other")
    assert r.returncode == 1 and "other" in r.stderr
