"""Where the UI reaches the core. A core module that is not there yet reads as "not available": the
screen that needs it says so honestly instead of showing invented data.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any


class NotAvailable(RuntimeError):
    """The core module behind a feature is not present in this build."""


def core(module: str, *names: str) -> Any:
    """Import `mlx_console.core.<module>` and return the named attributes (one → the attribute itself)."""
    full = f"mlx_console.core.{module}"
    try:
        spec = importlib.util.find_spec(full)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        raise NotAvailable(f"not available yet: mlx_console.core.{module} is not in this build")
    mod = importlib.import_module(full)
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        raise NotAvailable(f"not available yet: {full} has no {', '.join(missing)}")
    values = [getattr(mod, n) for n in names]
    return values[0] if len(values) == 1 else tuple(values)


def has(module: str, *names: str) -> bool:
    try:
        core(module, *names)
    except NotAvailable:
        return False
    return True
