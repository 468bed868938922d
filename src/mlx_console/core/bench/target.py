"""What to bench for a config profile: URL, model id, kind, server flags / oMLX settings (the fingerprint)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from mlx_console.core.bench.record import RunRecord
from mlx_console.core.bench.suites import Suite
from mlx_console.core.config import Config, Profile
from mlx_console.core.errors import ConsoleError


@dataclass
class Target:
    base_url: str
    model: str
    backend_kind: str | None = None
    server_flags: Any = None  # mlx-lm: the args; oMLX: {"args", "settings_json"}
    model_settings: Any = None
    model_path: str | None = None  # where to read config.json (attention window) from
    api_key: str | None = None

    def run_kwargs(self) -> dict[str, Any]:
        return asdict(self)


def omlx_settings(profile: Profile, model: str) -> Any:
    """The model's entry in oMLX's model_settings.json, if readable."""
    path = profile.base_path_resolved / "model_settings.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    models = doc.get("models") if isinstance(doc, dict) else None
    return models.get(model) if isinstance(models, dict) else None


def for_profile(config: Config, name: str, model: str | None = None) -> Target:
    """mlx-lm: the model id is the profile's model path (or `default_model`), flags are its args.
    oMLX: the model must be given (or set in the profile); settings come from model_settings.json, and the server
    flags are the profile's args plus the settings.json in force ({"args", "settings_json"})."""
    p = config.backend(name)
    if p.kind == "mlx-lm":
        return Target(p.base_url, model or p.model or "default_model", p.kind, list(p.args), None, p.model, None)
    if not (model or p.model):
        raise ConsoleError(f"profile {name!r} (oMLX) has no model: pass --model")
    model_id = model or p.model or ""
    # oMLX keeps CLI values in settings.json after the flag is gone: the settings in force are the server's flags.
    from mlx_console.core.backends.omlx_settings import server_settings

    flags = {"args": list(p.args), "settings_json": server_settings(p.base_path_resolved)}
    return Target(p.base_url, model_id, p.kind, flags, omlx_settings(p, model_id), None, p.api_key)


def run_profile(config: Config, name: str, suite: Suite, model: str | None = None, **kw: Any) -> RunRecord:
    """run_suite on a configured backend (what the TUI's bench pane calls from its worker)."""
    from mlx_console.core.bench.runner import run_suite

    return run_suite(suite=suite, **{**for_profile(config, name, model).run_kwargs(), **kw})
