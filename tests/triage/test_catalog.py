"""The catalogue file format: shipped entries, user files that extend/override, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_console.core.logs.patterns import CATEGORIES, Catalog, CatalogError
from mlx_console.core.logs.triage import triage_text

GOOD = """
[[entry]]
id = "my-thing"
category = "server_hang"
patterns = ['my backend is stuck at step \\d+']
severity = "warning"
title = "Stuck"
cause = "It is stuck."
first_move = "Kick it."
references = ["https://example.invalid/1"]
"""


def test_shipped_catalogue_covers_every_category() -> None:
    cat = Catalog.load()
    covered = {c for e in cat.entries for c in e.categories}
    assert covered == set(CATEGORIES)
    for e in cat.entries:
        assert e.title and e.cause and e.first_move and e.references, e.id
        assert e.severity in ("error", "warning", "info")


def test_user_file_adds_entries(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(GOOD)
    cat = Catalog.load([f])
    assert cat.entries[-1].id == "my-thing"
    [ev] = triage_text("2026-01-01 00:00:00,000 - WARNING - my backend is stuck at step 42", cat)
    assert ev.categories == ["server_hang"] and ev.main and ev.main.id == "my-thing"


def test_user_file_overrides_shipped_entry_in_place(tmp_path: Path) -> None:
    shipped = Catalog.load()
    pos = [e.id for e in shipped.entries].index("port-in-use")
    f = tmp_path / "override.toml"
    f.write_text(GOOD.replace('"my-thing"', '"port-in-use"'))
    cat = Catalog.load([f])
    assert [e.id for e in cat.entries].index("port-in-use") == pos
    assert len(cat.entries) == len(shipped.entries)
    assert triage_text("OSError: [Errno 48] Address already in use", cat) == []
    assert triage_text("my backend is stuck at step 1", cat)[0].title == "Stuck"


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda s: s.replace("\\d+", "(unclosed"), "invalid regex"),
        (lambda s: s.replace("'my backend", "'(?<=x)my backend"), "look-arounds"),
        (lambda s: s.replace('"server_hang"', '"hang"'), "unknown category 'hang'"),
        (lambda s: s.replace('"warning"', '"fatal"'), "severity 'fatal'"),
        (lambda s: s.replace('first_move = "Kick it."', ""), "missing key(s) first_move"),
        (lambda s: s + 'colour = "red"\n', "unknown key(s) colour"),
        (lambda s: s.replace("patterns = [", "patterns = [42, "), "'patterns' must be"),
    ],
)
def test_broken_user_entry_names_file_line_and_entry(tmp_path: Path, mutate, expect: str) -> None:
    f = tmp_path / "broken.toml"
    f.write_text("# a comment\n" + mutate(GOOD))
    with pytest.raises(CatalogError) as ei:
        Catalog.load([f])
    msg = str(ei.value)
    assert str(f) in msg and expect in msg
    assert "line 3" in msg and "'my-thing'" in msg


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("[[entry]\nid=1")
    with pytest.raises(CatalogError, match=r"bad\.toml: not valid TOML"):
        Catalog.load([f])
    with pytest.raises(CatalogError, match=r"nope\.toml: cannot read"):
        Catalog.load([tmp_path / "nope.toml"])


def test_duplicate_id_in_one_file(tmp_path: Path) -> None:
    f = tmp_path / "dup.toml"
    f.write_text(GOOD + GOOD)
    with pytest.raises(CatalogError, match=r"line 12: duplicate entry id 'my-thing'"):
        Catalog.load([f])
