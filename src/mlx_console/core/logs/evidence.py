"""What an event says beyond its words: exceptions, traceback frames, logger, level, backend, nearby lines.

API: `facts(event, before=()) -> Facts` (computed only for events the fast scan selected);
`detect_backend(facts)`; `search_query(facts)` and `search_urls(query, backend)` for an error no catalogue
entry knows. Catalogue entries match on these fields (patterns.Entry: exceptions, messages, frames, loggers,
nearby); each piece of evidence is an `Evidence(kind, line, text)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote_plus

from mlx_console.core.logs.events import Event, parse_line
from mlx_console.core.logs.literals import required_literals

# `File "path", line N, in func` anywhere in a line (other servers prefix it); C++/Go frames `at path:N`.
# (faulthandler: no comma; a frame cut mid-line keeps only `path.py", line N, in func`)
_PY_FRAME = re.compile(r'(?:File "(?P<path>[^"]+)|^\s*(?P<cut>[^\s"]+\.py))", line \d+,? in (?P<func>[\w<>.]+)')
_NATIVE_FRAME = re.compile(r"\bat (?P<path>/?[\w./+-]+\.(?:cpp|cc|h|hpp|mm|m|go|rs|metal)):\d+")
# Frames printed by other tracebacks: pybind11's `At:` list (`  path.py(253): func`), Rich's boxes
# (`│ path.py:253 in func │`), Go's goroutine dumps (`pkg.(*T).Func(...)` then `\tpath.go:12 +0x1d`).
_OTHER_FRAMES = (
    re.compile(r"^\s+(?P<path>\S+\.py)\(\d+\): (?P<func>[\w<>.]+)\s*$"),
    re.compile(r"^│\s*(?P<path>\S+\.py):\d+ in (?P<func>[\w<>.]+)"),
    re.compile(r"^(?P<func>(?:[\w.-]+/)*[\w-]+\.(?:\(\*?\w+\)\.)?[\w.]+)\((?:[^()]*)\)$"),
    re.compile(r"^\s+(?P<path>/?[\w./@+-]+\.go):\d+(?: \+0x[0-9a-f]+)?$"),
)
# An exception as printed: `pkg.mod.TypeError: msg`, `Error: ValueError: msg`, `exception of type std::x: msg`,
# a bare `Exception: msg` (Python's own base class, what tokenizers' Rust errors and many servers raise).
_EXC = re.compile(
    r"(?:^|[\s:(\[=\"'])(?P<type>(?:[A-Za-z_]\w*\.)*(?:[A-Z]\w*(?:Error|Exception|Interrupt|Exit|NYI|Warning)|Exception))"
    r"(?::\s*(?P<msg>.*)|\s*$|\()"
)
_CXX = re.compile(r"exception of type (?P<type>std::\w+|[\w:]+): (?P<msg>.*)")
# A traceback carried inside one line, as a JSON or Python string (an HTTP error body, a client's exception):
# its newlines are `\n` escapes. Such a line is read as the lines it holds.
_ESCAPED_TB = re.compile(r'Traceback \(most recent call last\):\\n|\\n\s*File \\?"')
_UNESCAPE = re.compile(r'\\(["\'\\nt])')


def _physical(event: Event) -> Iterator[tuple[int, str]]:
    """(line number, text) of an event's lines, a line holding an escaped traceback split into its lines."""
    for n, text in enumerate(event.lines, event.first_line):
        if "\\n" in text and _ESCAPED_TB.search(text):
            for part in text.split("\\n"):
                yield n, _UNESCAPE.sub(lambda m: "\t" if m[1] == "t" else m[1], part)
        else:
            yield n, text
_GENERIC = frozenset({"Exception", "Error", "RuntimeError", "ValueError", "TypeError"})

