"""The known-bug catalogue: load the shipped TOML plus user files, and match log events against it.

API: `Catalog.load(extra_paths)` → `Catalog`; `catalog.match(event) -> list[Match]` (best first);
`catalog.line_hits(text)` (indexes of entries whose patterns match one line). File format: see catalog.toml.
A user file's entry with the id of a shipped entry replaces it; new ids are added after the shipped ones.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from re import _constants as _c  # type: ignore[attr-defined]  # the stdlib regex parser: finds literals a pattern requires
from re import _parser  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from mlx_console.core.errors import ConsoleError

if TYPE_CHECKING:
    from mlx_console.core.logs.events import Event

CATEGORIES: tuple[str, ...] = (
    "oom_load",
    "oom_inference",
    "metal_error",
    "batch_cache_shape",
    "server_hang",
    "tool_call_plaintext",
    "chat_template",
    "tokenizer",
    "model_load_missing_weights",
    "model_not_found",
    "unsupported_arch",
    "kv_cache_quant",
    "speculative_decoding",
    "port_in_use",
)
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")
# What the supervising daemon does when a line of its server's log hits the entry (core/logs/live.Reactions).
ACTIONS: tuple[str, ...] = ("degraded", "stop")
BACKENDS: tuple[str, ...] = ("mlx-lm", "omlx", "mlx")
_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
_MIN_LITERAL = 3

_REQUIRED = ("id", "category", "patterns", "severity", "title", "cause", "first_move")
_OPTIONAL = ("backends", "references", "ignore_case", "context", "not_context", "action")
# Syntax the fast engines (hyperscan, RE2) do not accept: refuse it up front so both paths agree.
_UNSUPPORTED = re.compile(r"\(\?(?:[=!]|<[=!])|\\[1-9]|\(\?P=")


def _seq_literals(seq: Any) -> list[str] | None:
    """The best 'one of these literals occurs in every match' for a parsed sequence (None if none)."""
    best: list[str] | None = None
    run: list[str] = []

    def consider(lits: list[str] | None) -> None:
        nonlocal best
        if lits and min(map(len, lits)) >= _MIN_LITERAL and (best is None or min(map(len, lits)) > min(map(len, best))):
            best = lits

    for op, av in seq:
        if op is _c.LITERAL:
            run.append(chr(av))
            continue
        consider(["".join(run)] if run else None)
        run = []
        if op is _c.SUBPATTERN and not av[1] & re.IGNORECASE:
            consider(_seq_literals(av[3]))
        elif op is _c.BRANCH:
            alts = [_seq_literals(alt) for alt in av[1]]
            consider(None if any(a is None for a in alts) else [x for a in alts for x in a])  # type: ignore[union-attr]
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and av[0] >= 1:
            consider(_seq_literals(av[2]))
    consider(["".join(run)] if run else None)
    return best


def required_literals(pattern: str) -> list[str] | None:
    """Literals one of which every match of `pattern` contains, for a bytes.find prefilter; None if none."""
    try:
        parsed = _parser.parse(pattern)
    except re.error:
        return None
    if parsed.state.flags & re.IGNORECASE:
        return None
    return _seq_literals(parsed)


class CatalogError(ConsoleError):
    """A catalogue file is unreadable or an entry in it is invalid."""


@dataclass(frozen=True)
class Entry:
    id: str
    categories: tuple[str, ...]
    patterns: tuple[str, ...]
    severity: str
    title: str
    cause: str
    first_move: str
    backends: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    ignore_case: bool = False
    context: tuple[str, ...] = ()
    not_context: tuple[str, ...] = ()
    action: str | None = None  # degraded | stop: the supervisor's reaction to a line that hits a pattern
    source: str = ""
    _compiled: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)
    _context: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)
    _not_context: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)

    def hits_line(self, text: str) -> bool:
        return any(p.search(text) for p in self._compiled)

    def accepts(self, lines: Sequence[str]) -> bool:
        """The context conditions, checked on all lines of an event that already hit a pattern."""
        if self._context and not any(p.search(t) for t in lines for p in self._context):
            return False
        return not any(p.search(t) for t in lines for p in self._not_context)


@dataclass(frozen=True)
class Match:
    """One catalogue entry recognised in an event."""

    id: str
    categories: tuple[str, ...]
    severity: str
    title: str
    cause: str
    first_move: str
    references: tuple[str, ...]
    lines: tuple[int, ...]  # 1-based line numbers (within the source) that hit a pattern

    @classmethod
    def of(cls, e: Entry, lines: Iterable[int]) -> Match:
        return cls(e.id, e.categories, e.severity, e.title, e.cause, e.first_move, e.references, tuple(lines))


def _where(path: str, line: int | None) -> str:
    return f"{path}, line {line}" if line else path


def _entry_lines(text: str) -> list[int]:
    """Line numbers of the `[[entry]]` headers, to point errors at the right place."""
    return [i + 1 for i, ln in enumerate(text.splitlines()) if ln.strip().startswith("[[entry]]")]


def _compile(pattern: str, ignore_case: bool, where: str) -> re.Pattern[str]:
    if _UNSUPPORTED.search(pattern):
        raise CatalogError(f"{where}: pattern {pattern!r} uses look-arounds or back-references, which are not supported")
    if "\n" in pattern:
        raise CatalogError(f"{where}: pattern {pattern!r} spans lines; patterns match one line at a time")
    try:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as e:
        raise CatalogError(f"{where}: invalid regex {pattern!r}: {e}") from None


def _str_list(raw: dict[str, Any], key: str, where: str, *, required: bool = False) -> tuple[str, ...]:
    val = raw.get(key, [])
    if isinstance(val, str):
        val = [val]
    if not isinstance(val, list) or not all(isinstance(v, str) and v for v in val):
        raise CatalogError(f"{where}: {key!r} must be a string or a list of non-empty strings")
    if required and not val:
        raise CatalogError(f"{where}: {key!r} must not be empty")
    return tuple(val)


def _parse_entry(raw: object, source: str, line: int | None, index: int) -> Entry:
    where = _where(source, line)
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: entry #{index + 1} must be a table")
    eid = raw.get("id")
    if not isinstance(eid, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", eid):
        raise CatalogError(f"{where}: entry #{index + 1} needs an 'id' (letters, digits, '-', '_', '.')")
    where = f"{where}, entry {eid!r}"
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise CatalogError(f"{where}: missing key(s) {', '.join(missing)}")
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        allowed = ", ".join(_REQUIRED + _OPTIONAL)
        raise CatalogError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {allowed})")
    cats = _str_list(raw, "category", where, required=True)
    bad = [c for c in cats if c not in CATEGORIES]
    if bad:
        raise CatalogError(f"{where}: unknown category {bad[0]!r} (allowed: {', '.join(CATEGORIES)})")
    sev = raw["severity"]
    if sev not in SEVERITIES:
        raise CatalogError(f"{where}: severity {sev!r} must be one of {', '.join(SEVERITIES)}")
    for k in ("title", "cause", "first_move"):
        if not isinstance(raw[k], str) or not raw[k].strip():
            raise CatalogError(f"{where}: {k!r} must be a non-empty string")
    ignore_case = raw.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        raise CatalogError(f"{where}: 'ignore_case' must be true or false")
    action = raw.get("action")
    if action is not None and action not in ACTIONS:
        raise CatalogError(f"{where}: action {action!r} must be one of {', '.join(ACTIONS)}")
    patterns = _str_list(raw, "patterns", where, required=True)
    context = _str_list(raw, "context", where)
    not_context = _str_list(raw, "not_context", where)
    return Entry(
        id=eid,
        categories=cats,
        patterns=patterns,
        severity=sev,
        title=raw["title"].strip(),
        cause=raw["cause"].strip(),
        first_move=raw["first_move"].strip(),
        backends=_str_list(raw, "backends", where),
        references=_str_list(raw, "references", where),
        ignore_case=ignore_case,
        context=context,
        not_context=not_context,
        action=action,
        source=where,
        _compiled=tuple(_compile(p, ignore_case, where) for p in patterns),
        _context=tuple(_compile(p, ignore_case, where) for p in context),
        _not_context=tuple(_compile(p, ignore_case, where) for p in not_context),
    )


def parse_catalog_text(text: str, source: str) -> list[Entry]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"{source}: not valid TOML: {e}") from None
    unknown = sorted(set(data) - {"entry"})
    if unknown:
        raise CatalogError(f"{source}: unknown top-level key(s) {', '.join(unknown)} (only [[entry]] tables)")
    raw_entries = data.get("entry", [])
    if not isinstance(raw_entries, list):
        raise CatalogError(f"{source}: 'entry' must be an array of tables ([[entry]])")
    header_lines = _entry_lines(text)
    entries: list[Entry] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_entries):
        line = header_lines[i] if i < len(header_lines) else None
        entry = _parse_entry(raw, source, line, i)
        if entry.id in seen:
            raise CatalogError(f"{_where(source, line)}: duplicate entry id {entry.id!r}")
        seen.add(entry.id)
        entries.append(entry)
    return entries


def shipped_catalog_text() -> str:
    return resources.files("mlx_console.core.logs").joinpath("catalog.toml").read_text(encoding="utf-8")


class Catalog:
    """An ordered list of entries; earlier entries win ties when choosing an event's main match."""

    def __init__(self, entries: Sequence[Entry]):
        self.entries: list[Entry] = list(entries)
        # Line prefilter for the plain path: a literal each pattern requires (`in` is C speed); most lines
        # hold none, and only entries whose literal is present (or that have none) are tried with `re`.
        self._always: set[int] = set()
        by_lit: dict[str, set[int]] = {}
        for i, e in enumerate(self.entries):
            for p in e.patterns:
                lits = None if e.ignore_case else required_literals(p)
                if lits is None:
                    self._always.add(i)
                else:
                    for lit in lits:
                        by_lit.setdefault(lit, set()).add(i)
        self._by_lit = list(by_lit.items())

    @classmethod
    def load(cls, extra_paths: Iterable[str | Path] = (), *, shipped: bool = True) -> Catalog:
        """The shipped catalogue extended/overridden by each file of `extra_paths`, in order."""
        entries: dict[str, Entry] = {}
        if shipped:
            for e in parse_catalog_text(shipped_catalog_text(), "catalog.toml (shipped)"):
                entries[e.id] = e
        for p in extra_paths:
            path = Path(p).expanduser()
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise CatalogError(f"{path}: cannot read catalogue file: {e}") from None
            for entry in parse_catalog_text(text, str(path)):
                entries[entry.id] = entry  # dict keeps the first insertion position: an override stays in place
        return cls(list(entries.values()))

    def patterns(self) -> list[tuple[int, str, bool]]:
        """(entry index, regex, ignore_case) for every pattern, for the fast engines."""
        return [(i, p, e.ignore_case) for i, e in enumerate(self.entries) for p in e.patterns]

    def line_hits(self, text: str) -> list[int]:
        """Indexes of the entries with a pattern matching this one line (pure `re`)."""
        cand = set(self._always)
        for lit, idx in self._by_lit:
            if lit in text:
                cand |= idx
        return [i for i in sorted(cand) if self.entries[i].hits_line(text)]

    def match_lines(self, lines: Sequence[str], first_line: int = 1) -> list[Match]:
        """Entries recognised in a group of lines (one event), best first."""
        hit_lines: dict[int, list[int]] = {}
        for n, text in enumerate(lines, first_line):
            for i in self.line_hits(text):
                hit_lines.setdefault(i, []).append(n)
        return self._finish(hit_lines, lines)

    def _finish(self, hit_lines: dict[int, list[int]], lines: Sequence[str]) -> list[Match]:
        found = [(i, ns) for i, ns in sorted(hit_lines.items()) if self.entries[i].accepts(lines)]
        found.sort(key=lambda t: (_SEVERITY_RANK[self.entries[t[0]].severity], t[0]))
        return [Match.of(self.entries[i], ns) for i, ns in found]

    def match(self, event: Event) -> list[Match]:
        return self.match_lines(event.lines, event.first_line)
