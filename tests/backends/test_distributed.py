"""A distributed backend for real: `mlx.launch` with two ring ranks on this machine serving the tiny model.

Start, a completion, per-rank status and logs, kill -9 of rank 1 → the whole group restarted, stop → no rank left.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from backends_helpers import gone, wait_for  # noqa: E402
from tests.pilot_wait import wait_for as until

from mlx_console import paths  # noqa: E402
from mlx_console.core import config as config_mod  # noqa: E402
from mlx_console.core.errors import ConfigError  # noqa: E402
from mlx_console.core.lifecycle.state import read_state  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlx_console", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def status(name: str) -> dict:
    r = cli("backends", "status", name, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def rank_procs(port: int) -> list[psutil.Process]:
    """Every mlx_lm.server process of this test (by its --port), wherever its parent is."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "mlx_lm" in " ".join(cmd) and str(port) in cmd and "/bin/sh" not in cmd[:1]:
            out.append(p)
    return out


@pytest.fixture
def no_rank_left(isolated_state: Path) -> Iterator[None]:
    """Kill any rank a failing test left (the shared teardown kills the supervisor and mlx.launch only)."""
    yield
    for d in paths.backends_dir().iterdir():
        st = read_state(d)
        for r in st.ranks if st else []:
            try:
                p = psutil.Process(r["pid"])
                if abs(p.create_time() - (r.get("create_time") or 0)) < 0.05:
                    os.kill(p.pid, signal.SIGKILL)
            except (psutil.Error, TypeError):
                pass


