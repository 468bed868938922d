"""The known-bug catalogue: load the shipped TOML plus user files, and match log events against it.

API: `Catalog.load(extra_paths)` → `Catalog`; `catalog.match(event) -> list[Match]` (best first, each with
its evidence and a confidence); `catalog.explain(event)` (why each entry with any evidence was chosen or
rejected); `catalog.line_hits(text)` (indexes of entries whose patterns match one line). File format: see
catalog.toml. A user file's entry with the id of a shipped entry replaces it; new ids are added after the
shipped ones.

An entry matches an event when one of its `patterns` hits a line of it, or, for a warning/error event, when
each of its evidence keys (`exceptions`, `messages`, `frames`, `loggers`, `nearby`) finds its evidence
(see evidence.py); `context`/`not_context` then apply to either route. A catalogue-wide `[[quiet]]` rule
(`id`, `pattern`, `why`) gives no category to an event with a line matching its pattern, whichever entry
recognised it: a convention that holds for every entry is written once, not copied into each `not_context`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from mlx_console.core.errors import ConsoleError
from mlx_console.core.logs import cache_files, catalog_cache
from mlx_console.core.logs.events import PROBLEM_LEVELS, Event, parse_line
from mlx_console.core.logs.evidence import Evidence, Facts, facts, short_type
from mlx_console.core.logs.literals import LiteralFinder, remember, required_literals

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
    "settings_invalid",
)
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")
# What the supervising daemon does when a line of its server's log hits the entry (core/logs/live.Reactions).
ACTIONS: tuple[str, ...] = ("degraded", "stop")
BACKENDS: tuple[str, ...] = ("mlx-lm", "omlx", "mlx")
_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
_FINDER_AFTER = 32  # events: then the evidence literals are looked for in one pass (its compile pays off)

_REQUIRED = ("id", "category", "severity", "title", "cause", "first_move")
_EVIDENCE_KEYS = ("exceptions", "messages", "frames", "loggers", "nearby", "text")
_OPTIONAL = ("patterns", "backends", "references", "ignore_case", "context", "not_context", "not_nearby", "action",
             "skip_levels", *_EVIDENCE_KEYS)
_SKIPPABLE = ("TRACE", "DEBUG", "INFO", "WARNING", "none")  # `none`: a record without a level (a paste, a print)
# Syntax the fast engines (hyperscan, RE2) do not accept: refuse it up front so both paths agree.
_UNSUPPORTED = re.compile(r"\(\?(?:[=!]|<[=!])|\\[1-9]|\(\?P=")



def _after_prefix(text: str) -> str | None:
    """The line without the prefix another server or a shortened console format put before what Python printed
    (events._PREFIX: vllm-metal, loguru, exo, LM Studio...), when it has one and the line is a warning or an
    error (the lines the fast scan selects anyway: the file and the paste paths find the same)."""
    parsed = parse_line(text)
    prefix = parsed.fields.get("prefix")
    return text[len(prefix):] if prefix and parsed.level in PROBLEM_LEVELS else None

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
    not_nearby: tuple[str, ...] = ()  # none of the lines just before the event may match (a prompt echoed above a reply)
    action: str | None = None  # degraded | stop: the supervisor's reaction to a line that hits a pattern
    source: str = ""
    # Evidence keys: regexes over the event's exception types (full match of the short or qualified name),
    # exception/record messages, traceback frames (`path in func`), logger name, and the lines before it.
    exceptions: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    frames: tuple[str, ...] = ()
    loggers: tuple[str, ...] = ()
    nearby: tuple[str, ...] = ()
    text: tuple[str, ...] = ()  # any line of the event (a concept named anywhere in it, frames and source lines too)
    skip_levels: tuple[str, ...] = ()  # the entry is not tried on events of these levels

    def skips(self, level: str | None) -> bool:
        return bool(self.skip_levels) and (level or "none") in self.skip_levels

    # Compiled on first use: compiling ~450 regexes costs ~0.1 s, and a triage touches few entries.
    def _rx(self, pats: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
        return tuple(_compile(p, self.ignore_case, self.source) for p in pats)

    @cached_property
    def _pattern_rx(self) -> list[re.Pattern[str] | None]:
        return [None] * len(self.patterns)

    def _pattern(self, j: int) -> re.Pattern[str]:
        """The j-th pattern compiled (each on its first use: the fast path re-checks only those it saw hit)."""
        rx = self._pattern_rx[j]
        if rx is None:
            rx = self._pattern_rx[j] = _compile(self.patterns[j], self.ignore_case, self.source)
        return rx

    @cached_property
    def _compiled(self) -> tuple[re.Pattern[str], ...]:
        return tuple(self._pattern(j) for j in range(len(self.patterns)))

    @cached_property
    def _context(self) -> tuple[re.Pattern[str], ...]:
        return self._rx(self.context)

    @cached_property
    def _not_context(self) -> tuple[re.Pattern[str], ...]:
        return self._rx(self.not_context)

    @cached_property
    def _not_nearby(self) -> tuple[re.Pattern[str], ...]:
        return self._rx(self.not_nearby)

    @cached_property
    def _evidence(self) -> tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]:
        return tuple((k, self._rx(getattr(self, k))) for k in _EVIDENCE_KEYS if getattr(self, k))

    def validate(self) -> None:
        """Compile every regex now (CatalogError naming the entry if one is invalid)."""
        for name in ("_compiled", "_context", "_not_context", "_not_nearby", "_evidence"):
            getattr(self, name)

    def hits_line(self, text: str, first: Sequence[int] = ()) -> bool:
        """Whether a pattern matches the line; those numbered in `first` (the scanner saw them hit) are tried
        first, the others only if none of those does."""
        if first:
            if any(self._pattern(j).search(text) for j in first):
                return True
            return any(self._pattern(j).search(text) for j in range(len(self.patterns)) if j not in first)
        return any(p.search(text) for p in self._compiled)

    def accepts(self, lines: Sequence[str]) -> bool:
        """The context conditions, checked on all lines of an event that already hit a pattern."""
        return self.context_verdict(lines, 1) is None

    def context_verdict(self, lines: Sequence[str], first_line: int) -> str | None:
        """None if the context conditions hold, else why not. Each line is also read joined to the next one, so
        that a phrase a paste wrapped across two lines (`... got an` / `unexpected keyword argument`) still counts."""
        if not (self._context or self._not_context):
            return None
        joined = _joined(lines)
        if self._context and not any(p.search(t) for t in joined for p in self._context):
            return f"no line matches its context ({', '.join(self.context)})"
        for n, t in enumerate(joined, first_line):
            for p in self._not_context:
                if p.search(t):
                    return f"line {n} matches its not_context {p.pattern!r}"
        return None

    def nearby_verdict(self, before: Sequence[tuple[int, str]]) -> str | None:
        """None if no line just before the event matches `not_nearby`, else why not."""
        for n, t in before if self.not_nearby else ():
            for p in self._not_nearby:
                if p.search(t):
                    return f"line {n}, just before the event, matches its not_nearby {p.pattern!r}"
        return None

    @cached_property
    def has_evidence_keys(self) -> bool:
        return any(getattr(self, k) for k in _EVIDENCE_KEYS)

    @cached_property
    def evidence_literals(self) -> tuple[frozenset[str], ...] | None:
        """Per evidence key: literals one of which all its evidence holds (`required_literals` of each of its
        regexes); None when some regex has none (ignore_case, `\\w+Error`…): that entry is always tried."""
        out: list[frozenset[str]] = []
        for k in _EVIDENCE_KEYS:
            lits: set[str] = set()
            for p in getattr(self, k):
                got = None if self.ignore_case else required_literals(p)
                if got is None:
                    return None
                lits.update(got)
            if lits:
                out.append(frozenset(lits))
        return tuple(out)

    def evidence_for(self, f: Facts) -> dict[str, Evidence | None]:
        """For each evidence key of the entry: the first piece of evidence found, or None."""
        out: dict[str, Evidence | None] = {}
        for key, rxs in self._evidence:
            out[key] = _find(key, rxs, f)
        return out


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
    lines: tuple[int, ...]  # 1-based line numbers (within the source) that hit a pattern (or hold evidence)
    confidence: float = 0.9
    evidence: tuple[Evidence, ...] = ()

    @classmethod
    def of(cls, e: Entry, lines: Iterable[int], confidence: float = 0.9, evidence: Iterable[Evidence] = ()) -> Match:
        return cls(e.id, e.categories, e.severity, e.title, e.cause, e.first_move, e.references, tuple(lines),
                   round(confidence, 2), tuple(evidence))


def _find(key: str, rxs: tuple[re.Pattern[str], ...], f: Facts) -> Evidence | None:
    if key == "exceptions":
        for x in reversed(f.exceptions):
            if any(r.fullmatch(x.type) or r.fullmatch(short_type(x.type)) for r in rxs):
                return Evidence("exception", x.line, f"{x.type}: {x.message}"[:300])
        # A traceback cut before its exception line (a paste trimmed to the frames): its exception is unknown,
        # so only an entry that accepts any exception (`\w*Error`, `Exception`) finds it here.
        if not f.exceptions and f.frames and f.event.has_traceback and any(r.fullmatch("Exception") for r in rxs):
            fr = f.frames[-1]
            return Evidence("exception", fr.line, "(traceback cut before its exception line)")
    elif key == "messages":
        texts = [(x.line, x.message) for x in reversed(f.exceptions)] + f.records
        for n, t in texts:
            if any(r.search(t) for r in rxs):
                return Evidence("message", n, t[:300])
    elif key == "frames":
        for fr in reversed(f.frames):  # innermost first
            if any(r.search(fr.text) for r in rxs):
                return Evidence("frame", fr.line, fr.text)
    elif key == "loggers":
        if f.logger and any(r.search(f.logger) for r in rxs):
            return Evidence("logger", f.event.first_line, f.logger)
    elif key == "text":
        for n, t in enumerate(f.event.lines, f.event.first_line):
            if t and any(r.search(t) for r in rxs):
                return Evidence("text", n, t.strip()[:300])
    elif key == "nearby":
        for n, t in reversed(f.before):
            if any(r.search(t) for r in rxs):
                return Evidence("nearby", n, t[:300])
    return None


def _universe(f: Facts) -> str:
    """Every string an evidence key searches (see `_find`), joined: the event's lines, the lines before it,
    its records, frames, exceptions (qualified and short types, messages) and logger; plus "Exception",
    which a traceback cut before its exception line offers to the `exceptions` key."""
    parts = [*f.event.lines, *(t for _, t in f.before), *(t for _, t in f.records), f.logger or "", "Exception"]
    parts += [fr.text for fr in f.frames]
    for x in f.exceptions:
        parts += (x.type, short_type(x.type), x.message)
    return "\n".join(parts)


@dataclass(frozen=True)
class Quiet:
    """A catalogue-wide rule: an event with a line (or a line joined to the next) matching `pattern` is given
    no category by any entry; `why` is what `--explain` says."""

    id: str
    pattern: str
    why: str
    source: str = ""

    @cached_property
    def rx(self) -> re.Pattern[str]:
        return _compile(self.pattern, False, self.source)


class Verdict(NamedTuple):
    """`--explain`: one entry that found some evidence in an event, whether it was chosen, and why."""

    id: str
    categories: tuple[str, ...]
    chosen: bool
    reasons: tuple[str, ...]


def _joined(lines: Sequence[str]) -> list[str]:
    """Each line joined to the next (a phrase a paste wrapped across two lines still reads whole)."""
    return [f"{t} {lines[k + 1].lstrip()}" if k + 1 < len(lines) else t for k, t in enumerate(lines)]


def _where(path: str, line: int | None) -> str:
    return f"{path}, line {line}" if line else path


def _entry_lines(text: str, table: str = "entry") -> list[int]:
    """Line numbers of the `[[entry]]` (or `[[quiet]]`) headers, to point errors at the right place."""
    return [i + 1 for i, ln in enumerate(text.splitlines()) if ln.strip().startswith(f"[[{table}]]")]


def _check(pattern: str, where: str) -> None:
    if _UNSUPPORTED.search(pattern):
        raise CatalogError(f"{where}: pattern {pattern!r} uses look-arounds or back-references, which are not supported")
    if "\n" in pattern:
        raise CatalogError(f"{where}: pattern {pattern!r} spans lines; patterns match one line at a time")


def _compile(pattern: str, ignore_case: bool, where: str) -> re.Pattern[str]:
    _check(pattern, where)
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


def _table_id(raw: object, where: str, what: str, index: int) -> tuple[dict[str, Any], str]:
    """A [[entry]]/[[quiet]] table and its id (CatalogError naming where, if it is no table or lacks a good id)."""
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: {what} #{index + 1} must be a table")
    tid = raw.get("id")
    if not isinstance(tid, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", tid):
        raise CatalogError(f"{where}: {what} #{index + 1} needs an 'id' (letters, digits, '-', '_', '.')")
    return raw, tid


def _parse_entry(raw: object, source: str, line: int | None, index: int) -> Entry:
    where = _where(source, line)
    raw, eid = _table_id(raw, where, "entry", index)
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
    patterns = _str_list(raw, "patterns", where)
    context = _str_list(raw, "context", where)
    not_context = _str_list(raw, "not_context", where)
    not_nearby = _str_list(raw, "not_nearby", where)
    ev = {k: _str_list(raw, k, where) for k in _EVIDENCE_KEYS}
    skip_levels = _str_list(raw, "skip_levels", where)
    bad_lv = [lv for lv in skip_levels if lv not in _SKIPPABLE]
    if bad_lv:
        raise CatalogError(f"{where}: skip_levels has {bad_lv[0]!r} (allowed: {', '.join(_SKIPPABLE)})")
    for pat in (*patterns, *context, *not_context, *not_nearby, *(p for v in ev.values() for p in v)):
        _check(pat, where)
    if not patterns and not any(ev.values()):
        raise CatalogError(f"{where}: needs 'patterns' or at least one of {', '.join(_EVIDENCE_KEYS)}")
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
        not_nearby=not_nearby,
        action=action,
        skip_levels=skip_levels,
        source=where,
        **ev,
    )


_QUIET_KEYS = ("id", "pattern", "why")


def _parse_quiet(raw: object, source: str, line: int | None, index: int) -> Quiet:
    where = _where(source, line)
    raw, qid = _table_id(raw, where, "quiet rule", index)
    where = f"{where}, quiet rule {qid!r}"
    unknown = sorted(set(raw) - set(_QUIET_KEYS))
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(_QUIET_KEYS)})")
    for k in ("pattern", "why"):
        if not isinstance(raw.get(k), str) or not raw[k].strip():
            raise CatalogError(f"{where}: {k!r} must be a non-empty string")
    _check(raw["pattern"], where)
    return Quiet(qid, raw["pattern"], raw["why"].strip(), where)


def parse_catalog_text(text: str, source: str) -> list[Entry]:
    return parse_catalog_file(text, source)[0]


def _toml(text: str, source: str) -> dict[str, Any]:
    import tomllib  # (only when the catalogue cache does not hold this text: ~7 ms of start-up)

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"{source}: not valid TOML: {e}") from None


def _evidence_regexes(data: dict[str, Any]) -> list[str]:
    """Every evidence regex of the raw entries (what the catalogue cache finds literals for; checked later)."""
    raw = data.get("entry")
    out: list[str] = []
    for e in raw if isinstance(raw, list) else ():
        for k in _EVIDENCE_KEYS if isinstance(e, dict) and not e.get("ignore_case") else ():
            v = e.get(k)
            out += [x for x in ([v] if isinstance(v, str) else v if isinstance(v, list) else []) if isinstance(x, str)]
    return out


def parse_catalog_file(text: str, source: str, cache_dir: Path | None = None) -> tuple[list[Entry], list[Quiet]]:
    """The entries and the quiet rules of one catalogue file (CatalogError naming file, line and key). With a
    `cache_dir`, the parsed text (and its evidence regexes' literals) come from the catalogue cache there."""
    if cache_dir is None:
        data = _toml(text, source)
    else:
        data, lits = catalog_cache.load(text, lambda t: _toml(t, source), _evidence_regexes, required_literals, cache_dir)
        remember(lits)
    unknown = sorted(set(data) - {"entry", "quiet"})
    if unknown:
        raise CatalogError(f"{source}: unknown top-level key(s) {', '.join(unknown)} "
                           "(only [[entry]] and [[quiet]] tables)")
    raw_quiet = data.get("quiet", [])
    if not isinstance(raw_quiet, list):
        raise CatalogError(f"{source}: 'quiet' must be an array of tables ([[quiet]])")
    quiet_lines = _entry_lines(text, "quiet")
    quiet = [_parse_quiet(raw, source, quiet_lines[i] if i < len(quiet_lines) else None, i)
             for i, raw in enumerate(raw_quiet)]
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
    return entries, quiet


def shipped_catalog_text() -> str:
    try:  # the file beside this module (importlib.resources costs ~8 ms of start-up): any normal install
        return (Path(__file__).parent / "catalog.toml").read_text(encoding="utf-8")
    except OSError:  # a zipped package
        from importlib import resources

        return resources.files("mlx_console.core.logs").joinpath("catalog.toml").read_text(encoding="utf-8")


class Catalog:
    """An ordered list of entries; earlier entries win ties when choosing an event's main match."""

    def __init__(self, entries: Sequence[Entry], quiet: Sequence[Quiet] = ()):
        self.entries: list[Entry] = list(entries)
        self.quiet: list[Quiet] = list(quiet)
        self._evidence_idx = [i for i, e in enumerate(self.entries) if e.has_evidence_keys]
        self._worth_calls = 0  # events whose evidence literals were looked for (see _evidence_worth_trying)

    @cached_property
    def _prefilter(self) -> tuple[set[int], list[tuple[str, set[int]]]]:
        """Line prefilter for the plain path: a literal each pattern requires (`in` is C speed); most lines
        hold none, and only entries whose literal is present (or that have none) are tried with `re`."""
        always: set[int] = set()
        by_lit: dict[str, set[int]] = {}
        for i, e in enumerate(self.entries):
            for p in e.patterns:
                lits = None if e.ignore_case else required_literals(p)
                if lits is None:
                    always.add(i)
                else:
                    for lit in lits:
                        by_lit.setdefault(lit, set()).add(i)
        return always, list(by_lit.items())

    @cached_property
    def _evidence_literals(self) -> list[tuple[int, tuple[tuple[str, ...], ...] | None]]:
        """(entry index, its keys' literals, the keys with fewest first: a key that fails costs fewest checks)."""
        out: list[tuple[int, tuple[tuple[str, ...], ...] | None]] = []
        for i in self._evidence_idx:
            keys = self.entries[i].evidence_literals
            out.append((i, None if keys is None else tuple(tuple(k) for k in sorted(keys, key=len))))
        return out

    @cached_property
    def _evidence_finder(self) -> tuple[LiteralFinder, list[tuple[int, tuple[frozenset[int], ...] | None]]]:
        """All the evidence literals in one LiteralFinder, and each entry's keys as sets of their indexes."""
        lits = sorted({x for _, keys in self._evidence_literals for k in keys or () for x in k})
        at = {x: n for n, x in enumerate(lits)}
        return LiteralFinder(lits), [(i, None if keys is None else tuple(frozenset(at[x] for x in k) for k in keys))
                                     for i, keys in self._evidence_literals]

    def _evidence_worth_trying(self, f: Facts) -> list[int]:
        """The entries with evidence keys that may find evidence for every key in this event: those whose
        keys each have a required literal in it (or that have no literals to check). After the first
        _FINDER_AFTER events, all literals are looked for in one pass (LiteralFinder), else one by one."""
        universe = _universe(f)
        self._worth_calls += 1
        if self._worth_calls > _FINDER_AFTER:
            finder, by_index = self._evidence_finder
            present = finder.present(universe)
            if present is not None:
                return [i for i, keys in by_index if keys is None or all(not present.isdisjoint(k) for k in keys)]
        has = universe.__contains__
        out: list[int] = []
        for i, keys in self._evidence_literals:
            if keys is not None and not all(any(map(has, key)) for key in keys):
                continue
            out.append(i)
        return out

    @classmethod
    def load(cls, extra_paths: Iterable[str | Path] = (), *, shipped: bool = True,
             cache_dir: Path | None | str = "auto") -> Catalog:
        """The shipped catalogue extended/overridden by each file of `extra_paths`, in order. Parsed files are
        cached in `cache_dir` ("auto": the state dir's `cache/`; None: no cache)."""
        entries: dict[str, Entry] = {}
        quiet: dict[str, Quiet] = {}
        cdir = cache_files.default_dir() if cache_dir == "auto" else None if cache_dir is None else Path(cache_dir)
        if shipped:
            got, q = parse_catalog_file(shipped_catalog_text(), "catalog.toml (shipped)", cdir)
            entries.update((e.id, e) for e in got)
            quiet.update((r.id, r) for r in q)
        for p in extra_paths:
            path = Path(p).expanduser()
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise CatalogError(f"{path}: cannot read catalogue file: {e}") from None
            got, q = parse_catalog_file(text, str(path), cdir)
            for entry in got:
                entry.validate()  # a user's bad regex is an error at load, naming the file and entry
                entries[entry.id] = entry  # dict keeps the first insertion position: an override stays in place
            for r in q:
                r.rx  # noqa: B018 (compiled now: a bad regex is an error at load)
                quiet[r.id] = r  # the same id replaces a shipped rule
        return cls(list(entries.values()), list(quiet.values()))

    def quiet_rule(self, lines: Sequence[str]) -> Quiet | None:
        """The first catalogue-wide quiet rule that one of these lines (or a line joined to the next) matches."""
        for _, q in self._quiet_hits(lines, 1):
            return q
        return None

    def _quiet_hits(self, lines: Sequence[str], first_line: int) -> Iterable[tuple[int, Quiet]]:
        for n, t in enumerate(_joined(lines), first_line):
            for q in self.quiet:
                if q.rx.search(t):
                    yield n, q

    def quiet_verdict(self, lines: Sequence[str], first_line: int) -> str | None:
        """Why no category may be given to these lines (a catalogue-wide quiet rule hits one), else None."""
        if not self.quiet:
            return None
        for n, q in self._quiet_hits(lines, first_line):
            return f"line {n} matches the catalogue's quiet rule {q.id!r} ({q.why})"
        return None

    @cached_property
    def _pattern_at(self) -> list[tuple[int, int]]:
        """(entry index, index among its patterns) of each pattern in `patterns()` order."""
        return [(i, j) for i, e in enumerate(self.entries) for j in range(len(e.patterns))]

    def patterns(self) -> list[tuple[int, str, bool]]:
        """(entry index, regex, ignore_case) for every pattern, for the fast engines."""
        return [(i, p, e.ignore_case) for i, e in enumerate(self.entries) for p in e.patterns]

    def line_hits(self, text: str) -> list[int]:
        """Indexes of the entries with a pattern matching this one line (pure `re`)."""
        always, by_lit = self._prefilter
        cand = set(always)
        for lit, idx in by_lit:
            if lit in text:
                cand |= idx
        return [i for i in sorted(cand) if self.entries[i].hits_line(text)]

    def _hits(self, lines: Sequence[str], first_line: int, hints: dict[int, set[int]] | None = None
              ) -> dict[int, list[int]]:
        """Entry index → the lines its patterns hit. `hints` (from the scanner): the patterns (indexes in
        `patterns()`) that may hit each line (a line absent from it hits none); their entries are re-checked
        with `re`, those patterns first."""
        hit_lines: dict[int, list[int]] = {}
        at = self._pattern_at
        for n, text in enumerate(lines, first_line):
            if hints is None:
                found = self.line_hits(text)
            else:
                by_entry: dict[int, list[int]] = {}
                for k in sorted(hints.get(n, ())):
                    i, j = at[k]
                    by_entry.setdefault(i, []).append(j)
                found = [i for i, js in sorted(by_entry.items()) if self.entries[i].hits_line(text, js)]
            rest = _after_prefix(text)
            if rest is not None:  # (a pattern anchored at the start of a line also sees it after the prefix)
                found = sorted({*found, *self.line_hits(rest)})
            for i in found:
                hit_lines.setdefault(i, []).append(n)
        return hit_lines

    def match_lines(self, lines: Sequence[str], first_line: int = 1) -> list[Match]:
        """Entries whose patterns recognise a group of lines (one event), best first (patterns only)."""
        hit_lines = self._hits(lines, first_line)
        found = [(i, ns) for i, ns in sorted(hit_lines.items()) if self.entries[i].accepts(lines)]
        if found and self.quiet_verdict(lines, first_line):
            return []
        return self._order([Match.of(self.entries[i], ns, 0.9, self._pattern_ev(i, ns, lines, first_line))
                            for i, ns in found])

    def _pattern_ev(self, i: int, ns: list[int], lines: Sequence[str], first_line: int) -> list[Evidence]:
        return [Evidence("pattern", n, lines[n - first_line][:300]) for n in ns[:3]]

    def _order(self, matches: list[Match]) -> list[Match]:
        rank = {e.id: k for k, e in enumerate(self.entries)}
        return sorted(matches, key=lambda m: (_SEVERITY_RANK[m.severity], rank[m.id]))

    def match(self, event: Event, before: Sequence[tuple[int, str]] = (), backend: str | None = None,
              f: Facts | None = None, hints: dict[int, set[int]] | None = None) -> list[Match]:
        """Entries recognised in an event by patterns or by evidence, best first."""
        return [v for v in self._judge(event, before, backend, f, explain=False, hints=hints)
                if isinstance(v, Match)]

    def explain(self, event: Event, before: Sequence[tuple[int, str]] = (), backend: str | None = None,
                f: Facts | None = None) -> list[Verdict]:
        return [v for v in self._judge(event, before, backend, f, explain=True) if isinstance(v, Verdict)]

    def _judge(self, event: Event, before: Sequence[tuple[int, str]], backend: str | None, f: Facts | None,
               *, explain: bool, hints: dict[int, set[int]] | None = None) -> list[Match | Verdict]:
        lines, first = event.lines, event.first_line
        hit_lines = self._hits(lines, first, hints)
        problem = event.is_problem
        if f is None and (problem or hit_lines):
            f = facts(event, before, backend)
        out: list[Match | Verdict] = []
        matches: list[Match] = []
        # Evidence entries: without a pattern hit an entry needs evidence for every key, so (unless explaining)
        # those with a key whose required literals are all absent from the event are not tried.
        by_evidence = (self._evidence_idx if explain else self._evidence_worth_trying(f)) if f is not None and problem else ()
        tried = sorted({*hit_lines, *by_evidence})
        for i in tried:
            e = self.entries[i]
            if e.skips(event.level):
                if explain and i in hit_lines:
                    out.append(Verdict(e.id, e.categories, False, (f"not tried on {event.level or 'level-less'} events (skip_levels)",)))
                continue
            ns = hit_lines.get(i)
            got = e.evidence_for(f) if f is not None and problem and e.has_evidence_keys else {}
            found = [x for x in got.values() if x is not None]
            if not ns and not found:
                continue
            reasons: list[str] = []
            if ns:
                reasons.append(f"pattern hit on line {', '.join(map(str, ns[:5]))}")
            full = bool(got) and len(found) == len(got)
            if got:
                for key, x in got.items():
                    reasons.append(f"{key}: {x.kind} on line {x.line}: {x.text[:120]}" if x else
                                   f"{key}: no evidence (wants {', '.join(getattr(e, key))})")
            if not problem and e.has_evidence_keys and not ns:
                reasons.append("not a warning/error event: evidence keys are not tried")
            ok = bool(ns) or full
            why_not = (e.context_verdict(lines, first) or e.nearby_verdict(before)) if ok else None
            if why_not:
                reasons.append(why_not)
                ok = False
            if ok:
                ev = self._pattern_ev(i, ns, lines, first) if ns else []
                ev += found
                if ns:
                    conf = (0.9 if problem else 0.75) + 0.03 * len(found) + (0.03 if f and f.exceptions else 0)
                else:
                    specific = any(x.kind in ("message", "logger") for x in found)
                    conf = 0.5 + 0.12 * len(found) + (0.08 if specific else 0)
                if e.context:
                    ev.append(Evidence("context", 0, ", ".join(e.context)[:120]))
                m = Match.of(e, ns or sorted({x.line for x in found}), min(conf, 0.99 if ns else 0.9), ev)
                matches.append(m)
            elif not ns and not full:
                reasons.append("rejected: not every evidence key found its evidence")
            if explain:
                out.append(Verdict(e.id, e.categories, ok, tuple(reasons)))
        silenced = self.quiet_verdict(lines, first) if matches else None
        if explain:
            if silenced:
                out = [v._replace(chosen=False, reasons=(*v.reasons, f"silenced: {silenced}"))
                       if isinstance(v, Verdict) and v.chosen else v for v in out]
            return out
        return [] if silenced else list(self._order(matches))
