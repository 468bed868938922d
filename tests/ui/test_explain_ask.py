"""Issue 11, explain and ask: the reason line, the message history, describe, confirmations."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from mlx_console.ui.app import ConsoleApp
from mlx_console.ui.screens.confirm import ConfirmScreen
from mlx_console.ui.screens.describe import DescribeScreen, MessagesScreen

from .conftest import DEAD, THEMES, ScriptedBackends, fixed_config, wait_for


def scripted(log_file: Path, **config_changes: object) -> tuple[ConsoleApp, ScriptedBackends]:
    config = fixed_config()
    for k, v in config_changes.items():
        setattr(config, k, v)
    backends = ScriptedBackends(config, {"qwen": log_file})
    return ConsoleApp(config, theme_dirs=[THEMES], backends=backends, autostart=False), backends


def said(app: ConsoleApp, text: str) -> bool:
    """A toast with this text was shown."""
    return any(text in str(n.message) for n in app._notifications)


def screen_text(app: ConsoleApp) -> str:
    return " ".join(str(s.render()) for s in app.screen.query(Static))


async def test_a_crash_restart_and_give_up_stay_in_messages_and_the_reason_shows_under_the_table(log_file) -> None:
    app, backends = scripted(log_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.backend_state("qwen") == "ready", what="first poll")
        assert not app.reasons.display
        backends.changes["qwen"] = {"status": "dead", "reason": "exited with code 1; restarting in 1s"}
        await wait_for(pilot, lambda: app.backend_state("qwen") == "dead", what="dead")
        assert app.reasons.display and "qwen: dead: exited with code 1" in str(app.reasons.render())
        backends.changes["qwen"] = {"status": "ready", "restarts": 1}
        await wait_for(pilot, lambda: app.backend_state("qwen") == "ready", what="restarted")
        assert not app.reasons.display
        backends.changes["qwen"] = DEAD
        await wait_for(pilot, lambda: len(app.messages) == 5, what="give-up")
        kinds = [m.kind for m in app.messages]
        assert kinds == ["crash", "restart", "recovered", "restart", "gave-up"], kinds
        # The restart count is a column even at 80 columns.
        assert app.backends_table.get_cell("qwen", "restarts") == "3"
        await pilot.press("colon", *"messages", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MessagesScreen))
        text = screen_text(app)
        assert "qwen: died: exited with code 1" in text and "gave up after 5 restarts" in text
        assert "restart #3" in text


async def test_describe_from_i_enter_and_the_command(log_file, monkeypatch) -> None:
    app, backends = scripted(log_file)
    backends.changes["qwen"] = DEAD
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.backend_state("qwen") == "dead", what="poll")
        app.backends_table.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DescribeScreen))
        await wait_for(pilot, lambda: "State history" in screen_text(app), what="describe text")
        text = screen_text(app)
        for part in ("gave up after 5 restarts", "on-failure", "restarts so far: 3", "/models/Qwen3-8B-4bit",
                     "127.0.0.1:8080", str(log_file), "answering /v1/models", "Last triage events"):
            assert part in text, part
        # the log's Metal malloc traceback is the last triage event, at the file's line numbers
        assert "lines 5-7" in text
        await pilot.press("escape")
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, DescribeScreen))
        await pilot.press("escape")
        await pilot.press("colon", *"describe omlx", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DescribeScreen) and app.screen.backend == "omlx")


def test_secrets_are_masked_on_the_command_line() -> None:
    from mlx_console.ui.backends_source import mask_secrets

    assert mask_secrets(["omlx", "serve", "--api-key", "s3cret", "--port", "8000", "--hf-token=abc"]) == \
        ["omlx", "serve", "--api-key", "****", "--port", "8000", "--hf-token=****"]
    # a flag that only contains a secret-looking word is not one (it hid `--max-tokens 64`)
    assert mask_secrets(["--max-tokens", "64", "--prompt-cache-bytes=1G", "--auth", "x"]) == \
        ["--max-tokens", "64", "--prompt-cache-bytes=1G", "--auth", "****"]


async def test_stop_and_restart_on_a_ready_backend_ask_first(log_file) -> None:
    app, backends = scripted(log_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.backend_state("qwen") == "ready", what="poll")
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Stop qwen?" in screen_text(app)
        await pilot.press("n")  # anything but y cancels
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert not said(app, "qwen: stopping…")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: said(app, "qwen: restarting…"), what="restart started")
        # The footer names the backend the keys act on.
        assert "qwen▸" in str(app.key_bar.render())


async def test_confirm_false_in_the_config_acts_at_once(log_file) -> None:
    app, backends = scripted(log_file, confirm=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.backend_state("qwen") == "ready", what="poll")
        await pilot.press("x")
        await wait_for(pilot, lambda: said(app, "qwen: stopping…"), what="stop started")
        assert not isinstance(app.screen, ConfirmScreen)


def test_confirm_is_a_config_key(tmp_path) -> None:
    import pytest

    from mlx_console.core import config as config_mod
    from mlx_console.core.errors import ConsoleError

    path = tmp_path / "config.toml"
    path.write_text("confirm = false\n")
    assert config_mod.load(path).confirm is False
    path.write_text('confirm = "no"\n')
    with pytest.raises(ConsoleError, match="config.toml:1: key 'confirm' must be true or false"):
        config_mod.load(path)


async def test_describe_and_the_swap_picker_show_the_advisors_warnings(log_file, tiny_llama4_model) -> None:
    """Issue 12: the advisor's warnings (as `mlx-console advise` prints them) in the describe view and the picker."""
    import dataclasses

    from mlx_console.ui.screens.swap import SwapScreen

    app, backends = scripted(log_file)
    qwen = app.config.backend("qwen")
    i = app.config.backends.index(qwen)
    app.config.backends[i] = dataclasses.replace(qwen, model=str(tiny_llama4_model),
                                                 args=["--decode-concurrency", "4"])
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: app.backend_state("qwen") == "ready", what="poll")
        await pilot.press("colon", *"describe qwen", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DescribeScreen))
        await wait_for(pilot, lambda: "State history" in screen_text(app), what="describe text")
        text = screen_text(app)
        assert "advice" in text and "chunked attention" in text and "--decode-concurrency 1" in text, text
        await pilot.press("escape")
        swap = SwapScreen(app.config, app.backends, "qwen")
        app.push_screen(swap)
        # the picker discovers the configured model dir and shows its advice under it
        await wait_for(pilot, lambda: any(m.get("advice") for m in getattr(swap, "models", []) or []),
                       timeout=30, what="advice in the picker")


