"""The lazy parser: a subcommand imports only its own module; every subcommand, option and help still works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlx_console.cli import SUBCOMMANDS, build_parser

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "logs"
HEAVY = ("textual", "httpx", "mlx", "mlx_lm", "psutil", "mlx_console.ui", "mlx_console.core.bench",
         "mlx_console.core.settings", "mlx_console.cli.bench", "mlx_console.cli.settings", "mlx_console.cli.backends")


def _modules_after(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    """Run the CLI in a fresh interpreter and return the modules it imported."""
    code = ("import sys, json\nfrom mlx_console.cli import main\nrc = main(sys.argv[1:])\n"
            "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)) + '\\n')\n")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60,
                       env=env or os.environ.copy())
    line = [x for x in r.stderr.splitlines() if x.startswith("MODULES ")]
    assert line, r.stderr
    return set(json.loads(line[-1][len("MODULES "):]))


def _heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_triage_imports_nothing_it_does_not_need() -> None:
    mods = _modules_after("triage", str(FIXTURES / "mlx_lm_port_in_use.log"), "--json")
    assert "mlx_console.core.logs.triage" in mods
    assert _heavy(mods) == []
    assert "mlx_console.core.logs.live" not in mods  # the follower only for --follow


def _configured(tmp_path: Path) -> dict[str, str]:
    """An environment with a config of one (not distributed) backend and its own state dir."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('[[backend]]\nname = "a"\nkind = "mlx-lm"\nmodel = "/nonexistent"\nport = 1\n')
    return dict(os.environ, MLX_CONSOLE_CONFIG=str(cfg), MLX_CONSOLE_STATE_DIR=str(tmp_path / "state"))


def test_triage_with_a_configured_backend_imports_nothing_it_does_not_need(tmp_path: Path) -> None:
    """Loading a config whose profiles have no distributed key does not import the distributed validator
    (and psutil with it)."""
    mods = _modules_after("triage", str(FIXTURES / "mlx_lm_port_in_use.log"), "--json", env=_configured(tmp_path))
    assert _heavy(mods) == []
    assert "mlx_console.core.lifecycle.distributed" not in mods
    assert "logging" not in mods  # core.logs.source imports it for a fallback's debug record only


def test_backends_list_imports_no_http_client(tmp_path: Path) -> None:
    """`backends list` reads state and pids: no httpx (imported at the first HTTP call), no thread pool, no
    fleet (only for --all-hosts)."""
    mods = _modules_after("backends", "list", "--json", env=_configured(tmp_path))
    assert "mlx_console.core.lifecycle.control" in mods
    lazy = ("httpx", "concurrent.futures", "mlx_console.core.fleet", "mlx_console.core.backends.omlx_admin",
            "uuid", "hashlib",  # a run id only for a start; hashes only for a write
            "textual", "mlx_console.ui", "mlx_console.core.bench", "mlx_console.core.settings")
    assert sorted(m for m in mods if any(m == h or m.startswith(h + ".") for h in lazy)) == []


def test_help_imports_no_subcommand() -> None:
    code = ("import sys\nfrom mlx_console.cli import build_parser\nbuild_parser(['--help']).format_help()\n"
            "print(sorted(m for m in sys.modules if m.startswith('mlx_console.cli.')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def test_lazy_help_equals_the_full_parsers_help() -> None:
    full = build_parser([], full=True)
    assert build_parser([]).format_help() == full.format_help()
    sub = next(a for a in full._actions if a.__class__.__name__ == "_SubParsersAction")
    registered = {c.dest: c.help for c in sub._choices_actions}
    assert registered == {name: helptext for name, (_, helptext) in SUBCOMMANDS.items()}


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_every_subcommand_help_still_works(name: str) -> None:
    r = subprocess.run([sys.executable, "-m", "mlx_console", name, "--help"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: mlx-console {name}")


def test_global_option_before_the_subcommand(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("")
    r = subprocess.run([sys.executable, "-m", "mlx_console", "--config", str(cfg), "triage",
                        str(FIXTURES / "mlx_lm_port_in_use.log"), "--json"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["categories"] == ["port_in_use"]
    r = subprocess.run([sys.executable, "-m", "mlx_console", "nope"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "invalid choice: 'nope'" in r.stderr
