"""Reading the metrics database: `ps` rows, series for `metrics --json` and plots, rates for the dashboard."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlx_console.core.lifecycle.control import BackendStatus
from mlx_console.core.metrics.store import MetricsDB

PS_KEYS = ("backend", "kind", "model", "status", "pid", "rss_bytes", "model_bytes", "uptime_s", "requests_1m",
           "tok_s_1m", "last_request_s")
CONTRACT_SERIES = ("requests_total", "prompt_tokens_total", "completion_tokens_total", "decode_tps", "ttft_ms",
                   "rss_bytes", "mem_available_bytes", "swap_used_bytes", "memory_pressure")


def series_key(name: str, model: str) -> str:
    """`rss_bytes`, or `model_bytes{model="id"}` for a per-model series."""
    return f'{name}{{model="{model}"}}' if model else name


def base_name(key: str) -> str:
    return key.split("{", 1)[0]


def delta(db: MetricsDB, backend: str, name: str, window: float, now: float) -> float | None:
    """How much a counter grew over the last `window` seconds (None: never sampled)."""
    last = db.latest(backend, name)
    if last is None:
        return None
    before = db.value_at(backend, name, now - window)
    return max(0.0, last[1] - (before or 0.0))


def rates(db: MetricsDB | None, backend: str, now: float | None = None) -> dict[str, float | None]:
    """requests_1m, tok_s_1m, last_request_s for one backend (None where unknown)."""
    now = time.time() if now is None else now
    out: dict[str, float | None] = {"requests_1m": None, "tok_s_1m": None, "last_request_s": None}
    if db is None:
        return out
    req = delta(db, backend, "requests_total", 60, now)
    out["requests_1m"] = req
    tokens = delta(db, backend, "completion_tokens_total", 60, now)
    total_tokens = db.latest(backend, "completion_tokens_total")
    total_req = db.latest(backend, "requests_total")
    # Completion tokens unknown (mlx-lm without the meter: requests were seen but no token ever counted).
    unknown = bool(total_req and total_req[1] > 0 and total_tokens is not None and total_tokens[1] == 0)
    if tokens is not None and not unknown:
        out["tok_s_1m"] = round(tokens / 60.0, 2)
    last = db.latest(backend, "last_request_ts")
    if last is not None:
        out["last_request_s"] = round(max(0.0, now - last[1]), 1)
    return out


def _dir_bytes(model: str | None) -> int | None:
    """A local mlx-lm model's weights on disk (what it costs in memory once loaded)."""
    if not model:
        return None
    p = Path(model).expanduser()
    if not p.is_dir():
        return None
    total = sum(f.stat().st_size for f in p.glob("*.safetensors"))
    return total or None


def ps_rows(statuses: list[BackendStatus], db: MetricsDB | None, now: float | None = None) -> list[dict[str, Any]]:
    """One row per backend and loaded model, exactly PS_KEYS (None where unknown)."""
    now = time.time() if now is None else now
    rows: list[dict[str, Any]] = []
    for st in statuses:
        r = rates(db, st.name, now)
        base = {"backend": st.name, "kind": st.kind, "status": st.status, "pid": st.pid,
                "rss_bytes": st.rss_bytes, "uptime_s": st.uptime_s, **r}
        if st.kind == "omlx" and st.loaded_models:
            for model in st.loaded_models:
                size = db.latest(st.name, "model_bytes", model) if db is not None else None
                rows.append(_ordered(base | {"model": model, "model_bytes": int(size[1]) if size else None}))
        else:
            model_bytes = _dir_bytes(st.model) if st.kind == "mlx-lm" and st.active else None
            rows.append(_ordered(base | {"model": st.model, "model_bytes": model_bytes}))
    return rows


def _ordered(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in PS_KEYS}


def export(db: MetricsDB, backend: str, since: float, names: list[str] | None = None,
           step: int = 0) -> dict[str, list[list[float]]]:
    """{series key: [[unix_ts, value], …]} for `metrics --json`."""
    data = db.query(backend, names or None, since, step)
    return {series_key(name, model): [[ts, v] for ts, v in points]
            for (name, model), points in sorted(data.items())}


