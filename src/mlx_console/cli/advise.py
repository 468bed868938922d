"""`mlx-console advise MODEL|--backend NAME [--json]`: what a load of this model is known to break, with fixes.

`--json` prints exactly {"model", "arch", "warnings": [{"id", "severity", "message", "fix"}]}.
"""

from __future__ import annotations

import argparse
import sys

from mlx_console.cli._common import add_json_flag, load_config, print_json
from mlx_console.core import advisor
from mlx_console.core.errors import ConsoleError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("advise", help="warnings and one-line fixes before loading a model",
                       description="Reads the model's config.json (and, with --backend, the backend's flags and "
                       "oMLX's model settings) and warns about shapes and settings known to break.")
    p.add_argument("model", nargs="?", metavar="MODEL", help="a model directory or id (default: the backend's)")
    p.add_argument("--backend", metavar="NAME", help="judge the load on this configured backend")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.model and not args.backend:
        raise ConsoleError("advise needs MODEL or --backend NAME")
    cfg = load_config(args)
    advice = (advisor.advise_profile(cfg, args.backend, args.model) if args.backend
              else advisor.advise_model(cfg, args.model))
    if args.json:
        print_json(advice.to_json())
        return 0
    print(f"{advice.model} ({advice.arch or 'unknown architecture'}): "
          f"{len(advice.warnings) or 'no'} warning(s)")
    for w in advice.warnings:
        print(f"  {w.severity}: {w.message}\n    fix: {w.fix}  [{w.id}]")
    if not advice.warnings:
        print("  nothing known to break", file=sys.stderr)
    return 0
