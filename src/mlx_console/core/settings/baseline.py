"""One flag at a time: the settings now against a named baseline (a bench run record, a settings file, …).

Values are compared as oMLX uses them (absent or null = the default), so `"force_sampling": false` and no
key at all are the same setting; the result says when more than one key differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlx_console.core.bench import store as bench_store
from mlx_console.core.errors import ConsoleError
from mlx_console.core.settings.errors import SettingsError
from mlx_console.core.settings.schema import ORDER, effective
from mlx_console.core.settings.textdiff import unified_blocks


@dataclass
class Baseline:
    name: str  # what the user called it, and where it came from
    models: dict[str, dict[str, Any]]


@dataclass
class BaselineDiff:
    baseline: str
    differences: list[tuple[str, str, Any, Any]] = field(default_factory=list)  # model, key, baseline, now
    diff: str = ""

    @property
    def count(self) -> int:
        return len(self.differences)

    @property
    def one_flag(self) -> bool:
        return self.count <= 1

    def summary(self) -> str:
        if not self.differences:
            return f"same settings as {self.baseline}"
        several = len({d[0] for d in self.differences}) > 1  # once, not per difference (20,000 models)
        keys = ", ".join(f"{m}:{k}" if several else k for m, k, _, _ in self.differences)
        if self.one_flag:
            return f"one flag differs from {self.baseline}: {keys}"
        return (f"{self.count} keys differ from {self.baseline}: {keys} — more than one flag at a time, so a "
                "change in results cannot be pinned on one of them")

    def to_json(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "count": self.count, "one_flag": self.one_flag,
                "differences": [{"model": m, "key": k, "baseline": b, "current": c}
                                for m, k, b, c in self.differences],
                "summary": self.summary(), "diff": self.diff}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def compare(current: dict[str, dict[str, Any]], baseline: Baseline, model: str | None = None) -> BaselineDiff:
    models = [model] if model else list(dict.fromkeys([*baseline.models, *current]))
    out = BaselineDiff(baseline.name)
    old_lines: dict[str, dict[str, Any]] = {}
    new_lines: dict[str, dict[str, Any]] = {}
    for m in models:
        a = baseline.models.get(m)
        b = current.get(m)
        a = a if isinstance(a, dict) else {}  # `"models": {"m": "x"}`: no settings oMLX can use
        b = b if isinstance(b, dict) else {}
        keys = sorted(set(a) | set(b), key=lambda k: (ORDER.get(k, len(ORDER)), k))
        old_lines[m] = {}
        new_lines[m] = {}
        for k in keys:
            va, vb = effective(a, k), effective(b, k)
            old_lines[m][k] = va
            new_lines[m][k] = vb
            if not _same(va, vb):
                out.differences.append((m, k, va, vb))
    out.diff = unified_blocks(_blocks(old_lines), _blocks(new_lines), baseline.name, "current", lead=1, context=1)
    return out


def _blocks(models: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The lines of `json.dumps(models, indent=2)` model by model (between its `{` and `}`)."""
    out: list[list[str]] = []
    for i, (m, block) in enumerate(models.items()):
        lines = json.dumps({m: block}, indent=2, ensure_ascii=False).split("\n")[1:-1]
        if i < len(models) - 1:
            lines[-1] += ","
        out.append(lines)
    return out


def _from_record(name: str, data: dict[str, Any], model: str | None) -> Baseline:
    config = data.get("config")
    if not isinstance(config, dict):
        config = {}
    settings = config.get("model_settings")
    if not isinstance(settings, dict):
        raise SettingsError(f"{name}: the run record has no model_settings (not an oMLX run?)")
    if isinstance(settings.get("models"), dict):
        return Baseline(name, settings["models"])
    return Baseline(name, {str(data.get("model") or model or "?"): settings})


def load(spec: str, model: str | None = None) -> Baseline:
    """A baseline by name: a file (model_settings.json, a bench run record, or one model's {key: value}),
    `last` (the latest bench run, of MODEL when given), or a bench run id."""
    p = Path(spec).expanduser()
    if p.is_file():
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except ValueError as e:
            raise SettingsError(f"{p}: not valid JSON: {e}") from None
        except OSError as e:
            raise SettingsError(f"{p}: cannot read: {e.strerror or e}") from None
        if not isinstance(data, dict):
            raise SettingsError(f"{p}: expected a JSON object")
        name = str(p)
        if "run_id" in data and isinstance(data.get("config"), dict):
            return _from_record(f"run {data['run_id']} ({p})", data, model)
        if isinstance(data.get("models"), dict):
            return Baseline(name, data["models"])
        if model is None:
            raise SettingsError(f"{p}: holds one model's settings; name the MODEL to compare it with")
        return Baseline(name, {model: data})
    if spec in ("last", "latest"):
        runs = bench_store.history(model)
        if not runs:
            raise SettingsError("no bench run recorded" + (f" for model {model!r}" if model else "")
                                + f" in {bench_store.bench_dir()}; name a file instead")
        return _from_record(f"last run {runs[-1].get('run_id')}", runs[-1], model)
    try:
        data = bench_store.load(spec)
    except ConsoleError as e:
        raise SettingsError(f"baseline {spec!r}: no such file, and {e}") from None
    return _from_record(f"run {data.get('run_id', spec)}", data, model)
