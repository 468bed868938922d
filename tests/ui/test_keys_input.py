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


def model_dirs(tmp_path, monkeypatch):
    """Two real model directories: `small` fits, `huge` (a sparse 4 TiB weights file) does not. The HF cache
    is an empty directory, so discovery finds exactly these."""
    root = tmp_path / "models"
    for name, size in (("small", 1024), ("huge", 2 ** 42)):
        d = root / name
        d.mkdir(parents=True)
        (d / "config.json").write_text('{"model_type": "llama", "num_hidden_layers": 2}')
        with open(d / "model.safetensors", "wb") as fh:
            fh.truncate(size)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-empty"))
    return root


async def test_swap_completes_from_discovered_models_and_a_typed_swap_to_a_misfit_asks_with_its_reason(
        log_file, tmp_path, monkeypatch) -> None:
    from mlx_console.ui.screens.confirm import ConfirmScreen
    from mlx_console.ui.screens.swap import SwapScreen

    from .test_explain_ask import screen_text, scripted

    app, backends = scripted(log_file, model_dirs=[model_dirs(tmp_path, monkeypatch)])
    swapped: list[str] = []
    backends.swap_model = lambda name, model: swapped.append(model)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.backend_state("qwen") == "ready", what="first poll")
        await wait_for(pilot, lambda: {"huge", "small"} <= set(app.known_models), what="discovery")
        line = app.query_one(CommandLine)
        await pilot.press("colon", *"swap ", "tab")  # without opening the picker first
        assert line.input.value in ("swap huge", "swap small")
        candidates = str(line.query_one("#candidates").render())
        assert "huge" in candidates and "small" in candidates and "(1/" in candidates
        line.input.value = "swap huge"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the ✗ question")
        text = screen_text(app)
        assert "✗ huge does not fit: weights" in text and "exceed total memory" in text, text
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, SwapScreen))
        await wait_for(pilot, lambda: "swap cancelled" in screen_text(app), what="cancelled")
        assert swapped == []
        # With confirmations off a ✗ still asks (the fit check is not a "ready backend" question)
        app.config.confirm = False
        app.screen.start_swap("huge")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the ✗ question again")
        await pilot.press("y")
        await wait_for(pilot, lambda: swapped and swapped[0].endswith("huge"), what="swap after yes")


async def test_the_theme_chosen_with_colon_theme_is_remembered_across_runs(make_app, tmp_path) -> None:
    import json
    import os
    import stat

    from mlx_console import paths

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.theme == "dark"
        await pilot.press("colon", *"theme light", "enter")
        await wait_for(pilot, lambda: app.theme == "light", what="theme switched")
    state = paths.state_dir() / "console.json"
    assert json.loads(state.read_text())["theme"] == "light"
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    again = make_app()
    async with again.run_test(size=(80, 24)):
        assert again.theme == "light"  # the next run starts on it
    # the config's `theme` edited since: the file the person edited wins
    from dataclasses import replace

    from tests.ui.conftest import fixed_config

    edited = make_app(config=replace(fixed_config(), theme="high-contrast"))
    async with edited.run_test(size=(80, 24)):
        assert edited.theme == "high-contrast"


async def test_bench_on_an_omlx_backend_with_two_models_loaded_asks_which(log_file) -> None:
    from textual.widgets import OptionList

    from mlx_console.ui.screens.confirm import ChoiceScreen, ConfirmScreen

    from .test_explain_ask import scripted

    app, backends = scripted(log_file)
    backends.changes["omlx"] = {"model": "tiny, tiny2", "loaded_models": ["tiny", "tiny2"]}
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.backend_state("omlx") == "ready", what="poll")
        app.backends_table.select_name("omlx")
        await pilot.press("B")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen), what="which model?")
        assert "bench which one?" in str(app.screen.query_one("#confirm-question").render())
        assert app.screen.query_one(OptionList).option_count == 2
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="then: ready, run?")
        assert "Run the bench on omlx (tiny2)?" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("y")
        await wait_for(pilot, lambda: app.bench_pane.chosen_model == "tiny2", what="run on tiny2")
        assert app.bench_pane._target("omlx").model == "tiny2"  # the request names one model, not "tiny, tiny2"
        await wait_for(pilot, lambda: not app.bench_pane.running, timeout=30, what="run ends (nothing serves)")
        # Esc at the question cancels
        await pilot.press("B")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1, what="cancelled")


async def test_after_a_command_that_opens_a_screen_the_log_keys_still_work(make_app) -> None:
    """`:messages⏎` typed at once, then Esc: the log has the focus back *and* its keys (the focus used to come
    back after the screen opened, leaving the dashboard with a stale binding chain: `f`, `e` did nothing)."""
    from mlx_console.ui.screens.describe import MessagesScreen
    from mlx_console.ui.widgets.log_view import LogView

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: log.has_focus, what="log focused")
        burst(app, ":messages\r")
        await wait_for(pilot, lambda: isinstance(app.screen, MessagesScreen), what="messages")
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(app.screen_stack) == 1)
        following = log.follow
        await pilot.press("f")
        await wait_for(pilot, lambda: log.follow != following, what="f toggles follow")
        assert "Err" in str(app.key_bar.render())  # the footer shows the log's keys again
