"""The sampler: a thread in each backend's supervising process (core/lifecycle/daemon.py) that every
`interval` seconds reads what changed and appends one row per series to the metrics database.

It outlives the console (it lives in the supervising process), keeps counting across server restarts (the
counters resume from the database, the log is read on from the saved offset) and, when it cannot write,
says so in the backend's status (a `metrics: …` warning) and keeps trying.

Series (name, unit, source) — README "Metrics" lists them too:
  requests_total, requests_{2xx,4xx,5xx}_total   count   log lines (mlx-lm access line; oMLX completion/error lines)
  prompt_tokens_total, completion_tokens_total   tokens  log lines (completion tokens: oMLX only, or the meter)
  cache_hit_tokens_total                         tokens  oMLX /api/status total_cached_tokens; mlx-lm 0.31 KV line
  decode_tps                                     tok/s   oMLX completion line (mean of the interval), meter
  ttft_ms, request_seconds                       ms, s   meter (ttft); oMLX completion line / meter (duration)
  in_flight                                      count   oMLX /api/status active_requests, meter
  kv_cache_bytes                                 bytes   mlx-lm `Prompt Cache:` / `KV Caches:` line
  model_bytes{model}                             bytes   oMLX /v1/models/status actual_size of loaded models
  rss_bytes, cpu_percent                         bytes,% psutil: the server and its children
  mem_available_bytes, swap_used_bytes           bytes   OS (psutil / macOS memory_pressure, sysctl)
  memory_pressure                                0/1/2   normal/warn/critical: macOS kernel level, Linux PSI
  metal_working_set_bytes                        bytes   macOS iogpu.wired_limit_mb when set (no root needed)
  last_request_ts                                unix s  the time the newest request was seen
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from mlx_console.core.logs.live import Reactions
from mlx_console.core.logs.tail import LogTail
from mlx_console.core.machine import system
from mlx_console.core.metrics.sources import LogTally, read_omlx, tally_lines
from mlx_console.core.metrics.store import MetricsDB, db_path

PRESSURE_VALUE = {"normal": 0.0, "warn": 1.0, "critical": 2.0}
COUNTERS = ("requests_total", "requests_2xx_total", "requests_4xx_total", "requests_5xx_total",
            "prompt_tokens_total", "completion_tokens_total", "cache_hit_tokens_total")
PRUNE_EVERY = 600.0
CHILDREN_EVERY = 30.0


@dataclass
class Observation:
    """One request as the metering proxy saw it."""

    ts: float
    status: int
    ttft_ms: float | None
    duration_s: float
    prompt_tokens: int | None
    completion_tokens: int | None
    client: str = ""
    model: str = ""


@dataclass
class SampledBackend:
    """What the sampler watches; the pid and status events are read live from the supervising process."""

    name: str
    kind: str
    log: Path
    base_url: str
    api_key: str | None = None
    pid: Callable[[], int | None] = lambda: None
    events: Callable[[], list[dict[str, Any]]] = list
    classify: Callable[[str], tuple[str, str] | None] = lambda line: None
    metered: bool = False  # requests are counted by the meter, not from the log
    extra: dict[str, Any] = field(default_factory=dict)


class Sampler:
    def __init__(self, target: SampledBackend, db_path: Path | None = None, report: Callable[[str], None] | None = None):
        self.t = target
        self.db_path = db_path
        self.report = report or (lambda msg: None)
        self.db: MetricsDB | None = None
        self.error = ""
        self.interval = 5.0
        self.totals: dict[str, float] = dict.fromkeys(COUNTERS, 0.0)
        self.offset: int | None = None  # where reading resumes (set from the database at the first sample)
        self.tail: LogTail | None = None
        self.last_request_ts: float | None = None
        self.seen_event_t = 0.0
        self.pressure: str | None = None
        self.omlx_cached_base: float | None = None
        self.proc: psutil.Process | None = None
        self.children: list[psutil.Process] = []
        self.children_at = 0.0
        self.last_prune = 0.0
        self.observed: list[Observation] = []
        self.lock = threading.Lock()  # guards `observed` (the meter adds from its thread)
        self.busy = threading.Lock()  # one sample at a time (the loop, the last one at exit)
        self.ticks = 0

    # -- setup -------------------------------------------------------------------------------------
    def _open(self) -> MetricsDB:
        if self.db is None:
            db = MetricsDB(self.db_path)
            try:
                self.interval = db.setting("interval")
                for name in COUNTERS:
                    last = db.latest(self.t.name, name)
                    self.totals[name] = max(self.totals[name], last[1] if last else 0.0)
                last = db.latest(self.t.name, "last_request_ts")
                if last and self.last_request_ts is None:
                    self.last_request_ts = last[1]
                if self.offset is None:
                    self.offset = self._resume_offset(db.meta(f"offset:{self.t.name}"))
                evs = db.events(self.t.name)
                self.seen_event_t = max([self.seen_event_t, *(e.ts for e in evs if e.kind == "status")])
                db.event(self.t.name, time.time(), "status", f"starting: supervising process pid {os.getpid()}")
            except BaseException:
                db.close()
                raise
            self.db = db
        return self.db

    def _resume_offset(self, saved: str | None) -> int:
        """Read on where the last sampler stopped (same file, not shrunk); a new or rotated log from its
        start; with no saved offset, from the end (history before metrics existed is not imported)."""
        try:
            st = self.t.log.stat()
        except OSError:
            return 0
        if saved:
            ino, _, off = saved.partition(":")
            if ino == str(st.st_ino) and off.isdigit() and int(off) <= st.st_size:
                return int(off)
            return 0
        return st.st_size

    # -- one sample --------------------------------------------------------------------------------
    def _new_lines(self) -> list[str]:
        """The server log's complete lines since the last sample, read as every log reader does (core/logs:
        rotation, truncation and partial lines handled there); at most about 4 MiB per sample."""
        if self.tail is None:
            self.tail = LogTail(self.t.log, start=self.offset or 0)
        lines = self.tail.poll(4 << 20).lines
        if self.tail.document is not None:
            self.offset = self.tail.offset
        return lines

    def _process(self, now: float) -> list[tuple[str, str, float]]:
        pid = self.t.pid()
        out: list[tuple[str, str, float]] = []
        if not pid:
            self.proc = None
            return out
        try:
            if self.proc is None or self.proc.pid != pid:
                self.proc, self.children_at = psutil.Process(pid), 0.0
                self.proc.cpu_percent()  # primes the counter: the first reading is the next tick's
            if now - self.children_at > CHILDREN_EVERY:
                self.children, self.children_at = self.proc.children(recursive=True), now
            rss = self.proc.memory_info().rss
            cpu = self.proc.cpu_percent()
            for c in self.children:
                try:
                    rss += c.memory_info().rss
                except psutil.Error:
                    pass
            out += [("rss_bytes", "", float(rss)), ("cpu_percent", "", cpu)]
        except psutil.Error:
            self.proc = None
        return out

    def _machine(self, now: float, events: list[tuple[str, str]]) -> list[tuple[str, str, float]]:
        try:
            m = system.memory()
        except Exception:  # a machine reading that fails must not stop the sampler
            return []
        out = [("mem_available_bytes", "", float(m.available))]
        if m.swap_used is not None:
            out.append(("swap_used_bytes", "", float(m.swap_used)))
        if m.working_set:
            out.append(("metal_working_set_bytes", "", float(m.working_set)))
        if m.pressure in PRESSURE_VALUE:
            out.append(("memory_pressure", "", PRESSURE_VALUE[m.pressure]))
            if self.pressure is not None and m.pressure != self.pressure:
                events.append(("pressure", f"memory pressure {self.pressure} -> {m.pressure}"
                                           + (f" ({m.pressure_reason})" if m.pressure_reason else "")))
            self.pressure = m.pressure
        return out

    def record(self, obs: Observation) -> None:
        """Called by the metering proxy (another thread) for each finished request."""
        with self.lock:
            self.observed.append(obs)

    def sample(self, now: float | None = None) -> list[tuple[str, str, float]]:
        """Read everything once and append it to the database. Returns the rows written."""
        now = time.time() if now is None else now
        db = self._open()
        events: list[tuple[str, str]] = []
        lines = self._new_lines()
        tally = tally_lines(self.t.kind, lines) if lines else LogTally()
        for line in lines:
            hit = self.t.classify(line)
            if hit is not None:
                events.append(("triage", f"{hit[0]}: {hit[1]}"))
        events += [("pressure", p) for p in tally.pressure]
        with self.lock:
            observed, self.observed = self.observed, []
        rows: list[tuple[str, str, float]] = []
        tps: list[float] = list(tally.decode_tps)
        ttft: list[float] = []
        durations: list[float] = list(tally.request_seconds)
        requests = dict(tally.requests)
        prompt, completion = tally.prompt_tokens, tally.completion_tokens
        if self.t.metered:  # the meter saw every request: it counts them, not the log
            requests, prompt, completion, tps, durations = {}, 0, 0, [], []
            for o in observed:
                cls = f"{o.status // 100}xx"
                requests[cls] = requests.get(cls, 0) + 1
                prompt += o.prompt_tokens or 0
                completion += o.completion_tokens or 0
                durations.append(o.duration_s)
                if o.ttft_ms is not None:
                    ttft.append(o.ttft_ms)
                    gen_s = o.duration_s - o.ttft_ms / 1000
                    if o.completion_tokens and o.completion_tokens > 1 and gen_s > 0:
                        tps.append((o.completion_tokens - 1) / gen_s)
        n = sum(requests.values())
        if n:
            self.totals["requests_total"] += n
            for cls, k in requests.items():
                key = f"requests_{cls}_total"
                if key in self.totals:
                    self.totals[key] += k
            self.last_request_ts = now
        self.totals["prompt_tokens_total"] += prompt
        self.totals["completion_tokens_total"] += completion
        self.totals["cache_hit_tokens_total"] += tally.cached_tokens
        if self.t.kind == "omlx":
            reading = read_omlx(self.t.base_url, self.t.api_key, timeout=min(2.0, self.interval))
            if reading.in_flight is not None and not self.t.metered:
                rows.append(("in_flight", "", reading.in_flight))
            if reading.cached_tokens_total is not None:
                # oMLX's total restarts with the server: add only what it grew by.
                base = self.omlx_cached_base
                if base is not None and reading.cached_tokens_total >= base:
                    self.totals["cache_hit_tokens_total"] += reading.cached_tokens_total - base
                self.omlx_cached_base = reading.cached_tokens_total
            for model, size in reading.model_bytes.items():
                rows.append(("model_bytes", model, size))
        rows += [(name, "", value) for name, value in self.totals.items()]
        if tps:
            rows.append(("decode_tps", "", sum(tps) / len(tps)))
        if ttft:
            rows.append(("ttft_ms", "", sum(ttft) / len(ttft)))
        if durations:
            rows.append(("request_seconds", "", sum(durations) / len(durations)))
        if tally.kv_cache_bytes is not None:
            rows.append(("kv_cache_bytes", "", tally.kv_cache_bytes))
        if self.last_request_ts is not None:
            rows.append(("last_request_ts", "", self.last_request_ts))
        rows += self._process(now)
        rows += self._machine(now, events)
        for ev in self.t.events():
            t = float(ev.get("t") or 0)
            if t > self.seen_event_t:
                self.seen_event_t = t
                detail = str(ev.get("status", "")) + (f": {ev['reason']}" if ev.get("reason") else "")
                db.event(self.t.name, t, "status", detail)
        for kind, detail in events:
            db.event(self.t.name, now, kind, detail)
        db.add(self.t.name, now, rows, meta=self._offset_meta())
        if now - self.last_prune > PRUNE_EVERY:
            db.prune(now)
            self.interval = db.setting("interval")
            self.last_prune = now
        self.ticks += 1
        return rows

    def _offset_meta(self) -> dict[str, str]:
        doc = self.tail.document if self.tail is not None else None
        if doc is None:
            return {}
        return {f"offset:{self.t.name}": f"{doc.ident[1]}:{doc.offset}"}

    def last_sample(self) -> None:
        """At the supervising process's exit: the final status (stopped, dead) and counts are kept."""
        if self.busy.acquire(timeout=2.0):
            try:
                self.sample()
            except (sqlite3.Error, OSError, RuntimeError):
                pass
            finally:
                self.busy.release()

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        while True:
            try:
                with self.busy:
                    self.sample()
                self.error = ""
            except (sqlite3.Error, OSError, RuntimeError) as e:
                self.error = f"metrics: cannot write {self.db_path or 'the metrics database'}: {e}"
                if self.db is not None:
                    self.db.close()
                    self.db = None
            self.report(self.error)  # the receiver passes on changes only
            if stop.wait(self.interval):
                return


