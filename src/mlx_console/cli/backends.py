"""`mlx-console backends list|status|start|stop|restart|swap|load|unload|models`: backend lifecycle for scripts.

`list --json` prints exactly `[{"name","kind","status","pid","port","model","uptime_s","rss_bytes","log", …extra}]`.
Progress goes to stderr; a failure exits 1 with the reason and the log lines that say why.
"""

from __future__ import annotations

import argparse
import sys

from mlx_console.cli._common import add_json_flag, load_config, print_json, say
from mlx_console.core.config import Config
from mlx_console.core.lifecycle.control import JSON_KEYS, BackendStatus, Supervisor
from mlx_console.core.machine.system import fmt_bytes


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backends", help="list, start, stop and restart backends",
                       description="Backends run detached under a supervising process: they outlive the "
                       "console and an SSH drop. Status comes from the same state files the TUI reads.")
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])
    bs = p.add_subparsers(dest="action", metavar="ACTION")

    def action(name: str, helptext: str, func: object, *, target: bool = True, model: bool = False,
               wait: str | None = None) -> None:
        a = bs.add_parser(name, help=helptext)
        if target:
            a.add_argument("name", metavar="NAME")
        if model:
            a.add_argument("model", metavar="MODEL")
        if wait:
            a.add_argument("--wait", type=float, metavar="SECONDS", help=wait)
        add_json_flag(a)
        a.set_defaults(func=func)

    until_ready = "wait until a 1-token completion answers; fail after SECONDS"
    action("list", "every configured backend with its status", run_list, target=False)
    bs.choices["list"].add_argument("--all-hosts", action="store_true",
                                    help="also every [[host]]'s backends (over ssh); adds \"host\" to each")
    action("status", "one backend's status (with the reason when it is not ready)", run_status)
    action("start", "start a backend (or re-adopt one whose supervisor is gone)", run_start, wait=until_ready)
    action("restart", "stop, then start again (a swapped-in model stays)", run_restart, wait=until_ready)
    action("stop", "stop a backend: SIGTERM, then SIGKILL after a grace period", run_stop)
    action("swap", "serve MODEL instead (mlx-lm: restart on it; oMLX: load it, unload the model it replaces; "
           "a restart brings it back)", run_swap, model=True, wait="mlx-lm: " + until_ready)
    bs.choices["swap"].add_argument("--keep", action="store_true",
                                    help="oMLX: keep the replaced model loaded too")
    action("load", "load MODEL (oMLX: beside the loaded ones, through its API; mlx-lm: same as swap)", run_load,
           model=True, wait="mlx-lm: " + until_ready)
    action("unload", "oMLX: unload MODEL through its API", run_unload, model=True)
    action("models", "the backend's models with their loaded state", run_models)
    bs.choices["models"].add_argument("--discover", action="store_true",
                                      help="instead: the models on this machine it could swap to, with "
                                      "size, whether each fits in free memory now, and the advisor's warnings")
    action("describe", "everything about one backend: status, command line (secrets masked), pids, state "
           "history, advice, the last triage events of its log", run_describe)
    lg = bs.add_parser("log", help="the last lines of the backend's current run (and where its logs are)")
    lg.add_argument("name", metavar="NAME")
    lg.add_argument("-n", "--lines", type=int, default=40, metavar="N")
    lg.add_argument("--paths", action="store_true", help="print only the log file paths")
    lg.set_defaults(func=run_log)


def _progress(msg: str) -> None:
    say(msg, file=sys.stderr, flush=True)


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
    text += f" — {st.reason}" if st.reason else ""
    if st.active and st.loaded_models:
        text += f"\n  loaded: {', '.join(st.loaded_models)}"
    elif st.active and st.model:
        text += f"\n  model: {st.model}"
    if st.swapped_model:
        text += f"\n  swapped in: {st.swapped_model} (a restart brings it back; `start` after a stop uses the profile's)"
    if st.server_settings:
        text += "\n  settings.json: " + ", ".join(f"{k}={v}" for k, v in st.server_settings.items())
    for model, verdict in st.liveness.items():
        text += f"\n  liveness {model}: {verdict}"
    return text


