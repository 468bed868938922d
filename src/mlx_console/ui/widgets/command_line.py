"""The `:` command line (and the `/` filter prompt): completion on Tab, history on Up/Down."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input, Static

from mlx_console.ui.actions import bindings
from mlx_console.ui.commands import Candidates, History, complete


class _CommandSuggester(Suggester):
    """Ghost text: the first completion of what is typed."""

    def __init__(self, line: CommandLine) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.line = line

    async def get_suggestion(self, value: str) -> str | None:
        if self.line.mode != ":" or not value:
            return None
        options = complete(value, self.line.candidates)
        return options[0] if options and options[0] != value else None


class CommandInput(Input):
    BINDINGS = bindings("cmdline")

    def action_complete(self) -> None:
        self.parent_line.complete_next()

    def action_history(self, direction: int) -> None:
        self.parent_line.walk_history(direction)

    def action_cancel(self) -> None:
        self.parent_line.close()

    @property
    def parent_line(self) -> CommandLine:
        parent = self.parent
        while parent is not None and not isinstance(parent, CommandLine):
            parent = parent.parent
        assert isinstance(parent, CommandLine)
        return parent

    def on_blur(self, event: events.Blur) -> None:
        self.parent_line.close(refocus=False)


class CommandLine(Vertical):
    """Hidden until opened; posts Submitted(mode, text) on Enter. Tab lists its candidates on a line above."""


    class Submitted(Message):
        def __init__(self, mode: str, text: str) -> None:
            super().__init__()
            self.mode, self.text = mode, text

    def __init__(self, candidates: Candidates, *, id: str | None = None,
                 history_path: Path | None = None) -> None:
        super().__init__(id=id)
        self.candidates: Candidates = candidates
        self.mode = ":"
        self.history_path = history_path
        self.histories = {":": History.load(history_path) if history_path else History(), "/": History(), "&": History()}
        self._cycle: list[str] = []
        self._cycle_pos = -1
        self._return_focus: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="candidates")
        with Horizontal(id="cmdrow"):
            yield Static(":", id="prompt")
            field = CommandInput(suggester=_CommandSuggester(self), compact=True, select_on_focus=False)
            field.cursor_blink = False  # a blinking cursor repaints twice a second
            yield field
            yield Static("", id="hint")

    @property
    def input(self) -> CommandInput:
        return self.query_one(CommandInput)

    def open(self, mode: str = ":", text: str = "") -> None:
        focused = self.app.focused
        # Back at once (not after a refresh): a command that opens a screen must find the focus where it was,
        # or the dashboard comes back with a stale binding chain (`f`, `e` dead after `:messages`).
        self._return_focus = (lambda: self.screen.set_focus(focused)) if focused is not None else None
        self.mode = mode
        self.query_one("#prompt", Static).update(mode)
        self.query_one("#hint", Static).update({
            ":": "Tab completes · ↑↓ history · Esc cancels",
            "/": "search (regex, smart case): matches highlighted, n/N jump · Esc",
            "&": "filter (regex; !PATTERN hides matching lines) · Esc"}.get(mode, ""))
        self.add_class("-open")
        self.input.value = text
        self.input.cursor_position = len(text)
        self._cycle = []
        self.show_candidates([], -1)
        # Focus now, not after a refresh: the next key of a quick `:start` is dispatched to the focused widget.
        self.screen.set_focus(self.input)

    def close(self, refocus: bool = True) -> None:
        if not self.has_class("-open"):
            return
        self.remove_class("-open")
        if refocus and self._return_focus is not None:
            self._return_focus()

    def complete_next(self) -> None:
        if self.mode != ":":
            return
        value = self.input.value
        if not self._cycle or value not in self._cycle or len(self._cycle) == 1:
            self._cycle = complete(value, self.candidates)
            self._cycle_pos = -1
        if not self._cycle:
            self.app.bell()
            self.show_candidates([], -1, f"no completion for {value.strip() or 'an empty line'}")
            return
        self._cycle_pos = (self._cycle_pos + 1) % len(self._cycle)
        self.input.value = self._cycle[self._cycle_pos]
        self.input.cursor_position = len(self.input.value)
        self.show_candidates(self._cycle, self._cycle_pos)

    def show_candidates(self, cycle: list[str], pos: int, note: str = "") -> None:
        """The line above the prompt: every candidate Tab cycles through (the current one reversed), or why
        there is none. Arguments are shown without the command they follow."""
        line = self.query_one("#candidates", Static)
        if not cycle and not note:
            line.display = False
            return
        t = Text(no_wrap=True, overflow="ellipsis")
        if note:
            t.append(f" {note}", style="italic")
        shown = [c.partition(" ")[2] or c if " " in c.strip() else c.strip() for c in cycle]
        start = max(0, pos - 3)  # keep the current one on screen when the list is longer than the line
        if start:
            t.append(" …")
        for i, c in enumerate(shown[start:], start):
            t.append(" ")
            t.append(f" {c} ", style="reverse bold" if i == pos else "")
        if len(cycle) > 1:
            t.append(f"   ({pos + 1}/{len(cycle)}, Tab for the next)", style="dim")
        line.update(t)
        line.display = True

    def walk_history(self, direction: int) -> None:
        hist = self.histories[self.mode]
        value = hist.older() if direction < 0 else hist.newer()
        if value is None:
            self.app.bell()
            return
        self.input.value = value
        self.input.cursor_position = len(value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        mode = self.mode
        self.close()
        self.submit(mode, event.value)

    def submit(self, mode: str, text: str) -> None:
        """Run `text` as if typed after `mode` and Enter (a pasted line does this too)."""
        self.histories[mode].add(text)
        if mode == ":" and self.history_path is not None:
            self.histories[":"].save(self.history_path)
        self.post_message(self.Submitted(mode, text))
