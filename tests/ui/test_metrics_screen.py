"""The metrics screen (p, :metrics) on a real metrics database, at 80×24 and under NO_COLOR."""

from __future__ import annotations

import time

from textual.widgets import Static
from textual_plotext import PlotextPlot

from mlx_console.core.metrics.store import MetricsDB
from mlx_console.ui.screens.metrics import MetricsScreen

from .conftest import wait_for


def fill(now: float) -> None:
    db = MetricsDB()
    for i in range(60):  # the last 5 minutes at 5 s
        t = now - 300 + 5 * i
        db.add("qwen", t, [("requests_total", "", 2.0 * i), ("completion_tokens_total", "", 40.0 * i),
                           ("decode_tps", "", 50.0 + i % 7), ("ttft_ms", "", 120.0),
                           ("rss_bytes", "", 6e9), ("mem_available_bytes", "", 20e9),
                           ("swap_used_bytes", "", 1e9), ("memory_pressure", "", 0.0)])
    db.event("qwen", now - 200, "status", "stopped: stopped on request")
    db.event("qwen", now - 190, "status", "ready")
    db.event("qwen", now - 100, "pressure", "memory pressure normal -> warn (kernel level 2)")
    db.event("qwen", now - 50, "triage", "degraded: generation thread died")
    db.close()


async def test_metrics_screen_plots_and_markers_at_80x24(make_app, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    now = time.time()
    fill(now)
    app = make_app(polls=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen) and app.screen.data is not None,
                       what="metrics screen with data")
        screen = app.screen
        assert screen.backend == "qwen"
        await pilot.press("1")  # 5 minutes
        await wait_for(pilot, lambda: screen.data is not None and screen.data.window == 300, what="5m window")
        panels = {p.title: p for p in screen.data.panels}
        assert not panels["Throughput"].empty and not panels["TTFT"].empty and not panels["Requests"].empty
        rates = dict(panels["Requests"].lines[0].points)
        assert all(abs(v - 24.0) < 0.01 for v in rates.values())  # 2 per 5 s = 24/min
        assert [ln.label for ln in panels["Memory"].lines] == ["rss", "available", "swap"]
        markers = str(screen.query_one("#metrics-markers", Static).render())
        for word in ("stopped", "ready", "pressure warn", "triage degraded"):
            assert word in markers
        # Every plot gets a readable share of 80×24 and draws its legend with marker characters.
        for plot in screen.query(PlotextPlot):
            assert plot.size.width >= 38 and plot.size.height >= 8, plot.size
        text = app.export_screenshot().replace("&#160;", " ")
        assert "Throughput (tok/s)" in text and "• decode" in text and "+ available" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, MetricsScreen), what="closed")


async def test_metrics_command_names_a_backend_and_survives_no_data(make_app) -> None:
    app = make_app(polls=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.run_command(__import__("mlx_console.ui.commands", fromlist=["parse"]).parse(":metrics omlx"))
        await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen) and app.screen.data is not None,
                       what="metrics screen")
        assert app.screen.backend == "omlx" and all(p.empty for p in app.screen.data.panels)
        assert "markers: none" in str(app.screen.query_one("#metrics-markers", Static).render())
        await pilot.press("tab")
        await wait_for(pilot, lambda: app.screen.backend == "qwen", what="next backend")


async def test_metrics_screen_on_a_fresh_backend_without_samples(make_app) -> None:
    """No database yet, then a backend with one sample and no counters: every panel says so, nothing raises."""
    app = make_app(polls=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen) and app.screen.data is not None,
                       what="metrics screen")
        screen = app.screen
        assert all(p.empty for p in screen.data.panels)
        text = app.export_screenshot().replace("&#160;", " ")
        assert "no data" in text
        db = MetricsDB()
        db.add("qwen", time.time(), [("rss_bytes", "", 6e9), ("requests_total", "", 0.0)])
        db.close()
        for key in ("2", "3", "1"):
            await pilot.press(key)
            await wait_for(pilot, lambda k=key: screen.data is not None
                           and screen.data.window == {"1": 300, "2": 3600, "3": 86400}[k], what=f"window {key}")
        panels = {p.title: p for p in screen.data.panels}
        assert not panels["Memory"].empty and panels["Requests"].empty
        assert screen.load_error is None
        await pilot.press("escape")


async def test_metrics_screen_while_the_first_sampler_creates_the_database(make_app) -> None:
    """A database file without its tables yet (the first sampler is creating it): empty panels, no crash."""
    from mlx_console.core.metrics.store import db_path

    db_path().parent.mkdir(parents=True, exist_ok=True)
    db_path().write_bytes(b"")
    app = make_app(polls=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen) and app.screen.data is not None,
                       what="metrics screen")
        assert all(p.empty for p in app.screen.data.panels) and app.screen.load_error is None


async def test_a_failing_metrics_read_is_said_on_screen(make_app) -> None:
    def broken(backend: str, window: int) -> None:
        raise OSError("disk gone")

    app = make_app(polls=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(MetricsScreen(["qwen"], "qwen", loader=broken))
        await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen) and app.screen.load_error,
                       what="the error")
        assert "cannot read metrics: OSError: disk gone" in str(app.screen.query_one("#metrics-head").render())
        await pilot.press("escape")
