"""Helpers shared by the supervisor tests (a module, not conftest: importlib mode cannot import conftest)."""

from __future__ import annotations

import time
from collections.abc import Callable

import psutil

from mlx_console.core.lifecycle.state import Timings

# Quick enough for tests, same code paths as the defaults.
FAST = Timings(poll=0.1, probe_interval=1.0, probe_timeout=5.0, probe_failures=2, load_timeout=60.0,
               grace=3.0, backoff_initial=0.3, backoff_max=1.0, retry_cap=3, stable_after=30.0,
               models_interval=0.3)


def toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def wait_for(pred: Callable[[], object], timeout: float = 30.0, step: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout}s")


def gone(pid: int, timeout: float = 5.0) -> bool:
    """The process has exited (a zombie parented to init, waiting to be reaped by it, counts as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            p = psutil.Process(pid)
            if p.status() == psutil.STATUS_ZOMBIE and p.ppid() in (0, 1):
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False
