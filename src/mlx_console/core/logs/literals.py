"""`required_literals(pattern)`: literals one of which every match of a regex contains, for a cheap `in` (or
bytes.find) test before the regex itself: the catalogue's line and evidence prefilters, the `re` scan engine,
the backend hints."""

from __future__ import annotations

import re
from re import _constants as _c  # type: ignore[attr-defined]  # the stdlib regex parser: finds literals a pattern requires
from re import _parser  # type: ignore[attr-defined]
from typing import Any

_MIN_LITERAL = 3


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
