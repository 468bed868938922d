"""Client of oMLX 0.5.0's admin API: login with the API key (→ session cookie), models, settings PUT, reload.

Admin routes need the `omlx_admin_session` cookie from `POST /admin/api/login`; `/health` is open.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from mlx_console.core.backends.base import headers as bearer
from mlx_console.core.common import net
from mlx_console.core.errors import ConsoleError

# A PUT that changes a load-time key of a pinned model reloads it inside the call, and a reload preloads pinned
# models: both can take as long as loading a big model.
SLOW_CALL = httpx.Timeout(connect=5.0, read=900.0, write=30.0, pool=5.0)


class AdminError(ConsoleError):
    """An admin call that failed; `status` is the HTTP status (None: no answer) and `detail` oMLX's reason."""

    def __init__(self, message: str, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:300]
    if isinstance(body, dict):
        detail = body.get("detail", body.get("error", body))
        if isinstance(detail, dict):
            detail = detail.get("message", detail)
        if isinstance(detail, list):  # a FastAPI 422: [{"loc": ["body", "key"], "msg": …}, …]
            parts = []
            for d in detail:
                if isinstance(d, dict):
                    loc = ".".join(str(x) for x in (d.get("loc") or [])[1:])
                    parts.append(f"{loc}: {d.get('msg', d)}" if loc else str(d.get("msg", d)))
            return "; ".join(parts) or str(detail)
        return str(detail)
    return str(body)


class OmlxAdmin:
    """One admin session against one oMLX server (`base_url` is the server root, e.g. http://127.0.0.1:8000)."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.api_key = api_key
        self._client = net.client(self.base_url, base_url=self.base_url, timeout=timeout)
        self._logged_in = False

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OmlxAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- open routes --------------------------------------------------------------------------------

    def health(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """`GET /health` body when the server answers 200, else None (not running / not ready)."""
        try:
            resp = self._client.get("/health", timeout=timeout)
        except httpx.HTTPError:
            return None
        if resp.status_code != 200:
            return None
        try:
            body = resp.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else {}

    def version(self) -> str | None:
        """oMLX's version from `GET /api/status` (needs the API key), None when it cannot be had."""
        headers = bearer(self.api_key)
        try:
            resp = self._client.get("/api/status", headers=headers, timeout=5.0)
            if resp.status_code == 200:
                version = resp.json().get("version")
                return str(version) if version else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        return None

    # ---- admin routes -------------------------------------------------------------------------------

    def login(self) -> None:
        if not self.api_key:
            raise AdminError(f"{self.base_url}: the admin API needs the server's API key (set api_key in the "
                             "backend profile)")
        try:
            resp = self._client.post("/admin/api/login", json={"api_key": self.api_key, "remember": False})
        except httpx.HTTPError as e:
            raise AdminError(f"{self.base_url}: admin login failed: {e}") from None
        if resp.status_code != 200:
            raise AdminError(f"{self.base_url}: admin login refused ({resp.status_code}): {_detail(resp)}",
                             resp.status_code, _detail(resp))
        self._logged_in = True

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        if not self._logged_in:
            self.login()
        for attempt in (1, 2):
            try:
                resp = self._client.request(method, path, **kw)
            except httpx.HTTPError as e:
                raise AdminError(f"{method} {self.base_url}{path} failed: {e}") from None
            if resp.status_code == 401 and attempt == 1:
                self.login()  # session expired (e.g. the server restarted): log in again once
                continue
            if resp.status_code >= 400:
                detail = _detail(resp)
                raise AdminError(f"{method} {path} → {resp.status_code}: {detail}", resp.status_code, detail)
            try:
                return resp.json()
            except ValueError:
                return {}
        raise AdminError(f"{method} {path}: still unauthorized after logging in again", 401)

    def models(self) -> list[dict[str, Any]]:
        """`GET /admin/api/models`: every discovered model with `loaded`, `settings` (all fields, nulls too),
        `dflash_compatible`, `mtp_compatible` …"""
        body = self._call("GET", "/admin/api/models")
        models = body.get("models", []) if isinstance(body, dict) else body
        return [m for m in models if isinstance(m, dict)]

    def put_settings(self, model_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """`PUT /admin/api/models/{id}/settings` with only the changed keys (null resets a nullable key).

        The reply: success, model_id, settings, requires_reload, auto_unloaded, auto_reloaded …
        """
        body = self._call("PUT", f"/admin/api/models/{quote(model_id, safe='')}/settings", json=changes,
                          timeout=SLOW_CALL)
        return body if isinstance(body, dict) else {}

    def reload(self) -> dict[str, Any]:
        """`POST /admin/api/reload`: re-reads model_settings.json and UNLOADS ALL MODELS (pinned ones reload)."""
        body = self._call("POST", "/admin/api/reload", timeout=SLOW_CALL)
        return body if isinstance(body, dict) else {}
