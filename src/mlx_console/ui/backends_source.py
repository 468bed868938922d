"""The UI's handle on the supervisor. All calls block: run them in workers, never on the event loop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlx_console.core import api
from mlx_console.core.api import Config


class Backends:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._sup: api.Supervisor | None = None
        self._sup_lock = threading.Lock()  # workers of several threads ask for it first

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
        return [s.to_json() for s in self.supervisor().list()]

    def start(self, name: str, progress: Callable[[str], None] | None = None) -> Any:
        return self.supervisor().start(name, wait=None, progress=progress)

    def stop(self, name: str) -> Any:
        return self.supervisor().stop(name)

    def restart(self, name: str, progress: Callable[[str], None] | None = None) -> Any:
        return self.supervisor().restart(name, progress=progress)

    def swap_model(self, name: str, model: str) -> Any:
        return self.supervisor().swap_model(name, model)

    def log_paths(self, name: str) -> list[Path]:
        """Every log of the backend, the captured one first (oMLX adds its own server.log)."""
        return self.supervisor().log_paths(name)

    def log_path(self, name: str) -> Path | None:
        return self.supervisor().log_path(name)
