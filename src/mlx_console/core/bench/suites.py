"""Bench suites: TOML files of cells. `quick` ships with the package; users pass a name or a path.

A suite file has `name`, optional `description`, an optional `[defaults]` table (any cell key) and
`[[cell]]` tables. Unknown keys and wrong types are errors naming the file, line, key and what is allowed.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mlx_console import paths
from mlx_console.core.errors import ConfigError

KINDS = ("chat", "coding", "tool_call", "throughput", "concurrency", "cache_consistency")
QUALITY_KINDS = ("chat", "coding", "tool_call")

# key → (types, what is allowed, kinds it applies to)
_COMMON = ("id", "kind", "must_pass", "max_tokens", "temperature", "system", "timeout_s", "description")
_CELL_KEYS: dict[str, tuple[tuple[type, ...], str, tuple[str, ...]]] = {
    "id": ((str,), "a unique string like 'chat.capital'", KINDS),
    "kind": ((str,), "one of " + ", ".join(KINDS), KINDS),
    "description": ((str,), "a string", KINDS),
    "must_pass": ((bool,), "true or false (a failing must-pass cell makes a run worse whatever its speed)",
                  KINDS),
    "max_tokens": ((int,), "a positive integer", KINDS),
    "temperature": ((int, float), "a number ≥ 0 (default 0)", KINDS),
    "system": ((str,), "a system message", KINDS),
    "timeout_s": ((int, float), "seconds (request timeout)", KINDS),
    "prompt": ((str,), "the user message", ("chat", "coding", "tool_call", "concurrency")),
    "turns": ((list,), "a list of user messages (multi-turn; the answers are kept in the history)", ("chat",)),
    "expect": ((list,), "a list of substrings the answer must contain (case-insensitive)", ("chat",)),
    "forbid": ((list,), "a list of substrings the answer must not contain", ("chat",)),
    "require_stop": ((bool,), "true (default): finish_reason must be 'stop'", ("chat",)),
    "asserts": ((str,), "Python asserts run after the extracted code", ("coding",)),
    "cpu_s": ((int,), "CPU seconds limit for the sandbox (default 5; wall clock 2×)", ("coding",)),
    "memory_mb": ((int,), "address-space limit for the sandbox, MB", ("coding",)),
    "tools": ((list,), "OpenAI tool definitions ({type='function', function={name, parameters}})",
              ("tool_call",)),
    "expect_calls": ((list,), "a list of {name=…, args={param=[allowed values]}}; empty = irrelevance cell",
                     ("tool_call",)),
    "prompt_tokens": ((int,), "prompt length in tokens (built from bundled text)", ("throughput",)),
    "trials": ((int,), "timed trials (≥ 1; ≥ 5 for a comparison that can reach p < 0.05)",
               ("throughput", "concurrency")),
    "warmup": ((int,), "untimed warm-up requests (≥ 0)", ("throughput", "concurrency")),
    "streams": ((int,), "parallel streams (≥ 1)", ("concurrency",)),
    "window": ((int,), "attention chunk / sliding window in tokens (default: from the model's config)",
               ("cache_consistency",)),
    "max_prompt_tokens": ((int,), "cap on each prompt part's length in tokens", ("cache_consistency",)),
}
_TOP_KEYS = ("name", "description", "defaults", "cell")


@dataclass
class Cell:
    id: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    must_pass: bool = False

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)


@dataclass
class Suite:
    name: str
    path: str
    description: str = ""
    cells: list[Cell] = field(default_factory=list)

    def select(self, spec: str | None) -> Suite:
        """Keep the cells whose id or kind is in the comma-separated spec (order of the suite)."""
        if not spec:
            return self
        wanted = [s.strip() for s in spec.split(",") if s.strip()]
        known = {c.id for c in self.cells} | set(KINDS)
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise ConfigError(f"--cells: unknown cell or kind {unknown[0]!r} in suite {self.name!r}; "
                              f"cells: {', '.join(c.id for c in self.cells)}; kinds: {', '.join(KINDS)}")
        cells = [c for c in self.cells if c.id in wanted or c.kind in wanted]
        return Suite(self.name, self.path, self.description, cells)


def user_suites_dir() -> Path:
    return paths.state_dir() / "bench" / "suites"


def available() -> list[str]:
    names = {p.name[:-5] for p in resources.files("mlx_console.core.bench").joinpath("suites").iterdir()
             if p.name.endswith(".toml")}
    d = user_suites_dir()
    if d.is_dir():
        names |= {p.stem for p in d.glob("*.toml")}
    return sorted(names)


def load(name_or_path: str | Path) -> Suite:
    """A suite by path (anything with a / or ending .toml that exists) or by name (user dir, then bundled)."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if s.endswith(".toml") or "/" in s:
        if not p.is_file():
            raise ConfigError(f"suite file {p} not found")
        return parse(p.read_text(encoding="utf-8"), str(p))
    user = user_suites_dir() / f"{s}.toml"
    if user.is_file():
        return parse(user.read_text(encoding="utf-8"), str(user))
    res = resources.files("mlx_console.core.bench").joinpath("suites") / f"{s}.toml"
    if res.is_file():
        return parse(res.read_text(encoding="utf-8"), f"<bundled>/{s}.toml")
    raise ConfigError(f"no suite named {s!r}; available: {', '.join(available())} (or give a path to a .toml)")


