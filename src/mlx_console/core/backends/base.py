"""What a backend kind is: its command line, its log files, its fatal log lines and its readiness probe.

One small interface (`BackendKind`) with one implementation per kind (mlx_lm.py, omlx.py). The supervising
process and the Supervisor use only this interface; nothing here starts or stops processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlx_console.core.common import net
from mlx_console.core.common.net import is_loopback
from mlx_console.core.config import Profile
from mlx_console.core.errors import ConsoleError

# The 1-token completion both kinds answer (backends.md §1.6): no `seed`, it changes the code path.
PING_BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1, "temperature": 0}



@dataclass
class ProbeResult:
    """One readiness/liveness probe. `ok` = a completion (or the kind's equivalent) answered in time."""

    ok: bool
    listening: bool  # something answered HTTP on the port (loading, not just starting)
    detail: str = ""
    dead: bool = False  # the server said its generation is gone for good (e.g. 404 generation thread died)


class LoadFailed(ConsoleError):
    """The profile's model could not be loaded (or did not answer) when the server came up: a failed start."""


@dataclass
class ModelSeen:
    """A model as a multi-model server reports it, for liveness: probe it only when that disturbs nothing."""

    id: str
    loaded: bool
    pinned: bool = False
    last_access: float | None = None  # the server's own clock of the model's last request
    ttl: float | None = None  # idle seconds before the server unloads it; None = never (a probe keeps nothing warm)


@dataclass
class BackendKind:
    """Base for a backend kind. Subclasses fill in the command line and the probe. What a log line means
    (degraded, stop) is the catalogue's: entries with an `action` (core/logs/live.py Reactions)."""

    kind: str = ""

    def command(self, profile: Profile, model: str | None) -> list[str]:
        raise NotImplementedError

    def env(self, profile: Profile) -> dict[str, str]:
        # Unbuffered: print() output of the server reaches the log file as it happens.
        return {"PYTHONUNBUFFERED": "1", **profile.env}

    def extra_logs(self, profile: Profile) -> list[Path]:
        """Log files the backend writes itself (besides its captured stdout/stderr)."""
        return []

    def check_model(self, profile: Profile, model: str | None) -> None:
        """Raise ConsoleError when the model cannot possibly load (e.g. a path that does not exist)."""

    def probe(self, base_url: str, api_key: str | None, timeout: float) -> ProbeResult:
        raise NotImplementedError

    # Kinds that serve several models (oMLX) report which are loaded; mlx-lm serves its one --model.
    tracks_models = False

    # Kinds whose liveness is judged per model (oMLX): probe() checks the process, probe_model() one model.
    per_model = False

    def loaded_models(self, base_url: str, api_key: str | None, timeout: float) -> list[str] | None:
        return None

    def models_seen(self, base_url: str, api_key: str | None, timeout: float,
                    base_path: str | None = None) -> list[ModelSeen] | None:
        return None

    def probe_model(self, base_url: str, api_key: str | None, model: str, timeout: float) -> ProbeResult:
        return ping_completion(base_url, api_key, timeout, model=model)

    def reload_model(self, base_url: str, api_key: str | None, model: str) -> str:
        """Unload and load one model again (liveness `on_model_failure = "reload"`); says what happened."""
        return "this backend cannot reload one model"

    def proof_of_life(self, line: str) -> bool:
        """A line of the server's log that shows it served a completion (then no probe is needed)."""
        return False

    def after_ready(self, base_url: str, api_key: str | None, model: str | None) -> str | None:
        """Run once per server process when it first answers (oMLX: load the profile's model).
        Returns a line for the supervisor's log; raises LoadFailed when the start has failed."""
        return None

    def exposure_warning(self, profile: Profile) -> str | None:
        """A warning when the backend listens beyond loopback without an API key."""
        if is_loopback(profile.host) or profile.api_key:
            return None
        return (f"backend {profile.name!r} binds {profile.host} (not loopback) with no API key: "
                "anyone who can reach this host can use it")


def refuse_managed_args(profile: Profile, managed: tuple[str, ...]) -> None:
    """The console must know where the server listens: those flags come from the profile's own keys."""
    for arg in profile.args:
        flag = arg.split("=", 1)[0]
        if flag in managed:
            key = flag.lstrip("-").replace("-", "_")
            raise ConsoleError(f"backend {profile.name!r}: set `{key}` in the profile, not {flag} in `args` "
                               "(the console probes and stops the server by these)")


def headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def ping_completion(base_url: str, api_key: str | None, timeout: float, model: str | None = None) -> ProbeResult:
    """POST a 1-token chat completion. Ready/alive = 200 within the timeout."""
    import httpx

    body = dict(PING_BODY)
    if model:
        body["model"] = model
    try:
        r = net.request("POST", f"{base_url}/v1/chat/completions", json=body, headers=headers(api_key),
                        timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)))
    except httpx.ConnectError as e:
        return ProbeResult(False, False, f"not listening: {e}")
    except httpx.TimeoutException:
        return ProbeResult(False, True, f"completion did not answer within {timeout:g}s")
    except httpx.HTTPError as e:
        return ProbeResult(False, True, f"completion failed: {type(e).__name__}: {e}")
    if r.status_code == 200:
        return ProbeResult(True, True, "1-token completion answered")
    text = r.text.strip()[:300]
    dead = r.status_code == 404 and "generation thread died" in text
    return ProbeResult(False, True, f"completion answered HTTP {r.status_code}: {text}", dead=dead)


def kind_for(kind: str) -> BackendKind:
    """The implementation of a profile's `kind`."""
    # Imported here: the kind modules import this one.
    from mlx_console.core.backends.mlx_lm import MlxLmKind
    from mlx_console.core.backends.omlx import OmlxKind

    kinds: dict[str, type[BackendKind]] = {"mlx-lm": MlxLmKind, "omlx": OmlxKind}
    return kinds[kind]()
