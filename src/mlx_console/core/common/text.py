"""Text from outside (logs, model output, files) made safe to show on a terminal.

A log line may carry `ESC ]52;…` (writes the operator's clipboard), `ESC [2J` (clears the screen), a bare
CR that hides what came before, or C1 controls some terminals obey. `visible` shows every such character
the way `cat -v` does (`^[`, `^M`, `^?`, `M-^[`), keeping tab and, unless told otherwise, newline.
"""

from __future__ import annotations

import re


def _table(keep: str) -> dict[int, str]:
    t: dict[int, str] = {c: "^" + chr(c + 64) for c in range(0x20)}
    t[0x7F] = "^?"
    for c in range(0x80, 0xA0):  # C1 controls, as cat -v shows their bytes' meta form
        t[c] = "M-^" + chr(c - 0x80 + 64)
    for c in (0x2028, 0x2029, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069):
        t[c] = f"<U+{c:04X}>"  # line separators and bidi overrides: they reorder or split what is shown
    for ch in keep:
        t.pop(ord(ch), None)
    return t


_KEEP_NL = _table("\t\n")
_ONE_LINE = _table("\t")
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


# Terminal formatting: SGR sequences (the colours of uvicorn, loguru and rich) and erase-in-line. A line's colours
# are not what it says: readers of logs drop them (`without_formatting`). Every other escape (a screen clear, a
# cursor move, OSC: a clipboard or title write) stays, for `visible` to show it as text.
CSI = r"\x1b\[[0-9;:]*[mK]"
_CSI = re.compile(CSI)


def without_formatting(text: str) -> str:
    return _CSI.sub("", text) if "\x1b" in text else text


def visible(text: str, *, newlines: bool = True) -> str:
    """`text` with control characters shown like `cat -v` (tab kept; newline kept unless newlines=False)."""
    if not _UNSAFE.search(text):
        return text
    return text.translate(_KEEP_NL if newlines else _ONE_LINE)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, saying how many were cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit} more characters]"


def shown(text: str, limit: int = 500) -> str:
    """One line, visible and bounded: for text from outside that goes into a message or a record."""
    return clip(visible(text, newlines=False), limit)


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def json_safe(json_text: str) -> str:
    """JSON text (ensure_ascii=False) with the characters a terminal may obey that JSON leaves raw (DEL, C1
    controls, line separators, bidi overrides) written as \\uXXXX escapes: the same JSON value."""
    if json_text.isascii() and "\x7f" not in json_text:  # (isascii is O(1) on a str): nothing to escape
        return json_text
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)
