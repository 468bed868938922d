"""Settings editor (`s`): oMLX model settings as a validated form, diff before save, conflicts, apply.

Everything it knows about keys, validation and applying comes from core/settings.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from mlx_console.core.config import Config
from mlx_console.ui.core_api import NotAvailable, core


class SettingsScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss", "Close", id="settings.close")]
    DEFAULT_CSS = """
    SettingsScreen { align: center middle; }
    SettingsScreen > Vertical { width: 100%; max-width: 140; height: 100%; max-height: 44;
                                border: round $primary; background: $surface; padding: 0 1; }
    """

    def __init__(self, config: Config, backend: str | None, model: str | None = None) -> None:
        super().__init__()
        self.config, self.backend, self.model = config, backend, model

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = "Settings — Esc closes"
            yield Static(id="settings-status")

    def on_mount(self) -> None:
        try:
            core("settings.store", "SettingsStore")
            core("settings.schema", "KEYS")
        except NotAvailable as e:
            self.query_one("#settings-status", Static).update(Text(str(e), style="bold"))
