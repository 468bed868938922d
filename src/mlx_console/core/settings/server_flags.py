"""An mlx-lm profile's server flags (`args` in config.toml): what the installed mlx_lm.server accepts, checking
a profile's flags against it, and saving them into the config file with its comments and layout kept.

The flags are read from mlx_lm.server's own argument parser, in a subprocess (the console never imports
mlx): the same list `python -m mlx_lm server --help` prints, with each flag's type, choices and default.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from mlx_console.core.errors import ConsoleError

# The profile sets these itself (model, host, port): a flag for them in `args` is refused at start.
MANAGED = ("--model", "--host", "--port")

# Runs in the subprocess: stop mlx_lm.server's main() at parse_args and print every option as JSON.
_DUMP = r"""
import argparse, json, sys
def dump(self, *a, **k):
    out = []
    for act in self._actions:
        longs = [o for o in act.option_strings if o.startswith("--")]
        if not longs or isinstance(act, argparse._HelpAction):
            continue
        if isinstance(act, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            kind = "bool"
        else:
            t = act.type
            kind = {int: "int", float: "float", str: "str", None: "str"}.get(t, getattr(t, "__name__", "str"))
        default = act.default if isinstance(act.default, (str, int, float, bool, type(None))) else str(act.default)
        out.append({"flag": longs[0], "kind": kind, "help": (act.help or "") % vars(act) if act.help else "",
                    "choices": [str(c) for c in act.choices] if act.choices else None,
                    "default": default, "nargs": act.nargs if isinstance(act.nargs, (int, str)) else None,
                    "metavar": act.metavar if isinstance(act.metavar, str) else None})
    print(json.dumps(out))
    sys.exit(0)
argparse.ArgumentParser.parse_args = dump
sys.argv = ["mlx_lm.server"]
import importlib
importlib.import_module("mlx_lm.server").main()
"""


@dataclass(frozen=True)
class FlagSpec:
    flag: str                       # --max-tokens
    kind: str                       # bool | int | float | str (or the name of a custom type: taken as text)
    help: str
    default: Any = None
    choices: tuple[str, ...] | None = None
    nargs: str | int | None = None  # "+" / "*": several values, space separated in the form

    @property
    def managed(self) -> bool:
        return self.flag in MANAGED

    @property
    def allowed(self) -> str:
        if self.kind == "bool":
            return "on/off: true or false (blank: off)"
        if self.choices:
            return "one of " + ", ".join(self.choices)
        many = " (several: separated by spaces)" if self.nargs in ("+", "*") or isinstance(self.nargs, int) else ""
        return {"int": "an integer", "float": "a number", "loads": "a JSON text"}.get(self.kind, "text") + many


def _version() -> str:
    try:
        return metadata.version("mlx-lm")
    except metadata.PackageNotFoundError:
        return "?"


_CACHE: dict[str, list[FlagSpec]] = {}


def mlx_lm_flags(python: str | None = None, timeout: float = 120.0) -> list[FlagSpec]:
    """Every long option the installed mlx_lm.server accepts (cached per mlx-lm version)."""
    key = f"{python or sys.executable}:{_version()}"
    if key in _CACHE:
        return _CACHE[key]
    try:
        out = subprocess.run([python or sys.executable, "-c", _DUMP], capture_output=True, text=True,
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise ConsoleError(f"reading mlx_lm.server's flags did not finish within {timeout:.0f}s") from e
    try:
        rows = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else None
    except ValueError:
        rows = None
    if out.returncode != 0 or not isinstance(rows, list):
        tail = " / ".join((out.stderr or out.stdout).strip().splitlines()[-3:])
        raise ConsoleError(f"cannot read mlx_lm.server's flags (exit {out.returncode}): {tail or 'no output'}")
    specs = [FlagSpec(str(r["flag"]), str(r["kind"]), str(r.get("help") or ""), r.get("default"),
                      tuple(r["choices"]) if r.get("choices") else None, r.get("nargs")) for r in rows]
    _CACHE[key] = specs
    return specs


# --- a profile's args <-> one text value per flag ---------------------------------------------------------

def _by_flag(specs: list[FlagSpec]) -> dict[str, FlagSpec]:
    return {s.flag: s for s in specs}


def split_args(args: list[str], specs: list[FlagSpec]) -> tuple[dict[str, str], list[str]]:
    """The profile's `args` as {flag: text} (bool flags: "true"), and the problems (unknown flags, stray
    values) as one line each naming what is allowed."""
    known = _by_flag(specs)
    values: dict[str, str] = {}
    problems: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        i += 1
        flag, eq, inline = tok.partition("=")
        spec = known.get(flag)
        if not tok.startswith("-"):
            problems.append(f"args: value {tok!r} follows no flag that takes one")
            continue
        if not tok.startswith("--") or spec is None:
            problems.append(f"args: unknown flag {flag!r}; mlx_lm.server {_version()} accepts: "
                            + " ".join(s.flag for s in specs if not s.managed))
            continue
        if spec.kind == "bool":
            values[flag] = "true"
            continue
        if eq:
            values[flag] = inline
            continue
        taken: list[str] = []
        while i < len(args) and not args[i].startswith("--"):
            taken.append(args[i])
            i += 1
            if spec.nargs is None:
                break
        values[flag] = " ".join(taken)
    return values, problems


def check_value(spec: FlagSpec, text: str) -> str | None:
    """Why `text` is not a valid value for the flag (None: it is; blank always is: the flag is left out)."""
    text = text.strip()
    if not text:
        return None
    if spec.managed:
        return f"{spec.flag} is set by the profile (model, host, port keys), not in args"
    if spec.kind == "bool":
        return None if text.lower() in ("true", "false", "on", "off", "yes", "no") else \
            f"{text!r} is not allowed: {spec.allowed}"
    parts = text.split() if spec.nargs in ("+", "*") or isinstance(spec.nargs, int) else [text]
    for part in parts:
        if spec.choices and part not in spec.choices:
            return f"{part!r} is not allowed: {spec.allowed}"
        try:
            if spec.kind == "int":
                int(part)
            elif spec.kind == "float":
                float(part)
            elif spec.kind == "loads":  # json.loads: a JSON text
                json.loads(part)
        except ValueError:
            return f"{part!r} is not allowed: {spec.allowed}"
    return None


def join_args(values: dict[str, str], specs: list[FlagSpec]) -> list[str]:
    """{flag: text} back to an `args` list, in mlx_lm.server's own flag order."""
    out: list[str] = []
    for spec in specs:
        text = values.get(spec.flag, "").strip()
        if not text:
            continue
        if spec.kind == "bool":
            if text.lower() in ("true", "on", "yes"):
                out.append(spec.flag)
        elif spec.nargs in ("+", "*") or isinstance(spec.nargs, int):
            out += [spec.flag, *text.split()]
        else:
            out += [spec.flag, text]
    return out


