"""SVG snapshots of each screen at 80×24 and 160×48 (pytest-textual-snapshot).

Deterministic by construction: fixed status rows (no pids/uptimes from clocks), a fixed memory line, a
log file at a fixed path, and fixed doctor/model data handed to those screens.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList, Static

from mlx_console.ui.screens.doctor import DoctorScreen
from mlx_console.ui.screens.help import HelpScreen
from mlx_console.ui.screens.settings import DiffScreen
from mlx_console.ui.screens.swap import SwapScreen
from mlx_console.ui.widgets.command_line import CommandInput
from mlx_console.ui.widgets.log_view import LogView
from mlx_console.ui.widgets.triage_card import TriageCard

from .conftest import LOG_LINES, THEMES, FixedBackends, fixed_config, wait_for

SIZES = [(80, 24), (160, 48)]
# The paths the screens show are in the snapshots: a literal /tmp path (not $TMPDIR, which is /var/folders/… on
# macOS) keeps them the same on every machine.
SNAP_DIR = Path("/tmp/mlx-console-ui-snapshots")

REPORT = {
    "checks": [
        {"id": "platform", "status": "pass", "detail": "Apple M4 Max, 16 cores, 128 GiB", "fix": ""},
        {"id": "memory_pressure", "status": "warn", "detail": "warn: 14 GiB available of 128 GiB",
         "fix": "unload a model or lower its context"},
        {"id": "port:qwen", "status": "fail", "detail": "port 8080 is taken by pid 1234 (llama-server)",
         "fix": "stop pid 1234 or give qwen another port"},
    ],
    "versions": {"python": "3.12.4", "mlx": "0.29.0", "mlx_lm": "0.28.0", "omlx": "0.5.0"},
    "listening": [{"port": 8080, "pid": 1234, "process": "llama-server", "backend": None}],
}
MODELS = [
    {"id": "mlx-community/Qwen3-8B-4bit", "path": "/models/Qwen3-8B-4bit", "size": 4_600_000_000,
     "source": "hf-cache", "fit": "ok", "fit_reason": ""},
    {"id": "mlx-community/Llama-3.3-70B-Instruct-8bit", "path": "/models/Llama-70B", "size": 75_000_000_000,
     "source": "hf-cache", "fit": "fail", "fit_reason": "weights 69.8 GiB exceed free memory"},
    {"id": "mlx-community/gemma-3-27b-it-4bit", "path": "/models/gemma", "size": 16_000_000_000,
     "source": "model_dirs", "fit": "warn", "fit_reason": "tight: 2 GiB headroom"},
]


@pytest.fixture
def snap_app():
    SNAP_DIR.mkdir(exist_ok=True)
    log = SNAP_DIR / "qwen.log"
    log.write_text("\n".join(LOG_LINES) + "\n")
    from mlx_console.ui.app import ConsoleApp

    def make():
        config = fixed_config()
        backends = FixedBackends(config, {"qwen": log, "omlx": SNAP_DIR / "omlx.log"})
        return ConsoleApp(config, theme_dirs=[THEMES], backends=backends, autostart=False,
                          memory_reader=lambda: "mem 96.0G free/128.0G normal")

    return make


async def settle(pilot: Pilot) -> None:
    log = pilot.app.query_one(LogView)
    await wait_for(pilot, lambda: log.line_count == len(LOG_LINES), what="log lines")
    await wait_for(pilot, lambda: log.event_at(4) is not None, what="triage")
    await wait_for(pilot, lambda: "96.0G" in str(pilot.app.topbar.render()), what="memory line")
    await wait_for(pilot, lambda: pilot.app.backends_table.rows_data[0].get("pid") == 4242, what="status poll")
    await idle(pilot)


async def idle(pilot: Pilot) -> None:
    """Every message queued so far handled and every animation done: the frame is the settled one."""
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def screen_text(pilot: Pilot) -> str:
    return " ".join(str(w.render()) for w in pilot.app.screen.query("Static"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dashboard(snap_compare, snap_app, size) -> None:
    assert snap_compare(snap_app(), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dashboard_error_selected_with_triage_card(snap_compare, snap_app, size) -> None:
    async def run(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("g", "e")
        card = pilot.app.query_one(TriageCard)
        await wait_for(pilot, lambda: card.display and "metal" in str(card.render()).lower(), what="triage card")
        await idle(pilot)

    assert snap_compare(snap_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_filtered_log(snap_compare, snap_app, size) -> None:
    async def run(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("ampersand", *"POST", "enter")
        await wait_for(pilot, lambda: "&POST" in str(pilot.app.query_one("#log-status").render()))

    assert snap_compare(snap_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_search_highlights(snap_compare, snap_app, size) -> None:
    async def run(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("slash", *"post|metal", "enter")
        await wait_for(pilot, lambda: "/post|metal" in str(pilot.app.query_one("#log-status").render()))

    assert snap_compare(snap_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare, snap_app, size) -> None:
    async def run(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), what="help screen")
        await idle(pilot)

    assert snap_compare(snap_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_bench_pane(snap_compare, snap_app, size) -> None:
    async def run(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("b")
        app = pilot.app
        await wait_for(pilot, lambda: app.bench_pane.display and app.bench_pane.region.width > 0, what="bench pane")
        log = app.query_one(LogView)
        await wait_for(pilot, lambda: not log.display or log.region.width < size[0], what="log beside the pane")
        log.refresh()  # the log's rows after the relayout, not a partial repaint of the old width
        await idle(pilot)

    assert snap_compare(snap_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_doctor(snap_compare, snap_app, size) -> None:
    async def run(pilot: Pilot) -> None:
        await settle(pilot)
        pilot.app.push_screen(DoctorScreen(pilot.app.config, report=REPORT))
        await wait_for(pilot, lambda: "llama-server" in screen_text(pilot), what="doctor report")
        await idle(pilot)

    assert snap_compare(snap_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_model_swap(snap_compare, snap_app, size) -> None:
    async def run(pilot: Pilot) -> None:
        await settle(pilot)
        app = pilot.app
        screen = SwapScreen(app.config, app.backends, "qwen", models=MODELS)
        app.push_screen(screen)
        def listed() -> int:
            lists = screen.query(OptionList)
            return lists.first().option_count if lists else -1

        await wait_for(pilot, lambda: listed() == 3, what="models listed")
        await pilot.press(*"qwen")
        await wait_for(pilot, lambda: listed() == 1, what="filtered to qwen")
        await idle(pilot)

    assert snap_compare(snap_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_command_line_completion(snap_compare, snap_app, size) -> None:
    async def run(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("colon", *"res", "tab", "tab")
        field = pilot.app.query_one(CommandInput)
        await wait_for(pilot, lambda: field.value.startswith("restart "), what="completion")
        await idle(pilot)

    assert snap_compare(snap_app(), terminal_size=size, run_before=run)


SETTINGS = {"version": 1, "models": {"Qwen3-8B-4bit": {"temperature": 0.7, "max_tokens": 4096},
                                     "gemma-3-27b": {"is_pinned": True}}}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_settings_editor_with_an_invalid_value(snap_compare, snap_app, size) -> None:
    import json

    from mlx_console.ui.screens.settings import FieldRow, SettingsScreen

    path = SNAP_DIR / "model_settings.json"
    path.write_text(json.dumps(SETTINGS, indent=2))

    async def run(pilot: Pilot) -> None:
        await settle(pilot)
        screen = SettingsScreen(pilot.app.config, "omlx", "Qwen3-8B-4bit", path=path)
        pilot.app.push_screen(screen)
        await wait_for(pilot, lambda: screen.store is not None and screen.model == "Qwen3-8B-4bit")
        row = screen.query_one("#field-temperature", FieldRow)
        row.input.focus()
        row.input.value = "-2"
        screen.query_one("#field-max_tokens", FieldRow).input.value = "2048"
        await wait_for(pilot, lambda: bool(str(row.query_one(".error", Static).render()).strip()),
                       what="the field's error")
        screen.query_one("#settings-form").scroll_to_widget(row, animate=False, top=True)
        await idle(pilot)

    assert snap_compare(snap_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_settings_diff_preview(snap_compare, snap_app, size) -> None:
    import json

    from mlx_console.ui.screens.settings import FieldRow, SettingsScreen

    path = SNAP_DIR / "model_settings.json"
    path.write_text(json.dumps(SETTINGS, indent=2))

    async def run(pilot: Pilot) -> None:
        await settle(pilot)
        screen = SettingsScreen(pilot.app.config, "omlx", "Qwen3-8B-4bit", path=path)
        pilot.app.push_screen(screen)
        await wait_for(pilot, lambda: screen.store is not None and screen.model == "Qwen3-8B-4bit")
        screen.query_one("#field-temperature", FieldRow).input.value = "0.2"
        await wait_for(pilot, lambda: screen.store.new_errors() == [] and bool(screen.store.diff()), what="edit taken")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, DiffScreen), what="diff preview")
        await idle(pilot)

    assert snap_compare(snap_app(), terminal_size=size, run_before=run)


@pytest.fixture
def dead_app(snap_app, monkeypatch):
    """The snapshot console with qwen dead after giving up (fixed reason, restarts, history); times in UTC."""
    import time

    from .conftest import DEAD, ScriptedBackends

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()

    def make():
        app = snap_app()
        backends = ScriptedBackends(app.config, app.backends.logs)
        backends.changes["qwen"] = DEAD
        app.backends = backends
        return app

    yield make
    monkeypatch.undo()
    time.tzset()


async def settle_dead(pilot: Pilot) -> None:
    log = pilot.app.query_one(LogView)
    await wait_for(pilot, lambda: log.line_count == len(LOG_LINES), what="log lines")
    await wait_for(pilot, lambda: log.event_at(4) is not None, what="triage")
    await wait_for(pilot, lambda: "96.0G" in str(pilot.app.topbar.render()), what="memory line")
    await wait_for(pilot, lambda: pilot.app.reasons.display, what="reason line")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_reason_line(snap_compare, dead_app, size) -> None:
    assert snap_compare(dead_app(), terminal_size=size, run_before=settle_dead)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_describe_view(snap_compare, dead_app, size) -> None:
    async def run(pilot: Pilot) -> None:
        await settle_dead(pilot)
        await pilot.press("i")
        await wait_for(pilot, lambda: "State history" in " ".join(
            str(s.render()) for s in pilot.app.screen.query("Static")), what="describe text")

    assert snap_compare(dead_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_confirmation(snap_compare, snap_app, size) -> None:
    from mlx_console.ui.screens.confirm import ConfirmScreen

    async def run(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), what="confirmation")

    assert snap_compare(snap_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_mlx_lm_flags_editor(snap_compare, snap_app, size) -> None:
    from mlx_console.ui.screens.server_flags import FlagRow, FlagsScreen

    from .test_settings_forms import fixed_specs

    async def run(pilot: Pilot) -> None:
        await settle(pilot)
        screen = FlagsScreen(pilot.app.config, "qwen", fixed_specs())
        pilot.app.push_screen(screen)
        await wait_for(pilot, lambda: screen.loaded, what="flags form")
        row = screen.query_one("#flag__temp", FlagRow)
        row.input.focus()
        row.input.value = "hot"
        await wait_for(pilot, lambda: "hot" in screen.invalid.get("--temp", ""), what="inline error")
        await idle(pilot)

    assert snap_compare(snap_app(), terminal_size=size, run_before=run)
