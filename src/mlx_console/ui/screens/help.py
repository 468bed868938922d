"""The help screen (`?`): every key and `:` command, generated from the action registry."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from mlx_console.ui.actions import ACTIONS, SCOPES, bindings, display_key
from mlx_console.ui.commands import usage


def help_text(keymap: dict[str, str]) -> Text:
    """Key, `:` command, meaning and binding id of every action, grouped by scope."""
    out = Text()
    for scope, title in SCOPES.items():
        out.append(f"{title}\n", style="bold underline")
        for a in ACTIONS:
            if a.scope != scope:
                continue
            out.append(f"  {display_key(a, keymap) or '-':<9}", style="bold")
            out.append(f"{usage(a) if a.command else '':<18}")
            out.append(a.help)
            out.append(f"  {a.id}\n", style="dim")
        out.append("\n")
    return out


class HelpScreen(ModalScreen[None]):
    BINDINGS = bindings("help")

    def compose(self) -> ComposeResult:
        keymap = getattr(self.app, "keymap_config", {})
        with VerticalScroll() as v:
            v.border_title = "Help — Esc closes · rebind keys by id in the config's \\[keymap] table"
            yield Static(help_text(keymap))
            yield Static(Text(
                "\nCommand line: press : then type a command; Tab completes, ↑/↓ walks history.\n"
                "Palette: ctrl+p offers what fits the screen you are on.\n"
                "Backends keep running when the console quits.", style="dim"))
