"""The footer: keys from the action registry (after the user's keymap), as many as the width allows."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from mlx_console.ui.actions import ACTIONS, display_key


class KeyBar(Widget):

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.scopes: tuple[str, ...] = ("backend", "console")

    def set_scopes(self, scopes: tuple[str, ...]) -> None:
        if scopes != self.scopes:
            self.scopes = scopes
            self.refresh()

    def render(self) -> Text:
        keymap = getattr(self.app, "keymap_config", {})
        width = self.size.width
        key_style = f"bold {self.app.current_theme.accent or 'yellow'}"
        out = Text(no_wrap=True, overflow="ellipsis")
        # Context first (log keys when the log has focus), then the console's own.
        ordered = sorted((a for a in ACTIONS if a.footer and a.key and a.scope in self.scopes),
                         key=lambda a: (self.scopes.index(a.scope), 0))
        help_action = next(a for a in ACTIONS if a.id == "console.help")
        help_text = f" {display_key(help_action, keymap)} {help_action.label} "
        room = width - len(help_text)
        target = getattr(self.app, "selected_backend", lambda: None)()
        for a in ordered:
            if a is help_action:
                continue
            if a.scope == "backend" and target and "▸" not in out.plain:
                out.append(f" {target}▸", style="bold reverse")  # which backend the backend keys act on
            piece = f" {display_key(a, keymap)} {a.label} "
            if out.cell_len + len(piece) > room:
                break
            out.append(f" {display_key(a, keymap)}", style=key_style)
            out.append(f" {a.label} ")
        out.append(" " * max(0, room - out.cell_len))
        out.append(f" {display_key(help_action, keymap)}", style=key_style)
        out.append(f" {help_action.label} ")
        return out