_CELL_HEAD = re.compile(r"\s*\[\[\s*cell\s*\]\]")


def _line(text: str, key: str, cell_index: int | None) -> int:
    """1-based line of `key = …`, searched inside the cell_index-th [[cell]] table when given."""
    lines = text.splitlines()
    heads = [i for i, ln in enumerate(lines) if _CELL_HEAD.match(ln)] + [len(lines)]
    span = range(len(lines)) if cell_index is None or cell_index >= len(heads) - 1 \
        else range(heads[cell_index], heads[cell_index + 1])
    assign = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    return next((i + 1 for i in span if assign.match(lines[i])), (span.start if span else 0) + 1)


def parse(text: str, origin: str) -> Suite:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{origin}: not valid TOML: {e}") from None

    def err(key: str, msg: str, idx: int | None = None) -> ConfigError:
        return ConfigError(f"{origin}:{_line(text, key, idx)}: {msg}")

    for k in data:
        if k not in _TOP_KEYS:
            raise err(k, f"unknown key {k!r}; allowed: {', '.join(_TOP_KEYS)}")
    name = data.get("name") or Path(origin).stem
    if not isinstance(name, str):
        raise err("name", "key 'name' must be a string")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise err("defaults", "key 'defaults' must be a table")
    for k, v in defaults.items():
        _check_key(k, v, None, err, None)
    raw_cells = data.get("cell", [])
    if not isinstance(raw_cells, list) or not raw_cells:
        raise err("cell", "a suite needs at least one [[cell]] table")
    cells: list[Cell] = []
    seen: set[str] = set()
    for idx, raw in enumerate(raw_cells):
        if not isinstance(raw, dict):
            raise err("cell", "each cell must be a [[cell]] table", idx)
        for req in ("id", "kind"):
            if req not in raw:
                raise ConfigError(f"{origin}:{_line(text, 'cell', None)}: cell #{idx + 1} has no {req!r} "
                                  f"(allowed kinds: {', '.join(KINDS)})")
        kind = raw["kind"]
        if kind not in KINDS:
            raise err("kind", f"cell {raw['id']!r}: kind {kind!r} is not one of {', '.join(KINDS)}", idx)
        merged = {k: v for k, v in defaults.items() if kind in _CELL_KEYS[k][2]}
        for k, v in raw.items():
            _check_key(k, v, kind, err, idx)
            merged[k] = v
        cid = merged.pop("id")
        merged.pop("kind")
        if cid in seen:
            raise err("id", f"duplicate cell id {cid!r}", idx)
        seen.add(cid)
        _check_cell(cid, kind, merged, err, idx)
        must = bool(merged.pop("must_pass", False))
        cells.append(Cell(cid, kind, merged, must))
    return Suite(name, origin, str(data.get("description", "")), cells)


def _check_key(k: str, v: Any, kind: str | None, err: Any, idx: int | None) -> None:
    spec = _CELL_KEYS.get(k)
    if spec is None:
        raise err(k, f"unknown cell key {k!r}; allowed: {', '.join(sorted(_CELL_KEYS))}", idx)
    types, allowed, kinds = spec
    if kind is not None and kind not in kinds:
        raise err(k, f"key {k!r} does not apply to kind {kind!r} (only {', '.join(kinds)})", idx)
    if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
        raise err(k, f"key {k!r} = {v!r}: expected {allowed}", idx)
    if isinstance(v, int) and not isinstance(v, bool) and k in (
            "max_tokens", "prompt_tokens", "trials", "streams", "cpu_s", "memory_mb", "window",
            "max_prompt_tokens") and v < 1:
        raise err(k, f"key {k!r} = {v}: expected {allowed}", idx)
    if k in ("warmup",) and isinstance(v, int) and v < 0:
        raise err(k, f"key {k!r} = {v}: expected {allowed}", idx)


def _check_cell(cid: str, kind: str, p: dict[str, Any], err: Any, idx: int) -> None:
    if kind in ("chat",) and not p.get("prompt") and not p.get("turns"):
        raise err("prompt", f"chat cell {cid!r} needs 'prompt' or 'turns'", idx)
    if kind in ("coding", "tool_call") and not p.get("prompt"):
        raise err("prompt", f"{kind} cell {cid!r} needs 'prompt'", idx)
    if kind == "coding" and not p.get("asserts"):
        raise err("asserts", f"coding cell {cid!r} needs 'asserts'", idx)
    if kind == "tool_call":
        if not p.get("tools"):
            raise err("tools", f"tool_call cell {cid!r} needs 'tools'", idx)
        if "expect_calls" not in p:
            raise err("expect_calls", f"tool_call cell {cid!r} needs 'expect_calls' ([] for irrelevance)", idx)
        for c in p["expect_calls"]:
            if not isinstance(c, dict) or not isinstance(c.get("name"), str):
                raise err("expect_calls", f"cell {cid!r}: each expected call needs name = \"…\"", idx)
    for key in ("turns", "expect", "forbid"):
        if key in p and not all(isinstance(x, str) for x in p[key]):
            raise err(key, f"cell {cid!r}: {key!r} must be a list of strings", idx)
