"""Entry point `mlx-console`: subcommands for scripts, no subcommand = the TUI.

Each subcommand lives in its own module exposing `register(subparsers)`; the parser it adds sets
`func(args) -> int`. Text output is for people; `--json` output is a contract (see README).

The parser is lazy: only the module of the subcommand being run is imported (start-up ≈ 0.1 s); the others
appear in `--help` through the one-line help kept in `SUBCOMMANDS` (a test checks it equals the module's).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mlx_console import __version__
from mlx_console.core.errors import ConsoleError

# command → (module under mlx_console.cli, its one-line help as the module registers it)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("doctor", "check the machine, MLX, backends and ports (exit 1 if a check fails)"),
    "backends": ("backends", "list, start, stop and restart backends"),
    "triage": ("triage", "recognise known MLX serving bugs in a log file"),
    "report": ("report", "draft an upstream issue (Markdown) for an error event of a log"),
    "settings": ("settings", "oMLX per-model settings (model_settings.json): show, set, validate, diff"),
    "bench": ("bench", "bench cells (correctness + speed) against a server; history, compare, bisect"),
    "demo-model": ("demo_model", "build a tiny random-weight model (offline) that mlx_lm.server can serve"),
    "ps": ("ps", "backends and loaded models: memory, uptime, requests and tokens/s lately"),
    "metrics": ("metrics", "what each backend did over time (series from the samplers)"),
    "advise": ("advise", "warnings and one-line fixes before loading a model"),
}
_GLOBAL_WITH_VALUE = ("--config", "--host")


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not a global option or its value)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in _GLOBAL_WITH_VALUE:
            skip = True
            continue
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg if arg in SUBCOMMANDS else None
    return None


def say(*args: object, **kwargs: object) -> None:
    """cli._common.say (control characters shown visibly), imported only when there is something to say."""
    from mlx_console.cli._common import say as _say

    _say(*args, **kwargs)  # type: ignore[arg-type]


def build_parser(argv: list[str] | None = None, *, full: bool = False) -> argparse.ArgumentParser:
    """The parser for `argv` (the subcommand it names gets its real parser; `full=True`: every one does)."""
    parser = argparse.ArgumentParser(
        prog="mlx-console",
        description="Operations console for MLX serving. With no subcommand, opens the TUI.",
    )
    parser.add_argument("--version", action="version", version=f"mlx-console {__version__}")
    parser.add_argument("--config", metavar="PATH", help="config file (default: $MLX_CONSOLE_CONFIG or the user config dir)")
    parser.add_argument("--host", metavar="NAME", help="run the subcommand on the [[host]] NAME (its mlx-console, over ssh)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _chosen(sys.argv[1:] if argv is None else argv)
    for name, (module, helptext) in SUBCOMMANDS.items():
        if full or name == chosen:
            importlib.import_module(f"mlx_console.cli.{module}").register(sub)
        else:
            sub.add_parser(name, help=helptext)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
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
