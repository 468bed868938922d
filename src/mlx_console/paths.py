"""Where the console keeps its config and its state (pid/state files, captured logs, bench runs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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


def private_dir(path: Path, tighten: bool = True) -> Path:
    """mkdir -p where every dir it creates is 0700 whatever the umask; an existing `path` of ours that is
    group/other accessible is tightened to 0700 when `tighten` (the state dir holds keys, logs, records)."""
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)  # mkdir's mode is cut by the umask, never widened: make it exact
    if tighten and not missing:
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077 and not st.st_mode & 0o1000:
            os.chmod(path, st.st_mode & 0o700 | 0o700)
    return path


def open_private(path: Path, mode: str = "ab") -> Any:
    """Open a file of ours for appending (logs), created 0600 whatever the umask; a looser one is tightened."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o077 and st.st_uid == os.getuid():
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def state_dir() -> Path:
    """The state dir: $MLX_CONSOLE_STATE_DIR, else the platform's user state dir. Created on demand, 0700
    (the platform's own dir is also tightened; a dir given by $MLX_CONSOLE_STATE_DIR is left as it is)."""
    return private_dir(_state_path(), tighten=not os.environ.get("MLX_CONSOLE_STATE_DIR"))


def _state_path() -> Path:
    env = os.environ.get("MLX_CONSOLE_STATE_DIR")
    return Path(env).expanduser() if env else platformdirs.user_state_path(APP)


def backends_dir() -> Path:
    """Per-backend state files and captured logs live here, one subdirectory per profile name."""
    return private_dir(state_dir() / "backends")


SERVER_LOG = "server.log"  # a backend's captured stdout+stderr, in its directory under backends_dir()


def server_log(name: str) -> Path:
    """The captured log of local backend `name` (Supervisor.log_path), known without importing the supervisor."""
    return backends_dir() / name / SERVER_LOG


def demo_model_dir() -> Path:
    """The tiny demo model is built here once (naming it creates nothing: loading a config must not)."""
    return _state_path() / "demo-model"
