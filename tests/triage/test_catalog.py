"""The catalogue file format: shipped entries, user files that extend/override, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_console.core.logs.patterns import CATEGORIES, Catalog, CatalogError
from mlx_console.core.logs.triage import explain, triage_text

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
def test_broken_user_entry_names_file_line_and_entry(tmp_path: Path, mutate, expect: str,
                                                     what: str = "entry 'my-thing'") -> None:
    f = tmp_path / "broken.toml"
    f.write_text("# a comment\n" + mutate(GOOD))
    with pytest.raises(CatalogError) as ei:
        Catalog.load([f])
    msg = str(ei.value)
    assert str(f) in msg and expect in msg and "line 3" in msg
    assert what in msg


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


QUIET = """
[[quiet]]
id = "vendor-banner"
pattern = 'my vendor says: ignore this'
why = "a vendor's banner, no bug"
"""
STREAM = """2026-04-24 21:49:12,869 - omlx.engine_core - ERROR - [-] - Engine loop error: There is no Stream(gpu, 0) in current thread.
Traceback (most recent call last):
  File "/Users/u/omlx/omlx/scheduler.py", line 3743, in step
    responses = self.batch_generator.next_generated()
  File "/Users/u/env/lib/python3.11/site-packages/mlx_lm/models/cache.py", line 1101, in merge
    new_batch.filter(indices)
RuntimeError: [METAL] Command buffer execution failed: Insufficient Memory (00000008:kIOGPUCommandBufferCallbackErrorOutOfMemory)"""


def test_shipped_quiet_rule_silences_every_entry_on_the_stream_error() -> None:
    """The thread-local stream error is no category, whatever else the event names: here an engine loop error
    and a Metal out-of-memory line (a pattern entry that never had the stream error in its not_context)."""
    cat = Catalog.load()
    assert [q.id for q in cat.quiet] == ["mlx-thread-stream", "omlx-admin-settings-refused"]
    assert triage_text(STREAM) == []
    without = triage_text(STREAM.replace("There is no Stream(gpu, 0) in current thread.", "boom"))
    assert "oom_inference" in without[0].categories


def test_explain_says_which_quiet_rule_silenced_an_entry() -> None:
    [t] = triage_text(STREAM, include_all=True)
    verdicts = explain(t)
    assert verdicts and not any(v.chosen for v in verdicts)
    silenced = [r for v in verdicts for r in v.reasons if r.startswith("silenced:")]
    assert silenced and "line 1 matches the catalogue's quiet rule 'mlx-thread-stream'" in silenced[0]
    # the event is shown (an error) with the rule's own first move rather than a search query
    assert t.quiet and t.to_json()["quiet"] == "mlx-thread-stream"
    assert t.first_move.startswith("MLX's thread-local stream error") and t.categories == []


def test_user_quiet_rule_adds_and_replaces_by_id(tmp_path: Path) -> None:
    f = tmp_path / "quiet.toml"
    f.write_text(GOOD + QUIET)
    cat = Catalog.load([f])
    assert [q.id for q in cat.quiet] == ["mlx-thread-stream", "omlx-admin-settings-refused", "vendor-banner"]
    assert triage_text("my backend is stuck at step 3", cat)
    assert triage_text("my backend is stuck at step 3; my vendor says: ignore this", cat) == []
    f.write_text(QUIET.replace("vendor-banner", "mlx-thread-stream"))
    cat = Catalog.load([f])
    assert [q.id for q in cat.quiet] == ["mlx-thread-stream", "omlx-admin-settings-refused"]
    assert triage_text(STREAM, cat)  # the shipped rule was replaced: the stream error is no longer quiet


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda s: s.replace("ignore this'", "(unclosed'"), "invalid regex"),
        (lambda s: s.replace('why = "a vendor\'s banner, no bug"', ""), "'why' must be a non-empty string"),
        (lambda s: s + 'category = "none"\n', "unknown key(s) category (allowed: id, pattern, why)"),
        (lambda s: s.replace('"vendor-banner"', '"a b"'), "needs an 'id'"),
    ],
)
def test_broken_quiet_rule_names_file_line_and_key(tmp_path: Path, mutate, expect: str) -> None:
    test_broken_user_entry_names_file_line_and_entry(tmp_path, lambda _: mutate(QUIET), expect, "quiet rule")


def test_unknown_top_level_table_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "odd.toml"
    f.write_text("[[rule]]\nid = 'x'\n")
    with pytest.raises(CatalogError, match=r"unknown top-level key\(s\) rule \(only \[\[entry\]\] and \[\[quiet\]\]"):
        Catalog.load([f])
