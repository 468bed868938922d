"""Scoring against known answers: chat checks, code extraction, tool calls (transport + BFCL arguments)."""

from __future__ import annotations

import json

import pytest

from mlx_console.core.bench import scoring

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "required": ["city"],
    "properties": {"city": {"type": "string"}, "days": {"type": "number"},
                   "unit": {"type": "string", "enum": ["c", "f"]}}}}}]
EXPECT = [{"name": "get_weather", "args": {"city": ["Paris", "Paris, France"]}}]


def call(name: str, args: object) -> dict:
    return {"id": "c1", "name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}


@pytest.mark.parametrize("text, loop", [
    ("tal tal tal tal tal tal tal tal", "tal"),
    ("VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV", "V"),
    ("The capital of France is Paris.", None),
    ("Paris", None),
    ("one two three four five six seven eight nine ten", None),
])
def test_repetition_loop(text: str, loop: str | None) -> None:
    got = scoring.repetition_loop(text)
    assert (got is None) == (loop is None)
    if loop:
        assert got is not None and got.strip() == loop


def test_chat_checks_in_order() -> None:
    assert scoring.score_chat("Paris.", "stop", ["paris"]).passed
    assert scoring.score_chat("  \n", "stop", []).reason == "empty answer (no visible content)"
    assert "repetition loop" in scoring.score_chat("la la la la la la la la la", "stop", []).reason
    assert "finish_reason 'length'" in scoring.score_chat("Paris is", "length", ["Paris"]).reason
    assert "'Paris' not in answer" in scoring.score_chat("Lyon", "stop", ["Paris"]).reason
    assert "forbidden" in scoring.score_chat("Paris, not Lyon", "stop", ["Paris"], ["lyon"]).reason


def test_extract_code() -> None:
    text = "Here:\n```\nx = 0\n```\nand\n```python\ndef f():\n    return 1\n```\n"
    assert scoring.extract_code(text) == "def f():\n    return 1"
    assert scoring.extract_code("```\nprint(1)\n```") == "print(1)"
    assert scoring.extract_code("def f():\n    return 2") == "def f():\n    return 2"
    assert scoring.extract_code("no code here") is None
    # An unterminated fence (cut at max_tokens) still yields what was written.
    assert scoring.extract_code("```python\ndef f():\n    pass") == "def f():\n    pass"


@pytest.mark.parametrize("content, fmt, name", [
    ('{"name": "get_weather", "parameters": {"city": "Paris"}}', "JSON", "get_weather"),
    ('Sure! {"name": "get_weather", "arguments": {"city": "Paris"}}', "JSON", "get_weather"),
    ('[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}]', "[TOOL_CALLS]", "get_weather"),
    ('<function=get_weather>{"city": "Paris"}</function>', "<function>", "get_weather"),
    ('<function name="get_weather">{"city": "Paris"}</function>', "<function>", "get_weather"),
    ('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>', "<tool_call>",
     "get_weather"),
])
def test_call_left_in_content_is_a_transport_failure(content: str, fmt: str, name: str) -> None:
    found = scoring.calls_in_content(content)
    assert found is not None and fmt in found[0] and found[1][0].name == name
    s = scoring.score_tool_call([], content, "stop", EXPECT, TOOLS)
    assert not s.passed and s.extra["layer"] == "transport"
    assert "pattern B" in s.reason and "not a flag problem" in s.reason


def test_plain_text_is_not_a_call() -> None:
    assert scoring.calls_in_content("It is sunny in Paris {maybe}.") is None
    s = scoring.score_tool_call([], "It is sunny.", "stop", EXPECT, TOOLS)
    assert not s.passed and s.extra["layer"] == "transport" and "no tool call" in s.reason


def test_transport_layer() -> None:
    ok = scoring.score_tool_call([call("get_weather", {"city": "Paris"})], "", "tool_calls", EXPECT, TOOLS)
    assert ok.passed and ok.extra["layer"] is None
    bad_json = scoring.score_tool_call([call("get_weather", "{city: Paris")], "", "tool_calls", EXPECT, TOOLS)
    assert not bad_json.passed and bad_json.extra["layer"] == "transport" and "not JSON" in bad_json.reason
    not_obj = scoring.score_tool_call([call("get_weather", "[1]")], "", "tool_calls", EXPECT, TOOLS)
    assert "not a JSON object" in not_obj.reason
    wrong_finish = scoring.score_tool_call([call("get_weather", {"city": "Paris"})], "", "stop", EXPECT, TOOLS)
    assert not wrong_finish.passed and "finish_reason 'stop'" in wrong_finish.reason


@pytest.mark.parametrize("calls, reason", [
    ([call("get_weather", {"city": "paris"})], None),  # case-insensitive string match
    ([call("get_weather", {"city": "Paris", "days": 3})], None),  # int accepted for number
    ([call("get_time", {"city": "Paris"})], "called 'get_time'"),
    ([call("get_weather", {})], "required argument 'city' missing"),
    ([call("get_weather", {"city": "Paris", "zip": 1})], "unexpected argument 'zip'"),
    ([call("get_weather", {"city": 75})], "expected string"),
    ([call("get_weather", {"city": "Paris", "days": True})], "expected number"),
    ([call("get_weather", {"city": "Lyon"})], "allowed ['Paris', 'Paris, France']"),
    ([call("get_weather", {"city": "Paris"})] * 2, "expected 1 call(s), got 2"),
])
def test_arguments_layer(calls: list[dict], reason: str | None) -> None:
    s = scoring.score_tool_call(calls, "", "tool_calls", EXPECT, TOOLS)
    if reason is None:
        assert s.passed, s.reason
    else:
        assert not s.passed and s.extra["layer"] == "arguments" and reason in s.reason


def test_irrelevance_passes_only_without_any_call() -> None:
    assert scoring.score_tool_call([], "Bonjour !", "stop", [], TOOLS).passed
    made = scoring.score_tool_call([call("get_weather", {"city": "Paris"})], "", "tool_calls", [], TOOLS)
    assert not made.passed and made.extra["layer"] == "arguments"
    leaked = scoring.score_tool_call([], '{"name": "get_weather", "arguments": {}}', "stop", [], TOOLS)
    assert not leaked.passed and leaked.extra["layer"] == "transport"
