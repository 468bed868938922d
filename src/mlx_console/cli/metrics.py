"""`mlx-console metrics [NAME] [--since 1h] [--series a,b] [--json]` and `metrics --serve [HOST:]PORT`.

`--json` prints one object per backend per line, exactly `{"backend": NAME, "series": {SERIES: [[unix_ts,
value], …]}}`; per-model series are keyed `name{model="id"}`. `--serve` exposes the newest values in
Prometheus text format (loopback unless a token is given). `--set interval=5s` (or raw_keep=1d,
minute_keep=7d) changes the samplers' settings, stored in the database.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from mlx_console.cli._common import add_json_flag, load_config
from mlx_console.core.errors import ConsoleError
from mlx_console.core.metrics.query import export
from mlx_console.core.metrics.store import SETTINGS_HELP, MetricsDB, db_path, open_readonly, parse_duration


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("metrics", help="what each backend did over time (series from the samplers)",
                       description="Series sampled every few seconds by each backend's supervising process "
                       "into one SQLite database in the state dir (raw for a day, one-minute buckets for a week).")
    p.add_argument("name", nargs="?", metavar="NAME", help="one backend (default: all)")
    p.add_argument("--since", default="1h", metavar="AGE", help="how far back: 90s, 5m, 1h, 1d (default 1h)")
    p.add_argument("--series", metavar="A,B", help="only these series (names as listed without --series)")
    p.add_argument("--step", metavar="AGE", help="fold points into buckets this long, e.g. 1m")
    p.add_argument("--serve", metavar="[HOST:]PORT", help="serve Prometheus text format at /metrics (loopback "
                   "by default; another address needs --token)")
    p.add_argument("--token", metavar="TOKEN", help="bearer token scrapes must send (default "
                   "$MLX_CONSOLE_METRICS_TOKEN)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="change a sampler setting: " + "; ".join(f"{k}: {v}" for k, v in SETTINGS_HELP.items()))
    p.add_argument("--events", action="store_true", help="with --json: add \"events\": [[unix_ts, kind, detail], "
                   "…] (restarts, memory-pressure transitions, triage hits) in the window to each object")
    add_json_flag(p)
    p.set_defaults(func=run_metrics)


def _fail(msg: str) -> ConsoleError:
    return ConsoleError(msg)


def run_metrics(args: argparse.Namespace) -> int:
    if args.set:
        return _settings(args)
    if args.serve:
        return _serve(args)
    try:
        since = time.time() - parse_duration(args.since)
        step = int(parse_duration(args.step)) if args.step else 0
    except ValueError as e:
        raise _fail(f"metrics: {e}") from None
    names = [s.strip() for s in args.series.split(",") if s.strip()] if args.series else None
    db = open_readonly()
    stored = db.backends() if db else []
    if args.name:
        configured = [p.name for p in load_config(args).backends]
        if args.name not in stored and args.name not in configured:
            raise _fail(f"metrics: no backend named {args.name!r}; known: "
                        f"{', '.join(sorted(set(stored) | set(configured))) or '(none)'}")
        backends = [args.name]
    else:
        backends = stored or [p.name for p in load_config(args).backends]
    try:
        for b in backends:
            series = export(db, b, since, names, step) if db else {}
            if args.json:
                obj: dict[str, object] = {"backend": b, "series": series}
                if args.events:
                    obj["events"] = [[e.ts, e.kind, e.detail] for e in db.events(b, since)] if db else []
                sys.stdout.write(json.dumps(obj) + "\n")
            else:
                _print_text(b, series)
        if not db and not args.json:
            print(f"(no metrics yet: {db_path()} is written once a backend runs)", file=sys.stderr)
    finally:
        if db:
            db.close()
    sys.stdout.flush()
    return 0


def _print_text(backend: str, series: dict[str, list[list[float]]]) -> None:
    print(f"{backend}:")
    if not series:
        print("  (no samples in this window)")
    for key, points in series.items():
        values = [v for _, v in points]
        age = time.time() - points[-1][0]
        print(f"  {key:<34} last {values[-1]:>14.6g} ({age:.0f}s ago)  min {min(values):.6g}  "
              f"max {max(values):.6g}  {len(values)} points")


def _settings(args: argparse.Namespace) -> int:
    db = MetricsDB()
    try:
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep:
                raise _fail(f"metrics --set {item!r}: use KEY=VALUE, KEY one of {', '.join(SETTINGS_HELP)}")
            try:
                db.set_setting(key.strip(), value.strip())
            except ValueError as e:
                raise _fail(f"metrics --set: {e}") from None
        settings = db.settings()
    finally:
        db.close()
    if args.json:
        print(json.dumps(settings))
    else:
        print(", ".join(f"{k}={v:g}s" for k, v in settings.items())
              + " (running samplers pick a new interval up within 10 minutes; a restart applies it at once)")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from mlx_console.core.metrics.prom import make_metrics_server, parse_bind

    token = args.token or os.environ.get("MLX_CONSOLE_METRICS_TOKEN") or None
    try:
        host, port = parse_bind(args.serve)
        server = make_metrics_server(host, port, open_readonly, token)
    except ValueError as e:
        raise _fail(f"metrics: {e}") from None
    except OSError as e:
        raise _fail(f"metrics: cannot listen on {args.serve}: {e}") from None
    shown = f"[{host}]" if ":" in host else host
    print(f"serving Prometheus metrics at http://{shown}:{server.server_port}/metrics"
          + (" (bearer token required)" if token else ""), file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
