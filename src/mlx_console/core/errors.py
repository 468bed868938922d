"""Errors the core raises for people to read: each names what is wrong and what is allowed."""

from __future__ import annotations


class ConsoleError(Exception):
    """A failure with a message fit to show a user as it is (CLI exit 1, a notice in the TUI)."""


class ConfigError(ConsoleError):
    """The console's config file is wrong: the message names file, line and key."""
