"""Triage: group log lines into events and attach the catalogue entries they match.

- `triage_lines(lines)` / `triage_text(text)`: the plain path (every line through `re`); fine for pastes and UIs.
- `triage_buffer(buf)` / `triage_file(path)`: the fast path over a whole file (mmap): a `Scanner` finds
  candidate lines, events are rebuilt around them; the result equals the plain path's (a test checks it).
  With `workers=N` (the CLI: the number of cores) a big file's scan and its events are shared by forked
  processes; the result is the same (tests check it).
- `Triager`: incremental, for a followed log: `feed(line) -> list[TriagedEvent]`, `flush()` when the log
  goes quiet. Call it from a worker thread; it holds no locks and does no I/O.
Every function returns only catalogue matches, plus with `include_all=True` the other warning/error events
(tracebacks, ERROR lines no pattern knows) with no categories; an unknown error's first move is a search of
its backend's tracker (`search_query`, `search_urls`). Each event carries `evidence` and a `confidence`;
`explain(t, catalog)` says why each entry with any evidence was chosen or rejected. The event still open at
the end of the input is closed and triaged (a dead backend's last words): `triage_*` do it at the end,
`Triager.flush()` does it for a followed log.
"""

from __future__ import annotations

import bisect
import mmap
import os
import re
import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlx_console.core.logs.events import Event, Grouper, group_lines, parse_line
from mlx_console.core.logs.evidence import TRACKERS, Evidence, Facts, search_query, search_urls
from mlx_console.core.logs.evidence import facts as event_facts
from mlx_console.core.logs.forked import can_fork, map_forked
from mlx_console.core.logs.paste import collector_prefixed, is_wrapped, unquote_paste
from mlx_console.core.logs.patterns import Catalog, Match, Quiet, Verdict
from mlx_console.core.logs.scan import PARALLEL_MIN, Buf, Scanner
from mlx_console.core.logs.source import decode_line, split_text, strip_ansi, strip_ansi_bytes

CANDIDATES_PER_WORKER = 100  # at least (≈ 20 ms of work), when the events around them are shared by processes
_MAX_BACK = 5000  # lines walked back from a candidate to find the record that opens its event
NEARBY = 5  # lines before an event kept as its `nearby` evidence (the request or load that preceded it)
_NEARBY_REACH = 3 * NEARBY  # how far up they are looked for (blank lines are skipped)


@dataclass(frozen=True)
class TriagedEvent:
    event: Event
    matches: tuple[Match, ...]  # best first; empty for an unrecognised warning/error event
    facts: Facts | None = field(default=None, repr=False, compare=False)
    quiet: Quiet | None = None  # the catalogue-wide rule that gave this event no category, if one did

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
        if self.main:
            return self.main.first_move
        if self.quiet:
            return self.quiet.why
        if self.severity != "error" or not self.search_query:
            return ""
        urls = self.search_urls
        where = TRACKERS.get(self.backend or "", "the upstream") + " issues"
        return f'Search {where} for "{self.search_query}": {urls[0]}' if urls else ""

    @property
    def backend(self) -> str | None:
        return self.facts.backend if self.facts else None

    @property
    def confidence(self) -> float:
        return self.main.confidence if self.main else 0.0

    @property
    def evidence(self) -> list[Evidence]:
        seen: dict[tuple[str, int, str], Evidence] = {}
        for m in self.matches:
            for e in m.evidence:
                seen.setdefault((e.kind, e.line, e.text), e)
        if self.facts:
            for n, text in reversed(self.facts.before):  # the request or load that preceded it
                if _LEAD_UP.search(text):
                    seen.setdefault(("nearby", n, text), Evidence("nearby", n, text[:300]))
                    break
        if self.facts and self.facts.backend:
            seen.setdefault(("backend", 0, ""), Evidence("backend", 0, f"{self.facts.backend} ({self.facts.backend_why})"[:200]))
        return list(seen.values())

    @property
    def search_query(self) -> str:
        """For an event no entry knows: its error as a ready search query (else "")."""
        if self.matches or self.facts is None or self.event.fmt == "access":
            return ""  # (an access line's 5xx says nothing to search for: the error is in the lines before)
        return search_query(self.facts)

    @property
    def search_urls(self) -> list[str]:
        q = self.search_query
        return search_urls(q, self.backend) if q else []

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
            "evidence": [e.to_json() for e in self.evidence],
            "confidence": self.confidence,
            "backend": self.backend,
            "search_query": self.search_query or None,
            "search_urls": self.search_urls,
            "quiet": self.quiet.id if self.quiet else None,
        }


