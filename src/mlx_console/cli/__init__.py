"""Entry point `mlx-console`: subcommands for scripts, no subcommand = the TUI.

Each subcommand lives in its own module exposing `register(subparsers)`; the parser it adds sets
`func(args) -> int`. Text output is for people; `--json` output is a contract (see README).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mlx_console import __version__
from mlx_console.cli._common import say
from mlx_console.core.errors import ConsoleError

SUBCOMMANDS = ("doctor", "backends", "triage", "settings", "bench", "demo_model", "ps", "metrics", "advise")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlx-console",
        description="Operations console for MLX serving. With no subcommand, opens the TUI.",
    )
    parser.add_argument("--version", action="version", version=f"mlx-console {__version__}")
    parser.add_argument("--config", metavar="PATH", help="config file (default: $MLX_CONSOLE_CONFIG or the user config dir)")
    parser.add_argument("--host", metavar="NAME", help="run the subcommand on the [[host]] NAME (its mlx-console, over ssh)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"mlx_console.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.host:
            return _on_host(args.host, sys.argv[1:] if argv is None else argv)
        if args.command is None:
            from mlx_console.ui.app import run_console

            return run_console(args)
        return int(args.func(args) or 0)
    except ConsoleError as e:
        say(f"mlx-console: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        say("mlx-console: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a full, read-only or unwritable disk under a path no command checked: one line
        where = f"{e.filename}: " if e.filename else ""
        say(f"mlx-console: {where}{e.strerror or e}", file=sys.stderr)
        return 1


def _on_host(name: str, argv: list[str]) -> int:
    """`mlx-console --host NAME …`: the same command line, run by NAME's own mlx-console over ssh."""
    from mlx_console.core import config as config_mod
    from mlx_console.core import fleet

    _, rest = fleet.split_host_option(argv)
    config_path = next((rest[i + 1] for i, a in enumerate(rest[:-1]) if a == "--config"), None)
    host = config_mod.load(config_path).host(name)
    return fleet.exec_remote(host, fleet.remote_args(rest))