# --- saving into config.toml -----------------------------------------------------------------------------

def with_args(text: str, path: Path, backend: str, args: list[str]) -> str:
    """The config file's text with `args` of the [[backend]] named `backend` replaced; every comment and the
    layout of the rest kept (tomlkit). The result is checked by the config loader before it is returned."""
    import tomlkit

    from mlx_console.core import config as config_mod

    try:
        doc = tomlkit.parse(text)
    except Exception as e:  # tomlkit's ParseError: the loader names the line the same way
        raise ConsoleError(f"{path}: invalid TOML: {e}") from e
    tables = doc.get("backend")
    table = next((t for t in (tables or []) if isinstance(t, dict) and t.get("name") == backend), None)
    if table is None:
        raise ConsoleError(f"{path}: no [[backend]] named {backend!r} to save its args in")
    if args:
        table["args"] = args
    elif "args" in table:
        del table["args"]
    new = tomlkit.dumps(doc)
    import tomllib

    config_mod.parse(tomllib.loads(new), path, new)  # a ConfigError here names the file, line and key
    return new


def args_change(path: Path, backend: str, args: list[str]) -> tuple[str, str]:
    """The config file's text now and with `args` for `backend` (checked, not written): what a save would do.
    A missing file is named with where flags are kept (the built-in demo backend runs without one)."""
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConsoleError(f"{path} does not exist (the built-in demo backend runs without one). Flags are kept "
                           "as `args` of a [[backend]] there: see the README, Configuration") from None
    except OSError as e:
        raise ConsoleError(f"{path}: cannot read: {e.strerror or e}") from e
    return old, with_args(old, path, backend, args)


def save_args(path: Path, backend: str, args: list[str]) -> tuple[str, str]:
    """Write `args` for `backend` into the config file (atomic, mode kept). Returns (old text, new text)."""
    from mlx_console.core.common.atomic import write_atomic

    old, new = args_change(path, backend, args)
    if new != old:
        write_atomic(path, new.encode("utf-8"))
    return old, new