def per_minute(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """A counter's readings → its rate per minute between consecutive readings (restarts never go negative)."""
    out = []
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        if t1 > t0:
            out.append((t1, max(0.0, v1 - v0) * 60.0 / (t1 - t0)))
    return out


def per_second(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    return [(t, v / 60.0) for t, v in per_minute(points)]


# -- what the console's metrics screen plots ---------------------------------------------------------------

WINDOWS = {"5m": 300, "1h": 3600, "24h": 86400}
GIB = 1024**3


@dataclass
class Line:
    label: str
    points: list[tuple[int, float]]


@dataclass
class Panel:
    title: str
    unit: str
    lines: list[Line] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(line.points for line in self.lines)


@dataclass
class Marker:
    ts: float
    kind: str  # status | pressure | triage
    detail: str

    @property
    def short(self) -> str:
        if self.kind == "status":
            return self.detail.split(":", 1)[0]
        if self.kind == "pressure":
            return "pressure " + self.detail.split("->", 1)[-1].split("(")[0].strip()
        return "triage " + self.detail.split(":", 1)[0]


@dataclass
class PlotData:
    backend: str
    window: int
    now: float
    panels: list[Panel]
    markers: list[Marker]


def plot_data(db: MetricsDB | None, backend: str, window: int, now: float | None = None,
              points: int = 120) -> PlotData:
    """The four panels of the metrics screen (throughput, TTFT, requests, memory) over `window` seconds,
    folded to about `points` points, and the markers (restarts, pressure transitions, triage) in the window."""
    now = time.time() if now is None else now
    since = now - window
    step = plot_step(window, points)
    data = db.query(backend, None, since, step) if db is not None else {}
    events = [(e.ts, e.kind, e.detail) for e in db.events(backend, since)] if db is not None else []
    return plot_from(backend, window, now, data, events)


def local_plot_data(backend: str, window: int) -> PlotData:
    """plot_data() from this machine's samplers' database (none written yet: empty panels)."""
    from mlx_console.core.metrics.store import open_readonly

    db = open_readonly()
    try:
        return plot_data(db, backend, window)
    finally:
        if db is not None:
            db.close()


def plot_step(window: int, points: int = 120) -> int:
    """The bucket length that folds `window` seconds into about `points` points (0: raw samples)."""
    step = max(1, window // points)
    return step if step > 5 else 0


def parse_export(obj: dict[str, Any]) -> tuple[dict[tuple[str, str], list[tuple[int, float]]],
                                               list[tuple[float, str, str]]]:
    """One line of `metrics NAME --json [--events]` (another host's) back into query() and events() shapes."""
    data: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for key, pts in (obj.get("series") or {}).items():
        name, _, rest = str(key).partition("{")
        model = rest[len('model="'):-2] if rest.startswith('model="') and rest.endswith('"}') else ""
        data[(name, model)] = [(int(p[0]), float(p[1])) for p in pts
                               if isinstance(p, list | tuple) and len(p) == 2 and p[1] is not None]
    events = [(float(e[0]), str(e[1]), str(e[2])) for e in obj.get("events") or []
              if isinstance(e, list | tuple) and len(e) == 3]
    return data, events


def plot_from(backend: str, window: int, now: float, data: dict[tuple[str, str], list[tuple[int, float]]],
              events: list[tuple[float, str, str]]) -> PlotData:
    """The panels and markers from series (query() shape) and events (ts, kind, detail)."""
    since = now - window

    def get(name: str, model: str = "") -> list[tuple[int, float]]:
        return data.get((name, model), [])

    models = sorted(m for (n, m) in data if n == "model_bytes")
    model_total: dict[int, float] = {}
    for m in models:
        for ts, v in get("model_bytes", m):
            model_total[ts] = model_total.get(ts, 0.0) + v
    completion = get("completion_tokens_total")
    if completion and not any(v for _, v in completion):
        completion = []  # never counted (mlx-lm without the meter): unknown, not zero
    panels = [
        Panel("Throughput", "tok/s", [Line("decode", get("decode_tps")),
                                      Line("completion", per_second(completion))]),
        Panel("TTFT", "ms", [Line("ttft", get("ttft_ms"))]),
        Panel("Requests", "/min", [Line("all", per_minute(get("requests_total"))),
                                   Line("errors", _sum_rates(get("requests_4xx_total"), get("requests_5xx_total")))]),
        Panel("Memory", "GiB", [
            Line("rss", [(t, v / GIB) for t, v in get("rss_bytes")]),
            Line("models", [(t, v / GIB) for t, v in sorted(model_total.items())]),
            Line("available", [(t, v / GIB) for t, v in get("mem_available_bytes")]),
            Line("swap", [(t, v / GIB) for t, v in get("swap_used_bytes")]),
        ]),
    ]
    for p in panels:
        p.lines = [ln for ln in p.lines if ln.points]
    markers = [Marker(ts, kind, detail) for ts, kind, detail in events if ts >= since]
    return PlotData(backend, window, now, panels, markers)


def _sum_rates(*counters: list[tuple[int, float]]) -> list[tuple[int, float]]:
    total: dict[int, float] = {}
    for c in counters:
        for t, v in per_minute(c):
            total[t] = total.get(t, 0.0) + v
    return sorted(total.items())


# -- what the dashboard's rows show: requests/min and a small throughput sparkline ---------------------------

SPARK = "▁▂▃▄▅▆▇█"


@dataclass
class Activity:
    """One backend's recent activity for a dashboard row. `spark_of` names what the sparkline plots:
    "tok/s" (completion tokens per second, per bucket) or "req/min" where completion tokens are not counted
    (mlx-lm without the meter); `spark` is empty before the first two samples."""

    requests_1m: float | None = None
    tok_s_1m: float | None = None
    spark: list[float] = field(default_factory=list)
    spark_of: str = "tok/s"

    def to_json(self) -> dict[str, Any]:
        return {"requests_1m": self.requests_1m, "tok_s_1m": self.tok_s_1m, "spark": self.spark,
                "spark_of": self.spark_of}


def activity(db: MetricsDB | None, backend: str, now: float | None = None, minutes: int = 10,
             buckets: int = 10) -> Activity:
    """requests/min and tok/s over the last minute (as `ps`), and the throughput of the last `minutes`
    in `buckets` equal buckets for a sparkline."""
    now = time.time() if now is None else now
    if db is None:
        return Activity()
    r = rates(db, backend, now)
    step = max(1, minutes * 60 // buckets)
    since = now - minutes * 60
    data = db.query(backend, ["completion_tokens_total", "requests_total"], since - step, 0)
    tokens = data.get(("completion_tokens_total", ""), [])
    counted = r["tok_s_1m"] is not None and any(v for _, v in tokens)
    points = tokens if counted else data.get(("requests_total", ""), [])
    per = 1.0 if counted else 60.0  # tok/s, or requests/min
    spark = []
    for i in range(buckets):
        lo, hi = since + i * step, since + (i + 1) * step
        before = [v for t, v in points if t <= lo]
        inside = [v for t, v in points if lo < t <= hi]
        if not inside:
            spark.append(0.0)
            continue
        start = before[-1] if before else inside[0]
        spark.append(round(max(0.0, inside[-1] - start) * per / step, 3))
    if len(points) < 2:
        spark = []
    return Activity(r["requests_1m"], r["tok_s_1m"], spark, "tok/s" if counted else "req/min")


def activities(backends: list[str], now: float | None = None) -> dict[str, Activity]:
    """activity() of each backend from this machine's samplers' database (none yet: all unknown)."""
    from mlx_console.core.metrics.store import open_readonly

    db = open_readonly()
    try:
        return {b: activity(db, b, now) for b in backends}
    finally:
        if db is not None:
            db.close()


def sparkline(values: list[float], width: int = 8) -> str:
    """The last `width` values as block characters scaled to their maximum ("" without values; nothing in a
    bucket: the lowest block, so quiet and unknown look different)."""
    vals = values[-width:]
    if not vals:
        return ""
    top = max(vals)
    return "".join(SPARK[0] if v <= 0 or top <= 0 else SPARK[max(1, round(v / top * (len(SPARK) - 1)))]
                   for v in vals)