def start_sampler(sup: Any) -> Sampler | None:
    """The daemon's hook: start sampling the backend that `sup` (a lifecycle.daemon.Supervise) watches.
    Problems are reported to the daemon as ("sampler", message) on its probe queue (it puts them in the
    backend's status warnings); "" clears them."""
    spec = sup.spec

    last: list[tuple[int, str]] = [(0, "")]

    def report(msg: str) -> None:  # again for each new server process: the daemon drops older generations' news
        if (sup.generation, msg) != last[0] and (msg or last[0][1]):
            last[0] = (sup.generation, msg)
            sup.probes.put((sup.generation, "sampler", msg))

    metered = bool(getattr(spec, "meter_port", None))
    reactions = Reactions(spec.kind)  # the supervisor's own reactions (catalogue entries with an action)

    def classify(line: str) -> tuple[str, str] | None:
        hit = reactions.react(line)
        return (hit.action, hit.reason) if hit is not None else None

    target = SampledBackend(
        name=spec.name, kind=spec.kind, log=Path(spec.log), base_url=spec.base_url, api_key=spec.api_key,
        pid=lambda: sup.state.pid if sup.child is not None else None,
        events=lambda: list(sup.state.events), classify=classify, metered=metered,
    )
    sampler = Sampler(target, db_path(), report)
    atexit.register(sampler.last_sample)
    if metered:  # the public port is ours: the status shows it, the server keeps its private one
        from mlx_console.core.metrics.meter import Meter

        host = spec.meter_host or "127.0.0.1"
        try:
            Meter(host, spec.meter_port, sup.connect_host, spec.port, sampler.record).start()
        except OSError as e:
            sup.state.warnings.append(f"meter: cannot listen on {host}:{spec.meter_port}: {e}")
        shown = f"[{host}]" if ":" in host else host
        sup.state.host, sup.state.port = host, spec.meter_port
        sup.state.base_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else shown}:{spec.meter_port}"
    threading.Thread(target=sampler.run, args=(threading.Event(),), name="metrics-sampler", daemon=True).start()
    return sampler