_QUIET_LEVELS = frozenset({"DEBUG", "TRACE"})
_LEAD_UP = re.compile(r'"(?:GET|POST|PUT|DELETE|PATCH) /|(?:GET|POST|PUT|DELETE|PATCH) /\S+ (?:→|->)|[Ll]oad(?:ing)? model|'
                      r'[Ff]etching \d+ files|Starting httpd|[Pp]rompt processing progress')
_BODY = re.compile(r'\{"|\[\{|\{\'|[Bb]ody\b|[Rr]esponse text|[Rr]equest (?:body|payload|data)|"role"|"content"|'
                   r"[Mm]essages?:|[Pp]rompt:|[Cc]ompletion:|[Oo]utput text")
# A logged reply (the whole response object), and what only a request has.
_REPLY = re.compile(r'Outgoing Response|"finish_reason"\s*:|"object"\s*:\s*"chat\.completion|[Rr]esponse body:')
_REQUEST = re.compile(r'Incoming Request|[Rr]equest (?:[Bb]ody|payload|data)|"messages"\s*:|"tools"\s*:|"prompt"\s*:')
_REPLY_CATEGORY = "tool_call_plaintext"


def _judge(
    event: Event, catalog: Catalog, include_all: bool, before: Sequence[tuple[int, str]] = (),
    backend: str | None = None, hints: dict[int, set[int]] | None = None,
) -> TriagedEvent | None:
    # DEBUG/TRACE records carry request and response bodies (anything a user typed or a model said):
    # they are never the report of a bug, so patterns are not tried on them. Other debug records are.
    # One exception: a logged reply (mlx_lm.server's `Outgoing Response:`) shows what the client received,
    # and a tool call left in its content is the bug itself. Request bodies are never read: a system prompt
    # or a tool definition teaches the call format in the same words.
    if event.level in _QUIET_LEVELS and _BODY.search(event.text):
        if not _REPLY.search(event.text) or _REQUEST.search(event.text):
            return None
        found = [m for m in catalog.match(event, before, backend, None, hints) if _REPLY_CATEGORY in m.categories]
        return TriagedEvent(event, tuple(found), event_facts(event, before, backend)) if found else None
    f = event_facts(event, before, backend) if event.is_problem else None
    matches = catalog.match(event, before, backend, f, hints)
    if matches or (include_all and event.is_problem):
        if f is None:
            f = event_facts(event, before, backend)
        return TriagedEvent(event, tuple(matches), f, None if matches else catalog.quiet_rule(event.lines))
    return None


def explain(t: TriagedEvent, catalog: Catalog | None = None) -> list[Verdict]:
    """Why each catalogue entry with any evidence in this event was chosen or rejected."""
    f = t.facts or event_facts(t.event)
    return _default(catalog).explain(t.event, f.before, f.backend if f.backend_why == "given" else None, f)


def _default(catalog: Catalog | None) -> Catalog:
    return catalog if catalog is not None else default_catalog()


_DEFAULT: Catalog | None = None
_SCANNERS: weakref.WeakKeyDictionary[Catalog, dict[str, Scanner]] = weakref.WeakKeyDictionary()


def _scanner(cat: Catalog, engine: str) -> Scanner:
    """One scanner per catalogue and engine (its compiled database is also cached on disk: scan.py)."""
    per = _SCANNERS.setdefault(cat, {})
    if engine not in per:
        per[engine] = Scanner(cat, engine=engine)
    return per[engine]


