"""`mlx-console doctor`: not yet implemented."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="(not yet implemented)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("mlx-console doctor: not yet implemented", file=sys.stderr)
    return 2
