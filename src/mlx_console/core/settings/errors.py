"""Errors of the settings core: each names the file, model, key and value involved and what is allowed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlx_console.core.errors import ConsoleError


class SettingsError(ConsoleError):
    """Any refusal of the settings core; the file on disk is untouched when it is raised."""


class BadValue(SettingsError):
    """A value that cannot be parsed or is not allowed for its key."""

    def __init__(self, message: str, *, model: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.key = key


class BadFile(SettingsError):
    """The settings file cannot be read or is not valid JSON; `line`/`column` are 1-based when known."""

    def __init__(self, path: Path, message: str, line: int | None = None, column: int | None = None) -> None:
        where = f"{path}:{line}:{column}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.column = column


@dataclass
class Conflict:
    """What a refused save leaves the caller: the version loaded, ours, and the one now on disk."""

    path: Path
    base: bytes | None  # what was loaded (None: the file did not exist)
    ours: bytes  # what we meant to write
    theirs: bytes | None  # what is on disk now (None: it was deleted)
    base_hash: str
    theirs_hash: str
    changed_keys: list[tuple[str, str]] = field(default_factory=list)


class ConflictError(SettingsError):
    """The file changed since it was loaded (or does not match --if-hash): nothing was written."""

    def __init__(self, message: str, conflict: Conflict) -> None:
        super().__init__(message)
        self.conflict = conflict