def default_catalog() -> Catalog:
    """The shipped catalogue, loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Catalog.load()
    return _DEFAULT


def _before(lines: Sequence[str], first_line: int, event: Event) -> list[tuple[int, str]]:
    """The NEARBY non-blank lines before the event (blank lines, e.g. a paste's code fences, do not count;
    at most _NEARBY_REACH lines up)."""
    k = event.first_line - first_line
    lo = max(0, k - _NEARBY_REACH)
    return [(n, t) for n, t in enumerate(lines[lo:k], lo + first_line) if t][-NEARBY:]


def _command_lines(lines: Sequence[str], first_line: int) -> list[tuple[int, str]]:
    """(line, text) of each command line that started a backend (`mlx_lm.server --model … --kv-bits 8`)."""
    return [(n, t) for n, t in enumerate(lines, first_line)
            if "--" in t and _COMMAND.search(t) or "=" in t and _RUN_SETTING.search(t)]


def _with_command(before: list[tuple[int, str]], commands: Sequence[tuple[int, str]], event: Event
                  ) -> list[tuple[int, str]]:
    """The nearby lines, plus the last command line above the event when it is further up than they reach."""
    k = bisect.bisect_left(commands, (event.first_line, "")) - 1
    if k < 0 or before and commands[k][0] >= before[0][0]:
        return before
    return [commands[k], *before]


def triage_lines(
    lines: Iterable[str], catalog: Catalog | None = None, *, include_all: bool = False, first_line: int = 1,
    backend: str | None = None, commands: bool = False,
) -> list[TriagedEvent]:
    """`commands=True` (a paste): the command line that started the backend counts as nearby evidence for
    every event below it, however far down (its flags hold for the whole run)."""
    cat = _default(catalog)
    lines = [strip_ansi(x) for x in lines]
    cmds = _command_lines(lines, first_line) if commands else []
    out = []
    for ev in group_lines(lines, first_line):
        before = _before(lines, first_line, ev)
        t = _judge(ev, cat, include_all, _with_command(before, cmds, ev) if cmds else before, backend)
        if t is not None:
            out.append(t)
    return out


# A shell command that started an MLX backend with flags (in a paste: an issue's reproduction, a terminal).
_COMMAND = re.compile(
    r"(?:^|[\s/$>#])(?:mlx_lm|mlx_vlm|mlx-lm|mlx-vlm|omlx|vllm-mlx|mlx-openai-server|rapid-mlx|mlx-serve|lms)"
    r"(?:[.\s][\w.-]+)?\b.*\s--[a-z][\w-]+"
)
# The same run-wide settings passed through the Python API (`generate(..., draft_model=draft, kv_bits=8)`).
_RUN_SETTING = re.compile(r"\b(?:draft_model|num_draft_tokens|kv_bits|kv_group_size|quantized_kv_start|kv_quant_scheme)"
                          r"\s*=\s*[\w\"'(]")


def triage_text(
    text: str, catalog: Catalog | None = None, *, include_all: bool = False, backend: str | None = None
) -> list[TriagedEvent]:
    """A pasted text (an issue, a chat, a terminal): its wrapping (Markdown quotes and fences, a collector's
    prefix on every line, a common indentation, HTML entities: core.logs.paste) is read through."""
    return triage_lines(unquote_paste(split_text(text)), catalog, include_all=include_all, backend=backend,
                        commands=True)


def triage_paste(buf: bytes, catalog: Catalog | None = None, *, include_all: bool = False,
                 backend: str | None = None) -> list[TriagedEvent]:
    """Standard input: a log (the fast path) or a paste whose lines are wrapped (Markdown quotes or fences, a
    collector's prefix, a common indentation, HTML entities): read through them, as `triage_text`."""
    head = [decode_line(b) for b in buf[: 1 << 16].split(b"\n")[:400]]
    if not re.search(rb"(?m)^(?:>|\s*```|\s*~~~)", buf[:1 << 20]) and not is_wrapped(head):
        return triage_buffer(buf, catalog, include_all=include_all, backend=backend)
    lines = [decode_line(b) for b in buf.split(b"\n")]
    if buf.endswith(b"\n"):
        lines.pop()
    return triage_lines(unquote_paste(lines), catalog, include_all=include_all, backend=backend, commands=True)


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


def triage_buffer(buf: Buf, catalog: Catalog | None = None, **options: Any) -> list[TriagedEvent]:
    """Fast path over bytes or an mmap; same result as `triage_lines(buf's lines)`. Options as
    `triage_buffer_counted` (include_all, scanner, engine: "auto" = hyperscan if installed, "hyperscan", "re";
    backend)."""
    return triage_buffer_counted(buf, catalog, **options)[0]


def triage_buffer_counted(
    buf: Buf,
    catalog: Catalog | None = None,
    *,
    include_all: bool = False,
    scanner: Scanner | None = None,
    engine: str = "auto",
    backend: str | None = None,
    workers: int = 1,
    min_part: int = PARALLEL_MIN,
    min_candidates: int = CANDIDATES_PER_WORKER,
) -> tuple[list[TriagedEvent], int]:
    """`triage_buffer` and the number of newlines in `buf`, counted in the same pass (for a follower's start).

    `workers` > 1: the work is shared by that many processes where a fork is safe (forked.py): the scan of
    a buffer of at least 2 × `min_part` bytes (Scanner.scan), then the events around the candidates, in
    runs of at least `min_candidates` (`_merge_runs` keeps the answer that of one process)."""
    cat = _default(catalog)
    if buf.find(b"\x1b") >= 0:  # a coloured log: scanned without its escapes (line numbers are unchanged)
        buf = strip_ansi_bytes(bytes(buf))
    scan = scanner or _scanner(cat, engine)
    candidates, hints, newlines = scan.scan(buf, workers=workers, min_part=min_part)
    job = _Job(buf, cat, include_all, backend, hints)
    n_runs = min(workers, len(candidates) // max(min_candidates, 1)) if workers > 1 and can_fork() else 1
    if n_runs < 2:
        return [t for _, _, t in job.steps(candidates) if t is not None], newlines
    runs = [candidates[k * len(candidates) // n_runs : (k + 1) * len(candidates) // n_runs] for k in range(n_runs)]
    return job.merge(runs, map_forked(job.steps, [(r,) for r in runs])), newlines


_State = tuple[int, int]  # (covered, resume): see _Job.step
_Step = tuple[int, int, "TriagedEvent | None"]  # the state after a candidate, and the event it closed


@dataclass
class _Job:
    """The fast path's walk over the candidates of one buffer."""

    buf: Buf
    cat: Catalog
    include_all: bool
    backend: str | None
    hints: dict[int, set[int]] | None

    def steps(self, candidates: Sequence[tuple[int, int]], state: _State = (0, 0)) -> list[_Step]:
        """`step` over each candidate in turn, starting from `state`."""
        out: list[_Step] = []
        for off, n in candidates:
            covered, resume, t = self.step(off, n, *state)
            state = (covered, resume)
            out.append((covered, resume, t))
        return out

    def step(self, off: int, n: int, covered: int, resume: int) -> _Step:
        """The candidate line `n` at offset `off`: the event around it, judged. `covered` is the last line
        already inside a returned (or rejected) event, `resume` the offset of the line after it (a fresh
        Grouper started there behaves as the full run does). Returns the new (covered, resume) and the event."""
        buf = self.buf
        if n <= covered:
            return covered, resume, None
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
            return covered, resume, None
        covered = found.last_line
        k = covered + 1 - first
        resume = offsets[k] if k < len(offsets) else len(buf)
        before = _buf_before(buf, offsets[found.first_line - first], found.first_line)
        return covered, resume, _judge(found, self.cat, self.include_all, before, self.backend, self.hints)

    def merge(self, runs: Sequence[Sequence[tuple[int, int]]], results: Sequence[list[_Step]]) -> list[TriagedEvent]:
        """The events one process would have found, from runs of candidates walked separately (each from the
        state (0, 0)). A run's steps are taken from the point where its state equals the one the walk over
        all earlier candidates reached (from then on both walks decide alike); the candidates before that
        point (usually one: the walk back to the event's head) are stepped here, from the true state."""
        out: list[TriagedEvent] = []
        state: _State = (0, 0)
        for run, steps in zip(runs, results, strict=True):
            synced = False
            theirs: _State = (0, 0)  # the run's state before the candidate
            for (off, n), (covered, resume, t) in zip(run, steps, strict=True):
                synced = synced or theirs == state
                theirs = (covered, resume)
                if not synced:
                    covered, resume, t = self.step(off, n, *state)
                state = (covered, resume)
                if t is not None:
                    out.append(t)
        return out


def _buf_before(buf: Buf, start: int, first: int) -> list[tuple[int, str]]:
    """The NEARBY lines before the line at offset `start` (line number `first`)."""
    out: list[tuple[int, str]] = []
    n = first
    for _ in range(_NEARBY_REACH):
        if start <= 0 or len(out) == NEARBY:
            break
        start = _prev_start(buf, start)
        n -= 1
        text = _line_at(buf, start)
        if text:
            out.append((n, text))
    return out[::-1]


def triage_file(
    path: str | os.PathLike[str], catalog: Catalog | None = None, *, include_all: bool = False,
    engine: str = "auto", backend: str | None = None, workers: int = 1, min_part: int = PARALLEL_MIN,
    min_candidates: int = CANDIDATES_PER_WORKER,
) -> list[TriagedEvent]:
    """Triage a whole file through mmap (OSError if it cannot be read). `workers` > 1: the work on a big file
    is shared by that many processes (see triage_buffer_counted)."""
    p = Path(path)
    with p.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return []
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if collector_prefixed([decode_line(b) for b in mm[: 1 << 16].split(b"\n")[:200]]):
                # a saved `docker compose logs` / `journalctl`: each line read without the collector's prefix
                # (the line-by-line path, slower than the scan)
                lines = [decode_line(b) for b in mm[:].split(b"\n")]
                if lines and lines[-1] == "":
                    lines.pop()
                return triage_lines(unquote_paste(lines), catalog, include_all=include_all, backend=backend)
            return triage_buffer(mm, catalog, include_all=include_all, engine=engine, backend=backend,
                                 workers=workers, min_part=min_part, min_candidates=min_candidates)


class Triager:
    """Incremental triage of a live log: feed lines as they arrive, get events as they complete.

    An event is complete when the next record starts; call `flush()` after a quiet spell (e.g. 1 s without
    lines) so the last event of a burst is not held back. Line numbers count from `first_line`.
    """

    def __init__(self, catalog: Catalog | None = None, *, include_all: bool = False, first_line: int = 1,
                 backend: str | None = None):
        self.catalog = _default(catalog)
        self.include_all = include_all
        self.backend = backend
        self._g = Grouper(first_line)
        self._recent: list[tuple[int, str]] = []  # the lines before the open event
        self._prev: deque[tuple[int, str]] = deque(maxlen=NEARBY)  # the last lines fed

    def _judge(self, ev: Event | None) -> list[TriagedEvent]:
        if ev is None:
            return []
        before = [(n, t) for n, t in self._recent if n < ev.first_line and t][-NEARBY:]
        t = _judge(ev, self.catalog, self.include_all, before, self.backend)
        return [t] if t is not None else []

    def feed(self, line: str) -> list[TriagedEvent]:
        line = strip_ansi(line)
        n = self._g.next_line
        ev = self._g.feed(line)
        out = self._judge(ev)
        if self._g.pending is not None and self._g.pending.first_line == n:
            self._recent = list(self._prev)
        self._prev.append((n, line))
        return out

    def feed_many(self, lines: Iterable[str]) -> list[TriagedEvent]:
        out: list[TriagedEvent] = []
        for line in lines:
            out.extend(self.feed(line))
        return out

    def flush(self) -> list[TriagedEvent]:
        """Close the open event and triage it: call it when the log goes quiet and at its end (a dead
        backend's log ends inside its last event: without this, its last words are never reported)."""
        return self._judge(self._g.flush())

    def reset(self, first_line: int = 1) -> list[TriagedEvent]:
        """After a rotation or truncation: close the open event and restart numbering."""
        out = self.flush()
        self._g = Grouper(first_line)
        self._prev.clear()
        self._recent = []
        return out

    @property
    def next_line(self) -> int:
        return self._g.next_line
