"""The metrics database: retention with downsampling keeps it bounded; settings are validated."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlx_console.core.metrics.query import delta, per_minute
from mlx_console.core.metrics.store import MetricsDB, parse_duration

SERIES = ("requests_total", "prompt_tokens_total", "completion_tokens_total", "cache_hit_tokens_total",
          "decode_tps", "ttft_ms", "in_flight", "kv_cache_bytes", "rss_bytes", "cpu_percent",
          "mem_available_bytes", "swap_used_bytes", "memory_pressure", "last_request_ts")


def test_a_simulated_week_stays_bounded_and_keeps_a_week(tmp_path: Path) -> None:
    """A week of samples at 10 s for 14 series (+ one model), pruned every 10 min as the sampler does."""
    db = MetricsDB(tmp_path / "m.sqlite3")
    start = 1_700_000_000 - 1_700_000_000 % 60
    week, interval = 7 * 86400, 10
    total = 0.0
    now = start
    sizes = []
    while now < start + week + 86400:  # 8 days: one day past the retention
        batch = []
        for t in range(now, now + 1800, interval):
            total += 1
            batch.append((t, [(name, "", total if name.endswith("_total") else float(t % 977))
                              for name in SERIES] + [("model_bytes", "tiny", 4e9)]))
        with db.conn:
            for t, rows in batch:
                db.conn.executemany("INSERT OR REPLACE INTO samples(series_id, res, ts, value) VALUES(?,0,?,?)",
                                    [(db.series_id("b", n, m), t, v) for n, m, v in rows])
        now += 1800
        db.prune(now)
        if now - start in (3 * 86400, 8 * 86400):
            sizes.append(db.size_bytes())
    n_series = len(SERIES) + 1
    raw = db.conn.execute("SELECT COUNT(*) FROM samples WHERE res=0").fetchone()[0]
    minute = db.conn.execute("SELECT COUNT(*), MIN(ts) FROM samples WHERE res=60").fetchone()
    # Raw: about one day; one-minute buckets: the six days before that (nothing older than a week).
    assert 86400 // interval * n_series * 0.98 <= raw <= (86400 // interval + 6) * n_series
    assert minute[1] >= now - week and minute[0] <= 6 * 1440 * n_series + 2 * n_series
    # Bounded: the size after 8 days is the size of a steady state, not a growing file.
    print("db sizes at day 3 and day 8:", sizes)
    assert sizes[1] < 20 * 2**20, sizes
    # The counter's newest value survives downsampling exactly (max); the oldest bucket is a max too.
    assert db.latest("b", "requests_total")[1] == total
    pts = db.query("b", ["requests_total"], since=0)[("requests_total", "")]
    assert all(b[1] >= a[1] for a, b in zip(pts, pts[1:], strict=False))
    assert delta(db, "b", "requests_total", 60, now) == pytest.approx(6, abs=1)
    db.close()


def test_downsampling_averages_gauges_and_keeps_counter_max(tmp_path: Path) -> None:
    db = MetricsDB(tmp_path / "m.sqlite3")
    db.set_setting("raw_keep", "2m")
    t0 = 1_700_000_000 - 1_700_000_000 % 60
    for i in range(12):  # one minute at 5 s
        db.add("b", t0 + 5 * i, [("rss_bytes", "", 100.0 * i), ("requests_total", "", float(i)),
                                 ("memory_pressure", "", 2.0 if i == 3 else 0.0)])
    db.prune(t0 + 60 + 180)
    rows = {r[0]: (r[1], r[2]) for r in db.conn.execute(
        "SELECT x.name, s.ts, s.value FROM samples s JOIN series x ON x.id=s.series_id WHERE s.res=60")}
    assert rows["rss_bytes"] == (t0, pytest.approx(550.0))
    assert rows["requests_total"] == (t0, 11.0)
    assert rows["memory_pressure"] == (t0, 2.0)  # a critical moment is not averaged away
    assert db.conn.execute("SELECT COUNT(*) FROM samples WHERE res=0").fetchone()[0] == 0
    # Rate per minute from counter readings, and folding on read for long windows.
    assert per_minute([(0, 0.0), (30, 5.0), (60, 3.0)]) == [(30, 10.0), (60, 0.0)]
    db.close()


def test_settings_are_validated_and_stored(tmp_path: Path) -> None:
    db = MetricsDB(tmp_path / "m.sqlite3")
    assert db.settings() == {"interval": 5.0, "raw_keep": 86400.0, "minute_keep": 7 * 86400.0}
    assert db.set_setting("interval", "2s") == 2.0
    with pytest.raises(ValueError, match="minute_keep must be at least raw_keep"):
        db.set_setting("raw_keep", "30d")
    with pytest.raises(ValueError, match="unknown metrics setting 'speed'; allowed: interval, raw_keep"):
        db.set_setting("speed", "1")
    with pytest.raises(ValueError, match="'abc' is not a duration"):
        parse_duration("abc")
    db.close()
    again = MetricsDB(tmp_path / "m.sqlite3", readonly=True)
    assert again.setting("interval") == 2.0 and again.meta("schema_version") == "1"
    assert again.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = MetricsDB(tmp_path / "m.sqlite3")
    db.set_meta("schema_version", "99")
    db.close()
    with pytest.raises(RuntimeError, match="schema version 99 is newer"):
        MetricsDB(tmp_path / "m.sqlite3")


def test_queries_fold_points_for_long_windows(tmp_path: Path) -> None:
    db = MetricsDB(tmp_path / "m.sqlite3")
    now = int(time.time()) // 60 * 60
    for i in range(120):
        db.add("b", now - 600 + 5 * i, [("decode_tps", "", float(i))])
    raw = db.query("b", ["decode_tps"], since=now - 600)[("decode_tps", "")]
    folded = db.query("b", ["decode_tps"], since=now - 600, step=60)[("decode_tps", "")]
    assert len(raw) == 120 and len(folded) == 10 and folded[0] == (now - 600, pytest.approx(5.5))
    db.close()
