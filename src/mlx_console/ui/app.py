"""The Textual console (placeholder until the TUI issue lands)."""

from __future__ import annotations

import argparse
import sys


def run_console(args: argparse.Namespace) -> int:
    print("mlx-console: the TUI is not built yet; see `mlx-console --help`", file=sys.stderr)
    return 2
