"""oMLX's server settings in force: `{base_path}/settings.json` as oMLX reads it, and where a profile disagrees.

oMLX 0.5.0 saves its CLI values into settings.json and keeps them after the flag is removed (backends.md §6): a
server setting is part of the configuration, so bench records and config_hash carry it and the status shows it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlx_console.core.config import Profile

# The settings that change what a bench measures or how the server serves: section → keys (None = all of it).
# Left out: where it listens, auth secrets, logging, UI and integrations.
RECORDED: dict[str, tuple[str, ...] | None] = {
    "server": ("sse_keepalive_mode", "burst_decode_mode", "preserve_mid_system_cache"),
    "scheduler": None,
    "memory": None,
    "cache": None,
    "sampling": None,
    "idle_timeout": None,
}

# `serve` flag → (section, key, oMLX 0.5.0's default, how the flag's text becomes the saved value).
FLAGS: dict[str, tuple[str, str, Any, type]] = {
    "--max-concurrent-requests": ("scheduler", "max_concurrent_requests", 8, int),
    "--memory-guard": ("memory", "memory_guard_tier", "balanced", str),
    "--sse-keepalive-mode": ("server", "sse_keepalive_mode", "chunk", str),
    "--initial-cache-blocks": ("cache", "initial_cache_blocks", 256, int),
    "--hot-cache-max-size": ("cache", "hot_cache_max_size", "0", str),
    "--paged-ssd-cache-max-size": ("cache", "ssd_cache_max_size", "auto", str),
    "--embedding-batch-size": ("scheduler", "embedding_batch_size", 32, int),
}


def read_settings_file(base_path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((base_path / "settings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def server_settings(base_path: Path) -> dict[str, Any] | None:
    """The recorded part of settings.json (None when there is none yet: oMLX then runs on its defaults)."""
    data = read_settings_file(base_path)
    if data is None:
        return None
    out: dict[str, Any] = {}
    for section, keys in RECORDED.items():
        block = data.get(section)
        if isinstance(block, dict):
            out[section] = dict(block) if keys is None else {k: block[k] for k in keys if k in block}
    return out


def _flag_values(args: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for i, a in enumerate(args):
        flag, eq, value = a.partition("=")
        if flag in FLAGS:
            if eq:
                values[flag] = value
            elif i + 1 < len(args):
                values[flag] = args[i + 1]
    return values


def flag_mismatches(profile: Profile) -> list[str]:
    """Where the profile's flags and settings.json disagree: a flag that will overwrite a saved value, or a saved
    value left by a flag the profile no longer passes (it stays in force)."""
    data = read_settings_file(profile.base_path_resolved)
    if data is None:
        return []
    given = _flag_values(profile.args)
    out = []
    for flag, (section, key, default, conv) in FLAGS.items():
        block = data.get(section)
        if not isinstance(block, dict) or key not in block:
            continue
        saved = block[key]
        if flag in given:
            try:
                wanted: Any = conv(given[flag])
            except ValueError:
                continue
            if wanted != saved:
                out.append(f"profile {profile.name!r} passes {flag} {given[flag]} but settings.json has "
                           f"{section}.{key} = {saved!r}: oMLX will save {wanted!r} there and keep it after the "
                           "flag is removed")
        elif saved != default:
            out.append(f"settings.json keeps {section}.{key} = {saved!r} (default {default!r}), saved by an "
                       f"earlier {flag}; the profile does not pass {flag}, so that value stays in force")
    return out


def in_force(profile: Profile) -> dict[str, Any]:
    """A short view for the status: the flag-backed settings, from settings.json (oMLX's defaults when unset)."""
    data = read_settings_file(profile.base_path_resolved) or {}
    out: dict[str, Any] = {}
    for section, key, default, _conv in FLAGS.values():
        block = data.get(section)
        out[key] = block.get(key, default) if isinstance(block, dict) else default
    return out
