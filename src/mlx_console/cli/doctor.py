"""`mlx-console doctor [--json]`: pre-flight checks of the machine, MLX, backends and ports.

Exit status: 0 when no check fails (warnings allowed), 1 when at least one fails.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from mlx_console.cli._common import add_json_flag, print_json
from mlx_console.core import config as config_mod
from mlx_console.core import doctor
from mlx_console.core.common.text import visible
from mlx_console.core.errors import ConfigError

_COLORS = {"pass": "32", "warn": "33", "fail": "31"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check the machine, MLX, backends and ports (exit 1 if a check fails)",
                       description="Pre-flight checks, each pass/warn/fail with a one-line fix. "
                                   "Exit status 0 unless a check fails (then 1).")
    add_json_flag(p)
    p.set_defaults(func=run)


def use_color(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


def render(report: doctor.Report, color: bool) -> str:
    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if color else text

    width = max(len(c.id) for c in report.checks)
    lines: list[str] = []
    for c in report.checks:
        tag = paint(f"{c.status.upper():4}", _COLORS[c.status])
        lines.append(f"{tag}  {visible(c.id):<{width}}  {visible(c.detail)}")  # names and command lines
        if c.fix:                                                               # come from outside
            lines.append(f"{'':4}  {'':<{width}}  {paint('fix:', '2')} {visible(c.fix)}")
    lines.append("")
    v = report.versions
    lines.append("versions: " + ", ".join(f"{k} {v[k] or '-'}" for k in ("python", "mlx", "mlx_lm", "omlx")))
    if report.listening:
        lines.append("listening:")
        pw = max(len(str(x.port)) for x in report.listening)
        bw = max(len(x.backend) + 1 for x in report.listening)
        for x in report.listening:
            backend = x.backend + ("?" if x.is_llm and not x.confirmed else "")
            addr = ",".join(x.addresses)
            note = " (API key required)" if x.auth_required else ""
            lines.append(f"  {x.port:>{pw}}  {backend:<{bw}}  pid {x.pid if x.pid else '-':<7} "
                         f"{addr:<15} {visible(x.command[:100], newlines=False)}{note}")
        if any(x.is_llm and not x.confirmed for x in report.listening):
            lines.append("  (?: guessed from the command line, not confirmed by GET /v1/models)")
    else:
        lines.append("listening: no LLM ports in use")
    n = {s: sum(1 for c in report.checks if c.status == s) for s in doctor.STATUSES}
    lines.append(f"{n['pass']} pass, {n['warn']} warn, {n['fail']} fail ({report.elapsed_s:.1f} s)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    cfg: config_mod.Config | None = None
    error: str | None = None
    try:
        cfg = config_mod.load(getattr(args, "config", None))
    except ConfigError as e:
        error = str(e)  # still check the machine; the config check fails with this message
    report = doctor.run(cfg, config_error=error)
    if args.json:
        print_json(report.to_json())
    else:
        print(render(report, use_color(sys.stdout)))  # escaped inside: its colours are ours
    return report.exit_code
