"""`mlx-console ps [--json]`: one row per backend and loaded model, what it costs and what it did lately.

`--json` prints a list of exactly `{"backend", "kind", "model", "status", "pid", "rss_bytes", "model_bytes",
"uptime_s", "requests_1m", "tok_s_1m", "last_request_s"}` (`null` where unknown). Rates come from the
metrics database the backends' samplers write (core/metrics).
"""

from __future__ import annotations

import argparse

from mlx_console.cli._common import add_json_flag, load_config, print_json
from mlx_console.core.lifecycle.control import Supervisor
from mlx_console.core.machine.system import fmt_bytes
from mlx_console.core.metrics.query import ps_rows
from mlx_console.core.metrics.store import open_readonly


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ps", help="backends and loaded models: memory, uptime, requests and tokens/s lately",
                       description="One row per backend and loaded model. Request rates come from the "
                       "samplers that run in the backends' supervising processes (see `metrics`).")
    add_json_flag(p)
    p.set_defaults(func=run_ps)


def _num(v: float | None, fmt: str = "{:g}") -> str:
    return "-" if v is None else fmt.format(v)


def _age(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.0f}s ago" if s < 120 else f"{s / 60:.0f}m ago" if s < 7200 else f"{s / 3600:.1f}h ago"


def run_ps(args: argparse.Namespace) -> int:
    statuses = Supervisor(load_config(args)).list()
    db = open_readonly()
    try:
        rows = ps_rows(statuses, db)
    finally:
        if db is not None:
            db.close()
    if args.json:
        print_json(rows)
        return 0
    table = [("BACKEND", "KIND", "STATUS", "PID", "RSS", "MODEL MEM", "UPTIME", "REQ/1m", "TOK/S", "LAST REQ",
              "MODEL")]
    for r in rows:
        table.append((r["backend"], r["kind"], r["status"], _num(r["pid"]),
                      fmt_bytes(r["rss_bytes"]) if r["rss_bytes"] else "-",
                      fmt_bytes(r["model_bytes"]) if r["model_bytes"] else "-",
                      _num(r["uptime_s"], "{:.0f}s"), _num(r["requests_1m"], "{:.0f}"), _num(r["tok_s_1m"], "{:.1f}"),
                      _age(r["last_request_s"]), r["model"] or "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0
