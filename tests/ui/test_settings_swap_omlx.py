"""Settings editor and model swap against the oMLX stand-in (a real subprocess speaking oMLX 0.5.0's API)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlx_console.core.config import Config, Profile
from mlx_console.ui.app import ConsoleApp
from mlx_console.ui.screens.confirm import ConfirmScreen
from mlx_console.ui.screens.settings import ConflictScreen, DiffScreen, FieldRow, SettingsScreen
from mlx_console.ui.screens.swap import SwapScreen

from .conftest import THEMES, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "standins"))
from omlx_harness import API_KEY, StandinFactory  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def standin(tmp_path: Path) -> Iterator:
    base = tmp_path / "omlx"
    (base).mkdir()
    (base / "model_settings.json").write_text(json.dumps(
        {"version": 1, "models": {"tiny-llama": {"temperature": 0.7}}}, indent=2))
    factory = StandinFactory(tmp_path)
    try:
        yield factory(base=base)
    finally:
        factory.stop_all()


def omlx_app(standin) -> ConsoleApp:
    config = Config(path=Path("/cfg/config.toml"), exists=True, backends=[
        Profile(name="omlx", kind="omlx", port=standin.port, base_path=str(standin.base), api_key=API_KEY)])
    return ConsoleApp(config, theme_dirs=[THEMES], autostart=False)


def settings_file(standin) -> dict:
    return json.loads((standin.base / "model_settings.json").read_text())


async def open_settings(pilot, model: str = "tiny-llama") -> SettingsScreen:
    await pilot.press("colon", *f"settings {model}", "enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SettingsScreen))
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.store is not None and screen.model == model, what="store")
    return screen


async def test_edit_validate_diff_apply_live(standin) -> None:
    app = omlx_app(standin)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_settings(pilot)
        row = screen.query_one("#field-temperature", FieldRow)
        assert row.input.value == "0.7"
        row.input.focus()
        row.input.value = "-1"
        await wait_for(pilot, lambda: row.query_one(".error").has_class("-shown"), what="the field's error")
        assert "not allowed" in str(row.query_one(".error").render())
        assert not screen.store.dirty
        row.input.value = "0.3"
        await wait_for(pilot, lambda: screen.store.dirty, what="the edit taken")
        assert not row.query_one(".error").has_class("-shown")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen))
        assert '+      "temperature": 0.3' in app.screen.diff
        await pilot.press("enter")
        await wait_for(pilot, lambda: "applied live: temperature" in str(screen.last_result), timeout=15,
                       what="apply result")
        assert settings_file(standin)["models"]["tiny-llama"]["temperature"] == 0.3
        models = standin.admin().get("/admin/api/models").json()
        listed = models.get("models", models) if isinstance(models, dict) else models
        entry = next(m for m in listed if m.get("id") == "tiny-llama")
        assert (entry.get("settings") or {}).get("temperature") == 0.3


async def test_conflict_dialog_when_the_file_changes_underneath(standin) -> None:
    app = omlx_app(standin)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_settings(pilot)
        screen.query_one("#field-temperature", FieldRow).input.value = "0.5"
        await wait_for(pilot, lambda: screen.store.dirty, what="the edit taken")
        path = standin.base / "model_settings.json"
        doc = json.loads(path.read_text())
        doc["models"]["tiny-llama"]["top_k"] = 20
        path.write_text(json.dumps(doc, indent=2))
        await wait_for(pilot, lambda: screen.changed_on_disk, timeout=5, what="file watch")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, DiffScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConflictScreen), timeout=10, what="conflict dialog")
        assert json.loads(path.read_text())["models"]["tiny-llama"] == {"temperature": 0.7, "top_k": 20}
        await pilot.press("r")  # replay mine on theirs
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.store.get("tiny-llama") == {"temperature": 0.5, "top_k": 20}


async def test_raw_edit_is_validated_on_return(standin) -> None:
    app = omlx_app(standin)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_settings(pilot)
        screen.take_raw(b'{"version": 1, "models": {"tiny-llama": {"temperature": "hot"}}}')
        assert not screen.store.dirty
        assert "temperature" in screen.raw_error and "not allowed" in screen.raw_error
        screen.take_raw(b'{"version": 1, "models": {"tiny-llama": {"temperature": 0.9}}')
        assert not screen.store.dirty and ":1:" in screen.raw_error
        screen.take_raw(b'{"version": 1, "models": {"tiny-llama": {"temperature": 0.9}}}')
        assert screen.store.dirty
        assert screen.query_one("#field-temperature", FieldRow).input.value == "0.9"


async def test_start_and_swap_an_omlx_backend_supervised(tmp_path: Path) -> None:
    """The supervisor starts the stand-in as an oMLX backend; `:swap` loads a model through its API."""
    from omlx_harness import STANDIN, make_model
    from tests.conftest import free_port

    base = tmp_path / "omlx-sup"
    make_model(base / "models", "tiny-llama")
    config = Config(path=Path("/cfg/config.toml"), exists=True, backends=[
        Profile(name="omlx", kind="omlx", port=free_port(), base_path=str(base), api_key=API_KEY,
                command=[sys.executable, str(STANDIN)])])
    app = ConsoleApp(config, theme_dirs=[THEMES], autostart=False)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.backends_table.rows_data and
                           app.backends_table.rows_data[0].get("status") == "stopped", what="stopped")
            await pilot.press("u")
            await wait_for(pilot, lambda: app.backends_table.rows_data[0].get("status") == "ready", timeout=30,
                           what="ready")
            # m: the picker lists discovered models; Enter swaps by the model's id (a path gets a 404), after y
            await pilot.press("m")
            await wait_for(pilot, lambda: isinstance(app.screen, SwapScreen) and
                           any(m["id"] == "tiny-llama" for m in app.screen.models), timeout=20, what="models")
            await pilot.press(*"tiny-llama", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the swap asks")
            await pilot.press("y")
            await wait_for(pilot, lambda: any("now on tiny-llama" in n.message for n in app._notifications),
                           timeout=20, what="swap to finish")
            assert not isinstance(app.screen, SwapScreen)
            r = httpx.get(f"{config.backends[0].base_url}/v1/models/status",
                          headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5).json()
            models = r.get("models", r) if isinstance(r, dict) else r
            assert any(m.get("id") == "tiny-llama" and m.get("loaded") for m in models), r
            await pilot.press("x", "y")
            await wait_for(pilot, lambda: app.backends_table.rows_data[0].get("status") == "stopped", timeout=30,
                           what="stopped again")
    finally:
        app.backends.supervisor().stop("omlx")
