"""How bisect puts a configuration on a backend: restart an mlx-lm profile with other server args
(through the supervisor), or apply oMLX model settings through the settings core."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mlx_console.core.bench.bisect import flags_to_args
from mlx_console.core.config import Config, Profile
from mlx_console.core.lifecycle.control import Supervisor


class MlxLmRestartApplier:
    """Set the profile's args and restart it via core/supervisor.py (helper "super")."""

    def __init__(self, config: Config, name: str, wait: float = 300.0,
                 progress: Callable[[str], None] | None = None) -> None:
        self.config, self.name, self.wait, self.progress = config, name, wait, progress

    def describe(self) -> str:
        return f"restart mlx-lm profile {self.name!r} with the server args under test"

    def apply(self, config: dict[str, Any]) -> None:
        # A copy of the profile with the args under test: the caller's Config is never changed.
        profile = replace(self.config.backend(self.name), args=flags_to_args(config))
        Supervisor(self.config.with_profile(profile)).restart(self.name, wait=self.wait, progress=self.progress)


class OmlxSettingsApplier:
    """Set the model's settings through the settings core (helper "settings": admin PUT for the keys it
    takes, file + reload for the rest). Keys of either side missing from a config are removed."""

    def __init__(self, config: Config, profile: Profile, model: str, keys: set[str]) -> None:
        self.config, self.profile, self.model, self.keys = config, profile, model, keys

    def describe(self) -> str:
        return f"oMLX model settings of {self.model!r} on profile {self.profile.name!r} (settings core)"

    def apply(self, config: dict[str, Any]) -> None:
        from mlx_console.core.settings.apply import apply_values
        from mlx_console.core.settings.locate import FILENAME

        values = {k: config.get(k) for k in sorted(self.keys)}
        apply_values(self.config, self.model, values, path=self.profile.base_path_resolved / FILENAME,
                     reload=True)
