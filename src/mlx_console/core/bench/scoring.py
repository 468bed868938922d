"""Deterministic scoring of answers: chat checks, code extraction, tool calls (transport + BFCL arguments)."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Score:
    passed: bool
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- chat

def repetition_loop(text: str, min_repeats: int = 4, max_unit: int = 40) -> str | None:
    """The repeated unit when the text ends in (or is mostly) one short unit repeated ≥ min_repeats times."""
    t = text.strip()
    if len(t) < 8:
        return None
    # A short unit (word, token or phrase) repeated back to back.
    m = re.search(r"(.{1," + str(max_unit) + r"}?)\1{" + str(min_repeats - 1) + ",}", t, flags=re.S)
    if m and len(m.group(0)) >= max(16, len(t) // 3):
        return m.group(1)
    words = t.split()
    if len(words) >= 8:
        # The same n-gram over and over with small variations (e.g. "tal tal tal").
        for n in (1, 2, 3):
            grams = [tuple(words[i:i + n]) for i in range(0, len(words) - n + 1, n)]
            if grams:
                top = max(set(grams), key=grams.count)
                if grams.count(top) >= max(min_repeats, int(0.6 * len(grams))):
                    return " ".join(top)
    return None


def score_chat(content: str, finish_reason: str | None, expect: list[str], forbid: list[str] | None = None,
               require_stop: bool = True) -> Score:
    """finish_reason stop, visible non-empty content, no repetition loop, expected substrings (any case)."""
    visible = content.strip()
    if not visible:
        return Score(False, "empty answer (no visible content)")
    loop = repetition_loop(visible)
    if loop is not None:
        return Score(False, f"repetition loop: {loop[:30]!r} repeated")
    if require_stop and finish_reason != "stop":
        return Score(False, f"finish_reason {finish_reason!r}, expected 'stop' (answer cut off)")
    low = visible.lower()
    missing = [e for e in expect if e.lower() not in low]
    if missing:
        return Score(False, f"expected {missing[0]!r} not in answer: {_preview(visible)}")
    bad = [f for f in (forbid or []) if f.lower() in low]
    if bad:
        return Score(False, f"forbidden {bad[0]!r} in answer: {_preview(visible)}")
    return Score(True, "")


def _preview(text: str, n: int = 80) -> str:
    t = " ".join(text.split())
    return repr(t if len(t) <= n else t[:n] + "…")


# ---------------------------------------------------------------- coding

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)


def extract_code(text: str) -> str | None:
    """The first python (or unlabelled) fenced block; else the whole answer if it parses as Python."""
    blocks: list[tuple[str, str]] = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    for lang, body in blocks:
        if lang in ("python", "py", "python3"):
            return body.strip("\n")
    for lang, body in blocks:
        if lang == "":
            return body.strip("\n")
    stripped = text.strip()
    if stripped and ("def " in stripped or "import " in stripped):
        try:
            ast.parse(stripped)
            return stripped
        except SyntaxError:
            return None
    return None


# ---------------------------------------------------------------- tool calls

@dataclass
class ParsedCall:
    name: str
    arguments: Any  # decoded JSON (dict when well formed) or the raw string when not JSON
    raw_arguments: str


def calls_in_content(content: str) -> tuple[str, list[ParsedCall]] | None:
    """A tool call the server left in `content` (pattern B): returns (format, calls) or None."""
    text = content.strip()
    if not text:
        return None
    if "[TOOL_CALLS]" in text:
        after = text.split("[TOOL_CALLS]", 1)[1].strip()
        return "mistral [TOOL_CALLS]", _json_calls(after) or [ParsedCall("?", after, after)]
    m = re.search(r"<function(?:\s+name)?\s*=?\s*[\"']?([\w.-]*)[\"']?[^>]*>(.*?)(?:</function>|\Z)", text, re.S)
    if m:
        name = m.group(1) or "?"
        body = m.group(2).strip()
        return "<function> tag", [ParsedCall(name, _maybe_json(body), body)]
    m = re.search(r"<tool_call>(.*?)(?:</tool_call>|\Z)", text, re.S)
    if m:
        return "<tool_call> tag", _json_calls(m.group(1).strip()) or [ParsedCall("?", m.group(1), m.group(1))]
    start = text.find("{")
    if start >= 0:
        calls = _json_calls(text[start:])
        if calls:
            return "JSON {name, parameters|arguments}", calls
    return None


def _maybe_json(s: str) -> Any:
    try:
        return json.loads(s)
    except ValueError:
        return s


def _json_calls(s: str) -> list[ParsedCall]:
    obj: Any
    try:
        obj = json.loads(s)
    except ValueError:
        try:
            obj, _ = json.JSONDecoder().raw_decode(s)
        except ValueError:
            return []
    items = obj if isinstance(obj, list) else [obj]
    out = []
    for it in items:
        if isinstance(it, dict) and isinstance(it.get("name"), str) and (
                "parameters" in it or "arguments" in it):
            args = it.get("parameters", it.get("arguments"))
            raw = args if isinstance(args, str) else json.dumps(args)
            out.append(ParsedCall(it["name"], _maybe_json(args) if isinstance(args, str) else args, raw))
    return out


def score_tool_call(tool_calls: list[dict[str, Any]], content: str, finish_reason: str | None,
                    expect_calls: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Score:
    """Two layers. Transport: calls in `tool_calls`, JSON-object arguments, finish_reason tool_calls.
    Arguments (BFCL-style): count, name, required present, no unexpected, type (int→float ok), allowed value.
    With no expected call (irrelevance) the cell passes only if no call is made at all."""
    leaked = calls_in_content(content) if not tool_calls else None
    if not expect_calls:
        if tool_calls:
            names = ", ".join(c.get("name") or "?" for c in tool_calls)
            return Score(False, f"irrelevance: made a call ({names}) where none applies",
                         {"layer": "arguments"})
        if leaked:
            return Score(False, f"irrelevance: a call to {leaked[1][0].name} left in content ({leaked[0]})",
                         {"layer": "transport"})
        return Score(True, "", {"layer": None})
    if not tool_calls:
        if leaked:
            fmt, calls = leaked
            return Score(False, f"tool call left in content as {fmt} (name {calls[0].name!r}), tool_calls "
                                f"empty: the server's tool parser did not parse it (upstream pattern B), "
                                f"not a flag problem", {"layer": "transport", "content_format": fmt})
        return Score(False, f"no tool call (finish_reason {finish_reason!r}, content {_preview(content)})",
                     {"layer": "transport"})
    parsed: list[ParsedCall] = []
    for c in tool_calls:
        raw = c.get("arguments") or ""
        try:
            args = json.loads(raw) if raw else {}
        except ValueError:
            return Score(False, f"arguments of {c.get('name')!r} are not JSON: {raw[:80]!r}",
                         {"layer": "transport"})
        if not isinstance(args, dict):
            return Score(False, f"arguments of {c.get('name')!r} are not a JSON object: {raw[:80]!r}",
                         {"layer": "transport"})
        parsed.append(ParsedCall(c.get("name") or "", args, raw))
    if finish_reason != "tool_calls":
        return Score(False, f"finish_reason {finish_reason!r} with tool_calls present (expected 'tool_calls')",
                     {"layer": "transport"})
    reason = check_arguments(parsed, expect_calls, tools)
    if reason:
        return Score(False, reason, {"layer": "arguments"})
    return Score(True, "", {"layer": None})


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "array": (list,), "object": (dict,), "null": (type(None),),
}


def check_arguments(calls: list[ParsedCall], expect_calls: list[dict[str, Any]],
                    tools: list[dict[str, Any]]) -> str | None:
    """BFCL-style AST check; returns the first failure or None. expect_calls items:
    {"name": str, "args": {param: [allowed values...]}} — an empty list means any value is fine."""
    if len(calls) != len(expect_calls):
        return f"expected {len(expect_calls)} call(s), got {len(calls)}"
    schemas = {t["function"]["name"]: t["function"].get("parameters") or {} for t in tools
               if isinstance(t, dict) and "function" in t}
    for call, exp in zip(calls, expect_calls, strict=True):
        if call.name != exp["name"]:
            return f"called {call.name!r}, expected {exp['name']!r}"
        schema = schemas.get(call.name, {})
        props: dict[str, Any] = schema.get("properties") or {}
        args: dict[str, Any] = call.arguments
        for req in schema.get("required") or []:
            if req not in args:
                return f"{call.name}: required argument {req!r} missing"
        for key, value in args.items():
            if props and key not in props:
                return f"{call.name}: unexpected argument {key!r}"
            typ = (props.get(key) or {}).get("type")
            if typ in _JSON_TYPES:
                ok = isinstance(value, _JSON_TYPES[typ]) and not (typ in ("integer", "number")
                                                                   and isinstance(value, bool))
                if not ok:
                    return f"{call.name}: argument {key!r} is {type(value).__name__}, expected {typ}"
            allowed = (exp.get("args") or {}).get(key)
            if allowed and not any(_same_value(value, a) for a in allowed):
                return f"{call.name}: argument {key!r} = {value!r}, allowed {allowed!r}"
        for key in exp.get("args") or {}:
            if key not in args and "" not in (exp["args"][key] or []):
                return f"{call.name}: expected argument {key!r} missing"
    return None


def _same_value(value: Any, allowed: Any) -> bool:
    if isinstance(value, str) and isinstance(allowed, str):
        return value.strip().lower() == allowed.strip().lower()
    if isinstance(value, (int, float)) and isinstance(allowed, (int, float)) \
            and not isinstance(value, bool):
        return float(value) == float(allowed)
    return bool(value == allowed)
