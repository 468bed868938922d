"""Asks before a key breaks something (stop, restart, swap, bench on a ready backend): `y` confirms, any
other key cancels. `confirm = false` in the config turns the question off."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

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


class ChoiceScreen(ModalScreen[str | None]):
    """Pick one of a few values (which loaded model to bench): Enter picks, Esc cancels."""

    BINDINGS = bindings("swap.close")  # Esc closes

    def __init__(self, question: str, choices: list[str]) -> None:
        super().__init__()
        self.question, self.choices = question, choices

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = "Choose"
            yield Static(self.question, id="confirm-question")
            yield OptionList(*(Option(c, id=c) for c in self.choices), id="choice-list")
            yield Static("↑↓ choose · Enter picks · Esc cancels", id="confirm-keys")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(str(event.option.id))

    def action_dismiss(self, result: object = None) -> None:  # type: ignore[override]
        self.dismiss(None)