# Backends (and the servers that embed mlx-lm) recognised from logger names, module paths and wording,
# with the tracker an unknown error of theirs is searched in.
TRACKERS: dict[str, str] = {
    "mlx-lm": "ml-explore/mlx-lm",
    "omlx": "jundot/omlx",
    "mlx": "ml-explore/mlx",
    "mlx-vlm": "Blaizzy/mlx-vlm",
    "vllm-mlx": "waybarrios/vllm-mlx",
    "lmstudio": "lmstudio-ai/mlx-engine",
    "exo": "exo-explore/exo",
    "ollama": "ollama/ollama",
}
_BACKEND_HINTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("omlx", re.compile(r"\bomlx[./]|\boMLX\b|^omlx\b")),
    ("mlx-vlm", re.compile(r"\bmlx_vlm\b")),
    ("vllm-mlx", re.compile(r"\bvllm[_-](?:mlx|metal)\b|\bEngineCore\w* pid=")),
    ("lmstudio", re.compile(r"\bmlx_engine\b|\blmstudio\b|LM Studio", re.IGNORECASE)),
    ("exo", re.compile(r"\bexo[./]|\bexo\.\w")),
    ("ollama", re.compile(r"\bmlx runner\b|\bollama\b")),
    ("mlx-lm", re.compile(r"\bmlx_lm\b|\bmlx-lm\b")),
    ("mlx", re.compile(r"\bmlx/(?:backend|core|c)/|\[METAL\]|\[metal::|\bmlx\.core\b|/mlx/")),
)



def _hint_literals(rx: re.Pattern[str]) -> tuple[tuple[str, ...] | None, bool]:
    """Literals one of which each match of a hint holds (lower-cased for a caseless hint), and if it is caseless."""
    caseless = bool(rx.flags & re.IGNORECASE)
    lits = required_literals(rx.pattern)
    if lits is None or caseless and not all(x.isascii() for x in lits):
        return None, False
    return tuple(x.lower() for x in lits) if caseless else tuple(lits), caseless


def _may_hold(text: str, low: str | None, lits: tuple[str, ...] | None, caseless: bool) -> bool:
    """The cheap `in` test before a hint's regex; `low`: the text lower-cased if ASCII (a caseless match of ASCII
    literals in ASCII text is a plain match there; other text goes to the regex)."""
    if lits is None:
        return True
    if not caseless:
        return any(map(text.__contains__, lits))
    return low is None or any(map(low.__contains__, lits))


_HINT_LITERALS = tuple(_hint_literals(rx) for _, rx in _BACKEND_HINTS)


@dataclass(frozen=True)
class Evidence:
    kind: str  # pattern, exception, message, frame, logger, level, backend, nearby, context
    line: int  # 1-based line in the source (0 when it is not one line's)
    text: str

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "line": self.line, "text": self.text}


@dataclass(frozen=True)
class Frame:
    line: int
    path: str
    func: str

    @property
    def text(self) -> str:
        if not self.path:
            return self.func
        return f"{self.path} in {self.func}" if self.func else self.path


@dataclass(frozen=True)
class Exc:
    line: int
    type: str  # qualified as printed (`jinja2.exceptions.TemplateError`)
    message: str


@dataclass
class Facts:
    event: Event
    frames: list[Frame] = field(default_factory=list)  # outermost first, as Python prints them
    exceptions: list[Exc] = field(default_factory=list)  # the final one (the traceback's) last
    logger: str | None = None
    level: str | None = None
    records: list[tuple[int, str]] = field(default_factory=list)  # (line, message) of log records
    before: list[tuple[int, str]] = field(default_factory=list)  # nearby lines preceding the event
    backend: str | None = None
    backend_why: str = ""

    @property
    def exception(self) -> Exc | None:
        return self.exceptions[-1] if self.exceptions else None


