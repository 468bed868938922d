"""`required_literals(pattern)`: literals one of which every match of a regex contains, for a cheap `in` (or
bytes.find) test before the regex itself: the catalogue's line and evidence prefilters, the `re` scan engine,
the backend hints."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from re import _constants as _c  # type: ignore[attr-defined]  # the stdlib regex parser: finds literals a pattern requires
from re import _parser  # type: ignore[attr-defined]
from typing import Any

_MIN_LITERAL = 3


def _strength(lit: str) -> int:
    """How selective a literal is: its length, a character above ASCII counting as three (`Ġ`, `▁`, `�` are rare
    in a log, and two or more bytes long)."""
    return sum(1 if ord(c) < 0x80 else 3 for c in lit)


def _seq_literals(seq: Any) -> list[str] | None:
    """The best 'one of these literals occurs in every match' for a parsed sequence (None if none)."""
    best: list[str] | None = None
    run: list[str] = []

    def consider(lits: list[str] | None) -> None:
        nonlocal best
        if lits and min(map(_strength, lits)) >= _MIN_LITERAL and (
                best is None or min(map(_strength, lits)) > min(map(_strength, best))):
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


_KNOWN: dict[str, list[str] | None] = {}  # pattern → its literals: computed once, or read from the catalogue cache


def remember(known: dict[str, list[str] | None]) -> None:
    """Literals found earlier (catalog_cache): `required_literals` answers them without parsing the regex."""
    _KNOWN.update(known)


def required_literals(pattern: str) -> list[str] | None:
    """Literals one of which every match of `pattern` contains, for a bytes.find prefilter; None if none."""
    if pattern in _KNOWN:
        got = _KNOWN[pattern]
        return None if got is None else list(got)
    lits = _required_literals(pattern)
    _KNOWN[pattern] = lits
    return None if lits is None else list(lits)


def _required_literals(pattern: str) -> list[str] | None:
    try:
        parsed = _parser.parse(pattern)
    except re.error:
        return None
    if parsed.state.flags & re.IGNORECASE:
        return None
    return _seq_literals(parsed)


class LiteralFinder:
    """Which of a fixed set of literals occur in a text, in one pass: a hyperscan database of them (compiled on
    first use, ≈ 5 ms). `present(text)` is None without hyperscan (the caller tests `in` itself)."""

    def __init__(self, literals: Sequence[str]):
        self.literals = tuple(literals)
        self._db: Any = None
        self._tried = False
        self._lock = threading.Lock()  # one scratch space per database: one scan at a time

    def present(self, text: str) -> set[int] | None:
        """Indexes of the literals in `text` (the containment of str, through UTF-8: it keeps substrings)."""
        if not self._tried:
            self._compile()
        if self._db is None:
            return None if self.literals else set()
        got: set[int] = set()

        def on_match(id_: int, _from: int, _to: int, _flags: int, _ctx: object) -> None:
            got.add(id_)

        with self._lock:
            self._db.scan(text.encode("utf-8", "surrogatepass"), match_event_handler=on_match)
        return got

    def _compile(self) -> None:
        self._tried = True
        if not self.literals:
            return
        try:
            import hyperscan
        except ImportError:  # pragma: no cover - depends on the platform's wheels
            return
        # Every byte as \xHH: a literal is never read as regex syntax.
        exprs = ["".join(f"\\x{b:02x}" for b in x.encode("utf-8", "surrogatepass")).encode() for x in self.literals]
        try:
            db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs),
                       flags=[hyperscan.HS_FLAG_SINGLEMATCH] * len(exprs))
        except (hyperscan.error, TypeError, ValueError):
            return
        self._db = db
