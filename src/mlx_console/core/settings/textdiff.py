"""Unified diffs of file versions, marking a missing final newline the way git and diff do."""

from __future__ import annotations

import difflib


def _lines(data: bytes | None) -> list[str]:
    if not data:
        return []
    lines = data.decode("utf-8", "replace").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


def unified(old: bytes | None, new: bytes | None, name: str, context: int = 3) -> str:
    """`--- name` / `+++ name` diff; empty when equal. A file that did not exist diffs from /dev/null."""
    if old == new:
        return ""
    before = "/dev/null" if old is None else name
    after = "/dev/null" if new is None else name
    return "".join(difflib.unified_diff(_lines(old), _lines(new), before, after, n=context))
