"""The oMLX kind (`omlx serve`): command line from the profile and `serve --help`, probe, and its HTTP client.

oMLX saves every non-default CLI value into `{base_path}/settings.json` (backends.md §2.1), so the console
passes only --base-path, --host, --port, --api-key (when the profile has one) and the profile's own args.
A profile's `model` is loaded through the API each time the server comes up.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx

from mlx_console.core.backends.base import (
    BackendKind,
    ProbeResult,
    headers,
    ping_completion,
    refuse_managed_args,
)
from mlx_console.core.common import net
from mlx_console.core.config import Profile
from mlx_console.core.errors import ConsoleError


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
        if profile.api_key:
            wanted.append(("--api-key", profile.api_key))
        missing = [flag for flag, _ in wanted if flag not in flags]
        if "--port" in missing or "--api-key" in missing:
            raise ConsoleError(f"`{' '.join(profile.command)} serve --help` lists no {' / '.join(missing)}: "
                               "this oMLX version cannot be started with the profile's settings")
        argv = [*profile.command, "serve"]
        for flag, value in wanted:
            if flag in flags:
                argv += [flag, value]
        return argv + list(profile.args)

    def extra_logs(self, profile: Profile) -> list[Path]:
        return [profile.base_path_resolved / "logs" / "server.log"]

    def probe(self, base_url: str, api_key: str | None, timeout: float) -> ProbeResult:
        # /health answers as soon as the server is up (models load on demand); a wedged engine still
        # answers it, so when a model is loaded, also ask that model for one token (backends.md §2.5).
        client = OmlxClient(base_url, api_key, timeout=timeout)
        try:
            client.health()
        except httpx.ConnectError as e:
            return ProbeResult(False, False, f"not listening: {e}")
        except (httpx.HTTPError, ConsoleError) as e:
            return ProbeResult(False, True, f"/health failed: {e}")
        try:
            loaded = [m["id"] for m in client.models() if m.get("loaded")]
        except (httpx.HTTPError, ConsoleError) as e:
            return ProbeResult(False, True, f"model status failed: {e}")
        if not loaded:
            return ProbeResult(True, True, "/health answered; no model loaded")
        return ping_completion(base_url, api_key, timeout, model=loaded[0])


    tracks_models = True

    def after_ready(self, base_url: str, api_key: str | None, model: str | None) -> str | None:
        # A profile's `model` for oMLX = keep this model loaded after every (re)start.
        if not model:
            return None
        try:
            OmlxClient(base_url, api_key).load(model)
        except (httpx.HTTPError, ConsoleError) as e:
            return f"could not load the profile's model {model!r}: {e}"
        return f"loaded the profile's model {model!r}"

    def loaded_models(self, base_url: str, api_key: str | None, timeout: float) -> list[str] | None:
        try:
            return sorted(m["id"] for m in OmlxClient(base_url, api_key, timeout).models() if m.get("loaded"))
        except (httpx.HTTPError, ConsoleError):
            return None


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
            try:
                detail = r.json()
                detail = detail.get("detail") or detail.get("error") or detail.get("message") or detail
            except ValueError:
                detail = r.text.strip()[:300]
            raise ConsoleError(f"oMLX {method} {path} → HTTP {r.status_code}: {detail}")
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