def run_list(args: argparse.Namespace) -> int:
    config = load_config(args)
    rows = Supervisor(config).list()
    if args.all_hosts:
        return _list_all_hosts(args, config, rows)
    if args.json:
        print_json([r.to_json() for r in rows])
        return 0
    table = [("NAME", "KIND", "STATUS", "PID", "PORT", "UPTIME", "RSS", "MODEL")]
    for r in rows:
        table.append((r.name, r.kind, r.status, str(r.pid or "-"), str(r.port or "-"),
                      _human_secs(r.uptime_s), fmt_bytes(r.rss_bytes) if r.rss_bytes else "-", r.model or "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        say("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    for r in rows:
        if r.reason and (r.status in ("dead", "degraded") or "unsupervised" in r.reason):
            say(f"  {r.name}: {r.reason}")
        for w in r.warnings if r.active else []:
            say(f"  {r.name}: warning: {w}")
    return 0


def _list_all_hosts(args: argparse.Namespace, config: Config, rows: list[BackendStatus]) -> int:
    from mlx_console.core import fleet

    listings = fleet.list_all(config, [r.to_json() for r in rows])
    if args.json:
        print_json([row for li in listings for row in fleet.tag_rows(li, JSON_KEYS)])
    for li in listings:
        if not args.json:
            print(f"[{li.host}]" + (f" unreachable: {li.error}" if li.error else ""))
            for r in li.backends:
                print(f"  {r['name']}: {r['status']}" + (f" (pid {r['pid']}, port {r['port']})" if r["pid"] else "")
                      + (f" — {r['reason']}" if r.get("reason") else ""))
        elif li.error:
            print(f"mlx-console: {li.error}", file=sys.stderr)
    return 0


def _out(args: argparse.Namespace, st: BackendStatus, text: str) -> int:
    if args.json:
        print_json(st.to_json())
    else:
        say(text)
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
    st = Supervisor(load_config(args)).swap_model(args.name, args.model, wait=args.wait, progress=_progress,
                                                  keep=args.keep)
    return _out(args, st, _line(st))


def run_load(args: argparse.Namespace) -> int:
    sup = Supervisor(load_config(args))
    if sup.config.backend(args.name).kind == "omlx":
        st = sup.swap_model(args.name, args.model, progress=_progress, keep=True, record=False)
    else:
        st = sup.swap_model(args.name, args.model, wait=args.wait, progress=_progress)
    return _out(args, st, _line(st))


def run_stop(args: argparse.Namespace) -> int:
    sup = Supervisor(load_config(args))
    before = sup.status(args.name)
    if not before.active and not before.supervisor_pid:  # (a supervisor in backoff would restart it)
        why = f": {before.reason}" if before.reason and before.status == "dead" else ""
        return _out(args, before, f"{args.name}: already {before.status}{why}")
    st = sup.stop(args.name, progress=_progress)
    return _out(args, st, f"{args.name}: stopped (was pid {before.pid})")


def run_unload(args: argparse.Namespace) -> int:
    st = Supervisor(load_config(args)).unload(args.name, args.model)
    return _out(args, st, f"{args.name}: unloaded {args.model}")


def run_describe(args: argparse.Namespace) -> int:
    from mlx_console.core.describe import describe

    sup = Supervisor(load_config(args))
    info = describe(sup, args.name, sup.status(args.name).to_json())  # an unknown name is an error
    if args.json:
        print_json(info)
        return 0
    import time

    def when(t: object) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if isinstance(t, int | float) and t > 0 else "-"

    lists = ("events", "ranks", "triage", "logs", "warnings", "advice", "cmdline")
    for key, value in info.items():
        if value not in (None, "", [], {}) and key not in lists:
            say(f"{key:<22} {when(value) if key.endswith(('_time', '_at')) else value}")
    if info.get("cmdline"):
        say(f"{'command':<22} {' '.join(info['cmdline'])}")
    for key in ("logs", "warnings", "advice"):
        for i, item in enumerate(info.get(key) or []):
            say(f"{key if i == 0 else '':<22} {item}")
    for r in info.get("ranks") or []:
        say(f"rank {r.get('rank')}: {r.get('host')} {r.get('status')} pid {r.get('pid') or '-'}  {r.get('log') or ''}")
    for ev in info.get("events") or []:
        say(f"{when(ev.get('t'))}  {ev.get('status', '?'):<9} {ev.get('reason') or ''}")
    for ev in info.get("triage") or []:
        say(f"{ev['severity'].upper():<8} {ev['title']}  (lines {ev['first_line']}-{ev['last_line']})")
    return 0


def run_models(args: argparse.Namespace) -> int:
    if args.discover:
        return _discover(args)
    models = Supervisor(load_config(args)).models(args.name)
    if args.json:
        print_json(models)
        return 0
    for m in models:
        state = {True: "loaded", False: "-", None: "?"}[m.get("loaded")]
        say(f"{m['id']}  {state}")
    if not models:
        say(f"{args.name}: no models", file=sys.stderr)
    return 0


def _discover(args: argparse.Namespace) -> int:
    from mlx_console.core.machine.models import swap_choices

    config = load_config(args)
    config.backend(args.name)  # an unknown name is an error, not an empty list
    choices = swap_choices(config, args.name)
    if args.json:
        print_json([c.to_json() for c in choices])
        return 0
    mark = {"ok": "✓", "warn": "!", "fail": "✗"}
    for c in choices:
        say(f"{mark.get(c.fit, '?')} {c.id}  {fmt_bytes(c.size) if c.size else '-'}  {c.source}"
            + (f"  {c.fit_reason}" if c.fit != "ok" and c.fit_reason else ""))
        for a in c.advice:
            say(f"    ⚠ {a}")
    if not choices:
        say(f"{args.name}: no models found on this machine", file=sys.stderr)
    return 0


def run_log(args: argparse.Namespace) -> int:
    sup = Supervisor(load_config(args))
    sup.status(args.name)  # an unknown name is an error, not an empty log
    paths = sup.log_paths(args.name)
    if args.paths:
        say("\n".join(str(p) for p in paths))
        return 0
    for line in sup.log_tail(args.name, args.lines):
        say(line)
    say(f"(logs: {', '.join(str(p) for p in paths)})", file=sys.stderr)
    return 0
