"""The oMLX kind (`omlx serve`): command line from the profile and `serve --help`, probe, and its HTTP client.

oMLX saves every non-default CLI value into `{base_path}/settings.json` (backends.md §2.1), so the console
passes only --base-path, --host, --port and the profile's own args; the API key goes in `OMLX_API_KEY`.
A profile's `model` is loaded through the API each time the server comes up.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlx_console.core.backends.base import (
    BackendKind,
    LoadFailed,
    ModelSeen,
    ProbeResult,
    headers,
    ping_completion,
    refuse_managed_args,
)
from mlx_console.core.common import net
from mlx_console.core.config import Profile
from mlx_console.core.errors import ConsoleError

# oMLX's per-request line (backends.md §2.4): a completion the server finished, i.e. proof of life.
COMPLETION_LINE = re.compile(r"(Chat completion|Completion|Anthropic message|Responses API): \d+ tokens in ")


@lru_cache(maxsize=16)
def serve_flags(command: tuple[str, ...]) -> frozenset[str]:
    """The long options `omlx serve --help` lists (flags differ between oMLX versions)."""
    try:
        out = subprocess.run([*command, "serve", "--help"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
    except FileNotFoundError as e:
        raise ConsoleError(f"oMLX command not found: {command[0]!r} ({e}); set `command` in the profile") from e
    except subprocess.TimeoutExpired as e:
        raise ConsoleError(f"`{' '.join(command)} serve --help` did not answer within 60s") from e
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-5:]
        raise ConsoleError(f"`{' '.join(command)} serve --help` failed (exit {out.returncode}):\n" + "\n".join(tail))
    return frozenset(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", out.stdout + out.stderr))


@dataclass
class OmlxKind(BackendKind):
    kind: str = "omlx"

    def command(self, profile: Profile, model: str | None) -> list[str]:
        refuse_managed_args(profile, ("--base-path", "--host", "--port", "--api-key"))
        flags = serve_flags(tuple(profile.command))
        wanted: list[tuple[str, str]] = [
            ("--base-path", str(profile.base_path_resolved)),
            ("--host", profile.host),
            ("--port", str(profile.port)),
        ]
        missing = [flag for flag, _ in wanted if flag not in flags]
        if "--port" in missing:
            raise ConsoleError(f"`{' '.join(profile.command)} serve --help` lists no {' / '.join(missing)}: "
                               "this oMLX version cannot be started with the profile's settings")
        argv = [*profile.command, "serve"]
        for flag, value in wanted:
            if flag in flags:
                argv += [flag, value]
        return argv + list(profile.args)

    def env(self, profile: Profile) -> dict[str, str]:
        # The API key goes in the environment oMLX 0.5.0 reads (`OMLX_API_KEY`, below the CLI and above
        # settings.json), never argv: a command line is visible to every user in `ps`, and a CLI value
        # would also be saved into settings.json.
        return {**super().env(profile), **({"OMLX_API_KEY": profile.api_key} if profile.api_key else {})}

    def extra_logs(self, profile: Profile) -> list[Path]:
        return [profile.base_path_resolved / "logs" / "server.log"]

    def probe(self, base_url: str, api_key: str | None, timeout: float) -> ProbeResult:
        """The server process answers (`GET /health`). It never loads a model nor touches one's idle timer;
        a wedged engine still answers it (backends.md §2.5): models are probed one by one (probe_model)."""
        import httpx

        client = OmlxClient(base_url, api_key, timeout=timeout)
        try:
            client.health()
        except httpx.ConnectError as e:
            return ProbeResult(False, False, f"not listening: {e}")
        except (httpx.HTTPError, ConsoleError) as e:
            return ProbeResult(False, True, f"/health failed: {e}")
        return ProbeResult(True, True, "/health answered")

    def probe_model(self, base_url: str, api_key: str | None, model: str, timeout: float) -> ProbeResult:
        return ping_completion(base_url, api_key, timeout, model=model)

    tracks_models = True
    per_model = True

    def proof_of_life(self, line: str) -> bool:
        return COMPLETION_LINE.search(line) is not None

    def after_ready(self, base_url: str, api_key: str | None, model: str | None) -> str | None:
        """A profile's `model` for oMLX = load this model after every (re)start, and it must answer: a model
        oMLX cannot load (404 unknown id, 409 broken files) fails the start with oMLX's own message."""
        if not model:
            return "no model loaded (the profile names none)"
        import httpx

        client = OmlxClient(base_url, api_key)
        try:
            client.load(model)
        except OmlxError as e:
            raise LoadFailed(load_failure_text(model, e)) from None
        except httpx.HTTPError as e:
            raise LoadFailed(f"could not load {model!r}: {type(e).__name__}: {e}") from None
        res = ping_completion(base_url, api_key, 120.0, model=model)
        if not res.ok:
            raise LoadFailed(f"{model!r} loaded but did not answer a 1-token completion: {res.detail}")
        return f"loaded {model!r}; it answered a 1-token completion"

    def reload_model(self, base_url: str, api_key: str | None, model: str) -> str:
        import httpx

        client = OmlxClient(base_url, api_key)
        try:
            client.unload(model)
            client.load(model)
        except (httpx.HTTPError, ConsoleError) as e:
            return f"reloading it failed: {e}"
        return "unloaded and loaded it again"

    def loaded_models(self, base_url: str, api_key: str | None, timeout: float) -> list[str] | None:
        seen = self.models_seen(base_url, api_key, timeout)
        return None if seen is None else sorted(m.id for m in seen if m.loaded)

    def models_seen(self, base_url: str, api_key: str | None, timeout: float,
                    base_path: str | None = None) -> list[ModelSeen] | None:
        """Every model with its loaded state, pin, last access and idle TTL (from model_settings.json /
        settings.json under base_path, read from disk: asking the server would not change it either)."""
        import httpx

        try:
            models = OmlxClient(base_url, api_key, timeout).models()
        except (httpx.HTTPError, ConsoleError):
            return None
        ttls, idle = read_ttls(Path(base_path)) if base_path else ({}, None)
        out = []
        for m in models:
            ttl = ttls.get(m["id"], idle)
            out.append(ModelSeen(id=str(m["id"]), loaded=bool(m.get("loaded")), pinned=bool(m.get("pinned")),
                                 last_access=m.get("last_access"), ttl=None if m.get("pinned") else ttl))
        return out


