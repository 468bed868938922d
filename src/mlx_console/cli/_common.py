"""Helpers shared by the subcommand modules."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from mlx_console.core import config as config_mod
from mlx_console.core.common.text import json_safe, visible


def load_config(args: argparse.Namespace) -> config_mod.Config:
    return config_mod.load(getattr(args, "config", None))


def print_json(obj: Any) -> None:
    sys.stdout.write(json_safe(json.dumps(obj, ensure_ascii=False, indent=2)) + "\n")
    sys.stdout.flush()


def say(*values: object, sep: str = " ", end: str = "\n", file: TextIO | None = None, flush: bool = False) -> None:
    """print() for text from outside (log lines, model output, names from files): control characters
    are shown like `cat -v`, so a log line cannot drive the terminal (clipboard, screen, title)."""
    print(visible(sep.join(str(v) for v in values)), end=end, file=file or sys.stdout, flush=flush)


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output (a documented contract)")