def facts(event: Event, before: Sequence[tuple[int, str]] = (), backend: str | None = None) -> Facts:
    f = Facts(event, level=event.level, before=list(before))
    first = parse_line(event.lines[0])
    f.logger = first.fields.get("logger")
    for n, text in _physical(event):
        if not text:
            continue
        m = _PY_FRAME.search(text)
        if m:
            f.frames.append(Frame(n, m.group("path") or m.group("cut"), m.group("func")))
            continue
        if text[0] in " \t│" or text[-1] == ")":
            m = next((m for rx in _OTHER_FRAMES if (m := rx.match(text))), None)
            if m:
                d = m.groupdict()
                f.frames.append(Frame(n, d.get("path") or "", d.get("func") or ""))
                continue
        for m in _NATIVE_FRAME.finditer(text):
            f.frames.append(Frame(n, m.group("path"), ""))
        p = parse_line(text) if n != event.first_line else first
        if p.fmt not in ("indented", "blank", "traceback") and p.message:
            f.records.append((n, p.message))
        if text[0] in " \t" and not text.lstrip().startswith(("raise ", "File ")) and f.frames:
            continue  # source lines printed under a frame
        cx = _CXX.search(text)
        if cx:
            f.exceptions.append(Exc(n, cx.group("type"), cx.group("msg").strip()))
            continue
        m = _EXC.search(p.message if p.fmt != "indented" else text)
        if m and not text.lstrip().startswith("raise "):
            f.exceptions.append(Exc(n, m.group("type"), (m.group("msg") or "").strip()))
    if event.exception:  # the traceback's own exception is the one that counts: keep it last
        last = [e for e in f.exceptions if e.line == event.last_line or e.message and e.message in event.exception]
        if last:
            f.exceptions.remove(last[-1])
            f.exceptions.append(last[-1])
    f.backend, f.backend_why = (backend, "given") if backend else detect_backend(f)
    return f


def detect_backend(f: Facts) -> tuple[str | None, str]:
    """Which server wrote the event: its logger name, then its module paths, then its wording."""
    probes: list[str] = []
    if f.logger:
        probes.append(f.logger)
    probes += [fr.path for fr in reversed(f.frames)]
    probes += f.event.lines[:50]
    for text in probes:
        low = text.lower() if text.isascii() else None
        for (name, rx), (lits, caseless) in zip(_BACKEND_HINTS, _HINT_LITERALS, strict=True):
            if _may_hold(text, low, lits, caseless) and rx.search(text):
                return name, text.strip()[:160]
    return None, ""


def short_type(t: str) -> str:
    return t.rsplit(".", 1)[-1].rsplit("::", 1)[-1]


_VOLATILE = re.compile(
    r"(?i:authorization|bearer|token|key)[\s:=]+\S+"  # secrets never go into a search URL
    r"|\b(?=[A-Za-z_-]*\d)(?=\d*[A-Za-z])[\w-]{20,}\b"  # long ids and keys
    r"|/(?:[\w.@+-]+/)+[\w.@+-]*"  # paths
    r"|0x[0-9a-fA-F]+|\b[0-9a-f]{8}-[0-9a-f-]{27,}\b"  # addresses, uuids
    r"|\(\d+(?:,\s*\d+)*\)"  # shapes
    r"|\b\d[\d.,]*\s*(?:GB|MB|KB|B|tokens?|bytes)?\b"
    r"|'[^']{40,}'|\"[^\"]{40,}\""
)


def search_query(f: Facts) -> str:
    """The error as a search query: exception type and message without numbers, paths and ids."""
    exc = f.exception
    if exc is not None:
        text = f"{short_type(exc.type)}: {exc.message}" if exc.message else short_type(exc.type)
    else:
        text = f.records[0][1] if f.records else f.event.summary
    text = _VOLATILE.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip(" .:-")
    return text[:120].rsplit(" ", 1)[0] if len(text) > 120 else text


def search_urls(query: str, backend: str | None) -> list[str]:
    """Issue searches in the trackers of the backend that wrote the error (its engine's trackers after it)."""
    names = [backend] if backend in TRACKERS else []
    if backend not in ("mlx", None) or not names:
        names += [n for n in ("mlx-lm", "mlx") if n not in names]
    q = quote_plus(f'"{query}"' if len(query) < 80 else query)
    return [f"https://github.com/{TRACKERS[n]}/issues?q={q}" for n in names[:3]]