async def test_post_mortem_the_traceback_that_killed_a_dead_backend_is_marked_and_E_reaches_it(tmp_path) -> None:
    """Opening the console on a dead backend whose log ends in the traceback that killed it (nothing is appended
    any more): the traceback is an event, marked in the gutter, and `E` (previous error) goes to it."""
    from mlx_console.ui.widgets.log_view import LogView

    log = tmp_path / "qwen.log"
    log.write_text(
        "2026-12-05 19:25:37,806 - INFO - Starting httpd at 127.0.0.1 on port 18433...\n"
        "2026-12-05 19:25:37,806 - ERROR - mlx_lm.server generation thread died: No safetensors found in /m\n"
        "Traceback (most recent call last):\n"
        '  File "/venv/lib/python3.11/site-packages/mlx_lm/utils.py", line 452, in load_model\n'
        '    raise FileNotFoundError(f"No safetensors found in {model_path}")\n'
        "FileNotFoundError: No safetensors found in /m\n")
    app, backends = scripted(log)
    backends.changes["qwen"] = {"status": "dead", "reason": "generation thread died: No safetensors found in /m"}
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.line_count == 6, what="the log")
        await wait_for(pilot, lambda: view.event_at(5) is not None, timeout=10, what="the last traceback marked")
        await pilot.press("E")
        await wait_for(pilot, lambda: app.triage_card.display, what="the card")
        card = " ".join(str(s.render()) for s in app.triage_card.query(Static)) or str(app.triage_card.render())
        assert "lines 2-6" in card or "lines 3-6" in card, card
