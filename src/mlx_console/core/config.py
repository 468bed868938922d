"""The console's config file (TOML): backend profiles, keymap, theme, extra triage patterns.

A bad config is a ConfigError naming the file, the line and the key, and what is allowed.
Unknown keys are errors: a typo must not silently fall back to a default.
With no config file the console runs one built-in profile, `demo`, on the tiny demo model.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from mlx_console import paths
from mlx_console.core.errors import ConfigError

Kind = Literal["mlx-lm", "omlx"]
KINDS: tuple[str, ...] = ("mlx-lm", "omlx")
RESTART_POLICIES: tuple[str, ...] = ("never", "on-failure", "always")
DEFAULT_PORTS = {"mlx-lm": 8080, "omlx": 8000}
DEMO_NAME = "demo"


@dataclass
class Profile:
    """One `[[backend]]` table."""

    name: str
    kind: str
    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 0  # 0 → the kind's default, filled in by __post_init__
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    restart: str = "on-failure"
    # oMLX only
    base_path: str = "~/.omlx"
    command: list[str] = field(default_factory=lambda: ["omlx"])
    api_key: str | None = None
    # Set for the built-in demo profile: the model is built on first start.
    demo: bool = False

    def __post_init__(self) -> None:
        if not self.port:
            self.port = DEFAULT_PORTS.get(self.kind, 8080)

    @property
    def base_url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_path_resolved(self) -> Path:
        return Path(self.base_path).expanduser()


# key → (python types accepted, description of what is allowed, kinds it applies to)
_PROFILE_KEYS: dict[str, tuple[tuple[type, ...], str, tuple[str, ...]]] = {
    "name": ((str,), "a non-empty string, unique among backends", KINDS),
    "kind": ((str,), "one of " + ", ".join(repr(k) for k in KINDS), KINDS),
    "model": ((str,), "a local model path or a hub id (string)", KINDS),
    "host": ((str,), "a host address (string), default 127.0.0.1", KINDS),
    "port": ((int,), "an integer 1-65535", KINDS),
    "args": ((list,), "a list of strings (extra command-line arguments)", KINDS),
    "env": ((dict,), "a table of string values", KINDS),
    "restart": ((str,), "one of " + ", ".join(repr(p) for p in RESTART_POLICIES), KINDS),
    "base_path": ((str,), "a directory path (string), default ~/.omlx", ("omlx",)),
    "command": ((list,), 'a list of strings, default ["omlx"]', ("omlx",)),
    "api_key": ((str,), "a string", ("omlx",)),
}

_TOP_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "backend": ((list,), "an array of [[backend]] tables"),
    "theme": ((str,), "a theme name (a file in themes/ or the user's themes dir)"),
    "keymap": ((dict,), "a table of binding id = key"),
    "catalog": ((str, list), "a path (or list of paths) to extra triage pattern files (TOML)"),
    "model_dirs": ((list,), "a list of directories holding models"),
}


@dataclass
class Config:
    path: Path
    exists: bool
    backends: list[Profile] = field(default_factory=list)
    theme: str = "dark"
    keymap: dict[str, str] = field(default_factory=dict)
    catalogs: list[Path] = field(default_factory=list)
    model_dirs: list[Path] = field(default_factory=list)

    def backend(self, name: str) -> Profile:
        for p in self.backends:
            if p.name == name:
                return p
        names = ", ".join(p.name for p in self.backends) or "(none)"
        raise ConfigError(f"no backend named {name!r} in {self.path}; configured: {names}")

    def with_profile(self, profile: Profile) -> Config:
        """A copy with `profile` in place of the one of the same name (this config is left as it is)."""
        self.backend(profile.name)
        return replace(self, backends=[profile if p.name == profile.name else p for p in self.backends])


def demo_profile() -> Profile:
    """The built-in backend used when no config exists: a real mlx_lm.server on the tiny demo model."""
    return Profile(name=DEMO_NAME, kind="mlx-lm", model=str(paths.demo_model_dir()), demo=True)


def _line_of(text: str, key: str, table_index: int | None) -> int:
    """Best-effort 1-based line of `key = …` (inside the table_index-th [[backend]] when given)."""
    lines = text.splitlines()
    start, end = 0, len(lines)
    if table_index is not None:
        headers = [i for i, ln in enumerate(lines) if re.match(r"\s*\[\[\s*backend\s*\]\]", ln)]
        if table_index < len(headers):
            start = headers[table_index]
            nxt = [i for i, ln in enumerate(lines) if i > start and re.match(r"\s*\[", ln)]
            end = nxt[0] if nxt else len(lines)
    pat = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for i in range(start, end):
        if pat.match(lines[i]):
            return i + 1
    return start + 1


def load(path: str | Path | None = None) -> Config:
    """Load the config. A missing file (not named explicitly) gives the demo profile."""
    cfg_path = paths.config_path(path)
    if not cfg_path.exists():
        if path is not None:
            raise ConfigError(f"{cfg_path}: config file not found")
        return Config(path=cfg_path, exists=False, backends=[demo_profile()])
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{cfg_path}: cannot read config: {e}") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{cfg_path}: invalid TOML: {e}") from e
    return parse(data, cfg_path, text)


def parse(data: dict[str, Any], cfg_path: Path, text: str = "") -> Config:
    def err(key: str, msg: str, table: int | None = None) -> ConfigError:
        line = _line_of(text, key, table)
        return ConfigError(f"{cfg_path}:{line}: {msg}")

    for key, value in data.items():
        if key not in _TOP_KEYS:
            allowed = ", ".join(sorted(_TOP_KEYS))
            raise err(key, f"unknown key {key!r}; allowed top-level keys: {allowed}")
        types, what = _TOP_KEYS[key]
        if not isinstance(value, types):
            raise err(key, f"key {key!r} must be {what}")
        if key in ("catalog", "model_dirs") and isinstance(value, list):
            bad = [v for v in value if not isinstance(v, str)]
            if bad:
                raise err(key, f"key {key!r} must be {what}; got {bad[0]!r}")

    cfg = Config(path=cfg_path, exists=True)
    cfg.theme = data.get("theme", cfg.theme)
    keymap = data.get("keymap", {})
    for k, v in keymap.items():
        if not isinstance(v, str):
            raise err(k, f"[keymap] {k!r} must be a key name string such as \"ctrl+r\"")
    cfg.keymap = dict(keymap)
    cat = data.get("catalog", [])
    cfg.catalogs = [Path(c).expanduser() for c in ([cat] if isinstance(cat, str) else cat)]
    cfg.model_dirs = [Path(d).expanduser() for d in data.get("model_dirs", [])]

    seen: set[str] = set()
    for i, table in enumerate(data.get("backend", [])):
        if not isinstance(table, dict):
            raise err("backend", "each [[backend]] must be a table")
        where = f"[[backend]] #{i + 1}"
        for key in ("name", "kind"):
            if key not in table:
                raise ConfigError(f"{cfg_path}:{_line_of(text, 'name', i)}: {where}: missing required key {key!r}")
        kind = table["kind"]
        if kind not in KINDS:
            raise err("kind", f"{where}: kind {kind!r} is not allowed; use one of {', '.join(KINDS)}", i)
        for key, value in table.items():
            if key not in _PROFILE_KEYS:
                allowed = ", ".join(k for k, v in _PROFILE_KEYS.items() if kind in v[2])
                raise err(key, f"{where}: unknown key {key!r}; allowed for kind {kind!r}: {allowed}", i)
            types, what, kinds = _PROFILE_KEYS[key]
            if kind not in kinds:
                raise err(key, f"{where}: key {key!r} applies only to kind {' / '.join(kinds)}", i)
            if isinstance(value, bool) or not isinstance(value, types):
                raise err(key, f"{where}: key {key!r} must be {what}, got {value!r}", i)
        name = table["name"]
        if not name.strip():
            raise err("name", f"{where}: name must not be empty", i)
        if name in seen:
            raise err("name", f"{where}: duplicate backend name {name!r}", i)
        seen.add(name)
        if "port" in table and not 1 <= table["port"] <= 65535:
            raise err("port", f"{where}: port {table['port']} is out of range 1-65535", i)
        if table.get("restart", "on-failure") not in RESTART_POLICIES:
            raise err("restart", f"{where}: restart {table['restart']!r} is not one of {', '.join(RESTART_POLICIES)}", i)
        for key in ("args", "command"):
            if key in table and not all(isinstance(a, str) for a in table[key]):
                raise err(key, f"{where}: every item of {key!r} must be a string", i)
        if "command" in table and not table["command"]:
            raise err("command", f"{where}: 'command' must not be empty", i)
        if "env" in table:
            for k, v in table["env"].items():
                if not isinstance(v, str):
                    raise err(k, f"{where}: env.{k} must be a string, got {v!r}", i)
        if kind == "mlx-lm" and not table.get("model"):
            raise err("name", f"{where}: kind 'mlx-lm' needs 'model' (a local path or hub id)", i)
        cfg.backends.append(Profile(**table))
    return cfg
