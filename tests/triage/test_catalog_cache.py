"""The catalogue cache (core/logs/catalog_cache.py): a parsed catalogue file is read back from the state dir,
a damaged or foreign cache file is rebuilt, and a broken catalogue is never cached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.triage.test_catalog import GOOD

from mlx_console.core.logs import cache_files, catalog_cache
from mlx_console.core.logs.patterns import Catalog, CatalogError, shipped_catalog_text
from mlx_console.core.logs.triage import triage_text

USER = GOOD + "messages = ['stuck for \\d+ s']\nexceptions = ['StuckError']\n"  # an entry with evidence keys


def _cache_files(d: Path) -> list[Path]:
    return sorted(d.glob("catalog-*.json"))


def test_second_load_reads_the_cache_and_matches_the_same(tmp_path: Path) -> None:
    d = tmp_path / "cache"
    first = Catalog.load(cache_dir=d)
    [f] = _cache_files(d)
    cached = json.loads(f.read_text(encoding="utf-8"))
    assert cached["format"] == "mlx-console catalogue cache 1"
    assert [e["id"] for e in cached["data"]["entry"]] == [e.id for e in first.entries]
    assert cached["literals"]  # the evidence regexes' literals, found once
    again = Catalog.load(cache_dir=d)
    assert [(e.id, e.patterns, e.messages) for e in again.entries] == [(e.id, e.patterns, e.messages) for e in first.entries]
    text = "RuntimeError: [METAL] Command buffer execution failed: Insufficient Memory"
    assert triage_text(text, again)[0].categories == triage_text(text, first)[0].categories


def test_the_cache_is_what_is_read(tmp_path: Path) -> None:
    """A cache file for this very text is used as it is (here edited by hand to prove it): no TOML is parsed."""
    d = tmp_path / "cache"
    f = tmp_path / "user.toml"
    f.write_text(USER)
    Catalog.load([f], shipped=False, cache_dir=d)
    [path] = _cache_files(d)
    cached = json.loads(path.read_text(encoding="utf-8"))
    cached["data"]["entry"][0]["title"] = "Stuck (from the cache)"
    path.write_text(json.dumps(cached), encoding="utf-8")
    assert Catalog.load([f], shipped=False, cache_dir=d).entries[0].title == "Stuck (from the cache)"
    f.write_text(USER.replace("Kick it.", "Kick it harder."))  # other text: another key, parsed anew
    assert Catalog.load([f], shipped=False, cache_dir=d).entries[0].title == "Stuck"
    assert len(_cache_files(d)) == 2


@pytest.mark.parametrize("damage", ["", "{not json", '{"format": "other"}', '{"format": "mlx-console catalogue cache 1"}'])
def test_a_damaged_cache_file_is_rebuilt(tmp_path: Path, damage: str) -> None:
    d = tmp_path / "cache"
    Catalog.load(cache_dir=d)
    [path] = _cache_files(d)
    path.write_text(damage, encoding="utf-8")
    cat = Catalog.load(cache_dir=d)
    assert len(cat.entries) == len(Catalog.load(cache_dir=None).entries)
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == "mlx-console catalogue cache 1"


def test_an_unwritable_cache_dir_only_costs_the_parse(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the directory would be")
    cat = Catalog.load(cache_dir=blocker)
    assert cat.entries and blocker.read_text() == "a file where the directory would be"


def test_a_broken_catalogue_is_never_cached(tmp_path: Path) -> None:
    d = tmp_path / "cache"
    f = tmp_path / "bad.toml"
    f.write_text("[[entry]\nid=1")
    for _ in range(2):
        with pytest.raises(CatalogError, match=r"bad\.toml: not valid TOML"):
            Catalog.load([f], shipped=False, cache_dir=d)
    assert _cache_files(d) == []


def test_the_key_covers_the_code_that_reads_the_text(tmp_path: Path) -> None:
    text = shipped_catalog_text()
    a = catalog_cache.cache_path(text, tmp_path)
    assert a == catalog_cache.cache_path(text, tmp_path)
    assert a != catalog_cache.cache_path(text + "\n", tmp_path)
    assert catalog_cache.cache_path(text, None) is None


def test_only_the_newest_cache_files_of_a_kind_are_kept(tmp_path: Path) -> None:
    """Each edited catalogue (or new release) makes a new cache file: the oldest beyond KEEP are removed, never the
    one just written, and files of another kind (the pattern database) are left alone."""
    d = tmp_path / "cache"
    d.mkdir()
    other = d / "hs-0123.db"
    other.write_bytes(b"a pattern database")
    f = tmp_path / "user.toml"
    for i in range(cache_files.KEEP + 2):
        f.write_text(USER.replace("Kick it.", f"Kick it {i} times."))
        Catalog.load([f], shipped=False, cache_dir=d)
    kept = _cache_files(d)
    assert len(kept) == cache_files.KEEP
    assert catalog_cache.cache_path(f.read_text(), d) in kept  # the last one written
    assert other.exists()
