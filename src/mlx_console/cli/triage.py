"""`mlx-console triage FILE|- [--json] [--follow] [--all] [--explain] [--backend NAME]`: recognise known MLX
serving bugs in a log. `--json`: one object a line (keys in TriagedEvent.to_json, plus "explain" with --explain).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import stat
import sys
import threading
from collections import Counter
from collections.abc import Iterable
from typing import TextIO

from mlx_console.cli._common import add_json_flag, load_config, say
from mlx_console.core.common.text import json_safe, visible
from mlx_console.core.logs.evidence import TRACKERS
from mlx_console.core.logs.forked import default_workers
from mlx_console.core.logs.patterns import Catalog
from mlx_console.core.logs.source import stream_lines
from mlx_console.core.logs.triage import (
    TriagedEvent,
    Triager,
    explain,
    triage_buffer,
    triage_file,
    triage_paste,
)

_QUIET_FLUSH = 1.0  # seconds without new lines before the open event of a followed log is reported


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "triage",
        help="recognise known MLX serving bugs in a log file",
        description="Group a server log into events and report those matching the known-bug catalogue "
        "(plus the user's catalogue files from the config key `catalog`). Exit 0 whether or not events "
        "were found, 2 if the file cannot be read.",
    )
    p.add_argument("file", metavar="FILE", help="log file to read, or - for standard input")
    add_json_flag(p)
    p.add_argument("--follow", "-f", action="store_true", help="keep reading as the log grows (Ctrl-C to stop)")
    p.add_argument("--all", action="store_true", help="also report warning/error events no pattern knows")
    p.add_argument("--explain", action="store_true",
                   help="per event, why each catalogue entry with any evidence was chosen or rejected")
    p.add_argument("--backend", metavar="NAME", choices=sorted(TRACKERS),
                   help="the server that wrote the log (mlx-lm, omlx, mlx-vlm, vllm-mlx, lmstudio, exo, ollama): "
                   "where an unknown error is searched; default: recognised from the log")
    p.set_defaults(func=run)


def _block(t: TriagedEvent, explain: bool = False, catalog: Catalog | None = None) -> str:
    rng = f"line {t.first_line}" if t.first_line == t.last_line else f"lines {t.first_line}-{t.last_line}"
    cats = ", ".join(t.categories) or "unrecognised"
    out = [f"{rng}  [{cats}]  {t.severity}  {t.title}"]
    summary = t.event.summary.strip()
    if len(summary) > 300:
        summary = summary[:300] + "…"
    out.append(f"  > {summary}")
    if t.main:
        out.append(f"  cause: {t.main.cause}")
        out.append(f"  first move: {t.main.first_move}")
        out.extend(f"  see: {r}" for r in t.main.references[:2])
        out.append(f"  pattern: {', '.join(m.id for m in t.matches)}  (confidence {t.confidence:.2f})")
    elif t.first_move:
        out.append(f"  first move: {t.first_move}")
    if explain:
        out.extend(_explain_lines(t, catalog))
    return "\n".join(out)


def _explain_lines(t: TriagedEvent, catalog: Catalog | None) -> list[str]:
    out = ["  evidence:"]
    out.extend(f"    {e.kind:9} {('line ' + str(e.line)) if e.line else '':10} {e.text[:140]}" for e in t.evidence)
    verdicts = explain(t, catalog)
    main = t.main.id if t.main else None
    out.append("  why:" if verdicts else "  why: no catalogue entry found any evidence in this event")
    for v in verdicts:
        mark = "chosen" if v.id == main else ("also" if v.chosen else "rejected")
        out.append(f"    {mark:8} {v.id} [{', '.join(v.categories)}]")
        out.extend(f"             - {r}" for r in v.reasons)
    return out


class _Printer:
    def __init__(self, as_json: bool, out: TextIO, explain: bool = False, catalog: Catalog | None = None):
        self.as_json = as_json
        self.explain = explain
        self.catalog = catalog
        self.out = out
        self.counts: Counter[str] = Counter()
        self.unknown = 0
        self.total = 0

    def emit(self, events: Iterable[TriagedEvent]) -> None:
        for t in events:
            self.total += 1
            self.counts.update(t.categories)
            self.unknown += not t.categories
            if self.as_json:
                obj = t.to_json()
                if self.explain:
                    obj["explain"] = [v._asdict() for v in explain(t, self.catalog)]
                self.out.write(json_safe(json.dumps(obj, ensure_ascii=False)) + "\n")
            else:
                self.out.write(visible(_block(t, self.explain, self.catalog)) + "\n\n")  # a log line must not drive the terminal
        self.out.flush()

    def summary(self, source: str) -> None:
        if self.as_json:
            return
        if not self.total:
            self.out.write(visible(f"{source}: no known problems found\n"))
            return
        parts = [f"{c} {n}" for c, n in self.counts.most_common()]
        if self.unknown:
            parts.append(f"unrecognised {self.unknown}")
        self.out.write(visible(f"{source}: {self.total} event(s): " + ", ".join(parts) + "\n"))


def _load_catalog(args: argparse.Namespace) -> Catalog:
    cfg = load_config(args)
    return Catalog.load(cfg.catalogs)


def _fail(msg: str) -> int:
    say(f"mlx-console triage: {msg}", file=sys.stderr)
    return 2


def _read_error(path: str, e: OSError) -> int:
    if isinstance(e, IsADirectoryError):
        if not os.path.isdir(path):  # --follow refuses devices and pipes too
            return _fail(f"{path}: not a regular file (--follow needs one; pipe a stream into `-`)")
        return _fail(f"{path}: is a directory")
    if isinstance(e, FileNotFoundError):
        return _fail(f"{path}: no such file")
    if isinstance(e, PermissionError):
        return _fail(f"{path}: permission denied")
    return _fail(f"{path}: cannot read: {e.strerror or e}")


def _triage_path(path: str, catalog: Catalog, include_all: bool, printer: _Printer, backend: str | None) -> int:
    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # a pipe or device: read it as a stream
                printer.emit(triage_buffer(f.read(), catalog, include_all=include_all, backend=backend))
                return 0
        # A big file's scan is shared by the cores (forked processes; the CLI runs no other thread here).
        printer.emit(triage_file(path, catalog, include_all=include_all, backend=backend,
                                 workers=default_workers()))
    except BrokenPipeError:
        raise  # stdout closed by the reader (| head): not a read error
    except OSError as e:
        return _read_error(path, e)
    return 0


def _follow(path: str, catalog: Catalog, include_all: bool, printer: _Printer) -> int:
    from mlx_console.core.logs.live import LiveTriage  # the follower: only for --follow


    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if not os.path.exists(path) and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        return _fail(f"{path}: no such file (and no such directory to wait in)")
    with LiveTriage(path, catalog, include_all=include_all, quiet=_QUIET_FLUSH, workers=default_workers()) as live:
        try:
            printer.emit(live.initial())
        except OSError as e:
            return _read_error(path, e)
        if not os.path.exists(path):
            say(f"{path} does not exist yet: waiting for it", file=sys.stderr)
        say(f"following {path} (Ctrl-C to stop)", file=sys.stderr)
        generation, error = 0, None
        try:
            while not stop.is_set():
                printer.emit(live.step(0.25).events)
                if live.error != error:
                    error = live.error
                    if error:
                        say(f"mlx-console triage: {error} (retrying)", file=sys.stderr)
                if live.generation != generation:
                    generation = live.generation
                    say(f"{path}: rotated or truncated; line numbers restart at 1", file=sys.stderr)
        except KeyboardInterrupt:
            pass
        printer.emit(live.finish())
    return 0


def _follow_stdin(triager: Triager, printer: _Printer) -> None:
    try:
        for text in stream_lines(sys.stdin.buffer.read1):  # bounded like the file follower's lines
            printer.emit(triager.feed(text))
    except KeyboardInterrupt:
        pass
    printer.emit(triager.flush())


def run(args: argparse.Namespace) -> int:
    catalog = _load_catalog(args)
    printer = _Printer(args.json, sys.stdout, args.explain, catalog)
    if args.file == "-":
        if args.follow:
            _follow_stdin(Triager(catalog, include_all=args.all, backend=args.backend), printer)
        else:
            printer.emit(triage_paste(sys.stdin.buffer.read(), catalog, include_all=args.all, backend=args.backend))
        printer.summary("stdin")
        return 0
    if args.follow:
        rc = _follow(args.file, catalog, args.all, printer)
    else:
        rc = _triage_path(args.file, catalog, args.all, printer, args.backend)
    if rc == 0:
        printer.summary(args.file)
    return rc
