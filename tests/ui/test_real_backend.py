"""Bindings and `:` commands against a real mlx_lm.server on the tiny model, started by the real supervisor:
start → ready → its log in the centre → bench (live progress, results, history) → restart → stop."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_console.core.config import Config, Profile
from mlx_console.ui.app import ConsoleApp
from mlx_console.ui.widgets.bench_pane import BenchPane
from mlx_console.ui.widgets.log_view import LogView

from .conftest import THEMES, wait_for

pytestmark = pytest.mark.slow

SUITE = """
name = "ui-mini"
[defaults]
temperature = 0
timeout_s = 60

[[cell]]
id = "chat.capital"
kind = "chat"
prompt = "What is the capital of France? Answer with one word."
expect = ["Paris"]
max_tokens = 16

[[cell]]
id = "throughput.tiny"
kind = "throughput"
prompt_tokens = 32
max_tokens = 32
trials = 2
warmup = 1
"""


def status(app: ConsoleApp) -> str | None:
    rows = app.backends_table.rows_data
    return rows[0].get("status") if rows else None


async def confirm(pilot) -> None:
    """Answer the confirmation a ready backend asks for (x, r, swap, bench) with `y`."""
    from mlx_console.ui.screens.confirm import ConfirmScreen

    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), what="confirmation")
    await pilot.press("y")


async def test_start_logs_bench_restart_stop(tiny_model: Path, tmp_path: Path, port: int) -> None:
    suite = tmp_path / "ui-mini.toml"
    suite.write_text(SUITE)
    config = Config(path=tmp_path / "config.toml", exists=True,
                    backends=[Profile(name="tiny", kind="mlx-lm", model=str(tiny_model), port=port,
                                             args=["--log-level", "INFO"])])
    app = ConsoleApp(config, theme_dirs=[THEMES], autostart=False)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: status(app) == "stopped", what="stopped at first")
            await pilot.press("u")
            await wait_for(pilot, lambda: status(app) == "ready", timeout=90, what="ready")
            log = app.query_one(LogView)
            await wait_for(pilot, lambda: any("Starting httpd" in x for x in log.shown_lines()), timeout=10,
                           what="server log in the view")
            await pilot.press("colon", *f"bench {suite}", "enter")
            await confirm(pilot)  # a bench on a ready backend asks first (issue 11)
            pane = app.query_one(BenchPane)
            await wait_for(pilot, lambda: pane.display, what="bench pane shown")
            await wait_for(pilot, lambda: pane.last_record is not None or "failed" in str(
                pane.query_one("#bench-status").render()), timeout=120, what="bench to finish")
            assert pane.last_record is not None, str(pane.query_one("#bench-status").render())
            assert {e.event for e in pane.events} >= {"run_started", "cell_finished", "run_finished"}
            cells = pane.last_record["cells"]
            perf = cells["throughput.tiny"]
            assert perf["n"] == 2 and perf["e2e_s"]["median"] > 0
            # Decode speed is measured, or said why not: on a loaded machine the tokens can reach the client in
            # one burst or chunk, and then no honest decode rate exists (the run says so instead of a made-up figure).
            assert (perf["decode_tps"]["median"] or 0) > 0 or perf["decode_missing"]["reason"], perf
            assert cells["chat.capital"]["status"] == "fail"  # a random model: fails, with a reason
            assert cells["chat.capital"]["reason"]
            assert pane.query_one("#bench-results").row_count == 2
            # recorded like the CLI's `bench run --backend`: the profile's server flags are in the record
            assert pane.last_record["config"]["server_flags"] == ["--log-level", "INFO"]
            assert pane.last_record["model"] == str(tiny_model)
            # a second run is compared with the first and adds a point to the history
            await pilot.press("colon", *f"bench {suite}", "enter")
            await confirm(pilot)
            await wait_for(pilot, lambda: not pane.running and pane.trend is not None and len(pane.trend.points) == 2,
                           timeout=120, what="second bench run")
            assert "vs previous run" in str(pane.query_one("#bench-verdict").render())
            await pilot.press("r")
            await confirm(pilot)
            await wait_for(pilot, lambda: "restart" not in app._busy.get("tiny", ""), timeout=90,
                           what="restart done")
            await wait_for(pilot, lambda: status(app) == "ready", timeout=90, what="ready after restart")
            await pilot.press("colon", *"stop tiny", "enter")
            await wait_for(pilot, lambda: status(app) == "stopped", timeout=30, what="stopped")
    finally:
        app.backends.supervisor().stop("tiny")


async def test_with_no_config_the_demo_moves_to_a_free_port_when_its_port_is_taken(tiny_model: Path,
                                                                                     tmp_path: Path) -> None:
    """Issue 11: something else listens on the demo's port (8080 by default): the demo starts on a free port and
    says so in a notice that stays in :messages, instead of failing."""
    import dataclasses
    import socket

    from mlx_console.core.config import demo_profile

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    demo = dataclasses.replace(demo_profile(), model=str(tiny_model), port=taken)
    config = Config(path=tmp_path / "no-config.toml", exists=False, backends=[demo])
    app = ConsoleApp(config, theme_dirs=[THEMES])  # no config: the demo autostarts
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: status(app) == "ready", timeout=90, what="demo ready")
            row = app.backends_table.rows_data[0]
            assert row.get("port") not in (None, taken)
            moved = [m for m in app.messages if f"port {taken} is taken" in m.text]
            assert moved and f"uses port {row['port']} instead" in moved[0].text, [m.text for m in app.messages]
    finally:
        app.backends.supervisor().stop("demo")
        squatter.close()
