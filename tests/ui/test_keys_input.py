"""Issue 11, keys and input: keys typed in a burst (a fast typist, a terminal replaying a paste as keys) or
pasted reach the command line in order, never the dashboard's bindings."""

from __future__ import annotations

from textual import events

from mlx_console.ui.app import ConsoleApp
from mlx_console.ui.screens.settings import SettingsScreen
from mlx_console.ui.widgets.command_line import CommandLine

from .conftest import wait_for


def burst(app: ConsoleApp, text: str) -> None:
    """Queue every key at once, as a terminal delivers `:start` typed quickly: none is handled before the
    next arrives (pilot.press would wait for each)."""
    names = {":": "colon", " ": "space", "/": "slash", "&": "ampersand", "\r": "enter"}
    for ch in text:
        app.post_message(events.Key(names.get(ch, ch), None if ch == "\r" else ch))


async def test_colon_then_quick_keys_reach_the_command_line_not_the_settings_key(make_app) -> None:
    app = make_app()
    ran: list[str] = []
    app.run_command = lambda p: ran.append(f"{p.name} {p.arg}")  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        burst(app, ":start qwen")
        line = app.query_one(CommandLine)
        await wait_for(pilot, lambda: line.input.value == "start qwen", what="the typed command")
        assert not isinstance(app.screen, SettingsScreen)
        burst(app, "\r")
        await wait_for(pilot, lambda: ran == ["start qwen"], what="the command to run")
        # `/` and `&` open the line the same way; the keys after them are the pattern, not log keys
        burst(app, "/error")
        await wait_for(pilot, lambda: line.input.value == "error" and line.mode == "/", what="search prompt")
        await pilot.press("escape")
        burst(app, "&!INFO")
        await wait_for(pilot, lambda: line.input.value == "!INFO" and line.mode == "&", what="filter prompt")
        await pilot.press("escape")


async def test_keys_right_after_the_first_frame_and_a_paste(make_app) -> None:
    app = make_app()
    ran: list[str] = []
    app.run_command = lambda p: ran.append(f"{p.name} {p.arg}")  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        burst(app, ":stop omlx\r")  # before anything else: the first frame has just been drawn
        await wait_for(pilot, lambda: ran == ["stop omlx"], what="the command typed at once")
        assert len(app.screen_stack) == 1
        app.post_message(events.Paste(":start qwen\n:logs omlx\n:doc"))
        await wait_for(pilot, lambda: ran == ["stop omlx", "start qwen", "logs omlx"], what="pasted commands")
        line = app.query_one(CommandLine)
        await wait_for(pilot, lambda: line.has_class("-open") and line.input.value == "doc", what="last line")
        # inside the open line `:` and `/` are text
        burst(app, ":/")
        await wait_for(pilot, lambda: line.input.value == "doc:/", what="text typed into the line")
        assert len(app.screen_stack) == 1
