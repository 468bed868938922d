"""The UI's handle on the supervisor. All calls block: run them in workers, never on the event loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlx_console.core.config import Config
from mlx_console.ui.core_api import NotAvailable, core

ACTIVITY_EVERY = 4.0  # s between reads of the metrics database for the dashboard's rate columns


class Backends:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._sup: Any = None
        self.unavailable: str | None = None   # why the supervisor cannot be used, shown on screen
        self._fleet: Any = None  # core.fleet.FleetRows when [[host]]s are configured: rows named NAME@HOST
        self._activity: dict[str, dict[str, Any]] = {}
        self._activity_at = float("-inf")

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
        rows = [{**r, **self.activity(str(r["name"]))} for r in rows]
        if self.fleet() is None:
            return rows
        return [{**r, "fleet_host": "local"} for r in rows] + self._fleet.rows()

    def activity(self, name: str) -> dict[str, Any]:
        """requests/min, tok/s and a throughput sparkline from this machine's metrics database (read at most
        every ACTIVITY_EVERY seconds: the samplers write every few seconds anyway)."""
        import time

        now = time.monotonic()
        if now - self._activity_at > ACTIVITY_EVERY:
            from mlx_console.core.metrics.query import activities

            try:
                self._activity = {k: v.to_json() for k, v in
                                  activities([p.name for p in self.config.backends]).items()}
            except Exception:  # a database being created or locked: the columns say "-" for now
                self._activity = {}
            self._activity_at = now
        return self._activity.get(name, {})

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

    def swap_choices(self, name: str) -> list[Any]:
        """The models the swap picker offers for `name` (core.machine.models.SwapChoice): this machine's, or for a
        [[host]]'s backend that host's (`backends models NAME --discover --json` over ssh)."""
        from mlx_console.core.machine.models import swap_choice_from_json, swap_choices

        if self.remote(name):
            rows = self._fleet.run(name, "models", "--discover")
            return [swap_choice_from_json(r) for r in rows if isinstance(r, dict)]
        return swap_choices(self.config, name)

    def metrics_plot(self, name: str, window: int) -> Any:
        """The metrics screen's panels (core.metrics.query.PlotData) for `name` over `window` seconds: from this
        machine's metrics database, or for a [[host]]'s backend from that host's (`metrics NAME --json --events`)."""
        if self.remote(name):
            return self._fleet.plot_data(name, window)
        from mlx_console.core.metrics.query import local_plot_data

        return local_plot_data(name, window)

    def remote_settings(self, name: str) -> Any:
        """core.settings.remote.RemoteSettings of a [[host]]'s oMLX backend (read and written on that host)."""
        from mlx_console.core.settings.remote import RemoteSettings

        host, base = self._fleet.split(name)
        return RemoteSettings(host, base)

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
        from mlx_console.core.lifecycle.describe import advice

        return advice(self.config, name, model)

    def describe(self, name: str, row: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything `describe` shows (core/lifecycle/describe.py); a [[host]]'s backend is described there,
        by its own `backends describe NAME --json` over ssh. Blocking."""
        if self.remote(name):
            info = self._fleet.run(name, "describe")
            return {**(row or {}), **info, "name": name}
        from mlx_console.core.lifecycle.describe import describe

        return describe(self.config, name, row)


def _state_dir() -> Path:
    from mlx_console import paths

    return paths.state_dir()
