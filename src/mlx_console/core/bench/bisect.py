"""One-flag-at-a-time bisection between a baseline and a candidate configuration.

Bench the baseline and the candidate, then the baseline plus each differing flag alone; the flag
whose single change reproduces the candidate's overall verdict explains it. When none does, bench
the pairs and report those that do (they interact). The baseline is restored at the end, always.

How a configuration reaches the backend is behind `Applier`: mlx-lm restarts the profile with other
server args (via core/supervisor.py), oMLX PUTs model settings through the admin API.
"""

from __future__ import annotations

import itertools
import json
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mlx_console.core.bench.compare import compare_runs
from mlx_console.core.errors import ConsoleError

ABSENT = object()
MAX_PAIRS = 10


class Applier(Protocol):
    def apply(self, config: dict[str, Any]) -> None:
        """Make the backend serve with exactly this configuration (flags or settings); block until ready."""

    def describe(self) -> str: ...


# ---------------------------------------------------------------- config files

def args_to_flags(args: list[str]) -> dict[str, Any]:
    """["--a", "1", "--b", "--c=x"] → {"--a": "1", "--b": True, "--c": "x"} (order kept)."""
    flags: dict[str, Any] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("-"):
            raise ConsoleError(f"server args: {a!r} is not a flag (expected --name [value])")
        if "=" in a:
            k, v = a.split("=", 1)
            flags[k] = v
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            flags[a] = args[i + 1]
            i += 1
        else:
            flags[a] = True
        i += 1
    return flags


