"""`mlx-console metrics --serve [HOST:]PORT`: the database's newest values in Prometheus text format
(prometheus-client's exposition), one metric family per series, labelled `backend` (and `model`).

Loopback by default. A non-loopback address needs a token (`--token` or $MLX_CONSOLE_METRICS_TOKEN); with a
token every scrape must send `Authorization: Bearer TOKEN` (Prometheus: `authorization: {credentials: …}`).
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mlx_console.core.metrics.store import MetricsDB

PREFIX = "mlx_console_"
# A gauge not sampled for this many sampler intervals is stale (its backend stopped): not exported.
STALE_INTERVALS = 3


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_bind(text: str) -> tuple[str, int]:
    """`9100`, `127.0.0.1:9100`, `[::1]:9100` → (host, port); ValueError says what is allowed."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--serve {text!r}: use [HOST:]PORT with PORT 1-65535, e.g. 9464 or 127.0.0.1:9464")
    return host, int(port)


def check_bind(host: str, token: str | None) -> None:
    if not _loopback(host) and not token:
        raise ValueError(f"refusing to serve metrics on {host} (not loopback) without a token: pass --token "
                         "or set MLX_CONSOLE_METRICS_TOKEN, or bind 127.0.0.1")


class DBCollector(Collector):
    """Reads the newest value of every series at each scrape (a short read transaction)."""

    def __init__(self, open_db: Callable[[], MetricsDB | None]):
        self.open_db = open_db

    def collect(self) -> Iterator[Metric]:
        db = self.open_db()
        if db is None:
            return
        try:
            yield from self._families(db)
        finally:
            db.close()

    def _families(self, db: MetricsDB) -> Iterable[Metric]:
        now = time.time()
        stale = STALE_INTERVALS * db.setting("interval")
        rows = db.conn.execute(
            "SELECT x.backend, x.name, x.model, s.ts, s.value FROM series x JOIN samples s ON s.series_id = x.id "
            "WHERE s.ts = (SELECT MAX(ts) FROM samples WHERE series_id = x.id) ORDER BY x.name").fetchall()
        families: dict[str, Any] = {}
        for backend, name, model, ts, value in rows:
            counter = name.endswith("_total")
            if not counter and now - ts > stale:
                continue
            fam = families.get(name)
            if fam is None:
                doc = f"{name} per backend (mlx-console sampler; README 'Metrics')"
                if counter:
                    fam = CounterMetricFamily(PREFIX + name[: -len("_total")], doc, labels=["backend", "model"])
                else:
                    fam = GaugeMetricFamily(PREFIX + name, doc, labels=["backend", "model"])
                families[name] = fam
            fam.add_metric([backend, model], value, timestamp=None)
        yield from families.values()


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_app(open_db: Callable[[], MetricsDB | None], token: str | None) -> Callable[..., Any]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DBCollector(open_db))
    app = make_wsgi_app(registry)

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if token:
            given = environ.get("HTTP_AUTHORIZATION", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                    ("WWW-Authenticate", "Bearer")])
                return [b"a bearer token is required\n"]
        body: Iterable[bytes] = app(environ, start_response)
        return body

    return guarded


def make_metrics_server(host: str, port: int, open_db: Callable[[], MetricsDB | None],
                        token: str | None = None) -> WSGIServer:
    check_bind(host, token)

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    return make_server(host, port, make_app(open_db, token), server_class=Server, handler_class=_Quiet)
