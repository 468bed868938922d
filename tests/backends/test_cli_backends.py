"""`mlx-console backends …` as scripts use it: real processes, captured output, --json contracts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from mlx_console.core.backends.mlx_lm import MlxLmKind
from mlx_console.core.backends.omlx import OmlxKind
from mlx_console.core.config import Profile

sys.path.insert(0, str(Path(__file__).parent))

KEYS = ["name", "kind", "status", "pid", "port", "model", "uptime_s", "rss_bytes", "log"]


def cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlx_console", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_start_list_stop_contracts(write_config, tiny_model: Path, port: int, tmp_path: Path) -> None:
    write_config({"name": "a", "kind": "mlx-lm", "model": str(tiny_model), "port": port},
                 {"name": "b", "kind": "mlx-lm", "model": str(tmp_path / "missing"), "port": port + 1})
    # A started backend never holds the CLI's stdout/stderr: capture_output returns as soon as the CLI exits.
    t0 = time.monotonic()
    r = cli("backends", "start", "a")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 20
    r = cli("backends", "start", "a", "--wait", "60")
    assert r.returncode == 0 and "a: ready" in r.stdout, r.stderr

    r = cli("backends", "list", "--json")
    assert r.returncode == 0 and r.stderr == ""
    rows = json.loads(r.stdout)
    assert [list(row)[:9] for row in rows] == [KEYS, KEYS]
    a, b = rows
    assert a["status"] == "ready" and a["port"] == port and a["model"] == str(tiny_model)
    assert psutil.Process(a["pid"]).ppid() == a["supervisor_pid"] and a["rss_bytes"] > 0
    assert a["log"].endswith("server.log") and isinstance(a["uptime_s"], float)
    assert b["status"] == "stopped" and b["pid"] is None

    r = cli("backends", "list")
    assert r.returncode == 0 and "ready" in r.stdout and str(a["pid"]) in r.stdout

    r = cli("backends", "stop", "a")
    assert r.returncode == 0 and "stopped" in r.stdout
    assert not psutil.pid_exists(a["pid"]) or psutil.Process(a["pid"]).status() == psutil.STATUS_ZOMBIE
    r = cli("backends", "stop", "a")
    assert r.returncode == 0 and "already stopped" in r.stdout

    r = cli("backends", "start", "b", "--wait", "5")
    assert r.returncode == 1 and "does not exist" in r.stderr and r.stdout == ""
    r = cli("backends", "start", "nope")
    assert r.returncode == 1 and "no backend named 'nope'" in r.stderr


@pytest.mark.slow
def test_start_refuses_a_taken_port_naming_the_owner(write_config, mlx_server, tiny_model: Path) -> None:
    write_config({"name": "a", "kind": "mlx-lm", "model": str(tiny_model), "port": mlx_server.port})
    r = cli("backends", "start", "a", "--wait", "30")
    assert r.returncode == 1
    assert f"port {mlx_server.port} is taken by pid {mlx_server.proc.pid}" in r.stderr and "mlx-lm" in r.stderr


def test_status_json_of_a_never_started_backend(write_config, tiny_model: Path, port: int) -> None:
    write_config({"name": "a", "kind": "mlx-lm", "model": str(tiny_model), "port": port})
    r = cli("backends", "status", "a", "--json")
    assert r.returncode == 0
    d = json.loads(r.stdout)
    assert list(d)[:9] == KEYS and d["status"] == "stopped" and d["pid"] is None


def test_describe_and_discover_json_of_a_never_started_backend(write_config, tiny_model: Path, port: int) -> None:
    """What the console reads of a [[host]]'s backend over ssh: `backends describe` and `models --discover`."""
    write_config({"name": "a", "kind": "mlx-lm", "model": str(tiny_model), "port": port})
    r = cli("backends", "describe", "a", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert list(info)[:9] == KEYS and info["status"] == "stopped"
    assert info["triage"] == [] and isinstance(info["advice"], list)
    r = cli("backends", "models", "a", "--discover", "--json")
    assert r.returncode == 0, r.stderr
    models = json.loads(r.stdout)
    assert [list(m) for m in models] == [["id", "path", "size", "source", "fit", "fit_reason", "advice"]]
    assert models[0]["path"] == str(tiny_model) and models[0]["fit"] == "ok" and models[0]["size"] > 0
    r = cli("backends", "describe", "nosuch", "--json")
    assert r.returncode == 1 and "no backend named 'nosuch'" in r.stderr


def test_non_loopback_without_key_warns() -> None:
    assert MlxLmKind().exposure_warning(Profile(name="x", kind="mlx-lm", model="m", host="0.0.0.0"))
    assert MlxLmKind().exposure_warning(Profile(name="x", kind="mlx-lm", model="m")) is None
    assert OmlxKind().exposure_warning(Profile(name="x", kind="omlx", host="0.0.0.0"))
    assert OmlxKind().exposure_warning(Profile(name="x", kind="omlx", host="0.0.0.0", api_key="k")) is None


def test_no_config_lists_the_demo_backend() -> None:
    r = cli("backends", "list", "--json")
    assert r.returncode == 0
    [row] = json.loads(r.stdout)
    assert row["name"] == "demo" and row["status"] == "stopped"
    assert row["model"] == str(Path(os.environ["MLX_CONSOLE_STATE_DIR"]) / "demo-model")


@pytest.mark.slow
def test_stop_or_start_during_the_restart_backoff(write_config, tiny_model: Path, port: int) -> None:
    """Dead but about to be restarted is not 'already dead': stop must reach the supervisor."""
    from dataclasses import replace

    from backends_helpers import FAST, gone, wait_for

    from mlx_console.core.lifecycle.control import Supervisor

    sup = Supervisor(write_config({"name": "a", "kind": "mlx-lm", "model": str(tiny_model), "port": port,
                                   "restart": "always"}), timings=replace(FAST, backoff_initial=30, backoff_max=30))
    st = sup.start("a", wait=60)
    os.kill(st.pid, 9)
    wait_for(lambda: "restarting in 30s" in sup.status("a").reason, timeout=5)
    r = cli("backends", "stop", "a")
    assert r.returncode == 0 and "stopped" in r.stdout and "already" not in r.stdout
    assert gone(st.supervisor_pid) and sup.status("a").status == "stopped"

    # Likewise start during the backoff: now, with one supervisor, not a second one next to the waiting one.
    st = sup.start("a", wait=60)
    os.kill(st.pid, 9)
    wait_for(lambda: "restarting in 30s" in sup.status("a").reason, timeout=5)
    again = sup.start("a", wait=60)
    assert again.status == "ready" and again.supervisor_pid != st.supervisor_pid and gone(st.supervisor_pid)
    sup.stop("a")


@pytest.mark.slow
def test_backend_survives_the_terminal_hanging_up(write_config, tiny_model: Path, port: int) -> None:
    """An SSH drop: the terminal hangs up, the shell and its jobs get SIGHUP; the backend keeps serving."""
    import pty

    write_config({"name": "a", "kind": "mlx-lm", "model": str(tiny_model), "port": port})
    pid, fd = pty.fork()
    if pid == 0:  # the shell of an SSH session
        os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])
    cmd = f"{sys.executable} -m mlx_console backends start a --wait 60; sleep 300\n"
    os.write(fd, cmd.encode())
    out, deadline = b"", time.monotonic() + 90
    while b"a: ready" not in out and time.monotonic() < deadline:
        try:
            out += os.read(fd, 4096)
        except OSError:
            break
    assert b"a: ready" in out, out.decode(errors="replace")
    os.close(fd)  # hang up
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 1  # the shell died of SIGHUP
    time.sleep(0.5)
    rows = json.loads(cli("backends", "list", "--json").stdout)
    assert rows[0]["status"] == "ready" and psutil.pid_exists(rows[0]["pid"])
    assert cli("backends", "stop", "a").returncode == 0


@pytest.mark.parametrize(("kind", "args"), [("mlx-lm", ["--port", "9"]), ("mlx-lm", ["--host=0.0.0.0"]),
                                            ("omlx", ["--base-path", "/x"])])
def test_args_cannot_override_where_the_server_listens(kind: str, args: list[str]) -> None:
    from mlx_console.core.errors import ConsoleError

    prof = Profile(name="x", kind=kind, model="/m", args=args)
    impl = MlxLmKind() if kind == "mlx-lm" else OmlxKind()
    with pytest.raises(ConsoleError, match=r"set `(port|host|base_path)` in the profile"):
        impl.command(prof, None)
