"""What the console's first frame does not wait for: modules imported later, or only when used.

Each check runs in a fresh interpreter (sys.modules of this one is shared by every test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlx_console.core import api
from mlx_console.ui import log_follow

FIRST_FRAME = """
import asyncio, json, sys
from pathlib import Path
from mlx_console.core.api import Config, Profile
from mlx_console.ui.app import ConsoleApp

cfg = Config(path=Path("/nonexistent/config.toml"), exists=True,
             backends=[Profile(name="a", kind="mlx-lm", model="/nonexistent", port=1)])
after_import = sorted(sys.modules)

async def main():
    app = ConsoleApp(cfg, polls=False)  # no poll, no log worker: what mounting and the first frames import
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        mounted = sorted(sys.modules)
        plot_before = len(app.bench_pane.query("#bench-trend"))
        await pilot.press("b")  # the bench pane shown: its history plot is mounted now
        await pilot.pause()
        plot_after = len(app.bench_pane.query("#bench-trend"))
    print(json.dumps({"import": after_import, "mounted": mounted, "plot": [plot_before, plot_after]}))

asyncio.run(main())
"""

# Never needed to draw the first frame (each is imported when first used, after it).
LATER = ("textual_plotext", "plotext", "httpx", "psutil", "mlx_console.core.lifecycle",
         "mlx_console.core.metrics", "mlx_console.core.bench", "mlx_console.core.settings.store",
         "mlx_console.core.logs.patterns", "hyperscan", "mlx", "mlx_lm")


def _lazy(mods: list[str]) -> list[str]:
    return [m for m in mods if any(m == h or m.startswith(h + ".") for h in LATER)]


def test_first_frame_imports_nothing_it_does_not_draw(tmp_path: Path) -> None:
    env = dict(os.environ, MLX_CONSOLE_STATE_DIR=str(tmp_path / "state"))
    r = subprocess.run([sys.executable, "-c", FIRST_FRAME], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert _lazy(out["import"]) == []
    assert _lazy(out["mounted"]) == []  # e.g. the placeholder rows' empty sparkline: no metrics queries
    assert out["plot"] == [0, 1]  # the bench pane's plot: mounted when the pane is first shown


def test_log_path_is_the_supervisors_without_importing_it(tmp_path: Path) -> None:
    code = ("import sys\nfrom pathlib import Path\nfrom mlx_console.core import api\n"
            "p = api.log_path('a')\nassert 'mlx_console.core.lifecycle.control' not in sys.modules\n"
            "cfg = api.Config(path=Path('/nonexistent'), exists=False)\n"
            "print(p == api.supervisor(cfg).log_path('a'), p)\n")
    env = dict(os.environ, MLX_CONSOLE_STATE_DIR=str(tmp_path / "state"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", str(tmp_path / "state" / "backends" / "a" / "server.log")]


def test_log_document_is_shown_before_the_catalogue_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "server.log"
    log.write_text("a line\nthe last line\n")
    order: list[str] = []
    real = api.load_catalog

    def load(paths):  # type: ignore[no-untyped-def]
        order.append("catalog")
        return real(paths)

    monkeypatch.setattr(api, "load_catalog", load)
    batches: list[log_follow.Batch] = []

    def deliver(b: log_follow.Batch) -> None:
        order.append("document" if b.doc is not None else "batch")
        batches.append(b)

    log_follow.follow(log, deliver, lambda: "catalog" in order, lambda: False)
    assert order[:2] == ["document", "catalog"]

    # A broken catalogue: the view is emptied again (a reset without a document) and the error reported.
    bad = tmp_path / "bad.toml"
    bad.write_text("[[pattern\n")
    batches.clear()
    with pytest.raises(api.ConsoleError):
        log_follow.follow(log, deliver, lambda: False, lambda: False, [bad])
    assert batches[0].doc is not None and batches[-1].reset and batches[-1].doc is None
