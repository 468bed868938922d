"""What an editor form shows for one model: every key with its spec, the value in the file, the value oMLX uses,
and the problems found — generated from the schema, so a new key needs no UI change."""

from __future__ import annotations

from typing import Any

from mlx_console.core.settings.schema import KEYS, form_fields
from mlx_console.core.settings.store import SettingsStore


def model_form(store: SettingsStore, model: str) -> list[dict[str, Any]]:
    """One dict per key (schema order within groups), plus the file's unknown keys at the end (group "unknown").

    Each has the `form_fields()` entries and: `in_file` (bool), `value` (the file's value or None),
    `effective` (what oMLX uses: the value, else the default), `known` (key of the installed oMLX), `issues`.
    """
    block = store.get(model)
    issues: dict[str | None, list[str]] = {}
    for i in store.issues():
        if i.model == model:
            issues.setdefault(i.key, []).append(f"{i.level}: {i.message}")
    out = []
    for f in form_fields():
        key = f["key"]
        in_file = key in block
        value = block.get(key)
        effective = value if value is not None else KEYS[key].default
        out.append({**f, "in_file": in_file, "value": value, "effective": effective,
                    "issues": issues.get(key, [])})
    for key, value in block.items():
        if key not in KEYS:
            out.append({"key": key, "group": "unknown", "type": type(value).__name__, "nullable": True,
                        "default": None, "none_means": "", "choices": None, "minimum": None, "maximum": None,
                        "unit": "", "effect": "unknown", "effect_text": "unknown to oMLX: dropped on its next save",
                        "meaning": "not an oMLX key", "allowed": "anything (kept as is)", "note": "", "newer": False,
                        "put": False, "in_file": True, "value": value, "effective": value,
                        "issues": issues.get(key, [])})
    return out
