"""How bisect puts a configuration on a backend: restart an mlx-lm profile with other server args
(through the supervisor), or PUT oMLX model settings through its admin API."""

from __future__ import annotations

import importlib
from typing import Any

import httpx

from mlx_console.core.bench.bisect import flags_to_args
from mlx_console.core.bench.client import server_root
from mlx_console.core.config import Config, Profile
from mlx_console.core.errors import ConsoleError


class MlxLmRestartApplier:
    """Set the profile's args and restart it via core/supervisor.py (helper "super")."""

    def __init__(self, config: Config, name: str, wait: float = 300.0) -> None:
        self.config, self.name, self.wait = config, name, wait
        try:
            self.supervisor_mod = importlib.import_module("mlx_console.core.supervisor")
        except ImportError:
            raise ConsoleError("bench bisect on an mlx-lm profile restarts it through core/supervisor.py, "
                               "which is not installed in this build") from None

    def describe(self) -> str:
        return f"restart mlx-lm profile {self.name!r} with the server args under test"

    def apply(self, config: dict[str, Any]) -> None:
        profile: Profile = self.config.backend(self.name)
        profile.args = flags_to_args(config)
        sup = self.supervisor_mod.Supervisor(self.config)
        sup.restart(self.name, wait=self.wait)


class OmlxSettingsApplier:
    """PUT /admin/api/models/{id}/settings (changed keys; null resets a key) after an admin login."""

    def __init__(self, profile: Profile, model: str, keys: set[str], timeout: float = 300.0) -> None:
        if not profile.api_key:
            raise ConsoleError(f"profile {profile.name!r} has no api_key: oMLX's admin API needs it to "
                               f"change model settings")
        self.profile, self.model, self.keys, self.timeout = profile, model, keys, timeout

    def describe(self) -> str:
        return f"oMLX admin API: model settings of {self.model!r} on profile {self.profile.name!r}"

    def apply(self, config: dict[str, Any]) -> None:
        root = server_root(self.profile.base_url)
        body = {k: config.get(k) for k in sorted(self.keys)}
        with httpx.Client(timeout=self.timeout) as c:
            r = c.post(f"{root}/admin/api/login", json={"api_key": self.profile.api_key, "remember": False})
            if r.status_code != 200:
                raise ConsoleError(f"oMLX admin login failed: HTTP {r.status_code} {r.text[:200]}")
            r = c.put(f"{root}/admin/api/models/{self.model}/settings", json=body)
            if r.status_code != 200:
                raise ConsoleError(f"oMLX refused settings {body}: HTTP {r.status_code} {r.text[:300]}")
