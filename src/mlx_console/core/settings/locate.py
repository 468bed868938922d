"""Which model_settings.json a command means, and which configured oMLX backend serves it."""

from __future__ import annotations

from pathlib import Path

from mlx_console.core.config import Config, Profile

FILENAME = "model_settings.json"
DEFAULT_BASE = Path("~/.omlx")


def default_path(config: Config | None) -> Path:
    """The first oMLX profile's `{base_path}/model_settings.json`, else ~/.omlx/model_settings.json."""
    if config is not None:
        for profile in config.backends:
            if profile.kind == "omlx":
                return profile.base_path_resolved / FILENAME
    return DEFAULT_BASE.expanduser() / FILENAME


def _same(a: Path, b: Path) -> bool:
    try:
        return a.expanduser().resolve() == b.expanduser().resolve()
    except OSError:
        return False


def profile_for(config: Config | None, path: Path) -> Profile | None:
    """The oMLX profile whose base path holds `path`, if any."""
    if config is None:
        return None
    for profile in config.backends:
        if profile.kind == "omlx" and _same(profile.base_path_resolved / FILENAME, path):
            return profile
    return None


def backend_path(config: Config, backend: str) -> Path:
    """The model_settings.json of oMLX profile `backend` (ConfigError naming the profile when it is not oMLX)."""
    from mlx_console.core.errors import ConfigError

    profile = config.backend(backend)
    if profile.kind != "omlx":
        raise ConfigError(f"{config.path}: backend {backend!r} is {profile.kind}: only oMLX backends have a "
                          f"model_settings.json (its server flags are the profile's `args`)")
    return profile.base_path_resolved / FILENAME
