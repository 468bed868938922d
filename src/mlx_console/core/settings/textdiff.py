"""Unified diffs of file versions, marking a missing final newline the way git and diff do."""

from __future__ import annotations

import difflib
import re


def _lines(data: bytes | None) -> list[str]:
    if not data:
        return []
    lines = data.decode("utf-8", "replace").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


# A model's block in model_settings.json as oMLX writes it (indent=2): `    "<model id>": {`.
_MODEL_BLOCK = re.compile(r'^    "((?:[^"\\]|\\.)+)": \{')
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _model_at(lines: list[str], index: int) -> str | None:
    """The model whose block holds line `index` (0-based), scanning up; None outside any model block."""
    for i in range(min(index, len(lines) - 1), -1, -1):
        m = _MODEL_BLOCK.match(lines[i])
        if m:
            return m.group(1)
        if lines[i].startswith(("  }", "}")) and i != index:
            return None
    return None


def unified(old: bytes | None, new: bytes | None, name: str, context: int = 3) -> str:
    """`--- name` / `+++ name` diff; empty when equal. A file that did not exist diffs from /dev/null. Each hunk
    header names the models its changed lines fall in, as git names the function (`@@ -3,7 +3,7 @@ "tiny"`)."""
    if old == new:
        return ""
    before = "/dev/null" if old is None else name
    after = "/dev/null" if new is None else name
    a, b = _lines(old), _lines(new)
    lines = list(difflib.unified_diff(a, b, before, after, n=context))
    for h, line in enumerate(lines):
        m = _HUNK.match(line)
        if not m:
            continue
        ia, ib = int(m.group(1)) - 1 if a else 0, int(m.group(3)) - 1 if b else 0
        models: list[str] = []
        for body in lines[h + 1:]:
            if body.startswith("@@"):
                break
            tag = body[:1]
            model = _model_at(a, ia) if tag == "-" else _model_at(b, ib) if tag == "+" else None
            if model and model not in models:
                models.append(model)
            ia += tag in (" ", "-")
            ib += tag in (" ", "+")
        if models:
            lines[h] = line.rstrip("\n") + " " + ", ".join(f'"{x}"' for x in models) + "\n"
    return "".join(lines)


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
