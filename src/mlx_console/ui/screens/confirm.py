"""Asks before a key breaks something (stop, restart, swap, bench on a ready backend): `y` confirms, any
other key cancels. `confirm = false` in the config turns the question off."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from mlx_console.ui.actions import BY_ID, bindings, display_key


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = bindings("confirm")

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question, self.detail = question, detail
        self._answered = False

    def compose(self) -> ComposeResult:
        yes = display_key(BY_ID["confirm.yes"], getattr(self.app, "keymap_config", {}))
        with Vertical() as v:
            v.border_title = "Confirm"
            yield Static(self.question, id="confirm-question")
            if self.detail:
                yield Static(self.detail, id="confirm-detail")
            yield Static(f"{yes} confirms · any other key cancels", id="confirm-keys")

    def answer(self, yes: bool) -> None:
        if not self._answered:
            self._answered = True
            self.dismiss(yes)

    def action_yes(self) -> None:
        self.answer(True)

    def on_key(self, event: events.Key) -> None:
        """Any key but the yes key (after the user's [keymap]) cancels."""
        keymap = getattr(self.app, "keymap_config", {})
        yes_keys = {k.strip() for k in (keymap.get("confirm.yes") or BY_ID["confirm.yes"].key or "").split(",")}
        event.stop()
        event.prevent_default()
        self.answer(event.key in yes_keys)
