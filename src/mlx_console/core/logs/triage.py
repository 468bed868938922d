"""Triage: group log lines into events and attach the catalogue entries they match.

- `triage_lines(lines)` / `triage_text(text)`: the plain path (every line through `re`); fine for pastes and UIs.
- `triage_buffer(buf)` / `triage_file(path)`: the fast path over a whole file (mmap): a `Scanner` finds
  candidate lines, events are rebuilt around them; the result equals the plain path's (a test checks it).
- `Triager`: incremental, for a followed log: `feed(line) -> list[TriagedEvent]`, `flush()` when the log
  goes quiet. Call it from a worker thread; it holds no locks and does no I/O.
Every function returns only catalogue matches, plus with `include_all=True` the other warning/error events
(tracebacks, ERROR lines no pattern knows) with no categories.
"""

from __future__ import annotations

import mmap
import os
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlx_console.core.logs.events import Event, Grouper, group_lines, parse_line
from mlx_console.core.logs.patterns import Catalog, Match
from mlx_console.core.logs.scan import Buf, Scanner
from mlx_console.core.logs.source import decode_line, split_text

_MAX_BACK = 5000  # lines walked back from a candidate to find the record that opens its event


@dataclass(frozen=True)
class TriagedEvent:
    event: Event
    matches: tuple[Match, ...]  # best first; empty for an unrecognised warning/error event

    @property
    def first_line(self) -> int:
        return self.event.first_line

    @property
    def last_line(self) -> int:
        return self.event.last_line

    @property
    def categories(self) -> list[str]:
        seen: dict[str, None] = {}
        for m in self.matches:
            seen.update(dict.fromkeys(m.categories))
        return list(seen)

    @property
    def main(self) -> Match | None:
        return self.matches[0] if self.matches else None

    @property
    def severity(self) -> str:
        if self.main:
            return self.main.severity
        return "warning" if self.event.level == "WARNING" and not self.event.has_traceback else "error"

    @property
    def title(self) -> str:
        return self.main.title if self.main else self.event.summary.strip()[:200]

    @property
    def cause(self) -> str:
        return self.main.cause if self.main else ""

    @property
    def first_move(self) -> str:
        return self.main.first_move if self.main else ""

    @property
    def references(self) -> list[str]:
        seen: dict[str, None] = {}
        for m in self.matches:
            seen.update(dict.fromkeys(m.references))
        return list(seen)

    def to_json(self) -> dict[str, Any]:
        """The `triage --json` contract (plus `patterns`, `cause`, `summary`)."""
        main = self.main
        return {
            "line": self.first_line,
            "end_line": self.last_line,
            "categories": self.categories,
            "pattern": main.id if main else None,
            "severity": self.severity,
            "title": self.title,
            "first_move": self.first_move,
            "references": self.references,
            "patterns": [m.id for m in self.matches],
            "cause": self.cause,
            "summary": self.event.summary,
        }


_QUIET_LEVELS = frozenset({"DEBUG", "TRACE"})


def _judge(event: Event, catalog: Catalog, include_all: bool) -> TriagedEvent | None:
    # DEBUG/TRACE records carry request and response bodies (anything a user typed or a model said):
    # they are never the report of a bug, so patterns are not tried on them.
    matches = [] if event.level in _QUIET_LEVELS else catalog.match(event)
    if matches or (include_all and event.is_problem):
        return TriagedEvent(event, tuple(matches))
    return None


def _default(catalog: Catalog | None) -> Catalog:
    return catalog if catalog is not None else default_catalog()


_DEFAULT: Catalog | None = None
_SCANNERS: weakref.WeakKeyDictionary[Catalog, dict[tuple[bool, str], Scanner]] = weakref.WeakKeyDictionary()


def _scanner(cat: Catalog, include_all: bool, engine: str) -> Scanner:
    """Compiling the pattern database costs ~0.1 s: keep one per catalogue and mode."""
    per = _SCANNERS.setdefault(cat, {})
    key = (include_all, engine)
    if key not in per:
        per[key] = Scanner(cat, engine=engine, include_problems=include_all)
    return per[key]


