"""Patterns that name characters above ASCII (literally, in a class, or as `\\uXXXX`) find the same lines through the
fast scan over bytes as line by line: the scan's bytes regex matches at least what the `str` one does."""

from __future__ import annotations

import re

import pytest

from mlx_console.core.logs import scan
from mlx_console.core.logs.bytepattern import utf8_pattern
from mlx_console.core.logs.patterns import Catalog, parse_catalog_text
from mlx_console.core.logs.triage import triage_buffer, triage_lines

ENGINES = ["re"] + (["hyperscan"] if scan.hyperscan is not None else [])
ENTRY = """[[entry]]
id = "{id}"
category = "tokenizer"
patterns = [{pattern}]
severity = "warning"
title = "t"
cause = "c"
first_move = "f"
"""
CASES = [
    # (pattern as written in TOML, a line it must find, a line it must not)
    (r"'caf\u00e9+ au lait'", "ordered a cafééé au lait", "ordered a cafe au lait"),
    (r"'[\u0100-\u017f]{2}x'", "prefix ĀĊx suffix", "prefix AAx suffix"),
    ("'[ÂÃà-ï][¡-¿].*[ÂÃà-ï][¡-¿]'", "reply: ç§の名前はä¾", "reply: plain text"),
    ("'[a-zé]Ċ[A-Z]'", "one line.éĊNext", "one line. Next"),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("pattern", "hit", "miss"), CASES)
def test_the_scan_finds_what_the_line_path_finds(engine: str, pattern: str, hit: str, miss: str) -> None:
    cat = Catalog(parse_catalog_text(ENTRY.format(id="u", pattern=pattern), "user.toml"))
    lines = ["2026-12-06 10:00:00,000 - INFO - start", hit, miss, "2026-12-06 10:00:01,000 - INFO - end"]
    slow = [e.to_json() for e in triage_lines(lines, cat)]
    scanner = scan.Scanner(cat, engine=engine, cache_dir=None)
    fast = [e.to_json() for e in triage_buffer(("\n".join(lines) + "\n").encode(), cat, scanner=scanner)]
    assert [e["line"] for e in slow] == [2]
    assert fast == slow


def test_the_bytes_pattern_is_a_superset_and_ascii_patterns_are_unchanged() -> None:
    for toml, hit, _ in CASES:
        p = parse_catalog_text(ENTRY.format(id="u", pattern=toml), "u.toml")[0].patterns[0]
        assert re.search(p, hit)
        assert re.search(utf8_pattern(p).encode(), hit.encode())
    assert utf8_pattern(r"Error: \d+ [A-Z]\w* (?:x|y)") == r"Error: \d+ [A-Z]\w* (?:x|y)"
