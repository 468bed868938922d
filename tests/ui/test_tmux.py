"""A person at an 80×24 terminal: the real console in tmux, real keys, the real mlx_lm.server on the tiny model.

Also the SSH drop: the terminal goes away (tmux session killed) and the console must exit, not spin,
both when SIGHUP arrives and when it is ignored (then the TTY watchdog notices).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from tests.conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux")]

CONSOLE = Path(sys.executable).parent / "mlx-console"


class Tmux:
    def __init__(self, env: dict[str, str]) -> None:
        self.sock = f"mlxc-ui-{uuid.uuid4().hex[:8]}"  # own server: never touch anyone else's sessions
        self.env = env

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.sock, *args], check=True, capture_output=True, text=True,
                              env=self.env).stdout

    def start(self, command: str, width: int = 80, height: int = 24) -> None:
        self.run("new-session", "-d", "-s", "c", "-x", str(width), "-y", str(height), command)

    def keys(self, *keys: str) -> None:
        for k in keys:
            self.run("send-keys", "-t", "c", k)
            time.sleep(0.15)  # a person types; and Esc must not merge with the next key into alt+key

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "c")

    def wait_for(self, cond: Callable[[str], bool], timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            try:
                text = self.screen()
            except subprocess.CalledProcessError:
                text = ""
            if cond(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{text}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True, env=self.env)


@pytest.fixture
def console_env(tmp_path: Path, tiny_model: Path) -> Iterator[dict[str, str]]:
    port = free_port()
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[[backend]]\nname = "tiny"\nkind = "mlx-lm"\nmodel = "{tiny_model}"\nport = {port}\n')
    env = dict(os.environ, MLX_CONSOLE_CONFIG=str(cfg), TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    yield env
    subprocess.run([str(CONSOLE), "backends", "stop", "tiny"], env=env, capture_output=True, timeout=60)


def test_a_person_starts_reads_and_stops_a_backend_at_80x24(console_env: dict[str, str], tmp_path: Path) -> None:
    tmux = Tmux(console_env)
    try:
        tmux.start(f"{CONSOLE}; echo CONSOLE-EXITED $?; sleep 30")
        tmux.wait_for(lambda s: "tiny" in s and "stopped" in s and "? Help" in s, 15, "the dashboard")
        tmux.keys("u")
        screen = tmux.wait_for(lambda s: " ready " in s, 90, "the backend to be ready")
        screen = tmux.wait_for(lambda s: "Starting httpd" in s, 10, "the server log in the centre")
        assert "following" in screen
        tmux.keys("?")
        screen = tmux.wait_for(lambda s: "Help" in s and ":start NAME" in s, 5, "the help screen")
        tmux.keys("Escape")
        tmux.wait_for(lambda s: ":start NAME" not in s, 5, "help to close")
        tmux.keys(":", "stop t", "Tab", "Enter")
        screen = tmux.wait_for(lambda s: "stopped" in s, 30, "the backend to stop")
        lines = screen.splitlines()
        assert len(lines) <= 24 and all(len(x) <= 80 for x in lines)
        tmux.keys("q")
        tmux.wait_for(lambda s: "CONSOLE-EXITED 0" in s, 10, "the console to quit")
    finally:
        tmux.kill()


@pytest.mark.parametrize("ignore_hup", [False, True], ids=["sighup", "sighup-ignored"])
def test_console_exits_when_its_terminal_goes_away(console_env: dict[str, str], tmp_path: Path,
                                                   ignore_hup: bool) -> None:
    pidfile = tmp_path / "console.pid"
    trap = "trap '' HUP; " if ignore_hup else ""
    tmux = Tmux(console_env)
    tmux.start(f"sh -c \"{trap}echo \\$\\$ > {pidfile}; exec {CONSOLE}\"")
    try:
        tmux.wait_for(lambda s: "? Help" in s, 15, "the dashboard")
        proc = psutil.Process(int(pidfile.read_text()))
    finally:
        tmux.kill()  # the terminal is gone, as when an SSH connection drops
    try:
        proc.wait(timeout=8)
    except psutil.TimeoutExpired:
        cpu = proc.cpu_percent(interval=1.0)
        proc.kill()
        pytest.fail(f"the console kept running after its terminal went away (cpu {cpu:.0f}%)")


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_keys_typed_at_once_reach_the_command_line_and_the_log_keys_survive_a_screen(tmp_path: Path,
                                                                                       size: tuple[int, int]) -> None:
    """Issue 11, keys and input, as a person in tmux: `:sett` sent in one go is typed into the command line
    (it used to open the settings screen); after `:messages⏎` and Esc the log's own keys work again."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('[[backend]]\nname = "idle"\nkind = "mlx-lm"\nmodel = "/nonexistent/model"\nport = 1\n')
    env = dict(os.environ, MLX_CONSOLE_CONFIG=str(cfg), TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    log = Path(os.environ["MLX_CONSOLE_STATE_DIR"]) / "backends" / "idle" / "server.log"  # a previous run's log
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(f"2026-11-25 10:00:{i:02d},000 - INFO - line {i}\n" for i in range(40)))
    tmux = Tmux(env)
    try:
        tmux.start(f"{CONSOLE}; echo CONSOLE-EXITED $?; sleep 30", *size)
        tmux.wait_for(lambda s: "idle" in s and "? Help" in s and "Err" in s, 15, "the dashboard, log focused")
        tmux.run("send-keys", "-t", "c", ":sett")  # one write: the keys arrive together
        screen = tmux.wait_for(lambda s: ": sett" in s or "flags of" in s, 5, "the typed keys")
        assert ": sett" in screen and "flags of" not in screen, screen
        tmux.keys("Escape")
        tmux.run("send-keys", "-t", "c", ":messages", "Enter")
        tmux.wait_for(lambda s: "messages (" in s, 5, "the messages screen")
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "messages (" not in s, 5, "back on the dashboard")
        tmux.keys("f")
        tmux.wait_for(lambda s: "paused" in s, 5, "f to pause following (the log's keys work)")
        tmux.keys("q")
        tmux.wait_for(lambda s: "CONSOLE-EXITED 0" in s, 10, "the console to quit")
    finally:
        tmux.kill()
