"""Issue 11, per backend kind: the oMLX settings form never saves what a field does not show; `s` on an
mlx-lm backend edits its server flags (validated against the installed mlx_lm.server) in config.toml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlx_console.ui.screens.settings import DiffScreen, FieldRow, SettingsScreen

from .conftest import wait_for


def said(app, text: str) -> bool:
    return any(text in str(n.message) for n in app._notifications)


async def test_save_is_refused_while_a_field_is_invalid(make_app, tmp_path: Path) -> None:
    path = tmp_path / "model_settings.json"
    path.write_text(json.dumps({"version": 1, "models": {"tiny-llama": {"temperature": 0.7}}}, indent=2))
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = SettingsScreen(app.config, "omlx", "tiny-llama", path=path)
        app.push_screen(screen)
        await wait_for(pilot, lambda: screen.store is not None and screen.model == "tiny-llama", what="store")
        row = screen.query_one("#field-temperature", FieldRow)
        row.input.focus()
        row.input.value = ""        # unset: a valid change the store takes
        await wait_for(pilot, lambda: screen.store.dirty, what="the unset taken")
        row.input.value = "warm"    # invalid: the store keeps the unset, the field shows "warm"
        await wait_for(pilot, lambda: "temperature" in screen.invalid, what="the field's error")
        assert row.query_one(".error").has_class("-shown")
        other = screen.query_one("#field-top_p", FieldRow)
        other.input.focus()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: said(app, "not saved: temperature:"), what="refusal")
        assert not isinstance(app.screen, DiffScreen)
        await wait_for(pilot, lambda: row.input.has_focus, what="focus on the bad field")
        assert json.loads(path.read_text())["models"]["tiny-llama"]["temperature"] == 0.7
        row.input.value = "0.2"     # fixed: now the diff is offered, with what the field shows
        await wait_for(pilot, lambda: not screen.invalid, what="the error cleared")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen), what="diff")
        assert '"temperature": 0.2' in app.screen.diff


def fixed_specs():
    """A few flags as the installed mlx_lm.server describes them (fixed for snapshots and fast tests)."""
    from mlx_console.core.settings.server_flags import FlagSpec

    return [FlagSpec("--model", "str", "The path to the MLX model weights"),
            FlagSpec("--trust-remote-code", "bool", "Enable trusting remote code for tokenizer", False, None, 0),
            FlagSpec("--log-level", "str", "Set the logging level (default: INFO)", "INFO",
                     ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
            FlagSpec("--temp", "float", "Default sampling temperature (default: 0.0)", 0.0),
            FlagSpec("--max-tokens", "int", "Default maximum number of tokens to generate (default: 512)", 512),
            FlagSpec("--chat-template-args", "loads", "A JSON formatted string of arguments for the chat template",
                     "{}")]


CONFIG = '''# my fleet
theme = "dark"

[[backend]]
name = "qwen"   # the big one
kind = "mlx-lm"
model = "/models/Qwen3-8B-4bit"
args = ["--max-tokens", "64"]  # short answers

[[backend]]
name = "omlx"
kind = "omlx"
'''


def test_flags_round_trip_and_the_file_keeps_its_comments(tmp_path: Path) -> None:
    from mlx_console.core.errors import ConsoleError
    from mlx_console.core.settings.server_flags import check_value, join_args, save_args, split_args

    specs = fixed_specs()
    by = {s.flag: s for s in specs}
    values, problems = split_args(["--max-tokens", "64", "--trust-remote-code", "--log-level=DEBUG", "--bogus"],
                                  specs)
    assert values == {"--max-tokens": "64", "--trust-remote-code": "true", "--log-level": "DEBUG"}
    assert len(problems) == 1 and "unknown flag '--bogus'" in problems[0] and "--temp" in problems[0]
    assert join_args(dict(values, **{"--temp": "0.7"}), specs) == \
        ["--trust-remote-code", "--log-level", "DEBUG", "--temp", "0.7", "--max-tokens", "64"]
    assert check_value(by["--temp"], "hot") == "'hot' is not allowed: a number"
    assert "one of DEBUG" in check_value(by["--log-level"], "LOUD")
    assert check_value(by["--chat-template-args"], "{bad") and check_value(by["--chat-template-args"], "{}") is None
    assert "set by the profile" in check_value(by["--model"], "/x")
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    save_args(path, "qwen", ["--temp", "0.7", "--max-tokens", "64"])
    text = path.read_text()
    assert "# my fleet" in text and '"qwen"   # the big one' in text
    assert 'args = ["--temp", "0.7", "--max-tokens", "64"]' in text
    assert text.replace('"--temp", "0.7", ', "") == CONFIG  # nothing else moved
    with pytest.raises(ConsoleError, match="no \\[\\[backend\\]\\] named 'nope'"):
        save_args(path, "nope", [])
    missing = tmp_path / "none.toml"   # the demo backend's case: named, with where flags are kept, nothing made
    with pytest.raises(ConsoleError, match="none.toml does not exist .* `args` of a \\[\\[backend\\]\\]"):
        save_args(missing, "qwen", ["--temp", "0.7"])
    assert not missing.exists()


@pytest.mark.slow  # reads the flags from the installed mlx_lm.server (a subprocess)
async def test_s_on_an_mlx_lm_backend_edits_its_server_flags_and_offers_a_restart(tmp_path: Path, log_file) -> None:
    from mlx_console.core import config as config_mod
    from mlx_console.ui.app import ConsoleApp
    from mlx_console.ui.screens.confirm import ConfirmScreen
    from mlx_console.ui.screens.server_flags import FlagRow, FlagsScreen

    from .conftest import THEMES, ScriptedBackends

    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    config = config_mod.load(path)
    backends = ScriptedBackends(config, {"qwen": log_file})
    app = ConsoleApp(config, theme_dirs=[THEMES], backends=backends, autostart=False)
    restarted: list[str] = []
    app.act_on_backend = lambda verb, name: restarted.append(f"{verb} {name}")  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.backend_state("qwen") == "ready", what="poll")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, FlagsScreen), what="flags editor")
        screen = app.screen
        await wait_for(pilot, lambda: screen.loaded, timeout=60, what="the server's flags")
        flags = {r.spec.flag for r in screen.query(FlagRow)}
        assert {"--max-tokens", "--temp", "--trust-remote-code", "--log-level"} <= flags
        assert not flags & {"--model", "--host", "--port"}  # the profile's own keys
        temp = screen.query_one("#flag__temp", FlagRow)
        assert screen.query_one("#flag__max_tokens", FlagRow).input.value == "64"
        temp.input.focus()
        temp.input.value = "hot"
        await wait_for(pilot, lambda: "--temp" in screen.invalid, what="the field's error")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: said(app, "not saved: --temp: 'hot' is not allowed: a number"), what="refusal")
        assert not isinstance(app.screen, DiffScreen)
        temp.input.value = "0.7"
        await wait_for(pilot, lambda: not screen.invalid, what="the error cleared")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen), what="diff")
        assert '+args = ["--temp", "0.7", "--max-tokens", "64"]  # short answers' in app.screen.diff
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="restart offer")
        assert "Restart qwen now" in " ".join(str(s.render()) for s in app.screen.query("Static"))
        await pilot.press("y")
        await wait_for(pilot, lambda: restarted == ["restart qwen"], what="restart")
        assert config.backend("qwen").args == ["--temp", "0.7", "--max-tokens", "64"]
        assert "# my fleet" in path.read_text()
        assert config_mod.load(path).backend("qwen").args == ["--temp", "0.7", "--max-tokens", "64"]
        # an oMLX backend gets the oMLX form, never the flags editor
        await wait_for(pilot, lambda: len(app.screen_stack) == 1, what="back on the dashboard")
        app.backends_table.select_name("omlx")
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen), what="oMLX form")


async def test_flags_of_the_demo_backend_without_a_config_file_are_refused_with_the_way_out(tmp_path: Path) -> None:
    """No config file (the built-in demo): ctrl+s names the missing file and where flags are kept, and writes
    nothing (it used to print a bare `[Errno 2]`)."""
    from mlx_console.core.config import Config, demo_profile
    from mlx_console.ui.app import ConsoleApp
    from mlx_console.ui.screens.server_flags import FlagRow, FlagsScreen

    from .conftest import THEMES

    missing = tmp_path / "cfg" / "config.toml"
    config = Config(path=missing, exists=False, backends=[demo_profile()])
    app = ConsoleApp(config, theme_dirs=[THEMES], autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(FlagsScreen(config, "demo", specs=fixed_specs()))
        await wait_for(pilot, lambda: isinstance(app.screen, FlagsScreen) and app.screen.loaded, what="editor")
        temp = app.screen.query_one("#flag__temp", FlagRow)
        temp.input.focus()
        temp.input.value = "0.7"
        await wait_for(pilot, lambda: "--temp" in str(app.screen.new_args()), what="the edit taken")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: said(app, f"not saved: {missing} does not exist"), what="refusal")
        assert said(app, "[[backend]]") and not said(app, "Errno")
        assert not isinstance(app.screen, DiffScreen) and not missing.exists()
