"""The core never imports Textual or mlx; the CLI does not pay for them either."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "mlx_console"


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        check=True, capture_output=True, text=True,
    ).stdout
    return set(out.split())


def test_core_imports_neither_textual_nor_mlx() -> None:
    modules = [p.relative_to(SRC.parent).with_suffix("").as_posix().replace("/", ".")
               for p in (SRC / "core").rglob("*.py")]
    modules = [m.removesuffix(".__init__") for m in modules]
    code = "\n".join(f"import {m}" for m in modules)
    loaded = _loaded_after(code)
    bad = sorted(m for m in loaded if m.split(".")[0] in ("textual", "mlx", "mlx_lm"))
    assert not bad, f"core pulled in: {bad[:10]}"


@pytest.mark.parametrize("stmt", ["import mlx_console.cli", "from mlx_console.cli import build_parser; build_parser()"])
def test_cli_does_not_import_mlx(stmt: str) -> None:
    loaded = _loaded_after(stmt)
    assert not {m for m in loaded if m.split(".")[0] in ("mlx", "mlx_lm")}


def test_no_import_statement_of_textual_or_mlx_in_core_sources() -> None:
    import re

    pat = re.compile(r"^\s*(import|from)\s+(textual|mlx|mlx_lm)(\.|\s|$)", re.M)
    offenders = [str(p) for p in (SRC / "core").rglob("*.py") if pat.search(p.read_text())]
    assert not offenders
