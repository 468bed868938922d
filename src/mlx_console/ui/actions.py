"""The one action registry: it feeds key bindings, the footer, the help screen, the palette and `:` commands.

Every binding has a stable id (`scope.name`) so users rebind keys in the config's `[keymap]` table,
e.g. `"backend.restart" = "ctrl+r"`. A `:` command, when an action has one, is a contract (README).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from textual.binding import Binding

# Scopes, in the order the help screen shows them.
SCOPES = {
    "console": "Console",
    "backend": "Backends (act on the selected backend)",
    "log": "Log view",
    "bench": "Bench pane",
    "settings": "Settings editor",
}


@dataclass(frozen=True)
class Action:
    id: str                    # binding id for [keymap]
    label: str                 # short footer label
    help: str                  # one line for help and palette
    key: str | None = None     # default key(s), comma separated; None = command/palette only
    action: str | None = None  # Textual action run by the key and the palette
    command: str | None = None  # `:` command name
    args: str = ""             # argument syntax shown in help, e.g. "NAME" or "[MODEL]"
    complete: str | None = None  # what completes the argument: backend | model | suite | theme
    footer: bool = True
    palette: bool = True

    @property
    def scope(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def arg_required(self) -> bool:
        return bool(self.args) and not self.args.startswith("[")


ACTIONS: tuple[Action, ...] = (
    # console
    Action("console.help", "Help", "Show every key and command", "question_mark", "help"),
    Action("console.command", "Cmd", "Open the : command line", "colon", "command_line", footer=False),
    Action("console.palette", "Palette", "Open the command palette", "ctrl+p", "command_palette", footer=False,
           palette=False),
    Action("console.swap", "Swap", "Swap the selected backend's model", "m", "swap", "swap", "MODEL", "model"),
    Action("console.settings", "Settings", "Edit oMLX model settings", "s", "settings", "settings", "[MODEL]",
           "model"),
    Action("console.bench", "Bench", "Show or hide the bench pane", "b", "toggle_bench", "bench", "[SUITE]", "suite"),
    Action("console.doctor", "Doctor", "Run the pre-flight checks", "d", "doctor", "doctor"),
    Action("console.metrics", "Metrics", "Plots of what each backend did over time", "p", "metrics", "metrics",
           "[NAME]", "backend", footer=False),
    Action("console.theme", "Theme", "Switch theme", None, None, "theme", "NAME", "theme"),
    Action("console.quit", "Quit", "Quit (backends keep running)", "q", "quit", "q"),
    # backends
    Action("backend.start", "Start", "Start the backend", "u", "start", "start", "NAME", "backend"),
    Action("backend.stop", "Stop", "Stop the backend", "x", "stop", "stop", "NAME", "backend"),
    Action("backend.restart", "Restart", "Restart the backend", "r", "restart", "restart", "NAME", "backend"),
    Action("backend.logs", "Logs", "Show the backend's log in the centre", "l", "logs", "logs", "NAME", "backend",
           footer=False),
    Action("backend.log_file", "Log file", "Switch log: captured / oMLX server.log", "L",
           "next_log_file", footer=False),
    # log view
    Action("log.filter", "Filter", "Filter the log (hide lines that do not match)", "slash", "filter",
           "filter", "TEXT"),
    Action("log.clear_filter", "Clear", "Clear the filter", "escape", "clear_filter", footer=False),
    Action("log.next_match", "Next", "Next match", "n", "next_match", footer=False),
    Action("log.prev_match", "Prev", "Previous match", "N", "prev_match", footer=False),
    Action("log.next_error", "Err", "Next error", "e", "next_error"),
    Action("log.prev_error", "Prev err", "Previous error", "E", "prev_error", footer=False),
    Action("log.next_warning", "Warn", "Next warning", "w", "next_warning", footer=False),
    Action("log.prev_warning", "Prev warn", "Previous warning", "W", "prev_warning", footer=False),
    Action("log.top", "Top", "Jump to the first line", "g,home", "top", footer=False),
    Action("log.bottom", "End", "Jump to the end and follow", "G,end", "bottom", footer=False),
    Action("log.follow", "Follow", "Toggle follow mode", "f", "toggle_follow"),
    Action("log.copy", "Copy", "Copy the selected event (OSC 52, works over SSH)", "y", "copy_event"),
    # bench pane
    Action("bench.run", "Run", "Run the bench suite on the selected backend", "B", "run_bench", footer=False),
    # settings editor (its own screen)
    Action("settings.save", "Save", "Show the diff, then save and apply", "ctrl+s", "preview", palette=False),
    Action("settings.editor", "$EDITOR", "Edit the raw file in $EDITOR (validated on return)", "ctrl+e",
           "edit_raw", palette=False),
    Action("settings.reload", "Reload", "Reload the file from disk", "ctrl+r", "reload", palette=False),
    Action("settings.close", "Close", "Close (Esc twice drops unsaved changes)", "escape", "close", palette=False),
)

BY_ID = {a.id: a for a in ACTIONS}
COMMANDS = {a.command: a for a in ACTIONS if a.command}


def bindings(scope: str | Iterable[str], prefix: str = "") -> list[Binding]:
    """Textual bindings for the actions of one or more scopes (action names may get a target prefix)."""
    scopes = {scope} if isinstance(scope, str) else set(scope)
    return [
        Binding(a.key, prefix + a.action, a.label, show=a.footer, id=a.id, tooltip=a.help)
        for a in ACTIONS
        if a.scope in scopes and a.key and a.action
    ]


def validate_keymap(keymap: dict[str, str]) -> list[str]:
    """Problems with a user's [keymap] table (unknown ids), as notices naming what is allowed."""
    unknown = sorted(k for k in keymap if k not in BY_ID)
    if not unknown:
        return []
    return [f"[keymap]: unknown binding id {k!r}; known ids: {', '.join(sorted(BY_ID))}" for k in unknown]


_KEY_NAMES = {"question_mark": "?", "colon": ":", "slash": "/", "escape": "esc"}


def display_key(action: Action, keymap: dict[str, str] | None = None) -> str:
    """The key(s) a person presses for the action, after the user's keymap."""
    keys = (keymap or {}).get(action.id, action.key) or ""
    return " ".join(_KEY_NAMES.get(k.strip(), k.strip()) for k in keys.split(",") if k.strip())
