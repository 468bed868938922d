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
    clash = config_mod.parse({"backend": [
        {"name": "clash", "kind": "omlx", "port": mlx_server.port, "command": [sys.executable]},
        {"name": "twin", "kind": "omlx", "port": port, "command": [sys.executable]},
        {"name": "twin2", "kind": "mlx-lm", "model": "m", "port": port}]}, tmp_path / "c.toml")
    by2 = {c.id: c for c in doctor.run(clash).checks}
    assert by2["port:clash"].status == "warn" and "is mlx-lm" in by2["port:clash"].detail
    assert f"stop pid {mlx_server.proc.pid}" in by2["port:clash"].fix
    assert by2["port:twin"].status == "warn" and "also the port of profile(s) twin2" in by2["port:twin"].detail
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


def test_render_colours_only_the_status() -> None:
    report = doctor.run(config_mod.load())
    coloured, plain = render(report, color=True), render(report, color=False)
    assert "\033[32mPASS\033[0m" in coloured and "\033[" not in plain
    assert len(coloured.splitlines()) == len(plain.splitlines())


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
    print(render(report, color=False))  # shown when an assertion below fails
    assert report.elapsed_s < 3.0  # ~0.1-0.3 s measured here; slack for a loaded CI box
    by = {c.id: c for c in report.checks}
    assert by["port:p"].status == "warn" and f"pid {os.getpid()}" in by["port:p"].detail
    assert "not a known LLM backend" in by["port:p"].detail
    assert [x.pid for x in report.listening if x.port == plain_port_listener] == [os.getpid()]
    assert by["models:p"].status == "warn" and str(tmp_path / "om" / "models") in by["models:p"].detail


def test_version_specific_checks(tmp_path: Path) -> None:
    omlx_profile = config_mod.parse({"backend": [{"name": "o", "kind": "omlx"}]}, tmp_path / "c.toml")
    c = doctor._omlx_check("0.5.0", "python package", None, "0.32.2")
    assert c.status == "warn" and "SequenceStateMachine" in c.detail and "0.31.3" in c.fix
    assert doctor._omlx_check("0.5.0", "python package", None, "0.31.3").status == "pass"
    assert doctor._omlx_check("0.5.0", "/opt/homebrew/bin/omlx", None, "0.32.2").status == "pass"  # own env
    c = doctor._omlx_check(None, "not found", omlx_profile, None)
    assert c.status == "fail" and "'omlx'" in c.detail
    assert doctor._omlx_check("0.5.0", "omlx", omlx_profile, None).status == "fail"  # profile's command missing
    assert doctor.omlx_version([[sys.executable, "-c", "print('0.6.1')"]]) == ("0.6.1", f"{sys.executable} -c print('0.6.1')")
    assert doctor.omlx_version([[sys.executable, "-c", "pass"]]) == (None, "not found")
    assert doctor.omlx_version([[sys.executable, "-c", "print('omlx 0.7.0.dev1')"]])[0] == "0.7.0.dev1"
    assert doctor._omlx_check(None, "not found", None, None).status == "pass"
    assert "before 0.32.2" in doctor._mlx_lm_check("0.32.0", None).detail
    mlx_profile = config_mod.parse({"backend": [{"name": "m", "kind": "mlx-lm", "model": "x"}]}, tmp_path / "c")
    assert doctor._mlx_lm_check(None, mlx_profile).status == "fail"
    assert doctor._mlx_lm_check(None, None).status == "warn"


STANDIN = Path(__file__).resolve().parents[1] / "standins" / "omlx_standin.py"


@pytest.mark.slow
@pytest.mark.skipif(not STANDIN.exists(), reason="the oMLX stand-in lands from the standin branch")
def test_omlx_standin_with_api_key_is_confirmed(tmp_path: Path, port: int) -> None:
    base = tmp_path / "omlx"
    (base / "models").mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, str(STANDIN), "serve", "--base-path", str(base), "--port", str(port),
                             "--api-key", "sekrit"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        from mlx_console.core.machine import system

        [locked] = system.listeners([port], probe=True, probe_ports=[port])
        # 401 on /v1/models, but oMLX's open /health (engine_pool) confirms it
        assert (locked.pid, locked.backend, locked.confirmed, locked.auth_required) == (proc.pid, "omlx", True, True)
        assert "sekrit" not in locked.command
        owner = system.owner_of(port, api_key="sekrit")
        assert owner is not None and (owner.backend, owner.confirmed, owner.auth_required) == ("omlx", True, False)
        cfg = config_mod.parse({"backend": [{"name": "om", "kind": "omlx", "port": port, "api_key": "sekrit",
                                             "base_path": str(base), "command": [sys.executable, str(STANDIN)]}]},
                               tmp_path / "c.toml")
        report = doctor.run(cfg)
        assert report.versions["omlx"] == "0.5.0"  # from the profile's command: `… omlx_standin.py --version`
        by = {c.id: c for c in report.checks}
        assert by["omlx"].status == "pass" and by["models:om"].status == "warn"  # no models in base/models
        assert by["port:om"].status == "pass" and "is omlx" in by["port:om"].detail
        assert "sekrit" not in by["port:om"].detail
    finally:
        proc.terminate()
        proc.wait(10)


