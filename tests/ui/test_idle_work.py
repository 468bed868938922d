"""What the console does while little changes: unchanged polls are not delivered, an appended log line
repaints the log rows only (not the top bar, table, key bar or an unmoved scrollbar)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import _styles_cache

from mlx_console.ui.widgets.log_view import LogView

from .conftest import LOG_LINES, FixedBackends, fixed_config, wait_for


async def test_unchanged_backend_polls_are_not_delivered_but_a_poke_is(make_app, log_file: Path) -> None:
    config = fixed_config()
    backends = FixedBackends(config, {"qwen": log_file})
    app = make_app(config=config, backends=backends)
    delivered: list[Any] = []
    async with app.run_test(size=(80, 24)) as pilot:
        poll = app.backend_poll
        assert poll is not None
        show = poll.deliver
        poll.deliver = lambda rows: (delivered.append(rows), show(rows))  # type: ignore[method-assign]
        await wait_for(pilot, lambda: poll.skipped >= 2, timeout=6, what="two unchanged polls")
        assert len(delivered) <= 1  # the first after the swap may count as a change; none after it
        before = len(delivered)
        poll.poke()
        await wait_for(pilot, lambda: len(delivered) == before + 1, timeout=3, what="poke delivered")
        backends.status = "degraded"  # a change the table shows is delivered at the next poll
        await wait_for(pilot, lambda: app.backends_table.rows_data[0]["status"] == "degraded", timeout=3,
                       what="changed status shown")


async def test_an_appended_line_repaints_only_the_log_rows(make_app, log_file: Path, monkeypatch) -> None:
    from mlx_console.ui import log_follow

    # No quiet-time flush of the open triage event inside the measured appends: it may show the triage card,
    # which resizes the log (a repaint of everything, scrollbars included) at a time set by the machine's load.
    monkeypatch.setattr(log_follow, "QUIET_FLUSH", 600.0)
    app = make_app()
    painted: list[str] = []
    render_widget = _styles_cache.StylesCache.render_widget

    def spy(self: Any, widget: Any, crop: Any) -> Any:
        painted.append(widget.id or type(widget).__name__)
        return render_widget(self, widget, crop)

    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES), what="initial lines")
        with log_file.open("a") as fh:  # enough lines that one more barely moves the scrollbar thumb
            fh.write("".join(f"filler {i}\n" for i in range(3000)))
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES) + 3000, what="filler")
        # The layout pass that brings in the vertical scrollbar can land late on a loaded machine: wait for it.
        await wait_for(pilot, lambda: log.show_vertical_scrollbar and log.vertical_scrollbar.region.width > 0
                       and log.scrollable_content_region.width < log.size.width, what="the vertical scrollbar")
        monkeypatch.setattr(_styles_cache.StylesCache, "render_widget", spy)
        painted.clear()
        with log_file.open("a") as fh:  # the first append after scrollbars appeared repaints them once
            fh.write("warm-up\n")
        await wait_for(pilot, lambda: log.shown_lines()[-1] == "warm-up", what="warm-up line")
        # Its frame painted (on a loaded machine it can come well after the data): else its scrollbar repaint
        # would be counted below as the appends'.
        await wait_for(pilot, lambda: "log" in painted, what="the warm-up's frame")
        await pilot.pause(0.3)
        painted.clear()
        for i in range(3):
            with log_file.open("a") as fh:
                fh.write(f"one more {i}\n")
            await wait_for(pilot, lambda i=i: log.shown_lines()[-1] == f"one more {i}", what="line appended")
            await pilot.pause(0.15)
        assert "log" in painted
        assert not {"topbar", "backends", "keys", "log-title"} & set(painted), painted
        assert painted.count("ScrollBar") <= 1, painted  # the thumb moves by < 1/8 cell per line here


async def test_scrollbars_skipped_repaints_never_leave_a_stale_thumb(make_app, log_file: Path) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES), what="initial lines")

        async def screen_after_full_repaint() -> str:
            before = app.export_screenshot()
            log.vertical_scrollbar.refresh()
            log.horizontal_scrollbar.refresh()
            await pilot.pause(0.1)
            assert app.export_screenshot() == before, "scrollbar drawn stale"
            return before

        for n in (5, 20, 1, 1, 60):  # the thumb shrinks and moves as the log grows
            with log_file.open("a") as fh:
                fh.write("".join(f"grow {n} {i}\n" for i in range(n)))
            await wait_for(pilot, lambda n=n: log.shown_lines()[-1] == f"grow {n} {n - 1}", what="appended")
            await pilot.pause(0.15)
            await screen_after_full_repaint()
        for keys in (("pageup", "pageup"), ("end",), ("g",), ("G",)):
            await pilot.press(*keys)
            await pilot.pause(0.15)
            await screen_after_full_repaint()
