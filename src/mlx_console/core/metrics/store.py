"""The metrics database: one SQLite file in the state dir (WAL), written by each backend's sampler, read by
the CLI and the console.

Layout (schema version in `meta`):
- `series(id, backend, name, model, agg)`: one row per (backend, series name, model; '' = the whole backend).
  `agg` says how a minute of raw samples becomes one: `max` for counters (`*_total`, monotonic) and for
  levels where the worst counts (memory pressure), `avg` for gauges.
- `samples(series_id, res, ts, value)`: `res` 0 = raw (the sampler's interval), 60 = one-minute buckets.
- `events(backend, ts, kind, detail)`: markers for plots: status transitions (restarts), memory-pressure
  transitions, triage hits.
- `meta(key, value)`: schema version, retention and interval settings, each sampler's log offset.

Retention (settable, stored in `meta`): raw samples for `raw_keep` (1 day), then folded into one-minute
buckets kept for `minute_keep` (7 days); events for `minute_keep`. Pruning runs from the samplers.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlx_console import paths

SCHEMA_VERSION = 1
DB_FILE = "metrics.sqlite3"

DEFAULTS: dict[str, float] = {
    "interval": 5.0,  # seconds between samples
    "raw_keep": 86400.0,  # raw samples kept this long (seconds)
    "minute_keep": 7 * 86400.0,  # one-minute buckets (and events) kept this long
}
SETTINGS_HELP = {
    "interval": "seconds between samples (1-3600)",
    "raw_keep": "how long raw samples are kept, e.g. 1d, 12h (at least 2m)",
    "minute_keep": "how long one-minute buckets and events are kept, e.g. 7d (at least raw_keep)",
}

MAX_AGG = ("memory_pressure",)  # gauges whose worst value in a minute is what matters

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series(
    id INTEGER PRIMARY KEY, backend TEXT NOT NULL, name TEXT NOT NULL, model TEXT NOT NULL DEFAULT '',
    agg TEXT NOT NULL DEFAULT 'avg', UNIQUE(backend, name, model));
CREATE TABLE IF NOT EXISTS samples(
    series_id INTEGER NOT NULL, res INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY(series_id, res, ts)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS samples_by_age ON samples(res, ts);  -- pruning reads only what it folds
CREATE TABLE IF NOT EXISTS events(
    id INTEGER PRIMARY KEY, backend TEXT NOT NULL, ts REAL NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_time ON events(backend, ts);
"""


def agg_for(name: str) -> str:
    return "max" if name.endswith("_total") or name in MAX_AGG or name.endswith("_ts") else "avg"


def db_path() -> Path:
    return paths.state_dir() / DB_FILE


def parse_duration(text: str) -> float:
    """`90`, `90s`, `5m`, `1h`, `1d`, `2w` → seconds. ValueError names what is allowed."""
    t = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    try:
        if t and t[-1] in units:
            value = float(t[:-1]) * units[t[-1]]
        else:
            value = float(t)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration; use a number of seconds or e.g. 30s, 5m, 1h, 1d, 1w") from None
    if value <= 0:
        raise ValueError(f"{text!r}: a duration must be positive")
    return value


@dataclass
class Event:
    backend: str
    ts: float
    kind: str  # status | pressure | triage
    detail: str


