"""Parse a `KEY=VALUE` text from the command line into the key's type, with errors that say what is allowed."""

from __future__ import annotations

import json
import re
from typing import Any

from mlx_console.core.settings.errors import BadValue
from mlx_console.core.settings.schema import KeySpec

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2, "gi": 1024**3,
          "gib": 1024**3, "ti": 1024**4, "tib": 1024**4}


def split_assignment(text: str) -> tuple[str, str]:
    """'KEY=VALUE' → (KEY, VALUE); the value may itself contain '='."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise BadValue(f"expected KEY=VALUE, got {text!r}")
    return key, value


def parse_text(spec: KeySpec | None, text: str) -> Any:
    """Turn the text after '=' into a value of the key's type (JSON for unknown keys and dict/list keys).

    Raises BadValue naming the value and what is allowed (the caller adds model and key).
    """
    try:
        return _parse_text(spec, text)
    except (ValueError, OverflowError, RecursionError) as e:  # 5,000 digits, 1e999 bytes, [[[[…]]]]
        shown = text if len(text) <= 40 else text[:40] + f"… ({len(text)} characters)"
        why = "nested too deeply" if isinstance(e, RecursionError) else "too large"
        raise BadValue(f"{shown!r} is not allowed: {why}") from None


def _parse_text(spec: KeySpec | None, text: str) -> Any:
    raw = text.strip()
    if raw.lower() in ("null", "none"):
        return None
    if spec is None:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return text  # an unknown key: a bare word is a string
    t = spec.type
    if t == "bool":
        low = raw.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise BadValue(f"{text!r} is not allowed: expected {spec.allowed_text()}")
    if t == "int":
        if spec.unit == "bytes":
            m = _SIZE.match(raw)
            if m:
                unit = (m.group(2) or "").lower()
                number = float(m.group(1)) * _UNITS.get(unit, 0)
                if number and number == int(number):
                    return int(number)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadValue(f"{text!r} is not allowed: expected {spec.allowed_text()}")
        return value
    if t == "float":
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadValue(f"{text!r} is not allowed: expected {spec.allowed_text()}")
        return value
    if t == "str":
        if raw.startswith('"'):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as e:
                raise BadValue(f"{text!r} is not a valid JSON string: {e.msg}") from None
            if not isinstance(value, str):
                raise BadValue(f"{text!r} is not allowed: expected {spec.allowed_text()}")
            return value
        return text
    # dict / list: JSON
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise BadValue(
            f"{text!r} is not valid JSON ({e.msg} at column {e.colno}): expected {spec.allowed_text()}") from None
