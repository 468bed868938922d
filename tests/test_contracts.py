"""CLI contracts across commands, as a user meets them: one-line errors, exit codes, Ctrl-C, stdout purity."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    pre = ["--config", str(config)] if config else []
    return subprocess.run([sys.executable, "-m", "mlx_console", *pre, *args],
                          capture_output=True, text=True, timeout=60)


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    """A failure is exactly one line on stderr (no traceback) and nothing on stdout."""
    assert r.stdout == "", r.stdout
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    p = tmp_path / "config.toml"
    p.write_text('[[backend]]\nname = "one"\nkind = "mlx-lm"\nmodel = "/nowhere"\n')
    return p


@pytest.mark.parametrize("verb", ["log", "stop", "status", "start", "restart"])
def test_unknown_backend_is_one_line_naming_the_configured_ones(cfg: Path, verb: str) -> None:
    r = cli("backends", verb, "nosuch", config=cfg)
    assert r.returncode == 1
    line = one_line_error(r)
    assert "'nosuch'" in line and "configured: one" in line


@pytest.mark.parametrize("argv", [
    ["backends", "list", "--json"], ["doctor", "--json"], ["triage", "--json", "/dev/null"],
    ["settings", "show", "--json"], ["bench", "run", "--backend", "one", "--json"],
])
def test_bad_config_is_one_line_with_file_line_and_key_for_every_command(tmp_path: Path, argv: list[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('theme = "dark"\ncatalog = ["/ok.toml", 3]\n')
    r = cli(*argv, config=bad)
    if argv[0] == "doctor":  # the doctor reports a bad config as a failed check, still pure JSON
        assert r.returncode == 1 and '"config"' in r.stdout and "Traceback" not in r.stderr
        return
    assert r.returncode == 1
    line = one_line_error(r)
    assert f"{bad}:2:" in line and "'catalog'" in line


@pytest.mark.slow
def test_ctrl_c_mid_bench_run_says_interrupted_and_saves_nothing(tmp_path: Path) -> None:
    # A server that accepts connections and never answers: the run is stuck in its first request.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    state = Path(os.environ["MLX_CONSOLE_STATE_DIR"])
    try:
        p = subprocess.Popen([sys.executable, "-m", "mlx_console", "bench", "run", "--url",
                              f"http://127.0.0.1:{sock.getsockname()[1]}", "--model", "m", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sock.settimeout(60)
        conn, _ = sock.accept()  # the run's first request is in flight: interrupt it there
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        conn.close()
    finally:
        sock.close()
    assert p.returncode == 130
    assert out == ""
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "mlx-console: interrupted"
    assert not list((state / "bench").glob("*.json")) if (state / "bench").exists() else True


def test_bench_out_that_cannot_be_a_directory_is_refused_before_the_run(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    r = cli("bench", "run", "--url", "http://127.0.0.1:9", "--model", "m", "--out", str(a_file / "sub"), "--json")
    assert r.returncode == 1
    assert one_line_error(r).startswith(f"mlx-console: --out {a_file / 'sub'}: cannot create the directory")


def test_triage_follow_of_a_device_says_what_it_is() -> None:
    r = cli("triage", "--follow", "--json", "/dev/null")
    assert r.returncode == 2
    assert one_line_error(r) == "mlx-console triage: /dev/null: not a regular file (--follow needs one; pipe a stream into `-`)"