def read_ttls(base: Path) -> tuple[dict[str, float | None], float | None]:
    """({model id: ttl_seconds}, the global idle timeout) as oMLX reads them; missing files → none."""
    ttls: dict[str, float | None] = {}
    idle: float | None = None
    try:
        data = json.loads((base / "model_settings.json").read_text(encoding="utf-8"))
        for mid, block in (data.get("models") or {}).items():
            if isinstance(block, dict) and isinstance(block.get("ttl_seconds"), int | float):
                ttls[mid] = float(block["ttl_seconds"])
    except (OSError, ValueError, AttributeError):
        pass
    try:
        data = json.loads((base / "settings.json").read_text(encoding="utf-8"))
        value = (data.get("idle_timeout") or {}).get("idle_timeout_seconds")
        idle = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    except (OSError, ValueError, AttributeError):
        pass
    return ttls, idle


def load_failure_text(model: str, e: OmlxError) -> str:
    """oMLX's reason as text, with what to do: a 404 names where oMLX looks for models (not a download)."""
    text = f"oMLX could not load {model!r} (HTTP {e.status}): {e.detail}"
    if e.status == 404:
        text += ("; oMLX serves the folders of its model directories (the id is the folder name, and a folder "
                 "without weights is skipped): `mlx-console backends models` lists its ids")
    elif e.status == 409 and "failed to load" in e.detail:
        text += "; fix the model's files, then `backends restart` (oMLX caches the failure until a reload)"
    return text

class OmlxError(ConsoleError):
    """An oMLX API error: `status` and oMLX's message as text (never a dict)."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status, self.detail = status, detail


class OmlxClient:
    """oMLX's HTTP API: health, the model list with loaded state, load and unload."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _request(self, method: str, path: str, timeout: float | None = None) -> Any:
        r = net.request(method, self.base_url + path, headers=headers(self.api_key),
                        timeout=timeout or self.timeout)
        if r.status_code >= 400:
            # the admin client imports httpx's timeouts at module level: only on an error
            from mlx_console.core.backends.omlx_admin import _detail

            detail = _detail(r)  # /v1 errors are OpenAI bodies {"error": {"message"}}, others {"detail"}
            raise OmlxError(f"oMLX {method} {path} → HTTP {r.status_code}: {detail}", r.status_code, detail)
        return r.json() if r.content else {}

    def health(self) -> dict[str, Any]:
        return dict(self._request("GET", "/health"))

    def models(self) -> list[dict[str, Any]]:
        """Every model oMLX knows, each with at least `id` and `loaded` (None when this oMLX cannot say)."""
        try:
            data = self._request("GET", "/v1/models/status")
            return [dict(m, id=m.get("id"), loaded=bool(m.get("loaded"))) for m in data.get("models", [])]
        except ConsoleError as e:
            if "HTTP 404" not in str(e):
                raise
        data = self._request("GET", "/v1/models")
        return [{"id": m.get("id"), "loaded": None} for m in data.get("data", [])]

    def load(self, model_id: str, timeout: float = 900.0) -> dict[str, Any]:
        """Blocks until oMLX has loaded the model (it evicts idle models over its memory ceiling)."""
        return dict(self._request("POST", f"/v1/models/{model_id}/load", timeout=timeout))

    def unload(self, model_id: str) -> dict[str, Any]:
        return dict(self._request("POST", f"/v1/models/{model_id}/unload"))
