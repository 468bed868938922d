"""The stand-in's command line and process life: help, version, settings.json precedence, output, signals."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import httpx
import pytest
from omlx_harness import REAL, free_port, make_model, run_cli
from omlx_harness import StandinFactory as StartStandin


def flags(help_text: str) -> list[str]:
    return sorted(set(re.findall(r"--[a-z][a-z0-9-]+", help_text)))


def test_serve_help_lists_the_flags_of_omlx_0_5_0() -> None:
    r = run_cli("serve", "--help")
    assert r.returncode == 0
    assert flags(r.stdout) == flags((REAL / "serve-help.txt").read_text())
    assert "--standin" not in r.stdout  # the fault-injection flags stay hidden
    assert r.stdout.startswith("usage: omlx serve [-h] [--model-dir MODEL_DIR]")


def test_version_and_top_level_help() -> None:
    r = run_cli("--version")
    assert (r.returncode, r.stdout.strip()) == (0, "0.5.0")
    top = run_cli("--help").stdout
    assert "{start,stop,restart,serve,launch,diagnose}" in top


def test_background_start_is_refused_like_a_source_install() -> None:
    r = run_cli("start")
    assert r.returncode == 1
    assert "Background start is available for the macOS app and Homebrew installs." in r.stdout


def test_bad_flag_value_is_an_argparse_error() -> None:
    r = run_cli("serve", "--memory-guard", "huge")
    assert r.returncode == 2
    assert "invalid choice: 'huge'" in r.stderr


def test_invalid_saved_setting_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text(json.dumps({"server": {"log_level": "loud"}}))
    r = run_cli("serve", "--base-path", str(tmp_path), "--port", str(free_port()))
    assert r.returncode == 1
    assert "Configuration error: Invalid log_level: loud (must be one of" in r.stdout
    assert json.loads((tmp_path / "settings.json").read_text()) == {"server": {"log_level": "loud"}}


@pytest.mark.slow
def test_startup_output_and_saved_cli_arguments(start_standin: StartStandin) -> None:
    s = start_standin()
    out = s.stdout()
    for line in ("Saved CLI arguments to settings.json", f"Log directory: {s.base / 'logs'}",
                 f"Binding server at http://127.0.0.1:{s.port}", f"Starting server at http://127.0.0.1:{s.port}",
                 "Mode: Multi-model serving (continuous batching + paged SSD cache)"):
        assert line in out
    err = s.stderr()
    assert re.search(r"^INFO:     Started server process \[\d+\]$", err, re.M)
    assert "INFO:     Application startup complete.\n" in err
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - omlx\.server - INFO - Default model: tiny-llama$",
                     err, re.M)
    saved = json.loads((s.base / "settings.json").read_text())
    assert saved["server"]["port"] == s.port
    assert saved["auth"]["api_key"] == "sekrit"  # plaintext, as oMLX stores it
    assert (s.base / "logs" / "crash.log").exists()


@pytest.mark.slow
def test_precedence_cli_over_env_over_file(start_standin: StartStandin, tmp_path: Path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "tiny-llama")
    file_port, env_port = free_port(), free_port()
    (base / "settings.json").write_text(json.dumps({"server": {"port": file_port, "host": "127.0.0.1"}}))
    s = start_standin(base=base, port=file_port, port_flag=False, api_key=None)
    assert "Saved CLI arguments" not in s.stdout()  # nothing given on the command line
    assert f"Starting server at http://127.0.0.1:{file_port}" in s.stdout()
    s.stop()
    s2 = start_standin(base=base, port=env_port, port_flag=False, api_key=None, env={"OMLX_PORT": str(env_port)})
    assert f"Starting server at http://127.0.0.1:{env_port}" in s2.stdout()
    s2.stop()
    cli_port = free_port()
    s3 = start_standin(base=base, port=cli_port, api_key=None, env={"OMLX_PORT": str(env_port)})
    assert f"Starting server at http://127.0.0.1:{cli_port}" in s3.stdout()
    # The supervisor's --port overwrote the user's saved port: the trap of backends.md §2.1.
    assert json.loads((base / "settings.json").read_text())["server"]["port"] == cli_port


@pytest.mark.slow
def test_api_key_alone_does_not_save_cli_arguments(start_standin: StartStandin, tmp_path: Path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "tiny-llama")
    port = free_port()
    (base / "settings.json").write_text(json.dumps({"server": {"port": port}}))
    s = start_standin(base=base, port=port, port_flag=False, api_key="k1")
    assert "Saved CLI arguments" not in s.stdout()
    # ...but the file is rewritten anyway at first start (new secret key), with the key in it.
    assert json.loads((base / "settings.json").read_text())["auth"]["api_key"] == "k1"


@pytest.mark.slow
def test_sigterm_shuts_down_like_uvicorn(start_standin: StartStandin) -> None:
    s = start_standin()
    httpx.post(f"{s.base_url}/v1/models/tiny-llama/load", headers={"Authorization": "Bearer sekrit"}, timeout=10)
    rc = s.stop(signal.SIGTERM)
    assert rc == -signal.SIGTERM  # uvicorn re-raises SIGTERM after the graceful shutdown (exit status 143)
    err = s.stderr()
    assert err.rstrip().endswith(f"INFO:     Finished server process [{s.proc.pid}]")
    assert "INFO:     Shutting down" in err and "INFO:     Application shutdown complete." in err
    assert "Unloaded model: tiny-llama" in s.log_text()


@pytest.mark.slow
def test_sigint_exits_zero(start_standin: StartStandin) -> None:
    s = start_standin()
    assert s.stop(signal.SIGINT) == 0


@pytest.mark.slow
def test_port_taken_fails_fast(start_standin: StartStandin) -> None:
    s = start_standin()
    other = start_standin(port=s.port, wait=False)
    assert other.proc.wait(10) == 1
    assert "address already in use" in other.stderr()


@pytest.mark.slow
def test_trace_level_logs_bodies_and_no_access_log(start_standin: StartStandin) -> None:
    s = start_standin("--log-level", "trace")
    body = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    s.client().post("/v1/chat/completions", json=body)
    log = s.wait_log("generated text:")  # logged as the request finishes, maybe after the reply is sent
    raw = json.dumps(body, separators=(",", ":"))  # httpx sends compact JSON
    assert f"omlx.server - TRACE - [-] - Incoming POST /v1/chat/completions — body: {raw}" in log
    assert "omlx.server - TRACE - [-] -   Message[0]: role=user, content=hi..." in log
    assert re.search(r"omlx\.scheduler - TRACE - \[-\] - Request [0-9a-f-]{36} generated text:\n", log)
    assert '"POST /v1/chat/completions' not in s.stderr()  # uvicorn's access log stays off (measured)
