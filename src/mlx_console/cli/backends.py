"""`mlx-console backends list|status|start|stop|restart|swap`: backend lifecycle for scripts.

`list --json` prints exactly `[{"name","kind","status","pid","port","model","uptime_s","rss_bytes","log", …extra}]`.
Progress goes to stderr; a failure exits 1 with the reason and the log lines that say why.
"""

from __future__ import annotations

import argparse
import sys

from mlx_console.cli._common import add_json_flag, load_config, print_json
from mlx_console.core.supervisor import BackendStatus, Supervisor


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backends", help="list, start, stop and restart backends",
                       description="Backends run detached under a supervising process: they outlive the "
                       "console and an SSH drop. Status comes from the same state files the TUI reads.")
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])
    bs = p.add_subparsers(dest="action", metavar="ACTION")

    ls = bs.add_parser("list", help="every configured backend with its status")
    add_json_flag(ls)
    ls.set_defaults(func=run_list)

    st = bs.add_parser("status", help="one backend's status (with the reason when it is not ready)")
    st.add_argument("name", metavar="NAME")
    add_json_flag(st)
    st.set_defaults(func=run_status)

    for action, helptext in (("start", "start a backend (or re-adopt one whose supervisor is gone)"),
                             ("restart", "stop, then start again on the same model")):
        a = bs.add_parser(action, help=helptext)
        a.add_argument("name", metavar="NAME")
        a.add_argument("--wait", type=float, metavar="SECONDS",
                       help="wait until a 1-token completion answers; fail after SECONDS")
        add_json_flag(a)
        a.set_defaults(func=run_start if action == "start" else run_restart)

    sp = bs.add_parser("stop", help="stop a backend: SIGTERM, then SIGKILL after a grace period")
    sp.add_argument("name", metavar="NAME")
    add_json_flag(sp)
    sp.set_defaults(func=run_stop)

    sw = bs.add_parser("swap", help="serve another model (mlx-lm: restart; oMLX: load through its API)")
    sw.add_argument("name", metavar="NAME")
    sw.add_argument("model", metavar="MODEL")
    sw.add_argument("--wait", type=float, metavar="SECONDS")
    add_json_flag(sw)
    sw.set_defaults(func=run_swap)


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return "-"


def _human_secs(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(s)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _line(st: BackendStatus) -> str:
    where = f"pid {st.pid}, {st.base_url}" if st.pid else st.base_url
    text = f"{st.name}: {st.status} ({where})"
    return text + (f" — {st.reason}" if st.reason else "")


def run_list(args: argparse.Namespace) -> int:
    rows = Supervisor(load_config(args)).list()
    if args.json:
        print_json([r.to_json() for r in rows])
        return 0
    table = [("NAME", "KIND", "STATUS", "PID", "PORT", "UPTIME", "RSS", "MODEL")]
    for r in rows:
        table.append((r.name, r.kind, r.status, str(r.pid or "-"), str(r.port or "-"),
                      _human_secs(r.uptime_s), _human_bytes(r.rss_bytes), r.model or "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    for r in rows:
        if r.reason and r.status != "ready":
            print(f"  {r.name}: {r.reason}")
    return 0


def _out(args: argparse.Namespace, st: BackendStatus, text: str) -> int:
    if args.json:
        print_json(st.to_json())
    else:
        print(text)
    return 0


def run_status(args: argparse.Namespace) -> int:
    st = Supervisor(load_config(args)).status(args.name)
    return _out(args, st, _line(st) + f"\nlog: {st.log}")


def run_start(args: argparse.Namespace) -> int:
    st = Supervisor(load_config(args)).start(args.name, wait=args.wait, progress=_progress)
    return _out(args, st, _line(st))


def run_restart(args: argparse.Namespace) -> int:
    st = Supervisor(load_config(args)).restart(args.name, wait=args.wait, progress=_progress)
    return _out(args, st, _line(st))


def run_swap(args: argparse.Namespace) -> int:
    st = Supervisor(load_config(args)).swap_model(args.name, args.model, wait=args.wait, progress=_progress)
    return _out(args, st, _line(st))


def run_stop(args: argparse.Namespace) -> int:
    sup = Supervisor(load_config(args))
    before = sup.status(args.name)
    if not before.active:
        why = f": {before.reason}" if before.reason and before.status == "dead" else ""
        return _out(args, before, f"{args.name}: already {before.status}{why}")
    st = sup.stop(args.name, progress=_progress)
    return _out(args, st, f"{args.name}: stopped (was pid {before.pid})")
