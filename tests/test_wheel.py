"""The package as a user installs it: a wheel built from this tree (not the source tree) carries the shipped
themes, the bug catalogue and the bench suites, and its CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_themes_and_runs(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
                            str(REPO)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("mlx_console-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(site)
    for f in ("themes/dark.toml", "themes/light.toml", "themes/high-contrast.toml", "core/logs/catalog.toml",
              "core/bench/suites/quick.toml", "ui/app.tcss"):
        assert f"mlx_console/{f}" in names, f
    env = {**os.environ, "PYTHONPATH": str(site)}  # the wheel's files, not the source tree
    probe = ("import mlx_console, mlx_console.ui.themes as t; print(mlx_console.__file__); "
             "print(sorted(t.load_themes().themes))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    where, themes = out.stdout.splitlines()
    assert where.startswith(str(site)) and all(n in themes for n in ("'dark'", "'light'", "'high-contrast'"))
    cli = subprocess.run([sys.executable, "-m", "mlx_console", "triage", "-", "--json"], input="OSError: [Errno 98] "
                         "Address already in use\n", capture_output=True, text=True, env=env, timeout=120)
    assert cli.returncode in (0, 1) and '"port-in-use"' in cli.stdout, cli.stderr