class MetricsDB:
    """`MetricsDB(path)`; writers: `add(backend, ts, [(name, model, value)])`, `event(...)`, `prune(now)`;
    readers: `query(...)`, `latest(...)`, `value_at(...)`, `events(...)`, `backends()`."""

    def __init__(self, path: Path | None = None, *, readonly: bool = False):
        self.path = path or db_path()
        self.readonly = readonly
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(self.path)
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0,
                                        check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
            self.conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new file only
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            with self.conn:
                self.conn.executescript(_SCHEMA)
                row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if row is None:
                    self.conn.execute("INSERT INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) > SCHEMA_VERSION:
                    raise RuntimeError(f"{self.path}: schema version {row[0]} is newer than this mlx-console "
                                       f"understands ({SCHEMA_VERSION}); upgrade mlx-console")
        self._ids: dict[tuple[str, str, str], int] = {}

    def close(self) -> None:
        self.conn.close()

    # -- settings ----------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES(?, ?)", (key, value))

    def setting(self, key: str) -> float:
        raw = self.meta(key)
        try:
            return float(raw) if raw is not None else DEFAULTS[key]
        except ValueError:
            return DEFAULTS[key]

    def settings(self) -> dict[str, float]:
        return {k: self.setting(k) for k in DEFAULTS}

    def set_setting(self, key: str, text: str) -> float:
        """Validate and store one setting; ValueError says what is allowed."""
        if key not in DEFAULTS:
            raise ValueError(f"unknown metrics setting {key!r}; allowed: {', '.join(DEFAULTS)}")
        value = parse_duration(text)
        current = self.settings() | {key: value}
        if not 1 <= current["interval"] <= 3600:
            raise ValueError(f"interval {text!r}: {SETTINGS_HELP['interval']}")
        if current["raw_keep"] < 120:
            raise ValueError(f"raw_keep {text!r}: {SETTINGS_HELP['raw_keep']}")
        if current["minute_keep"] < current["raw_keep"]:
            raise ValueError(f"{key} {text!r}: minute_keep must be at least raw_keep "
                             f"({current['raw_keep']:g}s)")
        self.set_meta(key, repr(value))
        return value

    # -- writing -----------------------------------------------------------------------------------
    def series_id(self, backend: str, name: str, model: str = "") -> int:
        key = (backend, name, model)
        sid = self._ids.get(key)
        if sid is None:
            with self.conn:
                self.conn.execute("INSERT OR IGNORE INTO series(backend, name, model, agg) VALUES(?,?,?,?)",
                                  (backend, name, model, agg_for(name)))
            sid = self.conn.execute("SELECT id FROM series WHERE backend=? AND name=? AND model=?",
                                    key).fetchone()[0]
            self._ids[key] = sid
        return sid

    def add(self, backend: str, ts: float, values: Iterable[tuple[str, str, float]],
            meta: dict[str, str] | None = None) -> None:
        """One sample time, many series: [(name, model, value)], and meta keys, in one transaction."""
        rows = [(self.series_id(backend, name, model), int(ts), float(v)) for name, model, v in values]
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO samples(series_id, res, ts, value) VALUES(?,0,?,?)", rows)
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES(?, ?)", list((meta or {}).items()))

    def event(self, backend: str, ts: float, kind: str, detail: str) -> None:
        with self.conn:
            self.conn.execute("INSERT INTO events(backend, ts, kind, detail) VALUES(?,?,?,?)",
                              (backend, ts, kind, detail[:300]))

    def prune(self, now: float | None = None) -> None:
        """Fold raw samples older than raw_keep into one-minute buckets; drop what is older than
        minute_keep. The cut is on a minute boundary, so a bucket is always built from a whole minute."""
        now = time.time() if now is None else now
        s = self.settings()
        cut = int((now - s["raw_keep"]) // 60 * 60)
        old = now - s["minute_keep"]
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO samples(series_id, res, ts, value) "
                "SELECT s.series_id, 60, (s.ts / 60) * 60, "
                "CASE x.agg WHEN 'max' THEN MAX(s.value) ELSE AVG(s.value) END "
                "FROM samples s JOIN series x ON x.id = s.series_id "
                "WHERE s.res = 0 AND s.ts < ? GROUP BY s.series_id, s.ts / 60", (cut,))
            self.conn.execute("DELETE FROM samples WHERE res = 0 AND ts < ?", (cut,))
            self.conn.execute("DELETE FROM samples WHERE res = 60 AND ts < ?", (int(old),))
            self.conn.execute("DELETE FROM events WHERE ts < ?", (old,))
        self.conn.execute("PRAGMA incremental_vacuum")

    # -- reading -----------------------------------------------------------------------------------
    def backends(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT backend FROM series ORDER BY backend")]

    def series_names(self, backend: str) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT name, model FROM series WHERE backend=? ORDER BY name, model", (backend,))]

    def query(self, backend: str, names: Sequence[str] | None = None, since: float = 0.0,
              step: int = 0) -> dict[tuple[str, str], list[tuple[int, float]]]:
        """{(name, model): [(ts, value), …]} oldest first, from both resolutions. `step` > 0 folds points
        into buckets of that many seconds (the series' own aggregation) for plotting long windows."""
        where, args = "x.backend = ? AND s.ts >= ?", [backend, int(since)]
        if names:
            where += f" AND x.name IN ({','.join('?' * len(names))})"
            args += list(names)
        if step > 1:
            sql = ("SELECT x.name, x.model, (s.ts / ?) * ?, "
                   "CASE x.agg WHEN 'max' THEN MAX(s.value) ELSE AVG(s.value) END "
                   f"FROM samples s JOIN series x ON x.id = s.series_id WHERE {where} "
                   "GROUP BY s.series_id, s.ts / ? ORDER BY 3")
            args = [step, step, *args, step]
        else:
            sql = (f"SELECT x.name, x.model, s.ts, s.value FROM samples s JOIN series x ON x.id = s.series_id "
                   f"WHERE {where} ORDER BY s.ts")
        out: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for name, model, ts, value in self.conn.execute(sql, args):
            out.setdefault((name, model), []).append((int(ts), value))
        return out

    def latest(self, backend: str, name: str, model: str = "") -> tuple[int, float] | None:
        row = self.conn.execute(
            "SELECT s.ts, s.value FROM samples s JOIN series x ON x.id = s.series_id "
            "WHERE x.backend=? AND x.name=? AND x.model=? ORDER BY s.ts DESC LIMIT 1",
            (backend, name, model)).fetchone()
        return (int(row[0]), row[1]) if row else None

    def value_at(self, backend: str, name: str, ts: float, model: str = "") -> float | None:
        """The last value at or before ts (a counter's reading then)."""
        row = self.conn.execute(
            "SELECT s.value FROM samples s JOIN series x ON x.id = s.series_id "
            "WHERE x.backend=? AND x.name=? AND x.model=? AND s.ts <= ? ORDER BY s.ts DESC LIMIT 1",
            (backend, name, model, int(ts))).fetchone()
        return row[0] if row else None

    def events(self, backend: str | None = None, since: float = 0.0) -> list[Event]:
        sql = "SELECT backend, ts, kind, detail FROM events WHERE ts >= ?"
        args: list[object] = [since]
        if backend is not None:
            sql += " AND backend = ?"
            args.append(backend)
        return [Event(*r) for r in self.conn.execute(sql + " ORDER BY ts", args)]

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total


def open_readonly() -> MetricsDB | None:
    """The database for reading, or None when no sampler ever wrote one (or the first one is creating it:
    a file without the tables yet)."""
    try:
        db = MetricsDB(readonly=True)
    except (FileNotFoundError, sqlite3.OperationalError):
        return None
    try:
        db.conn.execute("SELECT 1 FROM series, samples, events LIMIT 1").fetchall()
    except sqlite3.DatabaseError:
        db.close()
        return None
    return db
