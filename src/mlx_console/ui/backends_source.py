"""The UI's handle on the supervisor. All calls block: run them in workers, never on the event loop."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlx_console.core import api
from mlx_console.core.api import Config

ACTIVITY_EVERY = 4.0  # s between reads of the metrics database for the dashboard's rate columns

class Backends:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._sup: api.Supervisor | None = None
        self._sup_lock = threading.Lock()  # workers of several threads ask for it first
        self._fleet: api.FleetRows | None = None  # when [[host]]s are configured: rows named NAME@HOST
        self._activity: dict[str, dict[str, Any]] = {}
        self._activity_at = float("-inf")

    def fleet(self) -> api.FleetRows | None:
        if self._fleet is None and self.config.hosts:
            self._fleet = api.fleet_rows(self.config)
            atexit.register(self._fleet.close)  # no ssh `tail -F` outlives the console
        return self._fleet

    def remote(self, name: str) -> api.FleetRows | None:
        """The fleet when `name` is a [[host]]'s backend (NAME@HOST), else None."""
        fleet = self.fleet()
        return fleet if fleet is not None and fleet.split(name) is not None else None

    def supervisor(self) -> api.Supervisor:
        with self._sup_lock:
            if self._sup is None:
                self._sup = api.supervisor(self.config)
            return self._sup

    def placeholder_rows(self, status: str = "…") -> list[dict[str, Any]]:
        """The configured profiles with no state yet (before the first poll, or with no supervisor)."""
        return [{"name": p.name, "kind": p.kind, "status": status, "pid": None, "port": p.port,
                 "model": p.model, "uptime_s": None, "rss_bytes": None, "log": None}
                for p in self.config.backends]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per backend, shaped like BackendStatus.to_json()."""
        rows = [s.to_json() for s in self.supervisor().list()]
        rows = [{**r, **self.activity(str(r["name"]))} for r in rows]
        fleet = self.fleet()
        if fleet is None:
            return rows
        return [{**r, "fleet_host": "local"} for r in rows] + fleet.rows()

    def activity(self, name: str) -> dict[str, Any]:
        """requests/min, tok/s and a throughput sparkline from this machine's metrics database (read at most
        every ACTIVITY_EVERY seconds: the samplers write every few seconds anyway)."""
        import time

        now = time.monotonic()
        if now - self._activity_at > ACTIVITY_EVERY:
            try:
                self._activity = {k: v.to_json() for k, v in
                                  api.activities([p.name for p in self.config.backends]).items()}
            except Exception:  # a database being created or locked: the columns say "-" for now
                self._activity = {}
            self._activity_at = now
        return self._activity.get(name, {})

    def start(self, name: str, progress: Callable[[str], None] | None = None) -> Any:
        if fleet := self.remote(name):
            return fleet.run(name, "start")
        return self.supervisor().start(name, wait=None, progress=progress)

    def stop(self, name: str) -> Any:
        if fleet := self.remote(name):
            return fleet.run(name, "stop")
        return self.supervisor().stop(name)

    def restart(self, name: str, progress: Callable[[str], None] | None = None) -> Any:
        if fleet := self.remote(name):
            return fleet.run(name, "restart")
        return self.supervisor().restart(name, progress=progress)

    def swap_model(self, name: str, model: str) -> Any:
        if fleet := self.remote(name):
            return fleet.run(name, "swap", model)
        return self.supervisor().swap_model(name, model)

    def swap_choices(self, name: str) -> list[api.ModelChoice]:
        """The models the swap picker offers for `name`, with fit and advice: this machine's, or for a
        [[host]]'s backend that host's (`backends models NAME --discover --json` over ssh)."""
        if fleet := self.remote(name):
            return api.remote_model_choices(fleet, name)
        return api.model_choices(self.config, name)

    def metrics_plot(self, name: str, window: str) -> api.PlotData:
        """The metrics screen's panels for `name` over the named window: this machine's metrics database, or for
        a [[host]]'s backend that host's (`metrics NAME --json --events` over ssh)."""
        return api.metrics_plot(name, window, self.remote(name))

    def remote_settings(self, name: str) -> api.RemoteSettings | None:
        """The model_settings.json of a [[host]]'s oMLX backend (read and written on that host); None if local."""
        fleet = self.remote(name)
        return api.remote_settings(fleet, name) if fleet else None

    def log_paths(self, name: str) -> list[Path]:
        """Every log of the backend, the captured one first (oMLX adds its own server.log)."""
        if self.remote(name):
            path = self.log_path(name)
            return [path] if path else []
        return self.supervisor().log_paths(name)

    def log_path(self, name: str) -> Path | None:
        if fleet := self.remote(name):  # a local mirror of the remote log (ssh tail -F), triaged like any other
            return fleet.log_path(name, api.state_dir())
        return api.log_path(name)  # as the supervisor's log_path, without waiting for it to be imported

    def advice(self, name: str, model: str | None) -> list[str]:
        """The advisor's warnings for `model` on backend `name`; none when it cannot tell."""
        return api.advice(self.config, name, model)

    def describe(self, name: str, row: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything `describe` shows (core/describe.py); a [[host]]'s backend is described there, by its own
        `backends describe NAME --json` over ssh. Blocking."""
        if fleet := self.remote(name):
            return {**(row or {}), **api.remote_describe(fleet, name), "name": name}
        log = None
        if not (row or {}).get("log") and self.config.backends:
            try:
                log = self.log_path(name)
            except (api.ConsoleError, OSError):
                log = None
        return api.describe(self.supervisor(), name, row, log)


mask_secrets = api.mask_secrets
