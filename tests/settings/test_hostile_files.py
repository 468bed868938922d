"""Odd settings files, odd places, odd permissions (issue 13): one line, no traceback, the file intact.

Permission cases run as an unprivileged user (`useradd`, `runuser -u`): root ignores file modes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlx_console.cli import main

GOOD = '{\n  "version": 1,\n  "models": {\n    "m": {\n      "top_k": 1\n    }\n  }\n}'
USER = "mlxc-unpriv"
SRC = Path(__file__).resolve().parents[2] / "src"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["settings", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1 and "Traceback" not in err and lines and lines[0].startswith("mlx-console: "), err
    return lines[0]


@pytest.mark.parametrize("text, needle", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"version":1,"models":' + '{"a":' * 50_000 + "1" + "}" * 50_001, "nested too deeply"),
    ('{"version":1,"models":{"m":{"max_tokens":' + "9" * 5000 + "}}}", "4300 digits"),
    ('{"version":1,"models":{"\\ud800":{"top_k":1}}}', "lone surrogate"),
])
@pytest.mark.parametrize("cmd", [["show"], ["validate"], ["show", "--json"], ["set", "--offline", "m", "top_k=5"],
                                 ["diff", "--against", "BASE"]])
def test_odd_files_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str,
                                cmd: list[str]) -> None:
    f = tmp_path / "model_settings.json"
    f.write_text(text, encoding="utf-8", errors="surrogatepass")
    before = f.read_bytes()
    argv = [c.replace("BASE", str(f)) for c in cmd]
    code, _, err = run(capsys, argv[0], "--file", str(f), *argv[1:])
    assert needle in one_line_error(code, err)
    assert f.read_bytes() == before


def test_a_value_too_large_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "model_settings.json"
    f.write_text(GOOD)
    for value in ("max_tokens=" + "9" * 5000, "dflash_in_memory_cache_max_bytes=" + "9" * 400 + "GB", "chat_template_kwargs="
                  + "[" * 50_000 + "]" * 50_000):
        code, _, err = run(capsys, "set", "--file", str(f), "--offline", "--force", "m", value)
        assert "is not allowed" in one_line_error(code, err)
    assert f.read_text() == GOOD


def test_diff_against_a_model_that_is_not_an_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f, base = tmp_path / "model_settings.json", tmp_path / "base.json"
    f.write_text('{"version": 1, "models": {"m": "x", "n": {"top_k": 2}}}')
    base.write_text('{"version": 1, "models": {"m": {"top_k": 1}, "n": "y"}}')
    code, out, err = run(capsys, "diff", "--file", str(f), "--against", str(base), "--json")
    assert code in (0, 1) and "Traceback" not in err
    doc = json.loads(out)
    assert {(d["model"], d["key"]) for d in doc["differences"]} == {("m", "top_k"), ("n", "top_k")}


@pytest.mark.slow
def test_diff_against_is_linear_in_models(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f, base = tmp_path / "model_settings.json", tmp_path / "base.json"
    f.write_text(json.dumps({"version": 1, "models": {f"m{i}": {"top_k": i % 50, "temperature": 0.5}
                                                      for i in range(20_000)}}))
    base.write_text(json.dumps({"version": 1, "models": {f"m{i}": {"top_k": (i + 1) % 50, "temperature": 0.5}
                                                         for i in range(20_000)}}))
    t0 = time.monotonic()
    code, out, _ = run(capsys, "diff", "--file", str(f), "--against", str(base), "--json")
    took = time.monotonic() - t0
    doc = json.loads(out)
    assert doc["count"] == 20_000 and doc["diff"].count("\n-    \"top_k\"") == 20_000
    assert took < 30, took  # was > 300 s (difflib over the whole text, a summary quadratic in models)


def test_set_on_a_symlink_writes_through_to_its_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = tmp_path / "real" / "model_settings.json"
    real.parent.mkdir()
    real.write_text(GOOD)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    code, _, err = run(capsys, "set", "--file", str(link), "--offline", "m", "top_k=5")
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert json.loads(real.read_text())["models"]["m"]["top_k"] == 5


def test_a_dangling_symlink_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "model_settings.json"
    link.symlink_to(tmp_path / "gone" / "x.json")
    for argv in (["show"], ["set", "--offline", "m", "top_k=5"]):
        code, _, err = run(capsys, argv[0], "--file", str(link), *argv[1:])
        assert "is a symlink to" in one_line_error(code, err) and "does not exist" in err
    assert link.is_symlink() and not (tmp_path / "gone").exists()


def test_a_read_only_file_is_not_replaced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "model_settings.json"
    f.write_text(GOOD)
    f.chmod(0o444)
    code, _, err = run(capsys, "set", "--file", str(f), "--offline", "m", "top_k=5")
    assert "read-only (mode 0444)" in one_line_error(code, err) and "chmod u+w" in err
    assert f.read_text() == GOOD and f.stat().st_mode & 0o777 == 0o444


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A dir another user can reach (pytest's own tmp dirs are 0700)."""
    d = Path(tempfile.mkdtemp(prefix="mlx-console-perm-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def as_user(shared_dir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `mlx-console ARGS` as an unprivileged user (created once), with this checkout's code."""
    if os.geteuid() != 0 or not shutil.which("runuser") or not shutil.which("useradd"):
        pytest.skip("needs root, runuser and useradd")
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                       check=True, capture_output=True)
    # This interpreter may live under /root (0700): the user runs the system one of the same version.
    python = next((p for p in (sys.executable, f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}")
                   if subprocess.run(["runuser", "-u", USER, "--", p, "-c", "pass"],
                                     capture_output=True).returncode == 0), None)
    if python is None:
        pytest.skip(f"no Python {sys.version_info[:2]} that {USER} can run")
    for parent in shared_dir.parents:
        if parent.stat().st_mode & 0o005 != 0o005:
            pytest.skip(f"{parent} is not reachable by {USER}")
    site = sysconfig.get_paths()["purelib"]
    runuser = shutil.which("runuser") or "runuser"

    def run_as(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{SRC}:{site}", "MLX_CONSOLE_STATE_DIR": str(state),
               "MLX_CONSOLE_CONFIG": str(shared_dir / "no-config.toml"), "HOME": str(shared_dir)}
        return subprocess.run([runuser, "-u", USER, "--", python, "-m", "mlx_console", *args],
                              capture_output=True, text=True, env=env, timeout=60)

    return run_as


def _uid() -> int:
    return int(subprocess.run(["id", "-u", USER], capture_output=True, text=True, check=True).stdout)


@pytest.mark.slow
def test_a_read_only_dir_and_an_unwritable_state_dir_are_one_line(
        shared_dir: Path, as_user: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    tmp_path, uid = shared_dir, _uid()
    ro = tmp_path / "ro"
    ro.mkdir()
    f = ro / "model_settings.json"
    f.write_text(GOOD)
    os.chown(f, uid, -1)  # the user may write the file, not the dir it is in
    ro.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, uid, -1)
    r = as_user("settings", "set", "--file", str(f), "--offline", "m", "top_k=5", state=state)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("mlx-console")]
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    assert "Permission denied" in lines[0] and "unchanged" in lines[0]
    assert f.read_text() == GOOD
    # The file's dir is writable, the state dir (backups, locks) is not.
    os.chown(ro, uid, -1)
    locked = tmp_path / "locked-state"
    locked.mkdir(mode=0o755)
    r = as_user("settings", "set", "--file", str(f), "--offline", "m", "top_k=5", state=locked)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("mlx-console")]
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    assert "Permission denied" in lines[0] and str(locked) in lines[0]
    assert f.read_text() == GOOD
    # A state dir that cannot even be created: every command that needs it says so in one line.
    r = as_user("bench", "history", state=locked / "sub")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "Permission denied" in r.stderr, r.stderr
