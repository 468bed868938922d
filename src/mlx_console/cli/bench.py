"""`mlx-console bench run|history|compare|bisect|suites`: bench cells against a server, keep and compare runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from mlx_console.cli._common import add_json_flag, load_config, print_json, say
from mlx_console.core.bench import compare as compare_mod
from mlx_console.core.bench import store, suites
from mlx_console.core.bench.runner import ProgressEvent, run_suite
from mlx_console.core.bench.session import ComparedRun, run_compared
from mlx_console.core.bench.target import Target, for_profile
from mlx_console.core.errors import ConsoleError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="bench cells (correctness + speed) against a server; history, compare, bisect")
    bsub = p.add_subparsers(dest="bench_cmd", metavar="{run,history,compare,bisect,suites}")
    p.set_defaults(func=lambda a: (p.print_help(sys.stderr), 2)[1])

    r = bsub.add_parser("run", help="run a suite against a server and store the run record")
    target = r.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="server base URL (the root or its /v1)")
    target.add_argument("--backend", metavar="NAME", help="take url and model from this config profile")
    r.add_argument("--model", help="model id to request (required with --url)")
    _suite_args(r)
    r.add_argument("--concurrency", type=int, metavar="N", help="parallel streams of concurrency cells")
    r.add_argument("--label", default="", help="a note stored with the run (e.g. the change under test)")
    r.add_argument("--api-key", help="Bearer key for the server")
    r.add_argument("--unsafe-exec", action="store_true",
                   help="run coding cells' model code even where no sandbox (bwrap/unshare/sandbox-exec) works")
    r.add_argument("--out", metavar="DIR", help="also write the record files into DIR")
    r.add_argument("--compare-previous", action="store_true",
                   help="then compare with this model's previous stored run (what the console's bench pane shows)")
    add_json_flag(r)
    r.set_defaults(func=cmd_run)

    h = bsub.add_parser("history", help="list stored runs")
    h.add_argument("--model", help="only runs of this model")
    add_json_flag(h)
    h.set_defaults(func=cmd_history)

    c = bsub.add_parser("compare", help="verdict per cell and metric between two runs")
    c.add_argument("base", metavar="BASE", help="run id (or unique prefix), 'latest', or a record file")
    c.add_argument("cand", metavar="CAND", help="run id (or unique prefix), 'latest', or a record file")
    c.add_argument("--force", action="store_true", help="compare even if env or backend version differ")
    add_json_flag(c)
    c.set_defaults(func=cmd_compare)

    b = bsub.add_parser("bisect", help="find which changed flag explains a change, one flag at a time")
    b.add_argument("--backend", required=True, metavar="NAME", help="config profile to reconfigure and bench")
    b.add_argument("--baseline", required=True, metavar="FILE",
                   help="mlx-lm: server args; oMLX: model settings (JSON/TOML)")
    b.add_argument("--candidate", required=True, metavar="FILE", help="same format as --baseline")
    b.add_argument("--model", help="model id (default: from the profile)")
    _suite_args(b)
    b.add_argument("--force", action="store_true", help="compare even if env or backend version differ")
    add_json_flag(b)
    b.set_defaults(func=cmd_bisect)

    s = bsub.add_parser("suites", help="list available suites and their cells")
    add_json_flag(s)
    s.set_defaults(func=cmd_suites)


def _suite_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default="quick", metavar="NAME|PATH", help="suite name or TOML path (default quick)")
    p.add_argument("--cells", metavar="ID_OR_KIND,...", help="only these cells (ids or kinds)")
    p.add_argument("--runs", type=int, metavar="N", help="timed trials of throughput/concurrency cells")


# ---------------------------------------------------------------- progress / target

def _progress(e: ProgressEvent) -> None:
    if e.event == "cell_started":
        say(f"[{e.index}/{e.total}] {e.cell} ({e.kind}) …", file=sys.stderr, flush=True)
    elif e.event == "sample_done" and e.samples:
        tag = e.phase if e.phase != "trial" else f"trial {e.sample}/{e.samples}"
        say(f"    {tag}: {'ok' if e.ok else 'FAILED'} {e.message}".rstrip(), file=sys.stderr, flush=True)
    elif e.event == "cell_finished" and e.result is not None:
        say(f"    → {e.result['status']} {_headline(e.result)} {e.result.get('reason') or ''}".rstrip(),
              file=sys.stderr, flush=True)
    elif e.event == "run_finished":
        say(f"saved {e.run_id}: {e.message}", file=sys.stderr, flush=True)


def _headline(cell: dict[str, Any]) -> str:
    parts = []
    for key, fmt in (("decode_tps", "{:.1f} tok/s"), ("ttft_ms", "TTFT {:.0f} ms"),
                     ("aggregate_tps", "{:.1f} tok/s aggregate")):
        block = cell.get(key)
        if isinstance(block, dict) and block.get("median") is not None:
            parts.append(fmt.format(block["median"]))
    return ", ".join(parts)


# ---------------------------------------------------------------- commands

def cmd_run(args: argparse.Namespace) -> int:
    suite = suites.load(args.suite).select(args.cells)
    if args.url:
        if not args.model:
            raise ConsoleError("bench run --url needs --model (the model id to request)")
        target = Target(args.url, args.model,
                        model_path=args.model if Path(args.model).expanduser().is_dir() else None)
    else:
        target = for_profile(load_config(args), args.backend, args.model)
    target.api_key = args.api_key or target.api_key  # one key, never passed twice (--api-key used to crash)
    for opt in ("runs", "concurrency"):
        v = getattr(args, opt)
        if v is not None and v < 1:
            raise ConsoleError(f"--{opt} must be ≥ 1 (got {v})")
    if args.out:  # checked before the run, not after minutes of benching
        out = Path(args.out).expanduser()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConsoleError(f"--out {args.out}: cannot create the directory: {e.strerror or e}") from None
        if not os.access(out, os.W_OK):
            raise ConsoleError(f"--out {args.out}: directory is not writable")
    compared: ComparedRun | None = None
    try:
        kw: dict[str, Any] = dict(label=args.label, runs=args.runs, concurrency=args.concurrency,
                                  progress=_progress, out_dir=args.out, unsafe_exec=args.unsafe_exec)
        if args.compare_previous:
            compared = run_compared(target, suite, **kw)
            summary = compared.record
        else:
            summary = run_suite(suite=suite, **target.run_kwargs(), **kw).summary
    except ConsoleError as e:
        if args.backend and "does not answer" in str(e):
            raise ConsoleError(f"{e}\n(is it running? `mlx-console backends start {args.backend}`)") from None
        raise
    if args.json:
        # The run summary as always; --compare-previous adds one key: {previous_run_id, comparison, not_compared}.
        print_json(summary | ({"compare_previous": compared.to_json()} if compared else {}))
        return 0
    _print_cells(summary)
    if compared is not None:
        if compared.comparison is not None:
            print(f"\nvs the previous run of {summary['model']}:")
            _print_compare(compared.comparison)
        else:
            print(f"not compared: {compared.not_compared}")
    return 0


def _print_cells(summary: dict[str, Any]) -> None:
    b = summary["backend"]
    say(f"run {summary['run_id']}  suite {summary['suite']}  model {summary['model']}  "
          f"{b.get('kind') or '?'} {b.get('version') or ''}  config {summary['config_hash']}")
    for cid, c in summary["cells"].items():
        extra = c.get("result") or (f"layer {c['layer']}" if c.get("layer") else "") or _headline(c)
        say(f"  {c['status']:<5} {cid:<24} {c['kind']:<17} {extra}")
        if c.get("reason"):
            say(f"        {c['reason']}")


def cmd_history(args: argparse.Namespace) -> int:
    runs = store.history(args.model)
    if args.json:
        print_json({"runs": [_history_row(d) for d in runs]})
        return 0
    if not runs:
        say("no stored runs" + (f" for model {args.model}" if args.model else ""))
        return 0
    for d in runs:
        row = _history_row(d)
        counts = " ".join(f"{k} {v}" for k, v in sorted(row["counts"].items()))
        say(f"{row['run_id']}  {row['suite']:<8} {row['model'][-40:]:<40} {row['config_hash']}  {counts}"
              + (f"  [{row['label']}]" if row["label"] else ""))
    return 0


def _history_row(d: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for c in d.get("cells", {}).values():
        counts[c.get("status", "?")] = counts.get(c.get("status", "?"), 0) + 1
    return {"run_id": d.get("run_id"), "ts": d.get("ts"), "suite": d.get("suite"), "label": d.get("label", ""),
            "model": d.get("model", ""), "backend": d.get("backend"), "config_hash": d.get("config_hash"),
            "counts": counts, "cells": {k: {"kind": v.get("kind"), "status": v.get("status")}
                                        for k, v in d.get("cells", {}).items()},
            "path": str(store.bench_dir() / f"{d.get('run_id')}.json")}


def cmd_compare(args: argparse.Namespace) -> int:
    doc = compare_mod.compare_runs(store.load(args.base), store.load(args.cand), force=args.force)
    if args.json:
        print_json(doc)
        return 0
    _print_compare(doc)
    return 0


def _print_compare(doc: dict[str, Any]) -> None:
    say(f"baseline {doc['baseline']}  →  candidate {doc['candidate']}"
          + ("  (forced: " + "; ".join(doc["not_comparable"]) + ")" if doc["forced"] else ""))
    for cid, e in doc["cells"].items():
        st = e.get("status") or {}
        line = f"  {e['verdict']:<13} {cid:<24}"
        if st:
            line += f" {st.get('baseline')} → {st.get('candidate')}"
        say(line)
        for m, v in (e.get("metrics") or {}).items():
            if v["baseline_median"] is None:
                continue
            say(f"        {m:<14} {v['baseline_median']:.4g} → {v['candidate_median']:.4g}  "
                  f"{v['verdict']}: {v['reason']}")
        if e.get("reason"):
            say(f"        {e['reason']}")
    o = doc["overall"]
    say(f"overall: {o['verdict']} ({o['cause']}): {o['reason']}")


def cmd_bisect(args: argparse.Namespace) -> int:
    from mlx_console.core.bench import bisect as bisect_mod
    from mlx_console.core.bench.appliers import MlxLmRestartApplier, OmlxSettingsApplier

    cfg = load_config(args)
    profile = cfg.backend(args.backend)
    base = bisect_mod.load_config_file(args.baseline, profile.kind)
    cand = bisect_mod.load_config_file(args.candidate, profile.kind)
    suite = suites.load(args.suite).select(args.cells)
    target = for_profile(cfg, args.backend, args.model).run_kwargs()
    applier: bisect_mod.Applier
    if profile.kind == "mlx-lm":
        applier = MlxLmRestartApplier(cfg, args.backend, progress=lambda m: say(m, file=sys.stderr))
    else:
        applier = OmlxSettingsApplier(cfg, profile, target["model"], set(base) | set(cand))

    def bench(label: str, config: dict[str, Any]) -> dict[str, Any]:
        t = dict(target)
        key = t.pop("api_key")
        if profile.kind == "mlx-lm":
            t["server_flags"] = bisect_mod.flags_to_args(config)
        else:
            t["model_settings"] = config
        return run_suite(suite=suite, label=f"bisect {label}", api_key=key, runs=args.runs,
                         progress=_progress, **t).summary

    result = bisect_mod.bisect(applier, base, cand, bench, progress=lambda m: say(m, file=sys.stderr),
                               force=args.force)
    if args.json:
        print_json(result)
    else:
        say("changes: " + "; ".join(result["changes"]))
        for label, o in {**result["singles"], **result["pairs"]}.items():
            say(f"  {o['verdict']:<12} + {label}: {o['reason']}")
        say(result["conclusion"])
        say("baseline restored" if result["restored"] else "baseline NOT restored")
    return 0


def cmd_suites(args: argparse.Namespace) -> int:
    docs = []
    for name in suites.available():
        s = suites.load(name)
        docs.append({"name": s.name, "path": s.path, "description": s.description,
                     "cells": [{"id": c.id, "kind": c.kind, "must_pass": c.must_pass} for c in s.cells]})
    if args.json:
        print_json({"suites": docs, "user_dir": str(suites.user_suites_dir())})
        return 0
    for d in docs:
        say(f"{d['name']}: {d['description']}  ({d['path']})")
        for c in d["cells"]:
            say(f"  {c['id']:<24} {c['kind']:<17}{' must-pass' if c['must_pass'] else ''}")
    say(f"(user suites: {suites.user_suites_dir()}/*.toml)")
    return 0
