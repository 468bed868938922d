"""Fast candidate search over a whole buffer (mmap or bytes): which lines may start or hit an event.

`Scanner(catalog).candidates(buf) -> list[(line_start_offset, line_number)]` returns a superset of the lines
that hit a catalogue pattern or head a warning/error event; the caller re-checks them with plain `re`, so the
result never depends on the engine. Engines: hyperscan (one database, block mode over the mmap; ≈ grep's speed)
when its wheel is installed, else stdlib `re` over the buffer (slower, same answers). Patterns are matched as
bytes: `\\w`, `\\s`, `\\b` are ASCII there, as in grep.

`scan(buf, workers=N)`: a big buffer is cut at line ends into parts scanned and line-counted at the same time
by forked processes (forked.py); the answer is the same.

The compiled hyperscan database (~0.1 s to build, 7 % of a 100 MB triage) is cached in the state dir
(`cache/hs-<hash>.db`), keyed by a hash of the patterns, their flags and the hyperscan version; the file
carries a checksum of its payload, so a partial or corrupt cache is rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import mmap
import re
from collections.abc import Sequence
from pathlib import Path

from mlx_console.core.logs import cache_files
from mlx_console.core.logs.bytepattern import utf8_pattern
from mlx_console.core.logs.forked import can_fork, map_forked
from mlx_console.core.logs.patterns import Catalog, required_literals

try:  # optional: a compiled regex engine, ≈ 6× faster than the fallback (bench/triage_vs_grep.py)
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform's wheels
    hyperscan = None  # type: ignore[assignment]

Buf = bytes | bytearray | mmap.mmap  # what is scanned: a file's bytes or its mmap

# Lines that can head a warning/error event or carry a traceback (see events.parse_line): a superset.
PROBLEM_PATTERNS: tuple[str, ...] = (
    # Unanchored: servers that embed mlx-lm put their own prefix before the line (events._PREFIX).
    r"\b(?:WARNING|WARN|ERROR|CRITICAL|FATAL)\b",
    r"\d\d:\d\d(?:[,.]\d+)?(?:Z|[+-]\d\d:?\d\d)? +\[?(?:error|warn|warning|critical|fatal)\b",  # lower-case levels
    # (spelt out: each branch then has a literal of its own for the `re` engine's bytes.find, not ` - `)
    r" - error - | - Error - | - warning - | - Warning - | - warn - | - critical - | - fatal - "
    r"|level=error\b|level=warn|level=fatal\b|\[error\] |\[warn(?:ing)?\] |\[critical\] |\[fatal\] ",
    r"Traceback \(most recent call last\):",
    r'(?:File "[^"]+|\.py)", line \d+',  # a frame opens a traceback even when its head (or `File "`) is missing
    r"Exception (?:in thread|occurred during processing)",
    r"Warning: ",
    r'" 5\d\d ',
    r"[A-Za-z_][\w.]*(?:Error|Exception|Interrupt)\b",
    r"\bException: ",  # Python's base class raised as is (`Exception: msg`)
    r"\b(?:Error|Fatal error)\b",
    # events._FAILURE_WORDS (`Error` is in the pattern above)
    r"\b(?:[Ff]ailed|FAILED|[Ff]ailure|error|[Uu]nable to|[Cc]ould not|[Cc]annot|[Ff]atal|[Aa]borted|[Cc]rashed)\b",
    r'\{\s*"(?:error|detail)"\s*:',  # an error response body
    r"libc\+\+abi: terminating|terminate called|panic: |fatal error: |Segmentation fault|Abort trap|zsh: (?:abort|killed)",
    r"Thread \d+ Crashed\b|Exception Type:\s+EXC_|Crashed Thread:",  # a macOS crash report
)

PARALLEL_MIN = 32 << 20  # bytes per part of a scan shared by processes, at least (a fork costs ≈ 1–2 ms)
_COUNT_CHUNK = 8 << 20  # count newlines in slices of at most this many bytes (bounded copies)


def _line_numbers(buf: Buf, starts: Sequence[int], lo: int = 0, hi: int | None = None) -> tuple[list[int], int]:
    """1-based line numbers (counted from `lo`) of sorted line-start offsets in buf[lo:hi], and that range's
    newline count, counting newlines once through it."""
    out: list[int] = []
    n, pos = 1, lo
    for s in [*starts, len(buf) if hi is None else hi]:
        while pos < s:
            end = min(s, pos + _COUNT_CHUNK)
            n += buf[pos:end].count(b"\n")
            pos = end
        out.append(n)
    return out[:-1], n - 1


_CACHE_MAGIC = b"mlx-console hyperscan db 1\n"
# A leading `^\s*` matches the empty string at the start of the line: without it the expression finds a
# superset of lines (each candidate is checked again with the catalogue's `str` regex). Hyperscan 0.9.1 (the
# wheel's Hyperscan 5.4) misses some lines with it: `^\s*(?:<\|tool_call\|?>|<\|tool_calls_section_begin\|>)`
# finds ` <|tool_call>` after `x\n\n` but not after `RuntimeError: boom\n\n` (test_fast_path.py).
_LEADING_BLANKS = re.compile(r"^\^\\s\*")


def _hs_expression(p: str) -> bytes:
    return utf8_pattern(_LEADING_BLANKS.sub("", p)).encode()


def _read_cache(path: Path) -> tuple[list[int], bytes] | None:
    """(indexes of the compiled patterns, serialized database) if the file is whole and intact."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(_CACHE_MAGIC):
        return None
    head_end = data.find(b"\n", len(_CACHE_MAGIC))
    try:
        head = json.loads(data[len(_CACHE_MAGIC) : head_end])
        payload = data[head_end + 1 :]
        if head_end < 0 or hashlib.sha256(payload).hexdigest() != head["sha256"] or len(payload) != head["size"]:
            return None
        return [int(i) for i in head["compiled"]], payload
    except (ValueError, KeyError, TypeError):
        return None


