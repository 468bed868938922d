"""The streaming client: parser rules on crafted SSE, and timing against the scripted stand-in's truth."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai_scripted import Script, ScriptedServer

from mlx_console.core.bench.client import StreamParser, StreamResult, chat_url, stream_chat


def chunk(delta: dict, finish: str | None = None, model: str = "m", **extra: object) -> str:
    return "data: " + json.dumps({"model": model, "choices": [{"index": 0, "delta": delta,
                                                                "finish_reason": finish}], **extra})


def feed(lines: list[tuple[str, float]]) -> StreamResult:
    p = StreamParser()
    for line, t in lines:
        p.feed(line, t)
        p.feed("", t)
    return p.close(lines[-1][1] + 0.01)


def test_ttft_skips_keepalives_comments_and_role_only_deltas() -> None:
    r = feed([
        (chunk({"role": "assistant", "content": ""}, model="keepalive"), 0.01),
        (": keepalive 10/100", 0.02),
        (chunk({"role": "assistant"}), 0.03),
        (chunk({"role": "assistant", "content": "Hi"}), 0.50),
        (chunk({"role": "assistant", "content": " there"}), 0.60),
        (chunk({"role": "assistant"}, "stop"), 0.61),
        ("data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": 2,
                                                          "prompt_tokens_details": {"cached_tokens": 0}}}), 0.62),
        ("data: [DONE]", 0.63),
    ])
    assert r.done and r.error is None
    assert r.t_first == 0.50 and r.t_last == 0.60
    assert r.keepalives == 1 and r.comments == 1 and r.content == "Hi there"
    assert r.finish_reason == "stop" and r.token_count_source == "usage"
    assert r.decode_tps == pytest.approx(1 / 0.10)
    assert r.prefill_tps == pytest.approx(100 / 0.50)
    assert r.cached_tokens == 0


def test_reasoning_and_tool_call_deltas_count_for_ttft_and_assemble() -> None:
    r = feed([
        (chunk({"reasoning": "think"}), 0.2),
        (chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "get_", "arguments": "{\"ci"}}]}), 0.3),
        (chunk({"tool_calls": [{"index": 0, "function": {"name": "weather", "arguments": "ty\": 1}"}}]}), 0.4),
        (chunk({}, "tool_calls"), 0.5),
        ("data: [DONE]", 0.6),
    ])
    assert r.t_first == 0.2 and r.t_first_content is None
    assert r.tool_calls == [{"id": "a", "name": "get_weather", "arguments": "{\"city\": 1}"}]
    assert r.reasoning == "think" and r.finish_reason == "tool_calls"
    # No usage: tokens are counted from chunks and the record says so.
    assert r.token_count_source == "chunks" and r.completion_tokens == 3


def test_early_stop_flag() -> None:
    r = feed([(chunk({"content": "x"}), 0.1), ("data: " + json.dumps(
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 10}}), 0.2), ("data: [DONE]", 0.3)])
    assert r.early_stop(100) and not r.early_stop(12)


def test_a_burst_of_buffered_chunks_has_no_decode_rate() -> None:
    usage = ("data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 64}}), 0.5)
    paced = feed([(chunk({"content": "x"}), 0.1 + i * 0.005) for i in range(64)] + [usage, ("data: [DONE]", 0.5)])
    assert not paced.buffered and paced.decode_tps == pytest.approx(63 / (63 * 0.005))
    # The client was starved: 63 tokens sat in the socket and were parsed 10 µs apart.
    burst = feed([(chunk({"content": "x"}), 0.1)] + [(chunk({"content": "x"}), 0.3 + i * 1e-5) for i in range(63)]
                 + [usage, ("data: [DONE]", 0.5)])
    assert burst.buffered and burst.decode_tps is None
    assert burst.to_json()["buffered"] is True
    # A busy client reading every 20 ms gets 8 chunks a read: coarse, but the rate is still measured.
    steady = feed([(chunk({"content": "x"}), 0.1 + (i // 8) * 0.02 + (i % 8) * 1e-5) for i in range(64)]
                  + [usage, ("data: [DONE]", 0.5)])
    assert not steady.buffered and steady.decode_tps is not None


def usage_line(n: int, t: float, **server: float) -> tuple[str, float]:
    return ("data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": n, **server}}), t)


def test_multi_token_chunks_apportion_the_first_chunk_by_characters() -> None:
    # oMLX: 128 tokens in 3 chunks of 40/48/40 characters, 30 ms apart; the server says 1,664 tok/s.
    r = feed([(chunk({"content": "a" * 40}), 0.10), (chunk({"content": "b" * 48}), 0.13),
              (chunk({"content": "c" * 40}), 0.16), usage_line(128, 0.17, generation_tokens_per_second=1664.0),
              ("data: [DONE]", 0.17)])
    # 40/128 of the characters came first → 40 tokens belong to prefill; 88 tokens in 60 ms after it.
    assert r.decode_tps == pytest.approx(88 / 0.06) and r.decode_reason is None
    assert r.to_json()["decode_tps"] == r.decode_tps


def test_a_rate_far_from_the_servers_own_timing_is_absent_with_a_reason() -> None:
    # The recorded failure: the chunks reached the client 0.1 ms apart → millions of tok/s by the old formula.
    r = feed([(chunk({"content": "a" * 40}), 0.1000), (chunk({"content": "b" * 48}), 0.1001),
              (chunk({"content": "c" * 40}), 0.1002), usage_line(128, 0.2, generation_tokens_per_second=1664.0),
              ("data: [DONE]", 0.2)])
    assert r.decode_tps is None
    assert "disagrees with the server's own 1,664.0 tok/s" in r.decode_reason
    assert r.to_json()["decode_reason"] == r.decode_reason
    one = feed([(chunk({"content": "a" * 90}), 0.1), usage_line(32, 0.2), ("data: [DONE]", 0.2)])
    assert one.decode_tps is None and "one chunk" in one.decode_reason


def run(coro_fn: Callable[[httpx.AsyncClient], object]) -> StreamResult:
    async def main() -> StreamResult:
        async with httpx.AsyncClient() as c:
            return await coro_fn(c)  # type: ignore[misc]
    return asyncio.run(main())


BODY = {"model": "m", "messages": [{"role": "user", "content": "go"}], "max_tokens": 21, "temperature": 0}


@pytest.mark.slow
def test_timing_matches_the_scripted_truth(scripted: Callable[..., ScriptedServer]) -> None:
    srv = scripted(default=Script(ttft_ms=150, gap_ms=10, keepalive=True, comments=3, prompt_tokens=300))
    r = run(lambda c: stream_chat(c, srv.base_url + "/v1", {**BODY, "seed": 7}))
    assert r.ok and r.done, r.error
    assert r.keepalives == 1 and r.comments == 3
    assert r.completion_tokens == 21 and r.token_count_source == "usage"
    # Truth: first token at 150 ms, then 20 gaps of 10 ms → 100 tok/s decode, prefill 300/0.150 s.
    assert 150 <= r.ttft_ms < 150 + 40
    assert r.decode_tps == pytest.approx(100, rel=0.10)
    assert r.prefill_tps == pytest.approx(2000, rel=0.25)
    assert r.e2e_s == pytest.approx(0.35, abs=0.06)
    sent = srv.requests[-1]
    assert "seed" not in sent and sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


@pytest.mark.slow
def test_cut_stream_is_truncated_and_errors_carry_the_server_message(
        scripted: Callable[..., ScriptedServer]) -> None:
    srv = scripted([Script(match="cut", cut_after=5), Script(match="busy", status=503, error="server busy"),
                    Script(match="nousage", usage=False)])
    cut = run(lambda c: stream_chat(c, srv.base_url, {**BODY, "messages": [{"role": "user", "content": "cut"}]}))
    assert not cut.ok and not cut.done and "truncated" in cut.error and cut.content_chunks == 5
    busy = run(lambda c: stream_chat(c, srv.base_url, {**BODY, "messages": [{"role": "user", "content": "busy"}]}))
    assert not busy.ok and busy.error == "HTTP 503: server busy"
    nou = run(lambda c: stream_chat(c, srv.base_url, {**BODY, "messages": [{"role": "user", "content": "nousage"}]}))
    assert nou.ok and nou.token_count_source == "chunks" and nou.completion_tokens == 21


def test_base_url_may_be_root_or_v1() -> None:
    assert chat_url("http://h:1") == chat_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"


def test_connection_refused_is_an_error_not_an_exception() -> None:
    r = run(lambda c: stream_chat(c, "http://127.0.0.1:9", BODY, timeout=2))
    assert not r.ok and "Connect" in r.error


@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=30), st.integers(0, 3))
def test_parser_reassembles_any_stream(pieces: list[str], keepalives: int) -> None:
    lines: list[tuple[str, float]] = [(chunk({"content": ""}, model="keepalive"), 0.0)] * keepalives
    lines += [(chunk({"role": "assistant", "content": p}), 0.1 * (i + 1)) for i, p in enumerate(pieces)]
    lines.append(("data: [DONE]", 9.0))
    r = feed(lines)
    assert r.content == "".join(pieces) and r.content_chunks == len(pieces) and r.keepalives == keepalives
    assert r.t_first == pytest.approx(0.1) and r.t_last == pytest.approx(0.1 * len(pieces))


@pytest.mark.slow
def test_scripted_standin_runs_as_a_process(port: int) -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "standins" / "openai_scripted.py"
    proc = subprocess.Popen([sys.executable, str(script), "serve", "--port", str(port), "--preset", "good"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and "scripted OpenAI server on" in proc.stdout.readline()
        body = {**BODY, "messages": [{"role": "user", "content": "What is the capital of France?"}]}
        r = run(lambda c: stream_chat(c, f"http://127.0.0.1:{port}", body))
        assert r.ok and r.content == "Paris" and r.finish_reason == "stop"
    finally:
        proc.terminate()
        proc.wait(10)
