"""Loopback, defined once, and the one way the console makes HTTP calls.

A proxy from the environment (HTTP_PROXY, ALL_PROXY …) must never see a call to a server on this machine:
with `HTTP_PROXY` set, liveness and bench went through the proxy and reported `not listening` while the
admin client reached the server. Every HTTP client in core comes from here; for a loopback URL it ignores
the environment (trust_env=False), for any other host it honours it.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1, ::ffff:127.x, `localhost`; brackets allowed ('[::1]')."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def trust_env(url: str) -> bool:
    """Whether a call to `url` may use the environment's proxy settings: never for loopback."""
    host = urlsplit(url).hostname
    return not (host and is_loopback(host))


def client(url: str, **kw: Any) -> httpx.Client:
    """A client for calls to the server at `url` (kw: httpx.Client's, e.g. base_url, timeout).
    httpx is imported here, at the first call: start-up paths that never call (`backends list`) skip it."""
    import httpx

    return httpx.Client(trust_env=trust_env(url), **kw)


def async_client(url: str, **kw: Any) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(trust_env=trust_env(url), **kw)


def request(method: str, url: str, **kw: Any) -> httpx.Response:
    """One call (kw: httpx.request's: headers, json, timeout …)."""
    with client(url) as c:
        return c.request(method, url, **kw)
