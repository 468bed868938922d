"""Text pasted from somewhere else than the server's own log file, read as the log it holds.

An issue, a chat or a terminal wraps the lines it carries: Markdown quotes and code fences, the prefix a log
collector puts on every line (`docker compose logs`, `journalctl`, `docker logs -t` / `kubectl logs
--timestamps`, an app that stamps its child's output, macOS's NSLog and `log show`, pm2), the indentation of a
list item or a `<details>` block, HTML entities and no-break or zero-width spaces where a rendered page was
copied, lines cut or word-wrapped at a width. Each line keeps its number (a fence becomes a blank line); only
the wrapping goes, and only when the text is wrapped that way throughout: a server's own log is never changed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_QUOTE = re.compile(r"^(?:> ?)+")
_FENCE = re.compile(r"^\s*(?:```|~~~)")
# What a collector writes before every line it forwards. Each is told apart by its shape, not by a name.
_COLLECTOR = (
    # docker compose (v2 `svc-1  | `, v1 `svc_1  | `: the replica's number tells it from a `LEVEL | ` record)
    re.compile(r"^[A-Za-z0-9][\w.-]*[-_]\d+\s+\| ?"),
    # journalctl's short format (`Dec 06 10:00:00 host unit[123]: `)
    re.compile(r"^[A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d [\w.-]+ [^\s:\[]+(?:\[\d+\])?: "),
    # an RFC 3339 stamp (`docker logs -t`, `kubectl logs --timestamps`)
    re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d) "),
    # a bracketed date or time an app stamps on its child's output (`[15:59:49.692] `, `[2026-12-06 10:00:00] `)
    re.compile(r"^\[(?:\d{4}-\d\d-\d\d[ T])?\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\] "),
    # macOS: NSLog / os_log from a Swift app (`2026-12-06 10:00:00.123 swama[1234:5678] `), `log show` / `log
    # stream` (`2026-12-06 10:00:00.123456+0100 0x1a2b  Error  0x0  1234  0  python3: `)
    re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ [\w. -]+\[\d+:[0-9a-fA-Fx]+\] "),
    re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+[+-]\d{4}\s+0x[0-9a-f]+\s+\w+\s+0x[0-9a-f]+"
               r"\s+\d+\s+\d+\s+[^:]+: "),
    # pm2 (`0|omlx     | `)
    re.compile(r"^\d+\|[\w.-]+\s*\| ?"),
)
_ENTITY = re.compile(r"&(?:quot|#39|#x27|gt|lt|amp|nbsp);")
# Spaces a web page or a chat puts where the log had plain ones (no-break, thin, narrow no-break, ideographic
# spaces) and zero-width characters: a copy from a rendered page.
_ODD_SPACE = re.compile("[\u00a0\u2000-\u200a\u202f\u205f\u3000]")
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_SHARE = 0.8  # a wrapping is read through when at least this share of the non-blank lines carries it


def _mostly(lines: Sequence[str], rx: re.Pattern[str], least: int) -> bool:
    filled = [ln for ln in lines if ln.strip()]
    return len(filled) >= least and sum(1 for ln in filled if rx.match(ln)) >= _SHARE * len(filled)


# A line that starts a record in a log: a date or time, a traceback's head, an exception, a level, a bracket.
_HEAD = re.compile(r"(?:\d{4}-\d\d-\d\d|\d\d:\d\d:\d\d|Traceback \(most recent call last\)|[\w.]*(?:Error|Exception)\b"
                   r"|(?:INFO|WARNING|ERROR|DEBUG|CRITICAL)\b|\[)")


def _common_indent(lines: Sequence[str]) -> int:
    """The indentation every non-blank line has, when it pushed the lines that start records (a time, a
    traceback's head, an exception) or the paste's first line off the margin: indentation inside a log is
    structure, kept. A traceback's frames (`  File "…"`) keep their own two spaces."""
    filled = [ln for ln in lines if ln.strip()]
    if not filled:
        return 0
    cut = min(len(ln) - len(ln.lstrip(" \t")) for ln in filled)
    if cut < 3:  # one or two spaces: a log's own continuation lines as often as a paste's margin
        return 0
    # A paste whose first line is at the margin of four or more (a list item's, a code block's) is indented as a
    # whole, whatever that line says; so is a single line.
    first_at_margin = cut >= 4 and len(filled[0]) - len(filled[0].lstrip(" \t")) == cut
    if not first_at_margin and (len(filled) < 2 or not any(
            _HEAD.match(ln, cut) for ln in filled if len(ln) - len(ln.lstrip(" \t")) == cut)):
        return 0
    if any(ln[cut:].startswith('File "') for ln in filled):
        cut -= 2
    return max(cut, 0)


_TERMINAL_WIDTHS = frozenset({80, 100, 120, 132, 160, 200})


def _unwrap(lines: list[str]) -> list[str]:
    """A paste cut at a fixed width (a terminal or a page that hard-wraps): several lines are exactly as
    long as the longest (or one is as long as a terminal is wide), each followed by its rest. Each such line
    gets its continuation back; the continuation's line is left blank (line numbers are kept). A continuation
    that starts a record of its own is not one."""
    width = max((len(ln) for ln in lines), default=0)
    at_width = len({ln for ln in lines if len(ln) == width})  # (the same line twice is a repeat, not two cuts)
    # one line cut is enough when the width is a terminal's (its rest must not be indented: a frame, a detail)
    if width < 60 or (at_width < 2 and width not in _TERMINAL_WIDTHS):
        return lines
    out = list(lines)
    i = 0
    while i < len(out):
        j = i
        while (len(lines[j]) == width and j + 1 < len(lines) and lines[j + 1] and not _HEAD.match(lines[j + 1])
               and (at_width >= 2 or not lines[j + 1][:1].isspace())):
            j += 1
        if j > i:
            out[i] = "".join(lines[i:j + 1])
            out[i + 1:j + 1] = [""] * (j - i)
        i = j + 1
    return out


# A line that starts a record of its own in other shapes than _HEAD's: a frame, an access log's client address.
_OWN_RECORD = re.compile(r'(?:File "|at |#\d+ |\d+\s+\S+\s+0x|\d{1,3}(?:\.\d{1,3}){3}\b|[A-Z]+:)')
_WORD = re.compile(r"[A-Za-z0-9]")  # a wrapped line's rest has words (a `-----` rule is a line of its own)
_NEAR_MARGIN = 12  # a word-wrapped line ends at most this many columns short of the paste's widest line
# A line that ends a sentence (`flag."`, `done.`) is not taken as cut: joining across a sentence end would not make a
# message whole, and two quoted log lines of a paste often end so.
_SENTENCE_END = re.compile(r"""[.!?]["'\u201d\u2019)\]]*\s*$""")


def _unwrap_words(lines: list[str], width: int) -> list[str]:
    """A paste word-wrapped at a width (an editor, a mail, a narrow page: lines broken at a space, a little short
    of the widest one, `width`): a line that reaches near that width and is followed by a line that starts no
    record of its own (no time, level, exception or traceback head, no indentation) gets that line back, after a
    space."""
    if not 60 <= width <= 200:
        return lines

    def wrapped(k: int) -> bool:  # line k was cut at a space and line k + 1 is its rest
        return (len(lines[k]) >= width - _NEAR_MARGIN and " " in lines[k].strip() and bool(lines[k + 1].strip())
                and not _SENTENCE_END.search(lines[k])
                and not lines[k + 1][:1].isspace() and not _HEAD.match(lines[k + 1])
                and not _OWN_RECORD.match(lines[k + 1]) and _WORD.search(lines[k + 1]) is not None
                and (len(lines[k + 1]) < width or " " in lines[k + 1].strip()))  # (not one unbreakable token)

    # (at least two such breaks, or one in a paste of a few lines: a log's own long line followed by a line of
    # another shape is not a wrap)
    breaks = len({lines[k] for k in range(len(lines) - 1) if wrapped(k)})  # (a repeated line is one break)
    if breaks == 0 or breaks == 1 and sum(1 for ln in lines if ln.strip()) > 4:
        return lines
    out = list(lines)
    i = 0
    while i < len(out) - 1:
        j = i
        while j + 1 < len(lines) and wrapped(j):
            j += 1
        if j > i:
            out[i] = " ".join(ln.rstrip() for ln in lines[i:j + 1])
            out[i + 1:j + 1] = [""] * (j - i)
        i = j + 1
    return out


def unquote_paste(lines: Sequence[str]) -> list[str]:
    """The lines of a paste with their wrapping taken off (see the module's doc); the same count of lines."""
    out = list(lines)
    if any(_ODD_SPACE.search(ln) or _ZERO_WIDTH.search(ln) for ln in out):
        out = [_ZERO_WIDTH.sub("", _ODD_SPACE.sub(" ", ln)) for ln in out]
    if any(_ENTITY.search(ln) for ln in out) and not any('"' in ln or "<" in ln for ln in out):
        import html  # (only for a paste with HTML entities)

        out = [html.unescape(ln) for ln in out]
    if any(ln.startswith(">") or _FENCE.match(ln) for ln in out):
        out = ["" if _FENCE.match(ln) else _QUOTE.sub("", ln) if ln.startswith(">") else ln for ln in out]
    for i, rx in enumerate(_COLLECTOR):
        if _mostly(out, rx, 2 if i in (0, 6) else 1):  # `name | ` alone on one line could be a log's own text
            out = [rx.sub("", ln, count=1) for ln in out]
            break
    cut = _common_indent(out)
    if cut:
        out = [ln[cut:] for ln in out]
    # (the width a word-wrap broke at: the longest line with a space inside; one unbreakable token, a long path,
    # may stand past it)
    return _unwrap_words(_unwrap(out), max((len(ln) for ln in out if " " in ln.strip()), default=0))


def is_wrapped(lines: Sequence[str]) -> bool:
    """Whether `unquote_paste` would change these lines (a sample of a big input is enough to tell)."""
    return list(lines) != unquote_paste(lines)


def collector_prefixed(lines: Sequence[str]) -> bool:
    """Whether these lines (the head of a file) carry a log collector's prefix: a saved `docker compose logs`,
    `journalctl` or `kubectl logs --timestamps`, not a server's own log."""
    return any(_mostly(lines, rx, 2) for rx in _COLLECTOR)
