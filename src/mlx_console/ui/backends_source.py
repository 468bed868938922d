"""The UI's handle on the supervisor. All calls block: run them in workers, never on the event loop."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlx_console.core.config import Config
from mlx_console.core.errors import ConsoleError
from mlx_console.ui.core_api import NotAvailable, core


class Backends:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._sup: Any = None
        self.unavailable: str | None = None   # why the supervisor cannot be used, shown on screen
        self._fleet: Any = None  # core.fleet.FleetRows when [[host]]s are configured: rows named NAME@HOST

    def fleet(self) -> Any:
        if self._fleet is None and self.config.hosts:
            self._fleet = core("fleet", "FleetRows")(self.config)
            import atexit

            atexit.register(self._fleet.close)  # no ssh `tail -F` outlives the console
        return self._fleet

    def remote(self, name: str) -> bool:
        return self.fleet() is not None and self._fleet.split(name) is not None

    def supervisor(self) -> Any:
        if self._sup is None:
            supervisor_cls = core("lifecycle.control", "Supervisor")
            self._sup = supervisor_cls(self.config)
        return self._sup

    def placeholder_rows(self, status: str = "…") -> list[dict[str, Any]]:
        """The configured profiles with no state yet (before the first poll, or with no supervisor)."""
        return [{"name": p.name, "kind": p.kind, "status": status, "pid": None, "port": p.port,
                 "model": p.model, "uptime_s": None, "rss_bytes": None, "log": None}
                for p in self.config.backends]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per backend, shaped like BackendStatus.to_json()."""
        try:
            sup = self.supervisor()
        except NotAvailable as e:
            self.unavailable = str(e)
            return self.placeholder_rows("n/a")
        self.unavailable = None
        rows = [s.to_json() for s in sup.list()]
        if self.fleet() is None:
            return rows
        return [{**r, "fleet_host": "local"} for r in rows] + self._fleet.rows()

    def start(self, name: str, progress: Callable[[str], None] | None = None) -> Any:
        if self.remote(name):
            return self._fleet.run(name, "start")
        return self.supervisor().start(name, wait=None, progress=progress)

    def stop(self, name: str) -> Any:
        if self.remote(name):
            return self._fleet.run(name, "stop")
        return self.supervisor().stop(name)

    def restart(self, name: str, progress: Callable[[str], None] | None = None) -> Any:
        if self.remote(name):
            return self._fleet.run(name, "restart")
        sup = self.supervisor()
        try:
            return sup.restart(name, progress=progress)
        except TypeError:  # an older restart() without progress
            return sup.restart(name)

    def swap_model(self, name: str, model: str) -> Any:
        if self.remote(name):
            return self._fleet.run(name, "swap", model)
        return self.supervisor().swap_model(name, model)

    def log_paths(self, name: str) -> list[Path]:
        """Every log of the backend, the captured one first (oMLX adds its own server.log)."""
        if self.remote(name):
            path = self.log_path(name)
            return [path] if path else []
        try:
            sup = self.supervisor()
        except NotAvailable:
            return []
        if hasattr(sup, "log_paths"):
            return [Path(p) for p in sup.log_paths(name)]
        return [Path(sup.log_path(name))]

    def log_path(self, name: str) -> Path | None:
        if self.remote(name):  # a local mirror of the remote log (ssh tail -F), triaged like any other
            return self._fleet.log_path(name, _state_dir())
        try:
            return Path(self.supervisor().log_path(name))
        except NotAvailable:
            return None

    def advice(self, name: str, model: str | None) -> list[str]:
        """The advisor's warnings (core/advisor.py) for `model` on backend `name`; none when it cannot tell."""
        from mlx_console.core.advisor import advise_profile

        try:
            return [f"{w.message} (fix: {w.fix})" for w in advise_profile(self.config, name, model).warnings]
        except (ConsoleError, OSError, ValueError, KeyError):
            return []

    def describe(self, name: str, row: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything `describe` shows: the status row, plus from the state files the server's command line
        (secrets masked), pids with start times, and the last triage events of its log. Blocking."""
        from mlx_console.core.lifecycle.state import read_state

        info: dict[str, Any] = dict(row or {})
        try:
            sup = self.supervisor()
            if not info:
                info = sup.status(name).to_json()
            state = read_state(sup.dir(name))
        except (NotAvailable, ConsoleError, OSError) as e:
            info.setdefault("warnings", []).append(f"state not readable: {e}")
            state = None
        if state is not None:
            info["cmdline"] = mask_secrets(state.cmdline)
            info["create_time"] = state.create_time
            info["supervisor_create_time"] = state.supervisor_create_time
            info.setdefault("supervisor_pid", state.supervisor_pid)
            info["started_at"] = state.started_at
            info["swapped"] = state.swapped
            for key in ("events", "warnings", "restart_policy", "restarts", "reason", "logs", "exit_code"):
                if not info.get(key):
                    info[key] = getattr(state, key)
        info["advice"] = self.advice(name, info.get("model"))
        log = info.get("log") or (self.log_path(name) if self.config.backends else None)
        info["triage"] = last_events(Path(log)) if log else []
        return info


# The flag's name ends with it (--api-key, --hf-token, --auth): `--max-tokens 64` is not a secret.
SECRET = re.compile(r"^--?[\w-]*(key|token|secret|password|passwd|auth)$", re.I)


def mask_secrets(argv: list[str]) -> list[str]:
    """A command line with the values of secret-looking options (`--api-key X`, `--token=X`) masked."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("****")
            hide_next = False
        elif arg.startswith("-") and SECRET.match(arg.split("=", 1)[0]):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=****")
            else:
                out.append(arg)
                hide_next = True
        else:
            out.append(arg)
    return out


def last_events(path: Path, lines: int = 2000, keep: int = 5) -> list[dict[str, Any]]:
    """The last triage events (errors and warnings) in the last `lines` lines of a log, newest last."""
    from mlx_console.core.logs.index import LineIndex
    from mlx_console.core.logs.patterns import Catalog
    from mlx_console.core.logs.triage import Triager

    try:
        with LineIndex(path) as idx:
            tail = idx.tail(lines) if idx.size else []
            total = len(idx) if idx.complete else None
    except OSError:
        return []
    exact = total is not None
    triager = Triager(Catalog.load([]), include_all=True, first_line=(total - len(tail) + 1) if exact else 1)
    out = [{"severity": t.severity, "title": t.title, "first_line": t.first_line, "last_line": t.last_line,
            "exact": exact}
           for t in (*triager.feed_many(tail), *triager.flush()) if t.severity in ("error", "warning")]
    return out[-keep:]

def _state_dir() -> Path:
    from mlx_console import paths

    return paths.state_dir()
