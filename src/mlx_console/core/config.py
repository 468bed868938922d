"""The console's config file (TOML): backend profiles, keymap, theme, extra triage patterns.

A bad config is a ConfigError naming the file, the line and the key, and what is allowed.
Unknown keys are errors: a typo must not silently fall back to a default.
With no config file the console runs one built-in profile, `demo`, on the tiny demo model.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from mlx_console import paths
from mlx_console.core.errors import ConfigError

Kind = Literal["mlx-lm", "omlx"]
KINDS: tuple[str, ...] = ("mlx-lm", "omlx")
RESTART_POLICIES: tuple[str, ...] = ("never", "on-failure", "always")
DISTRIBUTED_BACKENDS: tuple[str, ...] = ("ring", "jaccl", "mpi")
# The keys validate_profile_keys checks (core/lifecycle/distributed.py): a profile with none of them is not distributed.
DISTRIBUTED_KEYS = frozenset({"hosts", "hostfile", "distributed_backend", "pipeline", "ring_port"})
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
    meter: bool = False  # serve the public port through the metering proxy (core/metrics/meter.py)
    # oMLX only
    base_path: str = "~/.omlx"
    command: list[str] = field(default_factory=lambda: ["omlx"])
    api_key: str | None = None
    # mlx-lm distributed (core/lifecycle/distributed.py): ranks started by mlx.launch, rank 0 serves HTTP
    hosts: list[str] = field(default_factory=list)
    hostfile: str | None = None
    distributed_backend: str = "ring"
    pipeline: bool = False
    ring_port: int = 0  # ring: mlx.launch's --starting-port (0: its default, 32323)
    # Set for the built-in demo profile: the model is built on first start.
    demo: bool = False
    # [backend.liveness]: interval, timeout, failures, on_model_failure (LIVENESS_KEYS); unset keys: defaults
    liveness: dict[str, Any] = field(default_factory=dict)

    @property
    def distributed(self) -> bool:
        return bool(self.hosts or self.hostfile)

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
    "name": ((str,), "a unique name: letters, digits, -_. (not first), at most 64 characters", KINDS),
    "kind": ((str,), "one of " + ", ".join(repr(k) for k in KINDS), KINDS),
    "model": ((str,), "a local model path or a hub id (string)", KINDS),
    "host": ((str,), "a host address (string), default 127.0.0.1", KINDS),
    "port": ((int,), "an integer 1-65535", KINDS),
    "args": ((list,), "a list of strings (extra command-line arguments)", KINDS),
    "env": ((dict,), "a table of string values", KINDS),
    "restart": ((str,), "one of " + ", ".join(repr(p) for p in RESTART_POLICIES), KINDS),
    "meter": ((bool,), "true or false: per-request metering proxy on the public port (see README Metrics)", KINDS),
    "base_path": ((str,), "a directory path (string), default ~/.omlx", ("omlx",)),
    "command": ((list,), 'a list of strings, default ["omlx"]', ("omlx",)),
    "api_key": ((str,), "a string", ("omlx",)),
    "hosts": ((list,), 'a list of at least 2 hosts for mlx.launch, e.g. ["10.0.0.1", "10.0.0.2"]', ("mlx-lm",)),
    "hostfile": ((str,), "a path to an mlx.launch hostfile (JSON, as mlx.distributed_config writes)", ("mlx-lm",)),
    "distributed_backend": ((str,), "one of " + ", ".join(repr(b) for b in DISTRIBUTED_BACKENDS), ("mlx-lm",)),
    "pipeline": ((bool,), "true or false (pipeline parallel instead of tensor parallel)", ("mlx-lm",)),
    "ring_port": ((int,), "an integer 1-65535 (ring: the first port the ranks connect on)", ("mlx-lm",)),
    "liveness": ((dict,), "a table [backend.liveness] (interval, timeout, failures, on_model_failure)", KINDS),
}

# [backend.liveness] key → (types, what is allowed, check). Defaults live in lifecycle.state.Timings.
LIVENESS_KEYS: dict[str, tuple[tuple[type, ...], str, Any]] = {
    "interval": ((int, float), "seconds between liveness checks, > 0 (default 30)", lambda v: v > 0),
    "timeout": ((int, float), "seconds a probe may take, > 0 (default 60)", lambda v: v > 0),
    "failures": ((int,), "failed probes in a row that mean unhealthy, >= 1 (default 2)", lambda v: v >= 1),
    "on_model_failure": ((str,), "'report' (default) or 'reload' (oMLX: unload and load the model again)",
                         lambda v: v in ("report", "reload")),
}

_TOP_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "backend": ((list,), "an array of [[backend]] tables"),
    "theme": ((str,), "a theme name (a file in themes/ or the user's themes dir)"),
    "keymap": ((dict,), "a table of binding id = key"),
    "confirm": ((bool,), "true or false: the console asks before stop/restart/swap/bench on a ready backend"),
    "catalog": ((str, list), "a path (or list of paths) to extra triage pattern files (TOML)"),
    "model_dirs": ((list,), "a list of directories holding models"),
    "host": ((list,), "an array of [[host]] tables (other machines reached over SSH)"),
}


@dataclass
class Config:
    path: Path
    exists: bool
    backends: list[Profile] = field(default_factory=list)
    theme: str = "dark"
    keymap: dict[str, str] = field(default_factory=dict)
    confirm: bool = True  # the console asks before x/r/swap/B on a ready backend
    catalogs: list[Path] = field(default_factory=list)
    model_dirs: list[Path] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        names = ", ".join(h.name for h in self.hosts) or "(none)"
        raise ConfigError(f"no [[host]] named {name!r} in {self.path}; configured: {names}")

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


def _line_of(text: str, key: str, table_index: int | None, table_name: str = "backend",
             inline: bool = False) -> int:
    """Best-effort 1-based line of `key = …` (inside the table_index-th [[table_name]] when given, its
    sub-tables such as [backend.env] included). `inline`: also `key = …` inside an inline table."""
    lines = text.split("\n")
    start, end = 0, len(lines)
    if table_index is not None:
        headers = [i for i, ln in enumerate(lines) if re.match(rf"\s*\[\[\s*{table_name}\s*\]\]", ln)]
        if table_index < len(headers):
            start = headers[table_index]
            nxt = [i for i, ln in enumerate(lines) if i > start and re.match(rf"\s*\[(?!\s*{table_name}\s*\.)", ln)]
            end = nxt[0] if nxt else len(lines)
    lead = r"(?:^|[{,])" if inline else r"^"
    pat = re.compile(rf"{lead}\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for i in range(start, end):
        if pat.search(lines[i]):
            return i + 1
    return start + 1


NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
NAME_RULE = "letters, digits, '-', '_' and '.' (not first), at most 64 characters"


def _read_text(cfg_path: Path) -> str:
    """The file's text; a FIFO or device is refused (reading one would hang), non-UTF-8 gets a hint."""
    try:
        fd = os.open(cfg_path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise ConfigError(f"{cfg_path}: cannot read config: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file (a FIFO or device?)"
            raise ConfigError(f"{cfg_path}: cannot read config: {what}")
        try:
            raw = f.read(_MAX_CONFIG_BYTES + 1)
        except OSError as e:
            raise ConfigError(f"{cfg_path}: cannot read config: {e.strerror or e}") from None
    if len(raw) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"{cfg_path}: config is larger than {_MAX_CONFIG_BYTES // 1024 // 1024} MiB")
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark some editors add is accepted
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        enc = "UTF-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "not UTF-8"
        raise ConfigError(f"{cfg_path}:{line}: the file is {enc} (byte 0x{raw[e.start]:02x}); "
                          "TOML must be UTF-8: save it as UTF-8") from None


_MAX_CONFIG_BYTES = 4 * 1024 * 1024


def _resolve(cfg_dir: Path, value: str, *, only_if_exists: bool = False) -> str:
    """A relative path from the config resolves against the config file's dir, not the current dir.
    `only_if_exists` (a model: a path or a hub id such as org/name): only `./x`, `../x` or an existing path."""
    p = Path(value).expanduser()
    if p.is_absolute() or not value:
        return str(p)
    candidate = cfg_dir / p
    if only_if_exists and not (value.startswith(("./", "../")) or candidate.exists()):
        return value
    return str(candidate.resolve())
def _sub_line(text: str, table_index: int, sub: str, key: str) -> int:
    """1-based line of `key = …` in `[backend.<sub>]` of the table_index-th [[backend]] (or its header)."""
    lines = text.splitlines()
    headers = [i for i, ln in enumerate(lines) if re.match(r"\s*\[\[\s*backend\s*\]\]", ln)]
    start = headers[table_index] if table_index < len(headers) else 0
    end = headers[table_index + 1] if table_index + 1 < len(headers) else len(lines)
    sub_at = next((i for i in range(start, end) if re.match(rf"\s*\[\s*backend\.{sub}\s*\]", lines[i])), None)
    if sub_at is None:  # an inline table: liveness = { … } on the backend's own line
        return _line_of(text, sub, table_index)
    pat = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for i in range(sub_at + 1, end):
        if re.match(r"\s*\[", lines[i]):
            break
        if pat.match(lines[i]):
            return i + 1
    return sub_at + 1


def load(path: str | Path | None = None) -> Config:
    """Load the config. A missing file (not named explicitly) gives the demo profile."""
    cfg_path = paths.config_path(path)
    if not cfg_path.exists():
        if path is not None:
            raise ConfigError(f"{cfg_path}: config file not found")
        return Config(path=cfg_path, exists=False, backends=[demo_profile()])
    text = _read_text(cfg_path)
    import tomllib  # (here, not at the top: a console without a config file, and `--help`, never parse TOML)

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{cfg_path}: invalid TOML: {e}") from e
    except RecursionError:
        raise ConfigError(f"{cfg_path}: invalid TOML: arrays or tables nested too deeply") from None
    return parse(data, cfg_path, text)


def parse(data: dict[str, Any], cfg_path: Path, text: str = "") -> Config:
    def err(key: str, msg: str, table: int | None = None, table_name: str = "backend") -> ConfigError:
        line = _line_of(text, key, table, table_name)
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
    cfg.confirm = data.get("confirm", True)
    cat = data.get("catalog", [])
    cfg_dir = cfg_path.parent
    cfg.catalogs = [Path(_resolve(cfg_dir, c)) for c in ([cat] if isinstance(cat, str) else cat)]
    cfg.model_dirs = [Path(_resolve(cfg_dir, d)) for d in data.get("model_dirs", [])]

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
            if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
                raise err(key, f"{where}: key {key!r} must be {what}, got {value!r}", i)
        name = table["name"]
        if not name.strip():
            raise err("name", f"{where}: name must not be empty", i)
        if not NAME_RE.fullmatch(name):  # it names a dir in the state dir: no '/', '..', newline
            raise err("name", f"{where}: name {name!r} is not allowed; use {NAME_RULE}", i)
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
                    line = _line_of(text, k, i, inline=True)
                    raise ConfigError(f"{cfg_path}:{line}: {where}: env.{k} must be a string, got {v!r}")
        for k, v in table.get("liveness", {}).items():
            line = _sub_line(text, i, "liveness", k)
            if k not in LIVENESS_KEYS:
                raise ConfigError(f"{cfg_path}:{line}: {where}: unknown key liveness.{k}; allowed: "
                                  f"{', '.join(LIVENESS_KEYS)}")
            ltypes, lwhat, ok = LIVENESS_KEYS[k]
            if isinstance(v, bool) or not isinstance(v, ltypes) or not ok(v):
                raise ConfigError(f"{cfg_path}:{line}: {where}: liveness.{k} must be {lwhat}, got {v!r}")
        if kind == "mlx-lm" and not table.get("model"):
            raise err("name", f"{where}: kind 'mlx-lm' needs 'model' (a local path or hub id)", i)
        table = dict(table)
        if table.get("model"):
            table["model"] = _resolve(cfg_dir, table["model"], only_if_exists=True)
        if table.get("base_path"):
            table["base_path"] = _resolve(cfg_dir, table["base_path"])
        problem = _check_distributed(table, cfg_path)
        if problem:
            raise err(problem[0], f"{where}: {problem[1]}", i)
        cfg.backends.append(Profile(**table))
    cfg.hosts = _parse_hosts(data.get("host", []), lambda key, msg, i: err(key, msg, i, "host"))
    return cfg


def _check_distributed(table: dict[str, Any], cfg_path: Path) -> tuple[str, str] | None:
    """(key, what is wrong) in hosts/hostfile/distributed_backend/pipeline/ring_port of an mlx-lm profile."""
    if not DISTRIBUTED_KEYS.intersection(table):  # nothing to check: the validator (psutil …) stays unimported
        return None
    from mlx_console.core.lifecycle.distributed import validate_profile_keys

    return validate_profile_keys(table, cfg_path.parent)


@dataclass
class Host:
    """One `[[host]]` table: another machine whose backends are driven through its own mlx-console over SSH."""

    name: str
    ssh: str
    command: str = "mlx-console"
    ssh_options: list[str] = field(default_factory=list)


_HOST_KEYS: dict[str, tuple[type, str]] = {
    "name": (str, "a non-empty string, unique among hosts (not 'local')"),
    "ssh": (str, "an ssh destination as ssh takes it (user@host, a ~/.ssh/config alias, ssh://user@host:port)"),
    "command": (str, "the remote mlx-console command line (a string run by the remote shell), default mlx-console"),
    "ssh_options": (list, 'a list of extra ssh arguments (strings), e.g. ["-F", "/path/ssh_config"]'),
}


def _parse_hosts(tables: list[Any], err: Any) -> list[Host]:
    out: list[Host] = []
    for i, table in enumerate(tables):
        where = f"[[host]] #{i + 1}"
        if not isinstance(table, dict):
            raise err("host", "each [[host]] must be a table", None)
        for key, value in table.items():
            if key not in _HOST_KEYS:
                raise err(key, f"{where}: unknown key {key!r}; allowed: {', '.join(_HOST_KEYS)}", i)
            typ, what = _HOST_KEYS[key]
            if not isinstance(value, typ) or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
                raise err(key, f"{where}: key {key!r} must be {what}, got {value!r}", i)
        for key in ("name", "ssh"):
            if not str(table.get(key, "")).strip():
                raise err(key, f"{where}: missing required key {key!r} ({_HOST_KEYS[key][1]})", i)
        if table["name"] == "local" or table["name"] in {h.name for h in out}:
            raise err("name", f"{where}: host name {table['name']!r} is reserved or used twice", i)
        if "command" in table and not table["command"].strip():
            raise err("command", f"{where}: 'command' must not be empty", i)
        out.append(Host(**table))
    return out