def default_catalog() -> Catalog:
    """The shipped catalogue, loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Catalog.load()
    return _DEFAULT


def triage_lines(
    lines: Iterable[str], catalog: Catalog | None = None, *, include_all: bool = False, first_line: int = 1
) -> list[TriagedEvent]:
    cat = _default(catalog)
    out = []
    for ev in group_lines(lines, first_line):
        t = _judge(ev, cat, include_all)
        if t is not None:
            out.append(t)
    return out


def triage_text(text: str, catalog: Catalog | None = None, *, include_all: bool = False) -> list[TriagedEvent]:
    return triage_lines(split_text(text), catalog, include_all=include_all)


def _iter_lines(buf: Buf, start: int) -> Iterator[tuple[str, int]]:
    """(text, offset) of each line from `start` on."""
    size = len(buf)
    while start < size:
        nl = buf.find(b"\n", start)
        end = size if nl < 0 else nl
        yield decode_line(buf[start:end]), start
        start = end + 1


def _line_at(buf: Buf, start: int) -> str:
    nl = buf.find(b"\n", start)
    return decode_line(buf[start : len(buf) if nl < 0 else nl])


def _prev_start(buf: Buf, start: int) -> int:
    return int(buf.rfind(b"\n", 0, start - 1)) + 1


def triage_buffer(
    buf: Buf,
    catalog: Catalog | None = None,
    *,
    include_all: bool = False,
    scanner: Scanner | None = None,
    engine: str = "auto",
) -> list[TriagedEvent]:
    """Fast path over bytes or an mmap; same result as `triage_lines(buf's lines)`.
    `engine`: "auto" (hyperscan if installed), "hyperscan" or "re"."""
    cat = _default(catalog)
    scan = scanner or _scanner(cat, include_all, engine)
    out: list[TriagedEvent] = []
    covered = 0  # last line number already inside a returned (or rejected) event
    resume = 0  # offset of the line after it: a fresh Grouper started there behaves as the full run does
    for off, n in scan.candidates(buf):
        if n <= covered:
            continue
        start, first = off, n
        for _ in range(_MAX_BACK):
            if start <= resume or parse_line(_line_at(buf, start)).is_head:
                break
            start = _prev_start(buf, start)
            first -= 1
        g = Grouper(first)
        found: Event | None = None
        offsets: list[int] = []  # offsets[k]: where line first + k starts
        for text, line_off in _iter_lines(buf, start):
            offsets.append(line_off)
            ev = g.feed(text)
            if ev is not None and ev.last_line >= n:
                found = ev
                break
            if g.pending is not None and g.pending.first_line > n:
                break  # the candidate was a blank line outside any event
        else:
            found = g.flush()
        if found is None or found.last_line < n:
            continue
        covered = found.last_line
        k = covered + 1 - first
        resume = offsets[k] if k < len(offsets) else len(buf)
        t = _judge(found, cat, include_all)
        if t is not None:
            out.append(t)
    return out


def triage_file(
    path: str | os.PathLike[str], catalog: Catalog | None = None, *, include_all: bool = False, engine: str = "auto"
) -> list[TriagedEvent]:
    """Triage a whole file through mmap (OSError if it cannot be read)."""
    p = Path(path)
    with p.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return []
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return triage_buffer(mm, catalog, include_all=include_all, engine=engine)


class Triager:
    """Incremental triage of a live log: feed lines as they arrive, get events as they complete.

    An event is complete when the next record starts; call `flush()` after a quiet spell (e.g. 1 s without
    lines) so the last event of a burst is not held back. Line numbers count from `first_line`.
    """

    def __init__(self, catalog: Catalog | None = None, *, include_all: bool = False, first_line: int = 1):
        self.catalog = _default(catalog)
        self.include_all = include_all
        self._g = Grouper(first_line)

    def feed(self, line: str) -> list[TriagedEvent]:
        ev = self._g.feed(line)
        t = _judge(ev, self.catalog, self.include_all) if ev is not None else None
        return [t] if t is not None else []

    def feed_many(self, lines: Iterable[str]) -> list[TriagedEvent]:
        out: list[TriagedEvent] = []
        for line in lines:
            out.extend(self.feed(line))
        return out

    def flush(self) -> list[TriagedEvent]:
        ev = self._g.flush()
        t = _judge(ev, self.catalog, self.include_all) if ev is not None else None
        return [t] if t is not None else []

    def reset(self, first_line: int = 1) -> list[TriagedEvent]:
        """After a rotation or truncation: close the open event and restart numbering."""
        out = self.flush()
        self._g = Grouper(first_line)
        return out

    @property
    def next_line(self) -> int:
        return self._g.next_line
