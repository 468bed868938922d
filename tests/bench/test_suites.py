"""Suite files: the bundled quick suite, user suites by name, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_console.core.bench import suites
from mlx_console.core.errors import ConfigError


def test_quick_is_bundled_and_complete() -> None:
    q = suites.load("quick")
    assert q.name == "quick" and q.path == "<bundled>/quick.toml"
    assert {c.kind for c in q.cells} == set(suites.KINDS)
    recall = next(c for c in q.cells if c.id == "chat.recall")
    assert len(recall.get("turns")) == 2 and recall.must_pass and recall.get("temperature") == 0
    assert [c.id for c in q.select("throughput,coding.fizzbuzz").cells] == [
        "coding.fizzbuzz", "throughput.short", "throughput.long"]


def test_user_suite_by_name_shadows_nothing_else(isolated_state: Path) -> None:
    d = suites.user_suites_dir()
    d.mkdir(parents=True)
    (d / "mine.toml").write_text('[[cell]]\nid = "t"\nkind = "throughput"\nprompt_tokens = 64\n')
    s = suites.load("mine")
    assert s.name == "mine" and s.cells[0].get("prompt_tokens") == 64
    assert suites.available() == ["mine", "quick"]


@pytest.mark.parametrize("text, line, msg", [
    ('name = "x"\nfoo = 1\n', 2, "unknown key 'foo'"),
    ('[[cell]]\nid = "a"\nkind = "chat"\nprompt = "p"\nexpct = ["x"]\n', 5, "unknown cell key 'expct'"),
    ('[[cell]]\nid = "a"\nkind = "chat"\nprompt = "p"\nstreams = 4\n', 5,
     "key 'streams' does not apply to kind 'chat' (only concurrency)"),
    ('[[cell]]\nid = "a"\nkind = "vibes"\n', 3, "kind 'vibes' is not one of chat"),
    ('[[cell]]\nid = "a"\nkind = "throughput"\ntrials = 0\n', 4, "key 'trials' = 0"),
    ('[[cell]]\nid = "a"\nkind = "coding"\nprompt = "p"\n', 1, "coding cell 'a' needs 'asserts'"),
    ('[[cell]]\nid = "a"\nkind = "tool_call"\nprompt = "p"\ntools = [{type = "function"}]\n', 1,
     "needs 'expect_calls' ([] for irrelevance)"),
    ('[[cell]]\nid = "a"\nkind = "throughput"\n[[cell]]\nid = "a"\nkind = "throughput"\n', 5,
     "duplicate cell id 'a'"),
    ('[defaults]\nmax_tokens = "many"\n[[cell]]\nid = "a"\nkind = "throughput"\n', 2,
     "key 'max_tokens' = 'many': expected a positive integer"),
    ('name = "x"\n', 1, "at least one [[cell]]"),
    ("[[cell]\n", 1, "not valid TOML"),
])
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, line: int, msg: str) -> None:
    p = tmp_path / "s.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        suites.load(p)
    assert str(e.value).startswith(f"{p}:") and msg in str(e.value)
    if "TOML" not in msg:
        assert str(e.value).startswith(f"{p}:{line}:"), str(e.value)


def test_missing_suite_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        suites.load(tmp_path / "nope.toml")
