"""Issue 11, per backend kind: the oMLX settings form never saves what a field does not show; `s` on an
mlx-lm backend edits its server flags (validated against the installed mlx_lm.server) in config.toml."""

from __future__ import annotations

import json
from pathlib import Path

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
        await pilot.pause(0.1)
        assert screen.store.dirty
        row.input.value = "warm"    # invalid: the store keeps the unset, the field shows "warm"
        await pilot.pause(0.1)
        assert row.query_one(".error").has_class("-shown")
        other = screen.query_one("#field-top_p", FieldRow)
        other.input.focus()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: said(app, "not saved: temperature:"), what="refusal")
        assert not isinstance(app.screen, DiffScreen)
        await wait_for(pilot, lambda: row.input.has_focus, what="focus on the bad field")
        assert json.loads(path.read_text())["models"]["tiny-llama"]["temperature"] == 0.7
        row.input.value = "0.2"     # fixed: now the diff is offered, with what the field shows
        await pilot.pause(0.1)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen), what="diff")
        assert '"temperature": 0.2' in app.screen.diff
