"""UI test helpers: a console on a fixed config, a log file to follow, a wait-until for Pilot.

`FixedBackends` replaces only the supervisor's *status numbers* (pid, uptime, RSS) so snapshots stay
deterministic; the log it points at is a real file the real follower reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.pilot_wait import wait_for  # noqa: F401 - tests/ui import it from here

from mlx_console.core.config import Config, Profile
from mlx_console.ui.app import ConsoleApp
from mlx_console.ui.backends_source import Backends

REPO = Path(__file__).resolve().parents[2]
THEMES = REPO / "themes"


# What the metrics database says lately (the dashboard's REQ/M and TOK/S): mlx-lm unmetered counts requests
# only (its sparkline is requests/min), oMLX logs completion tokens (tok/s).
ACTIVITY = {
    "mlx-lm": {"requests_1m": 12.0, "tok_s_1m": None, "spark": [0, 1, 3, 2, 5, 8, 6, 4, 2, 12],
               "spark_of": "req/min"},
    "omlx": {"requests_1m": 4.0, "tok_s_1m": 38.5, "spark": [40, 38, 0, 0, 12, 39, 41, 37, 40, 38],
             "spark_of": "tok/s"},
}


class FixedBackends(Backends):
    """Fixed status rows (no clocks, no pids) and a given log file per backend."""

    def __init__(self, config: Config, logs: dict[str, Path], status: str = "ready") -> None:
        super().__init__(config)
        self.logs = logs
        self.status = status
        self.calls: list[tuple[str, str]] = []
        self.extra_logs: dict[str, list[Path]] = {}

    def rows(self) -> list[dict[str, Any]]:
        return [{"name": p.name, "kind": p.kind, "status": self.status, "pid": 4242, "port": p.port,
                 "model": p.model, "uptime_s": 3723, "rss_bytes": 92 * 1024 * 1024, "log": str(self.logs.get(p.name)),
                 "restarts": 0, **ACTIVITY.get(p.kind, {})} for p in self.config.backends]

    def log_path(self, name: str) -> Path | None:
        return self.logs.get(name)

    def log_paths(self, name: str) -> list[Path]:
        """The given log, then `extra_logs[name]` (an oMLX backend's own server.log)."""
        return [p for p in (self.logs.get(name), *self.extra_logs.get(name, [])) if p is not None]


def fixed_config(tmp: Path | None = None) -> Config:
    return Config(
        path=Path("/home/op/.config/mlx-console/config.toml"), exists=True,
        backends=[
            Profile(name="qwen", kind="mlx-lm", model="/models/Qwen3-8B-4bit", port=8080),
            Profile(name="omlx", kind="omlx", port=8000),
        ],
    )


LOG_LINES = [
    "2026-11-25 10:00:00,001 - INFO - Starting httpd at 127.0.0.1 on port 8080...",
    '127.0.0.1 - - [25/Nov/2026 10:00:01] "POST /v1/chat/completions HTTP/1.1" 200 -',
    "2026-11-25 10:00:02,100 - WARNING - prompt cache trimmed",
    '127.0.0.1 - - [25/Nov/2026 10:00:02] "POST /v1/chat/completions HTTP/1.1" 200 -',
    "Traceback (most recent call last):",
    '  File "server.py", line 1, in <module>',
    "RuntimeError: [metal::malloc] Attempting to allocate 1234 bytes which is greater than the maximum",
    '127.0.0.1 - - [25/Nov/2026 10:00:03] "POST /v1/chat/completions HTTP/1.1" 200 -',
    "2026-11-25 10:00:04,000 - INFO - done",
]


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "qwen.log"
    path.write_text("\n".join(LOG_LINES) + "\n")
    return path


@pytest.fixture
def make_app(tmp_path: Path, log_file: Path) -> Callable[..., ConsoleApp]:
    def make(**kw: Any) -> ConsoleApp:
        config = kw.pop("config", None) or fixed_config()
        logs = kw.pop("logs", None) or {"qwen": log_file, "omlx": tmp_path / "omlx-missing.log"}
        backends = kw.pop("backends", None) or FixedBackends(config, logs)
        return ConsoleApp(config, theme_dirs=kw.pop("theme_dirs", [THEMES]), backends=backends,
                          autostart=kw.pop("autostart", False), **kw)

    return make


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Async tests in tests/ui run on a fresh asyncio loop (Textual's), without an extra plugin."""
    import asyncio
    import inspect

    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    if Path(__file__).parent not in Path(str(pyfuncitem.fspath)).parents:
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True


class ScriptedBackends(FixedBackends):
    """FixedBackends whose rows a test changes between polls (state, reason, restarts, events): what the
    supervisor reports after a crash, a restart or a give-up. The console's reaction is the real one."""

    def __init__(self, config: Config, logs: dict[str, Path], status: str = "ready") -> None:
        super().__init__(config, logs, status)
        self.changes: dict[str, dict[str, Any]] = {}

    def rows(self) -> list[dict[str, Any]]:
        return [dict(r, **self.changes.get(str(r["name"]), {})) for r in super().rows()]


DEAD = {"status": "dead", "restarts": 3, "pid": None, "uptime_s": None, "rss_bytes": None,
        "reason": "gave up after 5 restarts in a row: exited with code 1 (Metal OOM)", "restart_policy": "on-failure",
        "events": [{"t": 1764064800.0, "status": "ready", "reason": "answering /v1/models"},
                   {"t": 1764064860.0, "status": "dead", "reason": "exited with code 1; restarting in 1s"},
                   {"t": 1764064900.0, "status": "dead",
                    "reason": "gave up after 5 restarts in a row: exited with code 1 (Metal OOM)"}]}