def flags_to_args(flags: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in flags.items():
        if v is True:
            out.append(k)
        elif v is False or v is None:
            continue
        else:
            out += [k, str(v)]
    return out


def load_config_file(path: str | Path, kind: str) -> dict[str, Any]:
    """mlx-lm: server args (a JSON list, TOML `args = [...]`, or a text file of args, # comments) → flags.
    omlx: model settings (a JSON or TOML table of oMLX keys)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConsoleError(f"{p}: cannot read ({e.strerror})") from None
    data: Any
    if p.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ConsoleError(f"{p}: not valid JSON: {e}") from None
    elif p.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConsoleError(f"{p}: not valid TOML: {e}") from None
    else:
        data = None
    if kind == "mlx-lm":
        if data is None:
            lines = [ln.split("#", 1)[0] for ln in text.splitlines()]
            data = shlex.split(" ".join(lines))
        if isinstance(data, dict):
            if not isinstance(data.get("args"), list):
                raise ConsoleError(f"{p}: key 'args' must be a list of server arguments")
            data = data["args"]
        if not isinstance(data, list) or not all(isinstance(a, str) for a in data):
            raise ConsoleError(f"{p}: expected a list of server arguments (strings)")
        return args_to_flags(data)
    if not isinstance(data, dict):
        raise ConsoleError(f"{p}: expected a JSON or TOML table of oMLX model settings")
    return data


# ---------------------------------------------------------------- planning

@dataclass(frozen=True)
class FlagChange:
    key: str
    baseline: Any  # ABSENT when the flag is not set in the baseline
    candidate: Any

    def label(self) -> str:
        def show(v: Any) -> str:
            return "(unset)" if v is ABSENT else json.dumps(v)
        return f"{self.key}: {show(self.baseline)} → {show(self.candidate)}"


def differences(base: dict[str, Any], cand: dict[str, Any]) -> list[FlagChange]:
    keys = list(base) + [k for k in cand if k not in base]
    return [FlagChange(k, base.get(k, ABSENT), cand.get(k, ABSENT)) for k in keys
            if base.get(k, ABSENT) != cand.get(k, ABSENT)]


def with_changes(base: dict[str, Any], changes: tuple[FlagChange, ...] | list[FlagChange]) -> dict[str, Any]:
    cfg = dict(base)
    for c in changes:
        if c.candidate is ABSENT:
            cfg.pop(c.key, None)
        else:
            cfg[c.key] = c.candidate
    return cfg


def plan(base: dict[str, Any], cand: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The runs of the first pass: baseline, candidate, then baseline + each change alone."""
    changes = differences(base, cand)
    steps = [("baseline", dict(base)), ("candidate", dict(cand))]
    steps += [(f"+ {c.label()}", with_changes(base, [c])) for c in changes]
    return steps


def _explains(target: dict[str, Any], trial: dict[str, Any]) -> bool:
    """A trial explains the candidate's change when it has the same overall verdict and cause AND
    reproduces the change itself: the same cells flip, or a metric that moved in the candidate moves
    the same way by at least half as much (so a 6 % wobble cannot "explain" a 3× slowdown)."""
    t, s = target["overall"], trial["overall"]
    if t["verdict"] not in ("worse", "better") or s["verdict"] != t["verdict"] or s["cause"] != t["cause"]:
        return False
    tc, sc = target["cells"], trial["cells"]
    if t["cause"] in ("error", "must_pass_flip", "quality_drop") or (
            t["cause"] == "improvement" and not _moved(tc)):
        flipped = {cid for cid, e in tc.items() if e.get("verdict") in ("flip", "error")}
        return any(sc.get(cid, {}).get("verdict") == tc[cid]["verdict"] for cid in flipped)
    for cid, metric, verdict, change in _moved(tc):
        m = ((sc.get(cid) or {}).get("metrics") or {}).get(metric) or {}
        if m.get("verdict") == verdict and m.get("change_pct") is not None and change \
                and m["change_pct"] / change >= 0.5:
            return True
    return False


def _moved(cells: dict[str, Any]) -> list[tuple[str, str, str, float]]:
    return [(cid, name, m["verdict"], m["change_pct"]) for cid, e in cells.items()
            for name, m in (e.get("metrics") or {}).items() if m["verdict"] in ("regression", "improvement")]


# ---------------------------------------------------------------- running

Bench = Callable[[str, dict[str, Any]], dict[str, Any]]  # (label, config) → run summary


def bisect(applier: Applier, base: dict[str, Any], cand: dict[str, Any], bench: Bench,
           progress: Callable[[str], None] | None = None, max_pairs: int = MAX_PAIRS,
           force: bool = False) -> dict[str, Any]:
    """Run the bisection; returns {"changes", "target", "singles", "pairs", "explained_by",
    "interacting_pairs", "runs", "restored", "conclusion"}."""
    say = progress or (lambda m: None)
    changes = differences(base, cand)
    if not changes:
        raise ConsoleError("baseline and candidate are identical: nothing to bisect")
    runs: dict[str, str] = {}
    result: dict[str, Any] = {"applier": applier.describe(), "changes": [c.label() for c in changes],
                              "singles": {}, "pairs": {}, "explained_by": [], "interacting_pairs": [],
                              "runs": runs, "restored": False}

    def run(label: str, cfg: dict[str, Any]) -> dict[str, Any]:
        say(f"bisect: applying {label}")
        applier.apply(cfg)
        say(f"bisect: benching {label}")
        summary = bench(label, cfg)
        runs[label] = summary["run_id"]
        return summary

    try:
        baseline = run("baseline", base)
        candidate = run("candidate", cand)
        target = compare_runs(baseline, candidate, force=force)
        result["target"] = target["overall"]
        if target["overall"]["verdict"] not in ("worse", "better"):
            result["conclusion"] = (f"the candidate is {target['overall']['verdict']} vs the baseline "
                                    f"({target['overall']['reason']}): nothing to attribute")
            return result
        for c in changes:
            trial = compare_runs(baseline, run(f"+ {c.label()}", with_changes(base, [c])), force=force)
            result["singles"][c.label()] = trial["overall"]
            if _explains(target, trial):
                result["explained_by"].append(c.label())
        if result["explained_by"]:
            result["conclusion"] = (f"{', '.join(result['explained_by'])} alone reproduces the candidate's "
                                    f"verdict ({target['overall']['verdict']}: {target['overall']['reason']})")
            return result
        pairs = list(itertools.combinations(changes, 2))[:max_pairs]
        for pair in pairs:
            label = " + ".join(c.label() for c in pair)
            trial = compare_runs(baseline, run(f"+ {label}", with_changes(base, pair)), force=force)
            result["pairs"][label] = trial["overall"]
            if _explains(target, trial):
                result["interacting_pairs"].append(label)
        if result["interacting_pairs"]:
            result["conclusion"] = ("no single flag explains the change; these pairs do (they interact): "
                                    + "; ".join(result["interacting_pairs"]))
        else:
            result["conclusion"] = ("neither a single flag nor a pair reproduces the candidate's verdict"
                                    + (f" (only the first {max_pairs} pairs tried)"
                                       if len(pairs) < len(changes) * (len(changes) - 1) // 2 else "")
                                    + ": it needs three or more flags together, or the change is noise")
        return result
    finally:
        say("bisect: restoring the baseline")
        applier.apply(base)
        result["restored"] = True
