"""Every console binding and `:` command, driven with Pilot (core parts not in this build say so)."""

from __future__ import annotations

from mlx_console.ui.actions import ACTIONS
from mlx_console.ui.app import ConsoleApp
from mlx_console.ui.screens.doctor import DoctorScreen
from mlx_console.ui.screens.help import HelpScreen
from mlx_console.ui.screens.server_flags import FlagsScreen
from mlx_console.ui.screens.settings import SettingsScreen
from mlx_console.ui.screens.swap import SwapScreen
from mlx_console.ui.widgets.bench_pane import BenchPane
from mlx_console.ui.widgets.command_line import CommandLine
from mlx_console.ui.widgets.log_view import LogView

from .conftest import LOG_LINES, fixed_config, wait_for


def notices(app: ConsoleApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_help_lists_every_action_from_the_registry(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(str(s.render()) for s in app.screen.query("Static"))
        for a in ACTIONS:
            assert a.id in text and a.help in text
        for cmd in (":start NAME", ":settings [MODEL]", ":filter TEXT", ":theme NAME", ":q"):
            assert cmd in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_command_line_completes_and_remembers(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        line = app.query_one(CommandLine)
        await pilot.press("colon")
        assert line.has_class("-open") and line.input.has_focus
        await pilot.press(*"the", "tab")
        assert line.input.value == "theme "
        await pilot.press("tab")
        assert line.input.value == "theme dark"
        await pilot.press("tab")
        assert line.input.value == "theme high-contrast"
        line.input.value = "theme light"
        await pilot.press("enter")
        assert app.theme == "light" and not line.has_class("-open")
        assert app.query_one(LogView).has_focus
        await pilot.press("colon", "up")
        assert line.input.value == "theme light"
        await pilot.press("escape")
        assert not line.has_class("-open")


async def test_unknown_command_and_unknown_theme_are_refused_clearly(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("colon", *"reboot now", "enter")
        await pilot.press("colon", *"theme neon", "enter")
        await pilot.press("colon", *"logs nosuch", "enter")
        msgs = notices(app)
        assert any("unknown command :reboot" in m for m in msgs)
        assert any("theme 'neon' is not available" in m and "keeping dark" in m for m in msgs)
        assert any("no backend named 'nosuch'" in m for m in msgs)
        assert app.theme == "dark"


async def test_screens_open_from_keys_and_commands(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        # qwen (selected) is mlx-lm: `s` edits its server flags; the oMLX form is for oMLX backends only
        for key, screen in (("d", DoctorScreen), ("m", SwapScreen), ("s", FlagsScreen)):
            await pilot.press(key)
            assert isinstance(app.screen, screen), key
            await pilot.press("escape")
            assert not isinstance(app.screen, screen)
        for cmd, screen in ((":doctor", DoctorScreen), (":settings", FlagsScreen)):
            await pilot.press("colon", *cmd[1:], "enter")
            assert isinstance(app.screen, screen), cmd
            await pilot.press("escape")
        app.backends_table.select_name("omlx")
        for cmd, screen in ((":settings", SettingsScreen), (":settings Qwen3-8B", SettingsScreen)):
            await pilot.press("colon", *cmd[1:], "enter")
            assert isinstance(app.screen, screen), cmd
            await pilot.press("escape")


async def test_bench_pane_is_a_side_pane_when_wide_and_a_tab_when_narrow(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        pane = app.query_one(BenchPane)
        assert not pane.display
        await pilot.press("b")
        assert pane.display and app.query_one("#log-pane").display
        await pilot.press("b")
        assert not pane.display
        await pilot.press("colon", *"bench", "enter")
        assert pane.display
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("b")
        assert app.query_one(BenchPane).display and not app.query_one("#log-pane").display
        assert "Bench" in str(app.query_one("#log-title").render())
        await pilot.press("b")
        assert app.query_one("#log-pane").display


async def test_keymap_rebinds_by_id_and_unknown_ids_are_reported(make_app) -> None:
    config = fixed_config()
    config.keymap = {"console.doctor": "D", "backend.nosuch": "z"}
    app = make_app(config=config)
    async with app.run_test(size=(80, 24)) as pilot:
        assert any("unknown binding id 'backend.nosuch'" in m for m in notices(app))
        await pilot.press("d")
        assert not isinstance(app.screen, DoctorScreen)
        await pilot.press("D")
        assert isinstance(app.screen, DoctorScreen)
        await pilot.press("escape")
        await pilot.press("question_mark")
        text = " ".join(str(s.render()) for s in app.screen.query("Static"))
        assert "D" in text


async def test_palette_offers_what_fits_the_dashboard(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Start qwen" in titles and "Restart omlx" in titles and "Next error" in titles
        assert "Theme: light" in titles
        await pilot.press("question_mark")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Start qwen" not in titles and "Next error" not in titles
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
        await pilot.press(*"Restart omlx")
        from textual.command import CommandList

        def offered() -> str:
            lists = app.screen.query(CommandList)
            if not lists or not lists.first().option_count:
                return ""
            return str(lists.first().get_option_at_index(0).prompt)

        await wait_for(pilot, lambda: "Restart omlx" in offered(), what="the palette offers Restart omlx")
        await pilot.press("escape")


async def test_backends_table_follows_selection_into_the_log(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.log_backend == "qwen")
        await pilot.press("colon", *"logs omlx", "enter")
        assert app.log_backend == "omlx"
        assert app.backends_table.selected_name == "omlx"
        await pilot.press("colon", *"logs qwen", "enter")
        await wait_for(pilot, lambda: app.query_one(LogView).line_count > 0)


async def test_q_and_colon_q_quit(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("colon", "q", "enter")
        await pilot.pause()
    assert app.return_code == 0
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_no_color_is_honoured(make_app, monkeypatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.no_color
        log = app.log_view
        await wait_for(pilot, lambda: log.line_count == len(LOG_LINES) and log.event_at(4) is not None)
        # the selected line is reverse video (colour alone would not show), errors are bold
        row = log.cursor_row - round(log.scroll_y)
        assert all(seg.style and seg.style.reverse for seg in log.render_line(row) if seg.text.strip())
        assert any(seg.style and seg.style.bold for seg in log.render_line(4 - round(log.scroll_y))
                   if "Traceback" in seg.text)


async def test_l_shows_the_selected_backends_log_and_B_reports_a_failed_run(make_app) -> None:
    from tests.conftest import free_port

    config = fixed_config()
    config.backends[0].port = free_port()  # surely nothing listens there
    app = make_app(config=config)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.log_backend == "qwen")
        app.backends_table.focus()
        await pilot.press("down", "l")
        assert app.log_backend == "omlx" and app.query_one(LogView).has_focus
        await pilot.press("colon", *"logs qwen", "enter", "B", "y")  # qwen shows ready: B asks first
        pane = app.query_one(BenchPane)
        assert pane.display
        # nothing listens on the profile's port: the run fails and the pane says why
        await wait_for(pilot, lambda: "bench failed" in str(pane.query_one("#bench-status").render()),
                       timeout=30, what="bench failure shown")
