"""Fast candidate search over a whole buffer (mmap or bytes): which lines may start or hit an event.

`Scanner(catalog).candidates(buf) -> list[(line_start_offset, line_number)]` returns a superset of the lines
that hit a catalogue pattern or head a warning/error event; the caller re-checks them with plain `re`, so the
result never depends on the engine. Engines: hyperscan (one database, block mode over the mmap; ≈ grep's speed)
when its wheel is installed, else stdlib `re` over the buffer (slower, same answers). Patterns are matched as
bytes: `\\w`, `\\s`, `\\b` are ASCII there, as in grep.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Sequence

from mlx_console.core.logs.patterns import Catalog, required_literals

try:  # optional: a compiled regex engine, ≈ 6× faster than the fallback (bench/triage_vs_grep.py)
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform's wheels
    hyperscan = None  # type: ignore[assignment]

Buf = bytes | bytearray | mmap.mmap  # what is scanned: a file's bytes or its mmap

# Lines that can head a warning/error event or carry a traceback (see events.parse_line): a superset.
PROBLEM_PATTERNS: tuple[str, ...] = (
    r"- (?:WARNING|WARN|ERROR|CRITICAL|FATAL) +- ",
    r"^(?:WARNING|WARN|ERROR|CRITICAL|FATAL):",
    r"^\[(?:WARNING|WARN|ERROR|CRITICAL|FATAL)\] ",
    r"^Traceback \(most recent call last\):",
    r"^Exception (?:in thread|occurred during processing)",
    r"Warning: ",
    r'" 5\d\d ',
    r"^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt)\b",
    r"^(?:Error|ERROR|FATAL|Fatal error)\b",
    r"^(?:libc\+\+abi: terminating|terminate called|Segmentation fault|Abort trap|zsh: (?:abort|killed))",
)

_COUNT_CHUNK = 8 << 20  # count newlines in slices of at most this many bytes (bounded copies)


def _line_numbers(buf: Buf, starts: Sequence[int]) -> list[int]:
    """1-based line numbers of sorted line-start offsets, counting newlines once through the buffer."""
    out: list[int] = []
    n, pos = 1, 0
    for s in starts:
        while pos < s:
            end = min(s, pos + _COUNT_CHUNK)
            n += buf[pos:end].count(b"\n")
            pos = end
        out.append(n)
    return out


class Scanner:
    def __init__(self, catalog: Catalog, *, engine: str = "auto", include_problems: bool = True):
        pats = [(p, ic) for _, p, ic in catalog.patterns()]
        if include_problems:
            pats += [(p, False) for p in PROBLEM_PATTERNS]
        self._pats = pats
        if engine == "auto":
            engine = "hyperscan" if hyperscan is not None else "re"
        if engine == "hyperscan" and hyperscan is None:
            raise RuntimeError("hyperscan is not installed")
        self.engine = engine
        self._db: hyperscan.Database | None = None
        self._rest: list[re.Pattern[bytes]] = []  # patterns the fast engine refused: scanned with `re`
        self._literals: set[bytes] = set()  # `re` engine: a line can only match if it holds one of these
        if engine == "hyperscan":
            self._build_hyperscan()
        else:
            # Pure Python: find each pattern's required literal with bytes.find (memchr speed); only patterns
            # without one get a regex pass (a pass per pattern beats one alternation of them all).
            for p, ic in pats:
                lits = None if ic else required_literals(p)
                if lits is None:
                    self._rest.append(self._bytes_re(p, ic))
                else:
                    self._literals.update(lit.encode() for lit in lits)

    @staticmethod
    def _bytes_re(p: str, ignore_case: bool) -> re.Pattern[bytes]:
        return re.compile(p.encode(), re.MULTILINE | (re.IGNORECASE if ignore_case else 0))

    def _build_hyperscan(self) -> None:
        items = [(p.encode(), hyperscan.HS_FLAG_MULTILINE | (hyperscan.HS_FLAG_CASELESS if ic else 0), p, ic)
                 for p, ic in self._pats]
        try:
            self._db = self._compile(items)
            return
        except hyperscan.error:
            pass
        # Some pattern uses a construct hyperscan lacks: find which, scan those with `re`, the rest with hyperscan.
        ok = []
        for it in items:
            try:
                self._compile([it])
                ok.append(it)
            except hyperscan.error:
                self._rest.append(self._bytes_re(it[2], it[3]))
        self._db = self._compile(ok) if ok else None

    @staticmethod
    def _compile(items: list[tuple[bytes, int, str, bool]]) -> hyperscan.Database:
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(
            expressions=[e for e, *_ in items], ids=list(range(len(items))), elements=len(items),
            flags=[f for _, f, *_ in items],
        )
        return db

    def _hit_ends(self, buf: Buf) -> set[int]:
        ends: set[int] = set()
        if self._db is not None and len(buf):
            add = ends.add

            def on_match(_id: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
                add(to)

            self._db.scan(buf, match_event_handler=on_match)  # type: ignore[type-var]  # any buffer, mmap too
        for rx in self._rest:
            pos, size = 0, len(buf)
            while pos < size:
                m = rx.search(buf, pos)
                if m is None:
                    break
                ends.add(m.start() + 1 if m.end() == m.start() else m.end())
                # Resume on the next line: a match that ran across lines must not hide one inside a line.
                nl = buf.find(b"\n", m.start())
                pos = size if nl < 0 else nl + 1
                if m.start() < m.end():
                    ends.add(m.start() + 1)
        for lit in self._literals:
            pos = 0
            while (i := buf.find(lit, pos)) >= 0:
                ends.add(i + len(lit))
                nl = buf.find(b"\n", i)
                if nl < 0:
                    break
                pos = nl + 1
        return ends

    def candidates(self, buf: Buf) -> list[tuple[int, int]]:
        """Sorted (line start offset, 1-based line number) of every line where some pattern may match."""
        starts: set[int] = set()
        for end in self._hit_ends(buf):
            # `end` is exclusive; a match ending on a newline belongs to the line before it.
            starts.add(buf.rfind(b"\n", 0, max(end - 1, 0)) + 1)
        ordered = sorted(starts)
        return list(zip(ordered, _line_numbers(buf, ordered), strict=True))
