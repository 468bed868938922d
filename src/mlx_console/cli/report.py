"""`mlx-console report FILE [--line N] [--backend NAME] [--json]`: a Markdown draft of an upstream issue for
one event of a log (default: the last error event). `--json`: {"title","markdown","line","end_line",
"categories","pattern","references","backend","environment","command"}. Secrets and the home path are redacted.
"""

from __future__ import annotations

import argparse
import sys

from mlx_console.cli._common import add_json_flag, load_config, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="draft an upstream issue (Markdown) for an error event of a log",
        description="Print a Markdown draft of an upstream issue for the event at line N of FILE (default: the "
        "last error event): title, environment (chip, memory, OS, python, mlx, mlx-lm, oMLX versions), the "
        "backend's command line and settings, the log excerpt, its category and known references, and a minimal "
        "reproduction. API keys, tokens, Authorization headers and your home path are redacted. "
        "Exit 1 if FILE has no such event.",
    )
    p.add_argument("file", metavar="FILE", help="the log file")
    p.add_argument("--line", type=int, metavar="N", help="a line of the event to report (default: the last error)")
    p.add_argument("--backend", metavar="NAME",
                   help="the configured backend that wrote the log (default: the one whose log FILE is)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mlx_console.core.logs.patterns import Catalog
    from mlx_console.core.report import draft

    cfg = load_config(args)
    if args.line is not None and args.line < 1:
        print(f"mlx-console report: --line must be 1 or more (got {args.line})", file=sys.stderr)
        return 2
    d = draft(args.file, line=args.line, backend=args.backend, config=cfg, catalog=Catalog.load(cfg.catalogs))
    if args.json:
        print_json(d.to_json())
    else:
        sys.stdout.write(d.markdown)
    return 0
