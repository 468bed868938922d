"""`mlx-console triage` as a user runs it: a real subprocess on real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.proc_output import Lines

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "logs"
KEYS = ["line", "end_line", "categories", "pattern", "severity", "title", "first_move", "references"]


def _run(*args: str, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlx_console", *args],
        input=stdin, capture_output=True, timeout=60, env=env or os.environ.copy(),
    )


def test_json_output_is_one_object_per_event_and_nothing_else() -> None:
    r = _run("triage", str(FIXTURES / "mlx_lm_no_safetensors.log"), "--json")
    assert r.returncode == 0, r.stderr
    objs = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert len(objs) == 1
    o = objs[0]
    assert list(o)[: len(KEYS)] == KEYS
    assert (o["line"], o["end_line"], o["categories"], o["pattern"], o["severity"]) == (
        5, 23, ["model_load_missing_weights", "server_hang"], "weights-missing", "error"
    )
    assert o["references"] and all(u.startswith("https://github.com/") for u in o["references"])


def test_all_adds_unrecognised_error_and_warning_events() -> None:
    r = _run("triage", str(FIXTURES / "mlx_lm_clean.log"), "--json", "--all")
    objs = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert [(o["line"], o["categories"], o["pattern"], o["severity"]) for o in objs] == [
        (2, [], None, "warning"), (26, [], None, "error"),
    ]
    assert _run("triage", str(FIXTURES / "mlx_lm_clean.log"), "--json").stdout == b""


def test_text_output_blocks_and_summary() -> None:
    r = _run("triage", str(FIXTURES / "mlx_lm_model_not_found_offline.log"))
    out = r.stdout.decode()
    assert r.returncode == 0
    assert "lines 5-67  [model_not_found, server_hang]  error  Model not found" in out
    assert "first move: " in out and "see: https://" in out
    assert out.strip().endswith("1 event(s): model_not_found 1, server_hang 1")


def test_clean_log_says_so() -> None:
    r = _run("triage", str(FIXTURES / "omlx_clean.log"))
    assert r.returncode == 0 and b"no known problems found" in r.stdout


def test_stdin() -> None:
    r = _run("triage", "-", "--json", stdin=b"noise\nOSError: [Errno 98] Address already in use\n")
    [o] = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert (o["line"], o["categories"]) == (2, ["port_in_use"])


@pytest.mark.parametrize(("path", "msg"), [("/no/such/file.log", "no such file"), ("/tmp", "is a directory")])
def test_unreadable_file_exits_2(path: str, msg: str) -> None:
    r = _run("triage", path, "--json")
    assert r.returncode == 2 and r.stdout == b""
    assert f"mlx-console triage: {path}: {msg}" in r.stderr.decode()


def test_user_catalogue_from_config(tmp_path: Path) -> None:
    cat = tmp_path / "mine.toml"
    cat.write_text(
        "[[entry]]\nid = 'site-oom'\ncategory = 'oom_inference'\npatterns = ['our watchdog killed pid \\d+']\n"
        "severity = 'error'\ntitle = 'Watchdog kill'\ncause = 'c'\nfirst_move = 'm'\n"
    )
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'catalog = "{cat}"\n')
    log = tmp_path / "x.log"
    log.write_text("our watchdog killed pid 4242\n")
    r = _run("--config", str(cfg), "triage", str(log), "--json")
    assert [json.loads(x)["pattern"] for x in r.stdout.decode().splitlines()] == ["site-oom"]
    cat.write_text(cat.read_text().replace("\\d+", "(\\d+"))
    r = _run("--config", str(cfg), "triage", str(log), "--json")
    assert r.returncode == 1 and r.stdout == b""
    err = r.stderr.decode()
    assert str(cat) in err and "line 1" in err and "'site-oom'" in err and "invalid regex" in err


@pytest.mark.slow
def test_follow_reports_new_events_and_stops_on_sigint(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("2026-11-25 13:22:31,030 - INFO - Starting httpd at 127.0.0.1 on port 8080...\nhalf-writ")
    p = subprocess.Popen(
        [sys.executable, "-m", "mlx_console", "triage", str(log), "--follow", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = Lines(p.stdout), Lines(p.stderr)
    try:
        err.wait_for_line("following")
        with log.open("a") as w:
            w.write("ten line\n2026-11-25 13:22:40,000 - ERROR - mlx_lm.server generation thread died: boom\n")
            w.write("Traceback (most recent call last):\n  File \"x.py\", line 1, in f\nRuntimeError: boom\n")
        out.wait(lambda lines: len(lines) >= 1, what="the open event, reported after a quiet second")
        with log.open("a") as w:
            w.write("OSError: [Errno 48] Address already in use\n")
        out.wait(lambda lines: len(lines) >= 2, what="the second event")
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=10)
    objs = [json.loads(line) for line in out.close().splitlines()]
    assert [(o["line"], o["end_line"], o["categories"]) for o in objs] == [
        (3, 6, ["server_hang"]), (7, 7, ["port_in_use"]),
    ], err.close()
    assert p.returncode == 0


@pytest.mark.slow
def test_follow_waits_for_a_missing_file(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    p = subprocess.Popen(
        [sys.executable, "-m", "mlx_console", "triage", str(log), "--follow", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = Lines(p.stdout), Lines(p.stderr)
    try:
        err.wait_for_line("following")
        log.write_text("OSError: [Errno 98] Address already in use\n")
        out.wait(lambda lines: len(lines) >= 1, what="the event of the file that appeared")
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=10)
    assert [json.loads(x)["categories"] for x in out.close().splitlines()] == [["port_in_use"]]
    assert "does not exist yet" in err.close() and p.returncode == 0


def test_a_state_dir_whose_cache_is_a_file_still_triages(tmp_path: Path) -> None:
    """The pattern database and the catalogue cache cannot be written: triage works, only slower (it once said
    "cannot read: Not a directory" about the log)."""
    state = tmp_path / "state-with-a-file"
    state.mkdir()
    (state / "cache").write_text("not a directory")
    r = _run("triage", str(FIXTURES / "mlx_lm_no_safetensors.log"), "--json",
             env={**os.environ, "MLX_CONSOLE_STATE_DIR": str(state)})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.decode().splitlines()[0])["categories"][0] == "model_load_missing_weights"