def _write_cache(path: Path, compiled: list[int], payload: bytes) -> None:
    head = json.dumps({"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload), "compiled": compiled})
    cache_files.write(path, _CACHE_MAGIC + head.encode() + b"\n" + payload, "hs-*.db")


class Scanner:
    def __init__(
        self, catalog: Catalog, *, engine: str = "auto", include_problems: bool = True,
        cache_dir: Path | None | str = "auto",
    ):
        cat_pats = catalog.patterns()
        pats = [(p, ic) for _, p, ic in cat_pats]
        # Which entry each pattern belongs to (-1: a problem pattern, no entry): the hyperscan path tells
        # triage which patterns hit a line, so only their entries are re-checked with `re` (those first).
        self._entry_of = [i for i, _, _ in cat_pats]
        if include_problems:
            pats += [(p, False) for p in PROBLEM_PATTERNS]
            self._entry_of += [-1] * len(PROBLEM_PATTERNS)
        self._pats = pats
        self._hs_ids: list[int] = []  # hyperscan id → pattern index
        if engine == "auto":
            engine = "hyperscan" if hyperscan is not None else "re"
        if engine == "hyperscan" and hyperscan is None:
            raise RuntimeError("hyperscan is not installed")
        self.engine = engine
        self._cache_dir = cache_files.default_dir() if cache_dir == "auto" else cache_dir
        self.cache_hit = False
        self._db: hyperscan.Database | None = None
        self._rest: list[tuple[int, re.Pattern[bytes]]] = []  # (index, pattern) the fast engine refused
        self._literals: set[bytes] = set()  # `re` engine: a line can only match if it holds one of these
        if engine == "hyperscan":
            self._build_hyperscan()
        else:
            # Pure Python: find each pattern's required literal with bytes.find (memchr speed); only patterns
            # without one get a regex pass (a pass per pattern beats one alternation of them all).
            for k, (p, ic) in enumerate(pats):
                lits = None if ic else required_literals(p)
                if lits is None:
                    self._rest.append((k, self._bytes_re(p, ic)))
                else:
                    self._literals.update(lit.encode() for lit in lits)

    @staticmethod
    def _bytes_re(p: str, ignore_case: bool) -> re.Pattern[bytes]:
        return re.compile(utf8_pattern(p).encode(), re.MULTILINE | (re.IGNORECASE if ignore_case else 0))

    def _cache_path(self, items: list[tuple[bytes, int, str, bool]]) -> Path | None:
        if self._cache_dir is None:
            return None
        key = json.dumps([getattr(hyperscan, "__version__", "?"), [(e.decode(), f) for e, f, *_ in items]]).encode()
        return Path(self._cache_dir) / f"hs-{hashlib.sha256(key).hexdigest()[:32]}.db"

    def _build_hyperscan(self) -> None:
        items = [(_hs_expression(p), hyperscan.HS_FLAG_MULTILINE | (hyperscan.HS_FLAG_CASELESS if ic else 0),
                  p, ic) for p, ic in self._pats]
        cache = self._cache_path(items)
        cached = _read_cache(cache) if cache is not None else None
        if cached is not None:
            compiled, payload = cached
            try:
                db = hyperscan.loadb(payload, hyperscan.HS_MODE_BLOCK)
                db.scratch = hyperscan.Scratch(db)  # a loaded database has none
                self._db = db if compiled else None
                self._hs_ids = compiled
                done = set(compiled)
                self._rest = [(i, self._bytes_re(it[2], it[3])) for i, it in enumerate(items) if i not in done]
                self.cache_hit = True
                return
            except (hyperscan.error, TypeError, ValueError):
                pass  # written by another build of hyperscan: compile anew and replace it
        try:
            self._db = self._compile(items)
            ok_idx = list(range(len(items)))
        except hyperscan.error:
            # Some pattern uses a construct hyperscan lacks: find which, scan those with `re`, the rest with
            # hyperscan.
            ok_idx = []
            for i, it in enumerate(items):
                try:
                    self._compile([it])
                    ok_idx.append(i)
                except hyperscan.error:
                    self._rest.append((i, self._bytes_re(it[2], it[3])))
            self._db = self._compile([items[i] for i in ok_idx]) if ok_idx else None
        self._hs_ids = ok_idx
        if cache is not None and self._db is not None:
            _write_cache(cache, ok_idx, hyperscan.dumpb(self._db))

    @staticmethod
    def _compile(items: list[tuple[bytes, int, str, bool]]) -> hyperscan.Database:
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(
            expressions=[e for e, *_ in items], ids=list(range(len(items))), elements=len(items),
            flags=[f for _, f, *_ in items],
        )
        return db

    def _hits(self, buf: Buf, lo: int = 0, hi: int | None = None) -> list[tuple[int, int]]:
        """(end offset, pattern index or -1 when unknown) of each match in buf[lo:hi] (`lo` starts a line,
        `hi` ends one or the buffer)."""
        hits: list[tuple[int, int]] = []
        add = hits.append
        size = len(buf) if hi is None else hi
        if self._db is not None and size > lo:
            ids = self._hs_ids

            def on_match(id_: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
                add((to + lo, ids[id_]))

            with memoryview(buf) as whole, whole[lo:size] as part:  # no copy; released before the mmap closes
                self._db.scan(part, match_event_handler=on_match)  # type: ignore[type-var]  # any buffer
        for k, rx in self._rest:
            pos = lo
            while pos < size:
                m = rx.search(buf, pos, size)
                if m is None:
                    break
                add((m.start() + 1 if m.end() == m.start() else m.end(), k))
                # Resume on the next line: a match that ran across lines must not hide one inside a line.
                nl = buf.find(b"\n", m.start())
                pos = size if nl < 0 else nl + 1
                if m.start() < m.end():
                    add((m.start() + 1, k))
        for lit in self._literals:
            pos = lo
            while (i := buf.find(lit, pos, size)) >= 0:
                add((i + len(lit), -1))
                nl = buf.find(b"\n", i, size)
                if nl < 0:
                    break
                pos = nl + 1
        return hits

    def candidates(self, buf: Buf) -> list[tuple[int, int]]:
        """Sorted (line start offset, 1-based line number) of every line where some pattern may match."""
        return self.candidates_counted(buf)[0]

    def candidates_counted(self, buf: Buf) -> tuple[list[tuple[int, int]], int]:
        """`candidates(buf)` and the number of newlines in `buf`, counted in the same pass."""
        cands, _, newlines = self.scan(buf)
        return cands, newlines

    def scan(self, buf: Buf, *, workers: int = 1, min_part: int = PARALLEL_MIN) -> tuple[list[tuple[int, int]], dict[int, set[int]] | None, int]:
        """Candidates, the catalogue patterns (indexes in `catalog.patterns()`) that hit each candidate line
        (keyed by line number; None with the `re` engine, which does not know), and the newline count, in
        one pass.

        `workers` > 1: a buffer of at least 2 × `min_part` bytes is cut at line ends into at most that many
        parts of at least `min_part` bytes, scanned and line-counted at the same time (forked.map_forked; only
        where a fork is safe). The answer is the same: every line is wholly inside one part."""
        parts = _parts(buf, workers, min_part) if workers > 1 and can_fork() else [(0, len(buf))]
        results = map_forked(self._scan_part, [(buf, lo, hi) for lo, hi in parts])
        cands: list[tuple[int, int]] = []
        hints: dict[int, set[int]] | None = {} if not self._literals else None
        base = 0  # newlines before the part
        for starts, numbers, entries, newlines in results:
            cands += zip(starts, (base + 1 + n for n in numbers), strict=True)
            if hints is not None:
                hints.update(zip((base + 1 + n for n in numbers), entries, strict=True))
            base += newlines
        return cands, hints, base

    def _scan_part(self, buf: Buf, lo: int, hi: int) -> _PartResult:
        """Sorted line starts in buf[lo:hi] where a pattern may match, their line numbers counted from `lo`,
        the catalogue patterns hit on each, and the part's newline count."""
        by_start: dict[int, set[int]] = {}
        entry_of = self._entry_of
        for end, k in self._hits(buf, lo, hi):
            # `end` is exclusive; a match ending on a newline belongs to the line before it.
            start = buf.rfind(b"\n", 0, max(end - 1, 0)) + 1
            got = by_start.setdefault(start, set())
            if k >= 0 and entry_of[k] >= 0:
                got.add(k)  # (the catalogue's patterns come first: k is the index in catalog.patterns())
        ordered = sorted(by_start)
        numbers, newlines = _line_numbers(buf, ordered, lo, hi)
        return ordered, [n - 1 for n in numbers], [by_start[o] for o in ordered], newlines


_PartResult = tuple[list[int], list[int], list[set[int]], int]  # starts, newlines before each, patterns, newlines


def _parts(buf: Buf, workers: int, min_part: int) -> list[tuple[int, int]]:
    """Cut buf into at most `workers` ranges of at least `min_part` bytes, each ending at a line end."""
    size = len(buf)
    n = max(1, min(workers, size // max(min_part, 1)))
    bounds = [0]
    for k in range(1, n):
        nl = buf.find(b"\n", max(bounds[-1], k * size // n))
        if nl < 0 or nl + 1 >= size:
            break
        bounds.append(nl + 1)
    bounds.append(size)
    return list(itertools.pairwise(bounds))
