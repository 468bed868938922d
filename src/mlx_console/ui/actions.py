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
    "backend": "Backends (act on the backend whose log is shown / row is selected)",
    "table": "Backends table",
    "log": "Log view",
    "bench": "Bench pane",
    "settings": "Settings editor",
    "cmdline": "Command line",
    "confirm": "Confirmation",
    "help": "Help screen",
    "doctor": "Doctor screen",
    "swap": "Model swap screen",
    "describe": "Describe / messages screens",
    "metrics": "Metrics screen",
}


@dataclass(frozen=True)
class Action:
    id: str                    # binding id for [keymap]
    label: str                 # short footer label
    help: str                  # one line for help and palette
    key: str | None = None     # default key(s), comma separated; None = command/palette only
    action: str | None = None  # Textual action run by the key, the palette and the `:` command (arg appended)
    command: str | None = None  # `:` command name
    args: str = ""             # argument syntax shown in help, e.g. "NAME" or "[MODEL]"
    complete: str | None = None  # what completes the argument: backend | model | suite | theme
    footer: bool = True
    palette: bool = True
    command_action: str | None = None  # the action a `:` command runs when it differs from the key's
    # Opens the command line (`:`, `/`, `&`): bound on the app with priority, so the keys typed or pasted right
    # after it reach the line in order instead of the bindings of the widget that had focus (ui/app.py).
    opens_line: str | None = None

    @property
    def scope(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def arg_required(self) -> bool:
        return bool(self.args) and not self.args.startswith("[")

    def call(self, arg: str = "") -> str:
        """The Textual action string a `:` command runs: `name` or `name('arg')`."""
        name = self.command_action or self.action or ""
        return f"{name}({arg!r})" if arg else name


def _keys(id: str, label: str, help: str, key: str, action: str, footer: bool = False) -> Action:
    """A key-only binding (cursor moves, modal screens' keys): not in the palette."""
    return Action(id, label, help, key, action, footer=footer, palette=False)


ACTIONS: tuple[Action, ...] = (
    # console
    Action("console.help", "Help", "Show every key and command", "question_mark", "help"),
    Action("console.command", "Cmd", "Open the : command line", "colon", "command_line", footer=False,
           opens_line=":"),
    Action("console.palette", "Palette", "Open the command palette", "ctrl+p", "command_palette", footer=False,
           palette=False),
    Action("console.swap", "Swap", "Swap the backend's model", "m", "swap", "swap", "MODEL", "model"),
    Action("console.settings", "Settings", "Edit settings (oMLX model settings, mlx-lm server flags)", "s",
           "settings", "settings", "[MODEL]", "model"),
    Action("console.bench", "Bench", "Show or hide the bench pane", "b", "toggle_bench", "bench", "[SUITE]", "suite",
           command_action="bench"),
    Action("console.doctor", "Doctor", "Run the pre-flight checks", "d", "doctor", "doctor"),
    Action("console.metrics", "Metrics", "Plots of what each backend did over time", "p", "metrics", "metrics",
           "[NAME]", "backend", footer=False),
    Action("console.messages", "Msgs", "Crashes, restarts and give-ups seen this session", None, "messages",
           "messages"),
    Action("console.theme", "Theme", "Switch theme (remembered)", None, "theme", "theme", "NAME", "theme",
           palette=False),
    Action("console.quit", "Quit", "Quit (backends keep running)", "q", "quit", "q"),
    Action("console.focus_next", "Next pane", "Move focus to the next pane", "tab", "focus_next", footer=False,
           palette=False),
    # backends
    Action("backend.start", "Start", "Start the backend", "u", "start", "start", "NAME", "backend"),
    Action("backend.stop", "Stop", "Stop the backend", "x", "stop", "stop", "NAME", "backend"),
    Action("backend.restart", "Restart", "Restart the backend", "r", "restart", "restart", "NAME", "backend"),
    Action("backend.describe", "Info", "Describe the backend (command, pids, model, history)", "i", "describe",
           "describe", "[NAME]", "backend"),
    Action("backend.logs", "Logs", "Show the backend's log in the centre", "l", "logs", "logs", "NAME", "backend",
           footer=False),
    Action("backend.log_file", "Log file", "Switch log: captured / oMLX server.log", "L",
           "next_log_file", footer=False),
    # backends table (when it has focus)
    _keys("table.down", "Down", "Next backend", "j,down", "cursor_down"),
    _keys("table.up", "Up", "Previous backend", "k,up", "cursor_up"),
    _keys("table.describe", "Describe", "Describe the selected backend", "enter", "describe_row"),
    # log view
    Action("log.search", "Search", "Search: highlight matches, n/N jump (regex, smart case)", "slash", "search",
           "search", "TEXT", opens_line="/"),
    Action("log.filter", "Filter", "Filter: show only matching lines (!PATTERN hides them)", "ampersand",
           "filter", "filter", "TEXT", opens_line="&"),
    Action("log.clear_filter", "Clear", "Clear the search and the filter", "escape", "clear_filter", footer=False),
    Action("log.next_match", "Next", "Next match", "n", "next_match", footer=False),
    Action("log.prev_match", "Prev", "Previous match", "N", "prev_match", footer=False),
    Action("log.next_error", "Err", "Next error", "e", "next_error"),
    Action("log.prev_error", "Prev err", "Previous error", "E", "prev_error", footer=False),
    Action("log.next_warning", "Warn", "Next warning", "w", "next_warning", footer=False),
    Action("log.prev_warning", "Prev warn", "Previous warning", "W", "prev_warning", footer=False),
    Action("log.top", "Top", "Jump to line 1 of the file", "g,home", "top", footer=False),
    Action("log.bottom", "End", "Jump to the end and follow", "G,end", "bottom", footer=False),
    Action("log.follow", "Follow", "Toggle follow mode", "f", "toggle_follow"),
    Action("log.copy", "Copy", "Copy the selected event (OSC 52; tmux: set -g set-clipboard on)", "y",
           "copy_event"),
    Action("log.report", "Report", "Draft an upstream issue for the selected event: saved under the state dir "
           "(reports/, 0600) and copied (OSC 52)", "R", "report_event", footer=False),
    _keys("log.down", "Down", "Cursor down one line", "down,j", "cursor(1)"),
    _keys("log.up", "Up", "Cursor up one line", "up,k", "cursor(-1)"),
    _keys("log.page_down", "PgDn", "One page down", "pagedown,space", "page(1)"),
    _keys("log.page_up", "PgUp", "One page up", "pageup", "page(-1)"),
    Action("log.wrap", "Wrap", "Wrap long lines on/off", "z", "toggle_wrap", "wrap", "[on|off]", footer=False),
    _keys("log.left", "Left", "Scroll left half a screen", "left", "hscroll(-1)"),
    _keys("log.right", "Right", "Scroll right half a screen", "right", "hscroll(1)"),
    # bench pane
    Action("bench.run", "Run", "Run the bench suite on the backend", "B", "run_bench", footer=False),
    Action("bench.next_cell", "Cell", "Bench history: plot the next cell", "c", "bench_next_cell", footer=False),
    # settings editor (its own screen)
    Action("settings.save", "Save", "Show the diff, then save and apply", "ctrl+s", "preview", palette=False),
    Action("settings.editor", "$EDITOR", "Edit the raw file in $EDITOR (validated on return)", "ctrl+e",
           "edit_raw", palette=False),
    Action("settings.reload", "Reload", "Reload the file from disk", "ctrl+r", "reload", palette=False),
    Action("settings.close", "Close", "Close (Esc twice drops unsaved changes)", "escape", "close", palette=False),
    _keys("settings.confirm", "Save & apply", "Diff: save and apply", "enter,y", "save"),
    _keys("settings.back", "Back", "Diff: go back to the editor", "escape,n", "back"),
    _keys("settings.rebase", "Replay", "Conflict: replay my changes on the file as it is now", "r",
          "choose('rebase')"),
    _keys("settings.discard", "Drop", "Conflict: drop my changes", "d", "choose('discard')"),
    _keys("settings.cancel", "Cancel", "Conflict: cancel", "escape", "choose('cancel')"),
    # the command line (while it is open)
    _keys("cmdline.complete", "Complete", "Complete; candidates are listed beside the line", "tab", "complete"),
    _keys("cmdline.older", "Older", "Older command from the history", "up", "history(-1)"),
    _keys("cmdline.newer", "Newer", "Newer command from the history", "down", "history(1)"),
    _keys("cmdline.cancel", "Cancel", "Close the command line", "escape", "cancel"),
    # modal screens
    _keys("confirm.yes", "Yes", "Confirm (any other key cancels)", "y", "yes"),
    _keys("help.close", "Close", "Close help", "escape,q,question_mark", "dismiss"),
    _keys("doctor.close", "Close", "Close the doctor screen", "escape,q", "dismiss"),
    _keys("doctor.rerun", "Re-run", "Run the checks again", "r", "rerun"),
    _keys("swap.close", "Close", "Close the swap screen", "escape", "dismiss"),
    _keys("describe.close", "Close", "Close", "escape,q,i", "dismiss"),
    _keys("metrics.close", "Close", "Close the metrics screen", "escape,q", "close", footer=True),
    _keys("metrics.5m", "5m", "Show the last 5 minutes", "1", "window('5m')", footer=True),
    _keys("metrics.1h", "1h", "Show the last hour", "2", "window('1h')", footer=True),
    _keys("metrics.24h", "24h", "Show the last 24 hours", "3", "window('24h')", footer=True),
    _keys("metrics.next", "Next backend", "Show the next backend", "tab,right", "backend(1)", footer=True),
    _keys("metrics.prev", "Prev", "Show the previous backend", "shift+tab,left", "backend(-1)"),
)

BY_ID = {a.id: a for a in ACTIONS}
COMMANDS = {a.command: a for a in ACTIONS if a.command}


def bindings(scope: str | Iterable[str], prefix: str = "") -> list[Binding]:
    """Textual bindings for the actions of one or more scopes or ids (action names may get a target prefix)."""
    wanted = {scope} if isinstance(scope, str) else set(scope)
    return [
        Binding(a.key, prefix + a.action, a.label, show=a.footer, id=a.id, tooltip=a.help)
        for a in ACTIONS
        if (a.scope in wanted or a.id in wanted) and a.key and a.action and not a.opens_line
    ]


def line_openers() -> list[Binding]:
    """The keys that open the command line, as the app's priority bindings (`command_line(MODE)`).

    A key the focused widget bubbles up reaches the app after the keys typed behind it were already handed
    to that widget: `:` then a quick `s` would open the settings. Handled first by the app, the line opens
    and takes focus before the next key is dispatched, so `:start tiny` arrives in order."""
    return [Binding(a.key, f"command_line({a.opens_line!r})", a.label, show=a.footer, id=a.id, tooltip=a.help,
                    priority=True)
            for a in ACTIONS if a.opens_line and a.key]


def validate_keymap(keymap: dict[str, str]) -> list[str]:
    """Problems with a user's [keymap] table (unknown ids), as notices naming what is allowed."""
    unknown = sorted(k for k in keymap if k not in BY_ID)
    if not unknown:
        return []
    return [f"[keymap]: unknown binding id {k!r}; known ids: {', '.join(sorted(BY_ID))}" for k in unknown]


_KEY_NAMES = {"question_mark": "?", "colon": ":", "slash": "/", "escape": "esc", "ampersand": "&"}


def display_key(action: Action, keymap: dict[str, str] | None = None) -> str:
    """The key(s) a person presses for the action, after the user's keymap."""
    keys = (keymap or {}).get(action.id, action.key) or ""
    return " ".join(_KEY_NAMES.get(k.strip(), k.strip()) for k in keys.split(",") if k.strip())
