"""`mlx-console doctor` through the real CLI in a subprocess: the --json contract, exit status, text output."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlx_console.cli.doctor import render
from mlx_console.core import config as config_mod
from mlx_console.core import doctor


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlx_console", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def checks_by_id(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["id"]: c for c in data["checks"]}


def write_config(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


@pytest.mark.slow
def test_json_contract_with_a_real_server(mlx_server: Any, tmp_path: Path, tiny_model: Path, port: int) -> None:
    cfg = write_config(tmp_path, f"""
[[backend]]
name = "tiny"
kind = "mlx-lm"
model = "{tiny_model}"
port = {mlx_server.port}

[[backend]]
name = "clash"
kind = "omlx"
port = {mlx_server.port}
command = ["{sys.executable}"]

[[backend]]
name = "wide"
kind = "mlx-lm"
model = "{tiny_model}"
host = "0.0.0.0"
port = {port}
""")
    t0 = time.monotonic()
    r = run_cli("--config", str(cfg), "doctor", "--json")
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)  # stdout is the JSON and nothing else
    assert set(data) == {"checks", "versions", "listening"}
    assert set(data["versions"]) == {"python", "mlx", "mlx_lm", "omlx"}
    assert data["versions"]["mlx_lm"] and data["versions"]["mlx"]
    assert data["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    for c in data["checks"]:
        assert set(c) == {"id", "status", "detail", "fix"} and c["status"] in ("pass", "warn", "fail")
        assert c["detail"] and "\n" not in c["detail"] and "\n" not in c["fix"]
        assert c["status"] == "pass" or c["fix"], c  # every warn/fail says what to do
    for x in data["listening"]:
        assert set(x) == {"port", "pid", "process", "backend"}
    [srv] = [x for x in data["listening"] if x["port"] == mlx_server.port]
    assert (srv["pid"], srv["backend"]) == (mlx_server.proc.pid, "mlx-lm")
    by = checks_by_id(data)
    assert by["port:tiny"]["status"] == "pass" and str(mlx_server.proc.pid) in by["port:tiny"]["detail"]
    assert by["port:clash"]["status"] == "warn" and "mlx-lm" in by["port:clash"]["detail"]
    assert by["bind:wide"]["status"] == "warn" and "no API key" in by["bind:wide"]["detail"]
    assert by["model:tiny"]["status"] == "pass" and "needs ~" in by["model:tiny"]["detail"]
    assert by["mlx"]["status"] == "pass" and "default device" in by["mlx"]["detail"]
    assert by["hf_cache"]["status"] == "pass"  # the test's own HF_HUB_CACHE exists
    assert {"platform", "memory", "memory_pressure", "python", "mlx_lm", "omlx", "config",
            "state_dir"} <= set(by)
    assert elapsed < 10  # includes interpreter start; the doctor itself is timed below


def test_failing_check_exits_1_and_still_checks_the_machine(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, 'bogus = 1\n')
    r = run_cli("--config", str(cfg), "doctor", "--json")
    assert r.returncode == 1
    by = checks_by_id(json.loads(r.stdout))
    assert by["config"]["status"] == "fail" and "unknown key 'bogus'" in by["config"]["detail"]
    assert str(cfg) in by["config"]["detail"] and by["platform"]["status"] == "pass"


def test_missing_model_dir_fails(tmp_path: Path) -> None:
    empty = tmp_path / "no-weights"
    empty.mkdir()
    (empty / "config.json").write_text('{"model_type": "llama"}')
    cfg = write_config(tmp_path, f'[[backend]]\nname = "x"\nkind = "mlx-lm"\nmodel = "{empty}"\n'
                                 f'[[backend]]\nname = "y"\nkind = "mlx-lm"\nmodel = "{tmp_path}/gone"\nport = 1\n')
    r = run_cli("--config", str(cfg), "doctor", "--json")
    assert r.returncode == 1
    by = checks_by_id(json.loads(r.stdout))
    assert by["model:x"]["status"] == "fail" and "No safetensors found" in by["model:x"]["detail"]
    assert by["model:y"]["status"] == "fail" and "does not exist" in by["model:y"]["detail"]


def test_missing_hf_cache_warns(tmp_path: Path) -> None:
    r = run_cli("doctor", "--json", env={"HF_HUB_CACHE": str(tmp_path / "nope")})
    assert r.returncode == 0
    hf = checks_by_id(json.loads(r.stdout))["hf_cache"]
    assert hf["status"] == "warn" and "empty body" in hf["detail"] and hf["fix"] == f"mkdir -p {tmp_path / 'nope'}"


def test_text_output_plain_when_piped_and_aligned() -> None:
    r = run_cli("doctor")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "\033[" not in r.stdout
    lines = r.stdout.splitlines()
    check_lines = [ln for ln in lines if ln[:4] in ("PASS", "WARN", "FAIL")]
    assert len(check_lines) >= 8
    col = 6 + max(len(ln.split()[1]) for ln in check_lines) + 2
    assert all(ln[col - 2:col] == "  " and ln[col] != " " for ln in check_lines)  # details in one column
    assert any(ln.startswith("versions: python ") for ln in lines)
    assert lines[-1].endswith(" s)") and " pass, " in lines[-1]


def test_colour_only_for_tty_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    report = doctor.run(config_mod.load())
    assert "\033[32mPASS" in render(report, color=True)
    assert "\033[" not in render(report, color=False)
    from mlx_console.cli.doctor import use_color

    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(Tty())  # type: ignore[arg-type]
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(Tty())  # type: ignore[arg-type]


@pytest.fixture
def plain_port_listener() -> Any:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


def test_doctor_is_fast_and_reports_a_taken_profile_port(tmp_path: Path, plain_port_listener: int) -> None:
    cfg = config_mod.parse({"backend": [{"name": "p", "kind": "omlx", "port": plain_port_listener,
                                         "command": [sys.executable], "base_path": str(tmp_path / "om")}]},
                           tmp_path / "c.toml")
    report = doctor.run(cfg)
    assert report.elapsed_s < 2.0
    by = {c.id: c for c in report.checks}
    assert by["port:p"].status == "warn" and f"pid {os.getpid()}" in by["port:p"].detail
    assert "not a known LLM backend" in by["port:p"].detail
    assert [x.pid for x in report.listening if x.port == plain_port_listener] == [os.getpid()]
    assert by["models:p"].status == "warn" and str(tmp_path / "om" / "models") in by["models:p"].detail
