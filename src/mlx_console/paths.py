"""Where the console keeps its config and its state (pid/state files, captured logs, bench runs)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "mlx-console"


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file: --config, else $MLX_CONSOLE_CONFIG, else the platform's user config dir."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("MLX_CONSOLE_CONFIG")
    if env:
        return Path(env).expanduser()
    return platformdirs.user_config_path(APP) / "config.toml"


def state_dir() -> Path:
    """The state dir: $MLX_CONSOLE_STATE_DIR, else the platform's user state dir. Created on demand."""
    env = os.environ.get("MLX_CONSOLE_STATE_DIR")
    path = Path(env).expanduser() if env else platformdirs.user_state_path(APP)
    path.mkdir(parents=True, exist_ok=True)
    return path


def backends_dir() -> Path:
    """Per-backend state files and captured logs live here, one subdirectory per profile name."""
    path = state_dir() / "backends"
    path.mkdir(parents=True, exist_ok=True)
    return path


def demo_model_dir() -> Path:
    """The tiny demo model is built here once."""
    return state_dir() / "demo-model"