@pytest.mark.slow
def test_two_ring_ranks_start_serve_restart_stop(write_config, tiny_model: Path, no_rank_left: None) -> None:
    port, ring = free_port(), free_port()
    write_config({"name": "duo", "kind": "mlx-lm", "model": str(tiny_model), "port": port,
                  "hosts": ["127.0.0.1", "127.0.0.1"], "distributed_backend": "ring", "ring_port": ring})
    r = cli("backends", "start", "duo", "--wait", "180", "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["status"] == "ready" and st["port"] == port
    cmd = psutil.Process(st["pid"]).cmdline()
    assert any(c.endswith("mlx.launch") for c in cmd) and "ring" in cmd and "127.0.0.1,127.0.0.1" in cmd

    # A real completion from rank 0's port.
    resp = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=60,
                      json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
    assert resp.status_code == 200 and resp.json()["usage"]["completion_tokens"] == 3

    # Per-rank status: each rank its pid (an mlx_lm.server), its host, its own log.
    st = wait_for(lambda: (s := status("duo"))["ranks"] and all(r["pid"] for r in s["ranks"]) and s, timeout=30)
    ranks = st["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["host"] for r in ranks} == {"127.0.0.1"}
    assert set(ranks[0]) == {"rank", "host", "pid", "status", "cpu_percent", "rss_bytes", "log"}
    for r in ranks:
        assert r["status"] == "running" and r["rss_bytes"] > 10_000_000 and r["cpu_percent"] is not None
        proc = psutil.Process(r["pid"])
        assert "mlx_lm" in " ".join(proc.cmdline()) and proc.environ().get("MLX_RANK") == str(r["rank"])
        text = Path(r["log"]).read_text()
        assert f"== rank {r['rank']} pid {r['pid']}" in text
        assert r["log"] in st["logs"]
    assert "POST /v1/chat/completions" in Path(ranks[0]["log"]).read_text()
    # `backends log --paths` lists every rank's log too; each one triages like any other log.
    r = cli("backends", "log", "duo", "--paths")
    assert ranks[1]["log"] in r.stdout.splitlines()
    r = cli("triage", ranks[1]["log"], "--json")
    assert r.returncode == 0, r.stderr

    # kill -9 of rank 1 → the whole group is stopped and started again.
    old = {r["pid"] for r in ranks}
    os.kill(ranks[1]["pid"], signal.SIGKILL)
    st = wait_for(lambda: (s := status("duo"))["status"] == "ready" and s["restarts"] == 1
                  and all(r["pid"] and r["pid"] not in old and r["status"] == "running" for r in s["ranks"]) and s,
                  timeout=180)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in old)
    assert any(e["status"] == "dead" and "restarting" in e["reason"] for e in st["events"])
    resp = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=60,
                      json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    assert resp.status_code == 200

    # Its supervisor lost (kill -9): the group keeps serving; `backends start` re-adopts it with its ranks.
    serving = [r["pid"] for r in st["ranks"]]
    os.kill(st["supervisor_pid"], signal.SIGKILL)
    assert gone(st["supervisor_pid"])
    r = cli("backends", "start", "duo", "--json")
    assert r.returncode == 0, r.stderr
    st = wait_for(lambda: (s := status("duo"))["supervisor_pid"] not in (None, st["supervisor_pid"])
                  and s["status"] == "ready" and s, timeout=30)
    assert [r["pid"] for r in st["ranks"]] == serving and st["restarts"] == 1
    assert all(r["status"] == "running" for r in st["ranks"])

    # stop → no rank left, no launcher, no supervisor.
    new = [r["pid"] for r in st["ranks"]]
    r = cli("backends", "stop", "duo", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "stopped" and all(r["status"] == "stopped" for r in out["ranks"])
    wait_for(lambda: not rank_procs(port), timeout=15)
    assert all(gone(p) for p in [*new, st["pid"], st["supervisor_pid"]])


def test_distributed_keys_are_validated(tmp_path: Path) -> None:
    def load(body: str) -> config_mod.Config:
        path = tmp_path / "c.toml"
        path.write_text('[[backend]]\nname = "a"\nkind = "mlx-lm"\nmodel = "/m"\n' + body)
        return config_mod.load(path)

    cfg = load('hosts = ["10.0.0.1", "10.0.0.2"]\npipeline = true\nring_port = 5000\n')
    p = cfg.backends[0]
    assert p.distributed and p.pipeline and p.distributed_backend == "ring" and p.ring_port == 5000
    cases = [
        ('hosts = ["studio1", "studio2"]\n', ":5: ", "needs IP addresses"),
        ('hosts = ["10.0.0.1"]\n', ":5: ", "at least 2"),
        ('hosts = ["10.0.0.1", "10.0.0.2"]\ndistributed_backend = "nccl"\n', ":6: ", "not one of ring, jaccl, mpi"),
        ('hosts = ["10.0.0.1", "10.0.0.2"]\ndistributed_backend = "jaccl"\n', ":6: ", "needs a 'hostfile'"),
        ('pipeline = true\n', ":5: ", "only to a distributed profile"),
        ('hosts = ["10.0.0.1", "10.0.0.2"]\npipeline = "yes"\n', ":6: ", "true or false"),
        ('hosts = ["10.0.0.1", "10.0.0.2"]\nhostfile = "h.json"\n', ":6: ", "not both"),
    ]
    for body, line, msg in cases:
        with pytest.raises(ConfigError) as e:
            load(body)
        assert line in str(e.value) and msg in str(e.value) and "c.toml" in str(e.value), (body, str(e.value))


def test_doctor_checks_a_distributed_profile(tmp_path: Path, tiny_model: Path) -> None:
    hostfile = tmp_path / "hosts.json"
    hostfile.write_text('{"hosts": [{"ssh": "127.0.0.1"}, {"ssh": "nohost.invalid"}]}')
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[[backend]]\nname = "duo"\nkind = "mlx-lm"\nmodel = "{tiny_model}"\nhosts = ["127.0.0.1", "127.0.0.1"]\n\n'
        f'[[backend]]\nname = "far"\nkind = "mlx-lm"\nmodel = "{tiny_model}"\nport = 8081\nhostfile = "{hostfile}"\n\n'
        f'[[backend]]\nname = "bad"\nkind = "mlx-lm"\nmodel = "{tiny_model}"\nport = 8082\nhostfile = "{broken}"\n')
    r = cli("--config", str(cfg), "doctor", "--json", timeout=120)
    checks = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    assert r.returncode == 1  # the unreachable host and the broken hostfile fail
    assert checks["versions:duo"]["status"] == "pass" and "mlx-lm" in checks["versions:duo"]["detail"]
    fit = checks["rank_model:duo:127.0.0.1"]
    assert fit["status"] == "pass" and "for 2/2 rank(s)" in fit["detail"]
    assert checks["idle_cpu:duo"]["status"] == "warn" and "backends stop duo" in checks["idle_cpu:duo"]["fix"]
    assert checks["hostfile:far"]["status"] == "pass"
    ssh = checks["ssh:far:nohost.invalid"]
    assert ssh["status"] == "fail" and "ssh failed" in ssh["detail"] and "BatchMode" in ssh["fix"]
    assert "for 1/2 rank(s)" in checks["rank_model:far:127.0.0.1"]["detail"]
    assert checks["hostfile:bad"]["status"] == "fail" and "not valid JSON" in checks["hostfile:bad"]["detail"]
    assert "model:duo" not in checks  # the whole model need not fit one host: checked per rank host instead


@pytest.mark.slow
def test_console_starts_describes_restarts_and_stops_a_two_rank_backend(write_config, tiny_model: Path,
                                                                        no_rank_left: None) -> None:
    """The same group from the console: `u` starts it, `i` lists its ranks (host, pid, status, log each), a
    rank killed restarts the group (a message says so), `x` then `y` stops it and no rank is left."""
    import asyncio

    from textual.widgets import Static

    from mlx_console.ui.app import ConsoleApp
    from mlx_console.ui.screens.describe import DescribeScreen

    port, ring = free_port(), free_port()
    config = write_config({"name": "duo", "kind": "mlx-lm", "model": str(tiny_model), "port": port,
                           "hosts": ["127.0.0.1", "127.0.0.1"], "ring_port": ring})
    app = ConsoleApp(config, theme_dirs=[Path(__file__).parents[2] / "themes"], autostart=False)

    def row() -> dict:
        return next((r for r in app.backends_table.rows_data if r.get("name") == "duo"), {})

    def text() -> str:
        return " ".join(str(s.render()) for s in app.screen.query(Static))

    async def run() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: row().get("status") == "stopped", 30, "first poll")
            await pilot.press("u")
            await until(pilot, lambda: row().get("status") == "ready" and len(row().get("ranks") or []) == 2
                        and all(r["pid"] and r["status"] == "running" for r in row()["ranks"]), 240, "two ranks")
            ranks = row()["ranks"]
            await pilot.press("i")
            await until(pilot, lambda: isinstance(app.screen, DescribeScreen) and "Ranks (2" in text(), 30,
                        "ranks in describe")
            shown = text()
            for r in ranks:
                assert str(r["pid"]) in shown and r["log"] in shown, shown
            assert "rank 0 serves HTTP" in shown and "mlx.launch" in shown
            await pilot.press("escape")
            os.kill(ranks[1]["pid"], signal.SIGKILL)
            await until(pilot, lambda: row().get("restarts") == 1 and row().get("status") == "ready"
                        and all(r["pid"] and r["pid"] not in {x["pid"] for x in ranks} for r in row()["ranks"]),
                        240, "group restarted")
            assert any(m.kind == "restart" and m.backend == "duo" for m in app.messages)
            await pilot.press("x")
            await until(pilot, lambda: len(app.screen_stack) > 1, 10, "stop confirmation")
            await pilot.press("y")
            await until(pilot, lambda: row().get("status") == "stopped", 60, "stopped")

    try:
        asyncio.run(run())
    finally:
        cli("backends", "stop", "duo")
    wait_for(lambda: not rank_procs(port), timeout=15)