def test_bind_checks_for_profiles_and_live_listeners(tmp_path: Path) -> None:
    cfg = config_mod.parse({"backend": [
        {"name": "lan", "kind": "mlx-lm", "model": "x", "host": "0.0.0.0"},
        {"name": "keyed", "kind": "omlx", "host": "192.168.1.5", "api_key": "k"},
        {"name": "open", "kind": "omlx", "host": "::"},
        {"name": "local", "kind": "omlx", "host": "127.0.0.1"}]}, tmp_path / "c.toml")
    from mlx_console.core.machine.system import Listener

    live = [Listener(port=8080, addresses=["0.0.0.0"], pid=1, backend="mlx-lm"),
            Listener(port=8000, addresses=["0.0.0.0"], pid=2, backend="omlx", auth_required=True),
            Listener(port=9000, addresses=["127.0.0.1", "::1"], pid=3, backend="omlx"),
            Listener(port=22, addresses=["0.0.0.0"], pid=4, backend="unknown")]
    by = {c.id: c for c in doctor._bind_checks(cfg, live)}
    assert set(by) == {"bind:lan", "bind:open", "exposed:8080"}
    assert "mlx_lm.server has no API key" in by["bind:lan"].detail
    assert all(c.status == "warn" and c.fix for c in by.values())


def test_mac_checks_from_fixture_facts() -> None:
    """The macOS branches, fed with facts parsed from the captured outputs (tests/system/test_parse.py)."""
    from mlx_console.core.machine import system
    from mlx_console.core.machine.parse import GIB

    fx = Path(__file__).parent / "fixtures" / "macos"
    profiler = (fx / "macstudio-m4max-128gb-Mac16-9-system_profiler-SPHardwareDataType-filtered-with-stderr.txt")
    chip = system.chip_macos(profiler.read_text(), "machdep.cpu.brand_string: Apple M4 Max\n", "macOS 26.4")
    c = doctor._platform_check(chip, None, mac=True)
    assert c.status == "pass" and "Apple M4 Max" in c.detail and "not macOS" not in c.detail
    intel = system.chip_macos("Processor Name: 6-Core Intel Core i7\n", None)
    assert doctor._platform_check(intel, None, mac=True).status == "fail"
    mem = system.memory_macos("hw.memsize: 137438953472\nkern.memorystatus_vm_pressure_level: 4\n"
                              "iogpu.wired_limit_mb: 114688\nvm.swapusage: total = 2048.00M  used = 2000.00M  "
                              "free = 48.00M  (encrypted)\n", "System-wide memory free percentage: 40%\n")
    by = {c.id: c for c in doctor._memory_checks(mem, None, mac=True)}
    assert by["memory_pressure"].status == "fail" and "kernel level 4" in by["memory_pressure"].detail
    assert by["memory"].status == "warn" and "swap is nearly full" in by["memory"].fix
    assert by["metal_working_set"].status == "pass" and "112.0 GiB" in by["metal_working_set"].detail
    assert "iogpu.wired_limit_mb=114688" in by["metal_working_set"].detail
    mem.working_set, mem.wired_limit_mb = None, 0
    assert {c.id: c for c in doctor._memory_checks(mem, None, mac=True)}["metal_working_set"].status == "warn"
    cpu = system.MlxProbe(version="0.32.4", device="Device(cpu, 0)")
    assert doctor._mlx_check(cpu, None, mac=True).status == "warn"
    assert doctor._mlx_check(cpu, None, mac=False).status == "pass"
    assert doctor._mlx_check(system.MlxProbe(error="No module named 'mlx'"), None).status == "fail"
    assert mem.total == 128 * GIB and mem.working_set is None


@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("1", False)])
def test_colour_on_a_real_tty(no_color: str | None, coloured: bool) -> None:
    import pty

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    if no_color:
        env["NO_COLOR"] = no_color
    proc = subprocess.Popen([sys.executable, "-m", "mlx_console", "doctor"], stdout=slave,
                            stderr=subprocess.DEVNULL, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the tty
            break
        if not chunk:
            break
        out += chunk
    proc.wait(30)
    os.close(master)
    assert b"PASS" in out
    assert (b"\x1b[32mPASS" in out) is coloured
