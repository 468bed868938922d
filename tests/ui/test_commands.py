"""The `:` grammar: every contract command parses, bad input is refused with what is allowed."""

from __future__ import annotations

import pytest

from mlx_console.ui.actions import ACTIONS, BY_ID, COMMANDS, bindings, display_key, validate_keymap
from mlx_console.ui.commands import CommandError, History, complete, parse

CONTRACT = ["start NAME", "stop NAME", "restart NAME", "logs NAME", "swap MODEL", "settings [MODEL]",
            "bench [SUITE]", "doctor", "filter TEXT", "theme NAME", "q", "metrics [NAME]",
            # added by issue 11
            "describe [NAME]", "messages", "search TEXT", "wrap [on|off]"]


def test_contract_commands_are_exactly_registered() -> None:
    assert sorted(f"{c} {a.args}".strip() for c, a in COMMANDS.items()) == sorted(CONTRACT)


@pytest.mark.parametrize("line,name,arg", [
    (":start demo", "start", "demo"), ("stop demo", "stop", "demo"), (":restart  demo ", "restart", "demo"),
    (":logs demo", "logs", "demo"), (":swap org/model-4bit", "swap", "org/model-4bit"),
    (":settings", "settings", ""), (":settings Qwen3", "settings", "Qwen3"), (":bench", "bench", ""),
    (":bench quick", "bench", "quick"), (":doctor", "doctor", ""), (":filter a b c", "filter", "a b c"),
    (":theme light", "theme", "light"), (":q", "q", ""), (":doc", "doctor", ""),
])
def test_parse(line: str, name: str, arg: str) -> None:
    p = parse(line)
    assert (p.name, p.arg) == (name, arg)


@pytest.mark.parametrize("line,message", [
    (":start", "missing NAME"), (":frobnicate", "unknown command :frobnicate"), (":doctor now", "takes no argument"),
    (":s", "unknown command"), ("", "empty command"),
])
def test_parse_errors(line: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse(line)


def test_complete_names_and_arguments() -> None:
    cands = {"backend": ["demo", "omlx-main"], "theme": ["dark", "light", "high-contrast"]}.get
    assert complete("st", lambda k: cands(k) or []) == ["start ", "stop "]
    assert complete("start ", lambda k: cands(k) or []) == ["start demo", "start omlx-main"]
    assert complete("theme hi", lambda k: cands(k) or []) == ["theme high-contrast"]
    assert complete("theme contrast", lambda k: cands(k) or []) == ["theme high-contrast"]
    assert complete("doctor x", lambda k: []) == []


def test_history_walks_like_a_shell() -> None:
    h = History()
    for line in ("start demo", "stop demo", "stop demo", "logs demo"):
        h.add(line)
    assert h.items == ["start demo", "stop demo", "logs demo"]
    assert [h.older(), h.older(), h.older(), h.older()] == ["logs demo", "stop demo", "start demo", "start demo"]
    assert h.newer() == "stop demo"
    assert h.newer() == "logs demo"
    assert h.newer() == ""


def test_every_binding_has_a_unique_id_and_keymap_is_checked() -> None:
    ids = [a.id for a in ACTIONS]
    assert len(ids) == len(set(ids))
    assert all(b.id for b in bindings(("console", "backend", "log", "bench")))
    assert validate_keymap({"backend.restart": "ctrl+r"}) == []
    problems = validate_keymap({"backend.reboot": "ctrl+r"})
    assert problems and "backend.reboot" in problems[0] and "backend.restart" in problems[0]
    assert display_key(BY_ID["backend.restart"], {"backend.restart": "ctrl+r"}) == "ctrl+r"
    assert display_key(BY_ID["console.help"]) == "?"


def test_history_survives_a_restart(tmp_path) -> None:
    path = tmp_path / "console_history"
    h = History()
    h.add("start demo")
    h.add("logs demo")
    h.save(path)
    again = History.load(path)
    assert again.older() == "logs demo" and again.older() == "start demo"
    assert History.load(tmp_path / "missing").items == []
