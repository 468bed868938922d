"""Parse server log lines per format and group them into events (a record plus its traceback).

API: `parse_line(text) -> ParsedLine`; `Grouper` (incremental: `feed(text) -> Event|None`, `flush()`);
`group_lines(lines, first_line=1) -> list[Event]`. Formats: mlx_lm.server (`asctime - LEVEL - msg`, access
lines, Python warnings, print lines), oMLX file/console (`asctime - logger - LEVEL - [rid] - msg`), uvicorn and
stdlib `LEVEL:name:msg`; anything else is `unknown`. A traceback, `Exception in thread …:` or
`Exception occurred during processing …` block joins the record that introduces it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PROBLEM_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})
_LV = "TRACE|DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL"
# (the same in any case, for heads whose shape leaves no doubt: ` - error - `, `level=error`, `[warning]`)
_LVI = f"(?i:{_LV})"
_TS = r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?"

# Order matters: the first that matches wins. Each is a "head": it always starts a new event.
_HEADS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("mlx_lm", re.compile(rf"^(?P<ts>{_TS}) - (?P<level>{_LVI}) - (?P<msg>.*)$")),
    ("omlx", re.compile(rf"^(?:(?P<ts>{_TS}) - )?(?P<logger>[A-Za-z_][\w.]*) +- (?P<level>{_LVI}) +- "
                        rf"(?:\[(?P<rid>[^\]]*)\] - )?(?P<msg>.*)$")),
    ("access", re.compile(r'^(?P<client>\S+) - - \[(?P<ts>[^\]]+)\] "(?P<msg>(?P<method>[A-Z]+) (?P<path>\S+) '
                          r'HTTP/[\d.]+)" (?P<status>\d{3}) (?P<size>\S+)$')),
    ("stdlib", re.compile(rf"^(?P<level>{_LV}):(?:(?P<logger>[\w.]+):|\s+)(?P<msg>.*)$")),
    ("bracket", re.compile(rf"^\[(?P<level>{_LVI})\] (?P<msg>.*)$")),
    # logfmt (Go servers: ollama's mlx runner): `time=… level=ERROR source=f.go:12 msg="…" err="…"`
    ("logfmt", re.compile(rf"^time=\S+ level=(?P<level>{_LVI}) (?:source=\S+ )?msg=(?P<msg>.*)$")),
    ("pywarning", re.compile(r"^(?P<path>\S.*?):(?P<lineno>\d+): (?P<cat>\w*Warning): (?P<msg>.*)$")),
    ("thread_exc", re.compile(r"^(?P<msg>Exception in thread .*)$")),
    ("request_exc", re.compile(r"^(?P<msg>Exception occurred during processing of request from .*)$")),
)
_TRACEBACK = "Traceback (most recent call last):"
# A traceback frame (pasted or prefixed ones lose their indent; a paste cut mid-line may lose `File "` too).
_FRAME = re.compile(r'\s*(?:File "[^"]+|[^\s"]+\.py)", line \d+')
# Lines that continue a traceback even after a blank line: a pybind11 `At:` frame list, a Go goroutine dump,
# the body of a Rich traceback box; and Go function frames (`pkg.(*T).F(...)`), printed unindented.
_CONTINUES = re.compile(r"^(?:At:$|goroutine \d+ \[[^\]]*\]:$|[│╰])")
# A frame of a macOS crash report (`4   Metal   0x192f7eb20 MTLReportFailure + 576`, also without the address as
# some reports are pasted): it continues the `Thread N Crashed::` line above it.
_MAC_FRAME = re.compile(r"^\d+\s+[\w.+-]+(?: [\w.+-]+)*\s+(?:0x[0-9a-fA-F]+ |\S*(?:\.dylib|Metal|AGX\w*)\s)")
_GO_FUNC = re.compile(r"^(?:[\w.-]+/)*[\w-]+\.(?:\(\*?\w+\)\.)?[\w.]+\((?:[^()]*)\)$")
_RICH_TB = re.compile(r"^╭─+ Traceback \(most recent call last\)")
_CHAIN = ("During handling of the above exception", "The above exception was the direct cause")
_ERRORISH = re.compile(
    r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Interrupt)\b(?::|$)|(?:Error|ERROR|FATAL|Fatal error)\b|Exception:"
    r"|libc\+\+abi: terminating|terminate called|panic: |fatal error: |Segmentation fault|Abort trap|zsh: (?:abort|killed)"
    r"|Thread \d+ Crashed\b|Exception Type:\s+EXC_|Crashed Thread:"  # a macOS crash report
    # an error response body as a client or a DEBUG dump shows it: `{"error": …}`, `data: {"error": …}`
    r"|(?:data: ?)?\{\s*\"(?:error|detail)\"\s*:)"
)
# A wrapper's own sentence carrying the exception (`Failed to load draft model. XError: …`); tried only on lines
# that hold `Error: ` or `Exception: `.
_EMBEDDED_EXC = re.compile(r"[\s.:(\[\"'](?:[A-Za-z_][\w.]*(?:Error|Exception)|Exception): ")
# A line with no level that still says something failed, in a server's or a wrapper's own words (`Failed to load
# model: …`, `Runner 3: RunnerFailed`, `mlx runner failed: …`, `Error when loading model: …`).
_FAILURE_WORDS = re.compile(
    r"\b(?:[Ff]ailed|FAILED|[Ff]ailure|[Ee]rror|[Uu]nable to|[Cc]ould not|[Cc]annot|[Ff]atal|[Aa]borted|[Cc]rashed)\b"
)
_TB_EXC = re.compile(r"(?:[A-Za-z_][\w.]*(?:Error|Exception|Interrupt)|Exception): \S")  # a traceback's last line
_INDENTED_EXC = re.compile(r"\s+(?:[A-Za-z_][\w.]*(?:Error|Exception)|Exception)(?::\s|$)")
_FIXED_LEVEL = {"thread_exc": "ERROR", "request_exc": "ERROR", "pywarning": "WARNING"}
# Prefixes that servers embedding mlx-lm (vllm-mlx/vllm-metal, LM Studio, exo, vmlx, LocalAI) or a shortened
# console format put before the line Python printed. The rest of the line is parsed as if unprefixed; a level
# in the prefix is the line's level when the rest has none. Tried only on lines no head recognises.
_PLV = r"(?P<plevel>TRACE|DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)"
_PREFIX = re.compile(
    r"^(?:"
    rf"\([\w.-]+ pid=\d+\) (?:{_PLV} \d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \[[^\]]*\] ?)?"  # vllm worker
    rf"|{_PLV.replace('plevel', 'plevel2')} \d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \[[\w.-]+:\d+\] ?"  # vllm
    rf"|\[(?:{_TS}|\d\d:\d\d:\d\d(?:[.,]\d+)?)\](?:\[{_PLV.replace('plevel', 'plevel3')}\])?(?:\[[\w .-]+\])? ?"
    rf"|{_TS} \| {_PLV.replace('plevel', 'plevel4')} +\| [^ ]+ [-|] "  # loguru (exo, mlx-openai-server)
    # exo's loguru formats: `[ 10:00:00.1234AM | ERROR   ] `, `[ 2026-01-01 10:00:00.123 | ERROR    | m:f:12 ] `
    rf"|\[ ?(?:\d{{4}}-\d\d-\d\d )?\d\d:\d\d:\d\d(?:[.,]\d+)?(?:[AP]M)? \| {_PLV.replace('plevel', 'plevel6')} *(?:\| [^\]]*)?\] ?"
    rf"|\d\d:\d\d:\d\d(?:[.,]\d+)? {_PLV.replace('plevel', 'plevel5')} +"  # short console format
    # Rich's logging handler: the level padded to eight columns, after an optional `[12/05/26 10:00:00]`
    r"|(?:\[\d\d/\d\d/\d\d \d\d:\d\d:\d\d\] +)?(?P<plevel8>DEBUG {4}|INFO {5}|WARNING {2}|ERROR {4}|CRITICAL )"
    r"|\d{1,2}:\d\d[AP]M [A-Z]{3} .*?: (?:stderr|stdout) "  # LocalAI's backend relay
    # ISO time then a level, any case (Rust/Go/Zig/Node servers: `2026-01-02T10:00:00.123Z ERROR …`, `[error]`)
    rf"|{_TS}(?:Z|[+-]\d\d:?\d\d)? +\[?(?P<plevel7>{_LV}|error|warn|warning|info|debug|trace|critical|fatal)\]?:? +"
    r")(?P<rest>.*)$"
)


@dataclass(frozen=True)
class ParsedLine:
    fmt: str  # one of the _HEADS names, "traceback", "blank", "indented" or "unknown"
    level: str | None
    message: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def is_head(self) -> bool:
        return self.fmt in _HEAD_NAMES


_HEAD_NAMES = frozenset(name for name, _ in _HEADS)


def _norm_level(level: str | None) -> str | None:
    if level is None:
        return None
    level = level.upper()
    return {"WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)


def parse_line(text: str) -> ParsedLine:
    """Recognise one line's format, level and message (no state: grouping is the Grouper's job). The answer
    for a short line is remembered (the fast path parses a line up to three times: walking back to its
    record's head, grouping, then reading its facts); a ParsedLine is never changed by its users."""
    return _parse_short(text) if len(text) <= _CACHED_LEN else _parse_line(text)


_CACHED_LEN = 1000  # longer lines are parsed anew each time (the cache holds at most 4096 lines)


def _parse_line(text: str) -> ParsedLine:
    if not text.strip():
        return ParsedLine("blank", None, "")
    first = text[0]
    if first in " \t":  # (an exception line pasted indented, e.g. in a list item, still says "error")
        exc = ("Error" in text or "Exception" in text) and _INDENTED_EXC.match(text)
        return ParsedLine("indented", "ERROR" if exc else None, text)
    if text.startswith(_TRACEBACK):
        return ParsedLine("traceback", "ERROR", text)
    if (first == "F" or '", line ' in text) and _FRAME.match(text):
        return ParsedLine("indented", None, text)
    if first in "╭│╰":
        if _RICH_TB.match(text):
            return ParsedLine("traceback", "ERROR", text)
        if first != "╭":
            return ParsedLine("indented", None, text)
    if first in "Ag" and _CONTINUES.match(text) or text[-1] == ")" and _GO_FUNC.match(text):
        return ParsedLine("indented", None, text)
    if first.isdigit() and _MAC_FRAME.match(text):
        return ParsedLine("indented", None, text)
    for name, rx in _HEADS:
        m = rx.match(text)
        if m:
            d = {k: v for k, v in m.groupdict().items() if v is not None}
            level = _norm_level(d.get("level")) or _FIXED_LEVEL.get(name)
            if name == "access" and d["status"].startswith("5"):
                level = "ERROR"
            elif name == "logfmt":
                d["msg"] = _logfmt_msg(d["msg"])
            return ParsedLine(name, level, d.get("msg", text), d)
    return _parse_prefixed(text) or ParsedLine("unknown", "ERROR" if _errorish(text) else None, text)


_parse_short = functools.lru_cache(maxsize=4096)(_parse_line)


def _errorish(text: str) -> bool:
    if _ERRORISH.match(text):
        return True
    if ("Error: " in text or "Exception: " in text) and _EMBEDDED_EXC.search(text, 0, 240) is not None:
        return True
    return _FAILURE_WORDS.search(text, 0, 240) is not None


def _logfmt_msg(rest: str) -> str:
    """`"a \\"b\\"" err="x"` → `a "b" err=x`: the message unquoted, the other fields kept after it."""
    if not rest.startswith('"'):
        return rest
    m = re.match(r'"((?:[^"\\]|\\.)*)"(.*)$', rest)
    if m is None:
        return rest
    return (m.group(1).replace('\\"', '"') + re.sub(r'(\w+)="((?:[^"\\]|\\.)*)"', r"\1=\2", m.group(2))).strip()


def _parse_prefixed(text: str) -> ParsedLine | None:
    m = _PREFIX.match(text)
    rest = m.group("rest") if m else ""
    if not rest.strip():
        return None
    assert m is not None
    plevel = _norm_level(next((v.strip().upper() for k, v in m.groupdict().items() if k.startswith("plevel") and v), None))
    inner = parse_line(rest)
    fields = {**inner.fields, "prefix": text[: len(text) - len(rest)]}
    level = inner.level
    if level is None and inner.fmt == "unknown" and plevel in PROBLEM_LEVELS:
        level = plevel
    return ParsedLine(inner.fmt, level, inner.message, fields)


@dataclass
class Event:
    """A run of lines that belong together: a record and its continuation (traceback, indented lines)."""

    first_line: int  # 1-based
    lines: list[str]
    fmt: str
    level: str | None
    has_traceback: bool = False
    exception: str | None = None  # the exception line ending the (last) traceback

    @property
    def last_line(self) -> int:
        return self.first_line + len(self.lines) - 1

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def is_problem(self) -> bool:
        """An error or warning event (shown by `triage --all` even when no pattern knows it)."""
        return self.has_traceback or self.level in PROBLEM_LEVELS

    @property
    def summary(self) -> str:
        """The most telling line: the exception for a traceback, else the first line."""
        return self.exception or self.lines[0]


# Traceback states of the open event.
_NO_TB, _FRAMES, _AFTER_EXC, _CHAINING = range(4)


class Grouper:
    """Feed lines one at a time; get back each event once the line after it shows it is complete."""

    def __init__(self, first_line: int = 1):
        self.next_line = first_line
        self._cur: Event | None = None
        self._blanks = 0  # blank lines seen after the open event's last line (kept only if it goes on)
        self._tb = _NO_TB

    def _start(self, n: int, text: str, p: ParsedLine) -> Event | None:
        done = self.flush()
        self._cur = Event(n, [text], p.fmt, p.level)
        self._tb = _NO_TB
        if p.fmt == "traceback" or p.fmt == "indented" and _FRAME.match(p.message):
            self._frames_start()  # (a frame: a traceback whose head is missing, e.g. a log read from its middle)
        return done

    def _frames_start(self) -> None:
        assert self._cur is not None
        self._cur.has_traceback = True
        self._tb = _FRAMES

    def _append(self, text: str) -> None:
        cur = self._cur
        assert cur is not None
        if self._blanks:
            cur.lines.extend([""] * self._blanks)
            self._blanks = 0
        cur.lines.append(text)

    def _introduces(self, cur: Event) -> bool:
        if self._blanks:
            return False
        return (
            cur.level in PROBLEM_LEVELS
            or cur.fmt in ("thread_exc", "request_exc")
            or cur.lines[-1].rstrip().endswith(":")
        )

    def feed(self, text: str) -> Event | None:
        n = self.next_line
        self.next_line += 1
        p = parse_line(text)
        cur = self._cur
        if p.fmt == "blank":
            if cur is not None:
                self._blanks += 1
            return None
        if p.is_head or cur is None:
            return self._start(n, text, p)
        if self._blanks and _CONTINUES.match(text) and (cur.has_traceback or cur.level in PROBLEM_LEVELS):
            self._append(text)  # (the blank lines before it are kept)
            cur.has_traceback = True
            if self._tb != _FRAMES:
                self._tb = _AFTER_EXC if cur.exception or text[0] != "│" else _FRAMES
            return None
        if p.fmt == "traceback":
            if self._tb == _CHAINING or (not cur.has_traceback and self._introduces(cur)):
                self._append(text)
                cur.has_traceback = True
                self._tb = _FRAMES
                return None
            return self._start(n, text, p)
        if self._tb == _FRAMES:
            self._append(text)
            if p.fmt != "indented":
                cur.exception = text
                self._tb = _AFTER_EXC
            return None
        if self._tb in (_AFTER_EXC, _CHAINING):
            if text.startswith(_CHAIN):
                self._append(text)
                self._tb = _CHAINING
                return None
            if not self._blanks:  # a multi-line exception message, or `----` after a request traceback
                self._append(text)
                return None
        if p.fmt == "indented" and not self._blanks:
            self._append(text)
            if cur.level is None and p.level is not None:
                cur.level = p.level
            if self._tb == _NO_TB and _FRAME.match(p.message):
                self._frames_start()
            return None
        if (not self._blanks and self._tb == _NO_TB and cur.level in PROBLEM_LEVELS and p.fmt == "unknown"
                and cur.lines[-1].rstrip().endswith(":")):
            # `Engine loop error:` then the error's own text on the next line (a message that starts with a newline,
            # or a paste wrapped after the colon): the record's message goes on
            self._append(text)
            return None
        if (not self._blanks and cur.level is None and cur.fmt == "indented" and not cur.has_traceback
                and _TB_EXC.match(text)):
            # a paste that keeps only a traceback's last source line (and its carets) and the exception: the
            # code the exception was raised in is its frame
            self._append(text)
            cur.level, cur.exception, cur.has_traceback, self._tb = p.level, text, True, _AFTER_EXC
            return None
        return self._start(n, text, p)

    def flush(self) -> Event | None:
        """Close and return the open event (at end of input, or when a live log goes quiet)."""
        done, self._cur = self._cur, None
        self._blanks = 0
        self._tb = _NO_TB
        return done

    @property
    def pending(self) -> Event | None:
        return self._cur


def group_lines(lines: Iterable[str], first_line: int = 1) -> list[Event]:
    g = Grouper(first_line)
    out = [e for e in map(g.feed, lines) if e is not None]
    last = g.flush()
    if last is not None:
        out.append(last)
    return out
