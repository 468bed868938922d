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


def _range(start: int, stop: int) -> str:
    """A hunk range as difflib writes it (`start,length`, 1-based; an empty range names the line before)."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"


def unified_blocks(old: list[list[str]], new: list[list[str]], before: str, after: str, lead: int = 0,
                   context: int = 3) -> str:
    """A unified diff of two texts made of aligned blocks (block i of `old` ↔ block i of `new`, e.g. one
    model's settings each), diffed block by block: linear in the number of blocks where one difflib run over
    the whole text is quadratic on its many alike lines. `lead` lines come before the first block."""
    out: list[str] = []
    oa, ob = lead, lead
    for a, b in zip(old, new, strict=True):
        if a != b:
            for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
                i0, j0 = group[0][1], group[0][3]
                i9, j9 = group[-1][2], group[-1][4]
                out.append(f"@@ -{_range(oa + i0, oa + i9)} +{_range(ob + j0, ob + j9)} @@\n")
                for tag, i1, i2, j1, j2 in group:
                    if tag == "equal":
                        out += [" " + ln + "\n" for ln in a[i1:i2]]
                        continue
                    out += ["-" + ln + "\n" for ln in a[i1:i2]]
                    out += ["+" + ln + "\n" for ln in b[j1:j2]]
        oa += len(a)
        ob += len(b)
    return "".join([f"--- {before}\n", f"+++ {after}\n", *out]) if out else ""
