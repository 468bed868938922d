"""Fixtures for the supervisor tests: real config files, quick timings, and a teardown that leaves no process."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from backends_helpers import FAST, toml_value  # noqa: E402

from mlx_console import paths
from mlx_console.core import config as config_mod
from mlx_console.core.lifecycle.control import Supervisor
from mlx_console.core.lifecycle.state import live_process, read_state


@pytest.fixture
def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., config_mod.Config]:
    """Write a real config.toml with the given [[backend]] tables, point MLX_CONSOLE_CONFIG at it, load it."""

    def write(*backends: dict) -> config_mod.Config:
        path = tmp_path / "config.toml"
        text = "".join("[[backend]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in b.items()) + "\n"
                       for b in backends)
        path.write_text(text)
        monkeypatch.setenv("MLX_CONSOLE_CONFIG", str(path))
        return config_mod.load(path)

    return write


@pytest.fixture
def make_sup(write_config: Callable[..., config_mod.Config]) -> Callable[..., Supervisor]:
    def make(*backends: dict) -> Supervisor:
        return Supervisor(write_config(*backends), timings=FAST)

    return make


@pytest.fixture(autouse=True)
def no_leftovers(isolated_state: Path) -> Iterator[None]:
    """Whatever a test started, kill it afterwards (supervisor first, so it does not restart the server)."""
    yield
    base = paths.backends_dir()
    for d in base.iterdir():
        st = read_state(d)
        if not st:
            continue
        for pid, ct in ((st.supervisor_pid, st.supervisor_create_time), (st.pid, st.create_time)):
            p = live_process(pid, ct)
            if p is not None:
                os.kill(p.pid, signal.SIGKILL)
