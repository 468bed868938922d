"""The `:` command line grammar (k9s style): parse, complete, remember. No Textual here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlx_console.ui.actions import COMMANDS, Action


class CommandError(ValueError):
    """A command line that cannot run; the message says what is allowed."""


@dataclass(frozen=True)
class CommandCall:
    action: Action
    arg: str

    @property
    def name(self) -> str:
        return self.action.command or ""


def usage(a: Action) -> str:
    return f":{a.command} {a.args}".rstrip()


def parse(line: str) -> CommandCall:
    text = line.strip().removeprefix(":").strip()
    if not text:
        raise CommandError("empty command; press ? for the list of commands")
    name, _, arg = text.partition(" ")
    arg = arg.strip()
    action = COMMANDS.get(name)
    if action is None:
        matches = [c for c in COMMANDS if c.startswith(name)]
        if len(matches) == 1:
            action = COMMANDS[matches[0]]
        else:
            known = " ".join(f":{c}" for c in COMMANDS)
            raise CommandError(f"unknown command :{name}; commands: {known}")
    if action.arg_required and not arg:
        raise CommandError(f"{usage(action)}: missing {action.args}")
    if not action.args and arg:
        raise CommandError(f"{usage(action)} takes no argument")
    return CommandCall(action, arg)


Candidates = Callable[[str], list[str]]  # completion kind → values (backend names, models, suites, themes)


def complete(line: str, candidates: Candidates) -> list[str]:
    """Full command lines that complete `line` (without the leading ':'), best first."""
    text = line.removeprefix(":")
    if " " not in text:
        return [f"{c} " if COMMANDS[c].args else c for c in COMMANDS if c.startswith(text)]
    name, _, arg = text.partition(" ")
    action = COMMANDS.get(name)
    if action is None or not action.complete:
        return []
    arg = arg.lstrip()
    values = candidates(action.complete)
    starts = [v for v in values if v.startswith(arg)]
    inside = [v for v in values if arg.lower() in v.lower() and v not in starts]
    return [f"{name} {v}" for v in starts + inside]


@dataclass
class History:
    """Previous command lines, newest last; up/down walk it like a shell."""

    items: list[str] = field(default_factory=list)
    limit: int = 200
    _pos: int | None = None

    @classmethod
    def load(cls, path: Path) -> History:
        """History kept across sessions (one line per command); a missing or unreadable file is empty."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = []
        h = cls()
        h.items = [x for x in lines if x.strip()][-h.limit:]
        return h

    def save(self, path: Path) -> None:
        try:
            from mlx_console.core.api import write_atomic

            # typed commands can hold secrets (`:swap` paths, names): private like the rest of the state dir
            write_atomic(path, "".join(f"{x}\n" for x in self.items[-self.limit:]).encode(), mode=0o600)
        except OSError:
            pass  # history is a convenience: never an error on screen

    def add(self, line: str) -> None:
        line = line.strip()
        if line and (not self.items or self.items[-1] != line):
            self.items.append(line)
            del self.items[: -self.limit]
        self._pos = None

    def older(self) -> str | None:
        if not self.items:
            return None
        self._pos = len(self.items) - 1 if self._pos is None else max(0, self._pos - 1)
        return self.items[self._pos]

    def newer(self) -> str | None:
        if self._pos is None:
            return None
        self._pos += 1
        if self._pos >= len(self.items):
            self._pos = None
            return ""
        return self.items[self._pos]
