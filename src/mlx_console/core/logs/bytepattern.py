"""A catalogue pattern (a `str` regex) as a regex over a log's UTF-8 bytes, for the fast scan.

The scan runs over bytes (hyperscan, or `re` on bytes) and only selects candidate lines: each candidate is checked
again with the `str` pattern, so the bytes pattern must match at least every line the `str` one matches (a
superset is fine). Encoding the pattern as UTF-8 is that, but for three things a byte regex reads otherwise:
`\\uXXXX` / `\\UXXXXXXXX` / `\\xXX` escapes of characters above ASCII (a bytes pattern has no `\\u`), a character
class holding such characters (a byte class would hold their bytes, and a range between two of them a range of
bytes), and a quantifier after such a character (it would repeat the last byte only).
"""

from __future__ import annotations

import re

# One character above ASCII in UTF-8: a lead byte and its continuation bytes.
_NON_ASCII = r"[\xc2-\xf4][\x80-\xbf]{1,3}"
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|x([0-9A-Fa-f]{2}))")


def _char_escape(m: re.Match[str]) -> str:
    code = int(m.group(1) or m.group(2) or m.group(3), 16)
    return m.group(0) if code < 0x80 else chr(code)


def _class(body: str) -> str:
    """A character class's body (between `[` and `]`, escapes of non-ASCII characters resolved) as a bytes
    regex matching at least what the class matches."""
    negated = body.startswith("^")
    items = body[1:] if negated else body
    if all(ord(c) < 0x80 for c in items):
        return f"[{body}]"
    if negated:  # any character but a newline: a superset of the class
        return rf"(?:[^\n\x80-\xff]|{_NON_ASCII})"
    ascii_part = []
    i = 0
    while i < len(items):
        c = items[i]
        if c == "\\" and i + 1 < len(items):
            ascii_part.append(items[i:i + 2])
            i += 2
            continue
        if i + 2 < len(items) and items[i + 1] == "-":  # a range
            lo, hi = c, items[i + 2]
            if ord(lo) < 0x80:
                ascii_part.append(f"{re.escape(lo)}-{re.escape(chr(min(ord(hi), 0x7F)))}")
            i += 3
            continue
        if ord(c) < 0x80:
            ascii_part.append(c)
        i += 1
    return f"(?:[{''.join(ascii_part)}]|{_NON_ASCII})" if ascii_part else f"(?:{_NON_ASCII})"


def utf8_pattern(p: str) -> str:
    """`p` as a regex for `re.compile(result.encode())` / hyperscan over UTF-8 bytes (see the module's doc)."""
    if p.isascii() and not _ESCAPE.search(p):
        return p
    out: list[str] = []
    i = 0
    while i < len(p):
        c = p[i]
        if c == "\\" and i + 1 < len(p):
            m = _ESCAPE.match(p, i)
            if m and _char_escape(m) != m.group(0):
                out.append(f"(?:{re.escape(_char_escape(m))})")
                i = m.end()
                continue
            out.append(p[i:i + 2])
            i += 2
            continue
        if c == "[":
            j = i + 1
            if j < len(p) and p[j] == "^":
                j += 1
            if j < len(p) and p[j] == "]":  # `]` first in a class is a member
                j += 1
            while j < len(p) and p[j] != "]":
                j += 2 if p[j] == "\\" else 1
            body = _ESCAPE.sub(_char_escape, p[i + 1:j])
            out.append(_class(body))
            i = j + 1
            continue
        out.append(f"(?:{c})" if ord(c) >= 0x80 else c)
        i += 1
    return "".join(out)
