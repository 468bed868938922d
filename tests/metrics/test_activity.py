"""The dashboard's REQ/M and TOK/S cells: rates of the last minute and a throughput sparkline, from a real
metrics database."""

from __future__ import annotations

from mlx_console.core.metrics.query import activities, activity, sparkline
from mlx_console.core.metrics.store import MetricsDB


def test_activity_tok_s_sparkline_when_tokens_are_counted() -> None:
    db = MetricsDB()
    now = 1_800_000_000.0
    for i in range(121):  # the last 10 minutes at 5 s: quiet for 5 minutes, then 2 req and 60 tokens per 5 s
        t = now - 600 + 5 * i
        busy = max(0, i - 60)
        db.add("m", t, [("requests_total", "", 2.0 * busy), ("completion_tokens_total", "", 60.0 * busy),
                        ("last_request_ts", "", t)])
    a = activity(db, "m", now)
    assert a.requests_1m == 24 and a.tok_s_1m == 12.0 and a.spark_of == "tok/s"
    assert len(a.spark) == 10 and a.spark[:4] == [0.0] * 4 and all(abs(v - 12.0) < 0.01 for v in a.spark[-4:])
    assert sparkline(a.spark, 10).startswith("▁▁▁▁") and sparkline(a.spark, 10).endswith("████")
    db.close()


def test_activity_counts_requests_where_tokens_are_not() -> None:
    """mlx-lm without the meter: requests are seen, completion tokens never counted → tok/s unknown and the
    sparkline plots requests/min."""
    db = MetricsDB()
    now = 1_800_000_000.0
    for i in range(25):
        db.add("p", now - 120 + 5 * i, [("requests_total", "", float(i)), ("completion_tokens_total", "", 0.0)])
    a = activity(db, "p", now)
    assert a.tok_s_1m is None and a.requests_1m == 12 and a.spark_of == "req/min"
    assert abs(a.spark[-1] - 12.0) < 0.01
    db.close()


def test_no_database_and_unknown_backend_are_unknown_not_zero() -> None:
    assert activities(["x"])["x"].to_json() == {"requests_1m": None, "tok_s_1m": None, "spark": [],
                                                "spark_of": "tok/s"}
    assert sparkline([]) == "" and sparkline([0, 0]) == "▁▁" and sparkline([1, 2, 4, 8], 3) == "▃▅█"
