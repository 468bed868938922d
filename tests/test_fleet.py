"""A fleet host through a real sshd on loopback (started here with a throwaway key and config).

The "remote" mlx-console is this same install with its own state dir and config, reached only through ssh:
`--host NAME` runs any subcommand there, `backends list --all-hosts --json` tags each backend with its host and
shows an unreachable host with its ssh error.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from tests.pilot_wait import wait_for as until

REPO = Path(__file__).resolve().parent.parent
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(not os.path.exists(SSHD) or not shutil.which("ssh"),
                                reason="OpenSSH server/client not installed (.ci/run installs them with apt)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited {proc.returncode}: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"sshd not listening on {port}: {log.read_text()}")


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Path]:
    """A real sshd on 127.0.0.1:PORT accepting one throwaway key; returns an ssh_config naming host `box`."""
    d = tmp_path / "ssh"
    d.mkdir(mode=0o700)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation dir
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        f"PidFile {d / 'sshd.pid'}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n")
    (d / "ssh_config").write_text(
        f"Host box\n  HostName 127.0.0.1\n  Port {port}\n  User {os.environ.get('USER', 'root')}\n"
        f"  IdentityFile {d / 'client_key'}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
        f"Host 127.0.0.2\n  HostName 127.0.0.1\n  Port {port}\n  User {os.environ.get('USER', 'root')}\n"
        f"  IdentityFile {d / 'client_key'}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
        f"Host deadbox\n  HostName 127.0.0.1\n  Port {free_port()}\n  IdentityFile {d / 'client_key'}\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
    log = d / "sshd.log"
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_port(port, proc, log)
        yield d / "ssh_config"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def fleet(tmp_path: Path, sshd: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """This machine's config with [[host]] box (reached through sshd) and deadbox (nothing listens); box's own
    config has one mlx-lm backend on the tiny model."""
    remote = tmp_path / "remote"
    (remote / "state").mkdir(parents=True)
    port = free_port()
    (remote / "config.toml").write_text(
        f'[[backend]]\nname = "far"\nkind = "mlx-lm"\nmodel = "{tiny_model}"\nport = {port}\n')
    env = (f"env MLX_CONSOLE_STATE_DIR={remote / 'state'} MLX_CONSOLE_CONFIG={remote / 'config.toml'} "
           f"PYTHONPATH={REPO / 'src'} HF_HUB_OFFLINE=1 HF_HUB_CACHE={tmp_path / 'hf-cache'}")
    command = f"{env} {sys.executable} -m mlx_console"
    local = tmp_path / "config.toml"
    local.write_text(
        f'[[backend]]\nname = "near"\nkind = "mlx-lm"\nmodel = "{tiny_model}"\nport = {free_port()}\n\n'
        f'[[host]]\nname = "box"\nssh = "box"\ncommand = "{command}"\nssh_options = ["-F", "{sshd}"]\n\n'
        f'[[host]]\nname = "dead"\nssh = "deadbox"\ncommand = "{command}"\nssh_options = ["-F", "{sshd}"]\n')
    monkeypatch.setenv("MLX_CONSOLE_CONFIG", str(local))
    return {"remote_state": remote / "state", "port": port}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlx_console", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_remote_host_listed_started_tailed_triaged_and_stopped(fleet: dict) -> None:
    # --host runs the subcommand there: the remote config's backend, not ours.
    r = cli("--host", "box", "backends", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert [b["name"] for b in json.loads(r.stdout)] == ["far"]

    # --all-hosts: ours, box's (tagged), and the unreachable host with its ssh error; exit 0 for the others.
    r = cli("backends", "list", "--all-hosts", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(b["host"], b["name"], b["status"]) for b in rows] == [
        ("local", "near", "stopped"), ("box", "far", "stopped"), ("dead", None, "unreachable")]
    assert rows[1]["bind_host"] == "127.0.0.1" and rows[1]["port"] == fleet["port"]
    assert "ssh failed" in rows[2]["reason"] and "Connection refused" in rows[2]["reason"]
    assert "dead" in r.stderr

    # Start there, read its status, tail and triage its log there; nothing runs on this side.
    r = cli("--host", "box", "backends", "start", "far", "--wait", "120", "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["status"] == "ready" and st["log"].startswith(str(fleet["remote_state"]))
    r = cli("backends", "list", "--all-hosts", "--json")
    assert [b["status"] for b in json.loads(r.stdout) if b["host"] == "box"] == ["ready"]
    r = cli("--host", "box", "backends", "log", "far", "-n", "200")
    assert r.returncode == 0 and "Starting httpd" in r.stdout, r.stderr
    # An error on the remote side is its exit code and message, not an ssh failure.
    r = cli("--host", "box", "backends", "status", "nosuch")
    assert r.returncode == 1 and "no backend named 'nosuch'" in r.stderr

    r = cli("--host", "box", "backends", "stop", "far", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "stopped", r.stderr
    # Triage runs there, on that host's file (written here only because both "hosts" share this disk).
    with open(st["log"], "a") as f:
        f.write("2026-11-25 13:22:47,639 - ERROR - mlx_lm.server generation thread died: boom\n")
    r = cli("--host", "box", "triage", st["log"], "--json")
    assert r.returncode == 0, r.stderr
    hits = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [h["pattern"] for h in hits] == ["mlx-lm-generation-thread-died"]


def test_unknown_and_unreachable_host_are_one_line_errors(fleet: dict) -> None:
    r = cli("--host", "nosuch", "backends", "list")
    assert r.returncode == 1 and "no [[host]] named 'nosuch'" in r.stderr and "box, dead" in r.stderr
    r = cli("--host", "dead", "backends", "list")
    assert r.returncode == 1 and "host 'dead' (deadbox): ssh failed" in r.stderr


@pytest.mark.slow
def test_a_rank_on_another_host_over_ssh(sshd: Path, tiny_model: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 1 on "127.0.0.2": mlx.launch and the console reach it with ssh (here: the test's sshd, through an
    `ssh` on PATH that adds `-F` the test's ssh_config, as a user's ~/.ssh/config would)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F {sshd} "$@"\n')
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    port, ring = free_port(), free_port()
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[[backend]]\nname = "duo"\nkind = "mlx-lm"\nmodel = "{tiny_model}"\nport = {port}\n'
                   f'hosts = ["127.0.0.1", "127.0.0.2"]\nring_port = {ring}\n')
    monkeypatch.setenv("MLX_CONSOLE_CONFIG", str(cfg))
    try:
        r = cli("backends", "start", "duo", "--wait", "180", "--json", timeout=240)
        assert r.returncode == 0, r.stderr
        st = wait_for_ranks()
        remote = st["ranks"][1]
        assert remote["host"] == "127.0.0.2" and remote["log"].startswith("127.0.0.2:")
        assert remote["status"] == "running" and remote["rss_bytes"] > 10_000_000
        assert psutil_cmd(remote["pid"]).count("mlx_lm") and psutil.Process(remote["pid"]).environ()["MLX_RANK"] == "1"
        r = cli("backends", "stop", "duo", "--json")
        assert r.returncode == 0, r.stderr
        assert not psutil.pid_exists(remote["pid"]) or psutil.Process(remote["pid"]).status() == psutil.STATUS_ZOMBIE
    finally:
        cli("backends", "stop", "duo")


def wait_for_ranks(timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = cli("backends", "status", "duo", "--json")
        st = json.loads(r.stdout)
        if st["ranks"] and all(x["pid"] and x["status"] == "running" for x in st["ranks"]):
            return st
        if time.monotonic() > deadline:
            raise TimeoutError(f"ranks not all running: {st['ranks']}")
        time.sleep(0.5)


def psutil_cmd(pid: int) -> str:
    return " ".join(psutil.Process(pid).cmdline())


@pytest.mark.slow
def test_console_groups_hosts_drives_and_tails_a_remote_backend(fleet: dict, tiny_model: Path) -> None:
    """The dashboard: rows grouped by host, the unreachable host with its ssh error, far@box started, its log
    tailed (through the ssh mirror) and triaged, then stopped, all from the console."""
    import asyncio

    from textual.widgets import Static

    from mlx_console.core import config as config_mod
    from mlx_console.ui.app import ConsoleApp
    from mlx_console.ui.screens.metrics import MetricsScreen
    from mlx_console.ui.screens.swap import SwapScreen
    from mlx_console.ui.widgets.log_view import LogView

    def screen_text(app: ConsoleApp) -> str:
        return " ".join(str(s.render()) for s in app.screen.query(Static))

    app = ConsoleApp(config_mod.load(os.environ["MLX_CONSOLE_CONFIG"]), theme_dirs=[REPO / "themes"],
                     autostart=False)

    def row(name: str) -> dict:
        return next((r for r in app.backends_table.rows_data if r.get("name") == name), {})

    async def run() -> None:
        async with app.run_test(size=(160, 40)) as pilot:
            await until(pilot, lambda: row("@dead").get("status") == "unreachable" and row("far@box"), 30, "hosts")
            rows = app.backends_table.rows_data
            assert [r["fleet_host"] for r in rows] == ["local", "box", "dead"]
            assert "Connection refused" in row("@dead")["reason"]
            assert [str(app.backends_table.get_cell_at((i, 0))) for i in range(3)] == ["local", "box", "dead"]
            app.select_log("far@box")
            await pilot.press("u")
            await until(pilot, lambda: row("far@box").get("status") == "ready", 120, "far@box ready")
            app.select_log("far@box", force=True)
            log = app.query_one(LogView)
            await until(pilot, lambda: any("Starting httpd" in x for x in log.shown_lines()), 30, "remote log")
            remote_log = Path(row("far@box")["log"])
            assert remote_log.is_relative_to(fleet["remote_state"]) and app.log_path != remote_log
            with remote_log.open("a") as f:  # a line the remote supervisor acts on, seen here through ssh
                f.write("2026-11-25 13:22:47,639 - ERROR - mlx_lm.server generation thread died: boom\n")
            await until(pilot, lambda: any("generation thread died: boom" in x for x in log.shown_lines()),
                        30, "triaged line")
            # The remote supervisor acts on that line too: it restarts far (its own policy), seen here.
            await until(pilot, lambda: row("far@box").get("status") == "ready" and row("far@box").get("restarts"),
                        120, "far@box restarted by its supervisor")
            # Describe: read there (`backends describe far --json` over ssh): the remote command line and pids.
            app.backends_table.select_name("far@box")
            await pilot.press("i")
            await until(pilot, lambda: "State history" in screen_text(app), 30, "describe far@box")
            text = screen_text(app)
            assert "on host" in text and "--model " + str(tiny_model) in text and "generation thread died" in text, text
            await pilot.press("escape")
            # The swap picker offers that host's models (`backends models far --discover --json` there).
            await pilot.press("m")
            await until(pilot, lambda: isinstance(app.screen, SwapScreen) and app.screen.models, 30, "remote models")
            swap = app.screen
            assert any(m["path"] == str(tiny_model) for m in swap.models), swap.models
            # Enter swaps (there: `backends swap far PATH`); far is ready, so it asks first.
            pid = row("far@box")["pid"]
            await pilot.press(*tiny_model.name, "enter")
            await until(pilot, lambda: len(app.screen_stack) > 2, 10, "swap confirmation")
            await pilot.press("y")
            await until(pilot, lambda: not swap.is_attached, 120, "swap done")
            assert swap.swap_error is None
            await until(pilot, lambda: row("far@box").get("status") == "ready" and row("far@box")["pid"] != pid,
                        60, "far@box on the swapped model")
            # Its row's REQ/M: that host's `ps --json` (its sampler counts requests sent straight to far).
            import httpx

            for _ in range(2):
                httpx.post(f"http://127.0.0.1:{fleet['port']}/v1/chat/completions", timeout=30,
                           json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
            await until(pilot, lambda: (row("far@box").get("requests_1m") or 0) >= 2
                        and row("far@box").get("spark"), 60, "far@box requests/min")
            assert app.backends_table.get_cell("far@box", "req/m").startswith(str(int(row("far@box")["requests_1m"])))
            # Metrics of far@box: that host's samplers' database (`metrics far --json --events` over ssh).
            await pilot.press("p")
            await until(pilot, lambda: isinstance(app.screen, MetricsScreen) and app.screen.data is not None
                        and not {p.title: p for p in app.screen.data.panels}["Memory"].empty, 60, "remote metrics")
            screen = app.screen
            assert screen.backend == "far@box" and screen.load_error is None
            assert any(m.kind == "status" for m in screen.data.markers)  # its restart, on the time axis
            await pilot.press("escape")
            # Bench of far@box: not from this console; the pane says plainly where to run it.
            await pilot.press("B")
            await until(pilot, lambda: app.bench_pane.display and "not available for far@box"
                        in str(app.bench_pane.query_one("#bench-status").render()), 10, "bench note")
            assert "mlx-console --host box bench run --backend far" in str(
                app.bench_pane.query_one("#bench-status").render())
            assert not app.bench_pane.running
            # Restart and stop from the console: a ready backend asks first (`y`), then the remote host acts.
            pid = row("far@box")["pid"]
            app.backends_table.select_name("far@box")
            await pilot.press("r")
            await until(pilot, lambda: len(app.screen_stack) > 1, 10, "restart confirmation")
            await pilot.press("y")
            await until(pilot, lambda: row("far@box").get("status") == "ready" and row("far@box")["pid"] != pid,
                        120, "far@box restarted")
            app.backends_table.select_name("far@box")
            await pilot.press("x")
            await until(pilot, lambda: len(app.screen_stack) > 1, 10, "stop confirmation")
            await pilot.press("y")
            await until(pilot, lambda: row("far@box").get("status") == "stopped", 60, "far@box stopped")

    try:
        asyncio.run(run())
    finally:
        cli("--host", "box", "backends", "stop", "far")
    r = cli("--host", "box", "backends", "status", "far", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "stopped", r.stderr
    # No ssh `tail -F` outlives the console (atexit closes them; here, explicitly as the app would at exit).
    app.backends._fleet.close()
    assert all(m.proc.poll() is not None for m in app.backends._fleet.mirrors.values())


def test_console_edits_a_remote_omlx_backends_settings(fleet: dict) -> None:
    """`s` on a [[host]]'s oMLX backend: the form shows that host's model_settings.json (`settings show
    --backend om --json` there), a save writes it there (`settings set … --if-hash`), and a change made there
    since it was read refuses the save instead of overwriting it."""
    import asyncio

    from mlx_console.core import config as config_mod
    from mlx_console.ui.app import ConsoleApp
    from mlx_console.ui.screens.settings import DiffScreen, FieldRow, SettingsScreen

    remote = fleet["remote_state"].parent
    base = remote / "omlx"
    base.mkdir()
    settings = base / "model_settings.json"
    settings.write_text(json.dumps({"version": 1, "models": {"tiny-llama": {"temperature": 0.7}}}, indent=2))
    with (remote / "config.toml").open("a") as f:
        f.write(f'\n[[backend]]\nname = "om"\nkind = "omlx"\nport = {free_port()}\nbase_path = "{base}"\n')
    app = ConsoleApp(config_mod.load(os.environ["MLX_CONSOLE_CONFIG"]), theme_dirs=[REPO / "themes"],
                     autostart=False)

    def status_text(screen: SettingsScreen) -> str:
        return str(screen.query_one("#settings-status").render())

    async def save(pilot: object, row: FieldRow, value: str) -> None:
        """Type the value, ctrl+s, and Enter on the diff."""
        row.input.value = value
        await until(pilot, lambda: app.screen.store.dirty, 5, "edited")  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")  # type: ignore[attr-defined]
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), 5, "diff")
        await pilot.press("enter")  # type: ignore[attr-defined]

    async def run() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: any(r.get("name") == "om@box" for r in app.backends_table.rows_data), 30,
                        "om@box listed")
            app.backends_table.select_name("om@box")
            await pilot.press("s")
            await until(pilot, lambda: isinstance(app.screen, SettingsScreen) and app.screen.store is not None
                        and app.screen.model == "tiny-llama", 30, "remote settings read")
            screen = app.screen
            assert str(screen.path) == f"box:{settings}"
            row = screen.query_one("#field-temperature", FieldRow)
            assert row.input.value == "0.7"
            await save(pilot, row, "0.3")
            await until(pilot, lambda: "saved on box" in status_text(screen), 30, "saved there")
            assert json.loads(settings.read_text())["models"]["tiny-llama"]["temperature"] == 0.3
            await until(pilot, lambda: not screen.store.dirty, 30, "re-read after the save")
            # Changed there meanwhile: the save is refused, the file keeps the other writer's value.
            doc = json.loads(settings.read_text())
            doc["models"]["tiny-llama"]["max_tokens"] = 512
            settings.write_text(json.dumps(doc, indent=2))
            await save(pilot, row, "0.5")
            await until(pilot, lambda: "not saved" in status_text(screen), 30, "refused")
            assert "changed" in status_text(screen) and "ctrl+r" in status_text(screen), status_text(screen)
            after = json.loads(settings.read_text())["models"]["tiny-llama"]
            assert after == {"temperature": 0.3, "max_tokens": 512}

    asyncio.run(run())
