"""Async streaming OpenAI-compatible client that timestamps every SSE event (TTFT, decode rate, e2e).

The parser is a plain state machine fed one line at a time, so its cost per chunk can be measured
on its own (bench/client_parse.py). Keepalive chunks, SSE comments and role-only deltas are skipped
for TTFT; a stream that ends without `data: [DONE]` is reported as truncated.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from mlx_console.core.backends.base import headers

# A trial that produced less than this share of max_tokens stopped early (backends.md §4).
EARLY_STOP_RATIO = 0.8
# Chunks parsed closer together than this were already sitting in the socket buffer when the client read them
# (a starved client, or a server that flushes in bursts): their spacing says nothing about decode speed.
# 50 µs a token is 20,000 tok/s, far beyond any server's per-chunk pace.
BUFFERED_GAP_S = 50e-6
# Usage extras oMLX adds to its final usage chunk (backends.md §2.6).
# A client decode rate this many times off the server's own (oMLX's generation_tokens_per_second) is not kept.
SERVER_DISAGREES = 3.0
SERVER_TIMING_KEYS = ("time_to_first_token", "prompt_eval_duration", "generation_duration", "total_time",
                      "prompt_tokens_per_second", "generation_tokens_per_second", "model_load_duration")


@dataclass
class StreamResult:
    """Everything measured and received for one streamed request. Times are seconds since send."""

    ok: bool = False
    error: str | None = None
    http_status: int | None = None
    done: bool = False  # saw `data: [DONE]`
    t_first: float | None = None  # first chunk carrying content, reasoning or a tool-call delta
    t_first_content: float | None = None  # first visible content (thinking models)
    t_last: float | None = None  # last such chunk
    t_end: float | None = None  # stream closed
    content: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {"id","name","arguments"(str)}
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    content_chunks: int = 0  # chunks that carried content/reasoning/tool deltas
    keepalives: int = 0  # oMLX `"model":"keepalive"` chunks
    comments: int = 0  # SSE comment lines (mlx_lm `: keepalive n/m`, oMLX `: keep-alive`)
    chunk_times: list[float] = field(default_factory=list)
    chunk_chars: list[int] = field(default_factory=list)  # characters each content chunk carried
    connect_ms: float | None = None  # opening the connection, before "send" (not part of TTFT)
    fingerprint: str | None = None  # system_fingerprint (mlx_lm.server: "<mlx-lm>-<mlx>-<platform>")

    # ---- derived metrics ----
    @property
    def prompt_tokens(self) -> int | None:
        return self.usage.get("prompt_tokens") if self.usage else None

    @property
    def completion_tokens(self) -> int:
        tokens = self.usage.get("completion_tokens") if self.usage else None
        if isinstance(tokens, int):
            return tokens
        return self.content_chunks

    @property
    def token_count_source(self) -> str:
        """`usage` when the server reported it, else `chunks` (one token per content chunk, an estimate)."""
        if self.usage and isinstance(self.usage.get("completion_tokens"), int):
            return "usage"
        return "chunks"

    @property
    def cached_tokens(self) -> int | None:
        if not self.usage:
            return None
        details = self.usage.get("prompt_tokens_details") or {}
        value = details.get("cached_tokens") if isinstance(details, dict) else None
        return value if isinstance(value, int) else None

    @property
    def ttft_ms(self) -> float | None:
        return None if self.t_first is None else self.t_first * 1000.0

    @property
    def decode_tps(self) -> float | None:
        """Tokens after the first chunk over the time after it (the first chunk belongs to prefill). A chunk may
        carry many tokens (oMLX: 128 tokens in 2-4 chunks): the first chunk's share of completion_tokens is
        apportioned by characters, unless every chunk carried one token. None when it cannot be measured
        honestly: `decode_reason` says why."""
        return self._decode()[0]

    @property
    def decode_reason(self) -> str | None:
        """Why decode_tps is absent (None when it is there)."""
        return self._decode()[1]

    def _decode(self) -> tuple[float | None, str | None]:
        n, times = self.completion_tokens, self.chunk_times
        if self.t_first is None or self.t_last is None or n < 2:
            return None, "fewer than 2 tokens generated"
        if len(times) < 2 or self.t_last <= self.t_first:
            return None, (f"all {n} tokens arrived in one chunk: no time between chunks to measure decode by")
        if self.buffered:
            return None, "the chunks reached the client in one burst (read from the socket buffer)"
        chars = self.chunk_chars
        total = sum(chars)
        if len(times) == n or not total or len(chars) != len(times):
            first = 1.0 if len(times) == n else n / len(times)
        else:
            first = n * chars[0] / total
        after = n - max(1.0, first)
        if after <= 0:
            return None, "the first chunk carried (nearly) every token"
        rate = after / (self.t_last - self.t_first)
        server = (self.usage or {}).get("generation_tokens_per_second")
        if isinstance(server, int | float) and server > 0 and not \
                1 / SERVER_DISAGREES <= rate / server <= SERVER_DISAGREES:
            return None, (f"client rate {rate:,.1f} tok/s disagrees with the server's own "
                          f"{server:,.1f} tok/s (over {len(times)} chunks): not kept")
        return rate, None

    @property
    def buffered(self) -> bool:
        """True when more than half of the content chunks reached the client in one burst (chunks parsed
        under BUFFERED_GAP_S apart): t_last − t_first then measures the client's read, not the server's
        decode, and the rate would be invented. Steady reads of a few chunks each stay measurable."""
        times = self.chunk_times
        if len(times) < 3:
            return False
        largest = run = 1
        for a, b in zip(times, times[1:], strict=False):
            run = run + 1 if b - a < BUFFERED_GAP_S else 1
            largest = max(largest, run)
        return largest * 2 > len(times)

    @property
    def prefill_tps(self) -> float | None:
        """Client-side estimate: prompt_tokens / TTFT (includes HTTP and queueing)."""
        pt = self.prompt_tokens
        if not pt or not self.t_first:
            return None
        return pt / self.t_first

    @property
    def e2e_s(self) -> float | None:
        return self.t_end

    def early_stop(self, max_tokens: int | None) -> bool:
        return bool(max_tokens) and self.completion_tokens < EARLY_STOP_RATIO * max_tokens  # type: ignore[operator]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "error": self.error, "http_status": self.http_status, "done": self.done,
            "ttft_ms": self.ttft_ms, "decode_tps": self.decode_tps, "decode_reason": self.decode_reason,
            "prefill_tps": self.prefill_tps,
            "e2e_s": self.e2e_s, "t_first_content_ms": None if self.t_first_content is None
            else self.t_first_content * 1000.0,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens, "token_count_source": self.token_count_source,
            "buffered": self.buffered,
            "finish_reason": self.finish_reason, "content": self.content, "reasoning": self.reasoning,
            "tool_calls": self.tool_calls, "content_chunks": self.content_chunks,
            "keepalives": self.keepalives, "comments": self.comments, "connect_ms": self.connect_ms,
            "server_timing": self.server_timing,
        }

    @property
    def server_timing(self) -> dict[str, Any] | None:
        """oMLX's own timings from its usage chunk (seconds / tok/s), to set beside the client's."""
        if not self.usage:
            return None
        extra = {k: self.usage[k] for k in SERVER_TIMING_KEYS if k in self.usage}
        return extra or None


class StreamParser:
    """Feed SSE lines (without the newline) with their arrival time; accumulates a StreamResult."""

    __slots__ = ("result", "_tools", "_data", "_content", "_reasoning")

    def __init__(self) -> None:
        self.result = StreamResult()
        self._tools: dict[int, dict[str, Any]] = {}
        self._data: list[str] = []
        # Joined once at close: `str +=` on an attribute copies the whole answer every chunk.
        self._content: list[str] = []
        self._reasoning: list[str] = []

    def feed(self, line: str, t: float) -> None:
        if not line:
            # Blank line ends an event (data lines of one event are joined with "\n").
            if self._data:
                data, self._data = "\n".join(self._data), []
                self._event(data, t)
            return
        c = line[0]
        if c == ":":
            self.result.comments += 1
            return
        if c == "d" and line.startswith("data:"):
            self._data.append(line[6:] if line.startswith("data: ") else line[5:])
        # Other fields (event:, id:, retry:) carry nothing we use.

    def close(self, t: float) -> StreamResult:
        if self._data:
            self.feed("", t)
        r = self.result
        r.t_end = t
        r.content = "".join(self._content)
        r.reasoning = "".join(self._reasoning)
        if self._tools:
            r.tool_calls = [self._tools[i] for i in sorted(self._tools)]
        return r

    def _event(self, data: str, t: float) -> None:
        r = self.result
        if data == "[DONE]":
            r.done = True
            return
        try:
            obj = json.loads(data)
        except ValueError:
            r.error = f"bad SSE data (not JSON): {data[:200]}"
            return
        if not isinstance(obj, dict):
            return
        if "error" in obj and not obj.get("choices"):
            err = obj["error"]
            r.error = err.get("message", str(err)) if isinstance(err, dict) else str(err)
            return
        if r.fingerprint is None and obj.get("system_fingerprint"):
            r.fingerprint = obj["system_fingerprint"]
        if obj.get("model") == "keepalive":
            r.keepalives += 1
            return
        usage = obj.get("usage")
        if usage:
            r.usage = usage
        choices = obj.get("choices")
        if not choices:
            return
        ch = choices[0]
        fr = ch.get("finish_reason")
        if fr:
            r.finish_reason = fr
        delta = ch.get("delta") or ch.get("message") or {}
        carried = False
        size = 0
        text = delta.get("content")
        if text is None and "text" in ch:  # /v1/completions
            text = ch.get("text")
        if text:
            self._content.append(text)
            carried = True
            size += len(text)
            if r.t_first_content is None:
                r.t_first_content = t
        reasoning = delta.get("reasoning") or delta.get("reasoning_content")
        if reasoning:
            self._reasoning.append(reasoning)
            carried = True
            size += len(reasoning)
        tcs = delta.get("tool_calls")
        if tcs:
            carried = True
            for i, tc in enumerate(tcs):
                idx = tc.get("index", i)
                slot = self._tools.setdefault(idx, {"id": None, "name": "", "arguments": ""})
                if tc.get("id"):
                    slot["id"] = tc["id"]
                fn = tc.get("function") or {}
                if fn.get("name"):
                    slot["name"] += fn["name"]
                args = fn.get("arguments")
                if isinstance(args, str):
                    slot["arguments"] += args
                    size += len(args)
                elif args is not None:
                    slot["arguments"] += json.dumps(args)
        if carried:
            r.content_chunks += 1
            r.chunk_times.append(t)
            r.chunk_chars.append(size)
            if r.t_first is None:
                r.t_first = t
            r.t_last = t


def chat_url(base_url: str) -> str:
    """BASE_URL may be the server root or its /v1."""
    return v1_root(base_url) + "/chat/completions"


def v1_root(base_url: str) -> str:
    b = base_url.rstrip("/")
    return b if b.endswith("/v1") else b + "/v1"


def server_root(base_url: str) -> str:
    b = base_url.rstrip("/")
    return b[: -len("/v1")] if b.endswith("/v1") else b




async def stream_chat(client: httpx.AsyncClient, base_url: str, body: dict[str, Any],
                      api_key: str | None = None, timeout: float = 300.0) -> StreamResult:
    """POST a streamed chat completion and time it. Never raises for HTTP/stream errors: see .error.
    Times count from the moment the request headers go out; opening the connection (a thread-pool
    address lookup in anyio, several ms on a busy box) is reported apart as connect_ms."""
    body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    body.pop("seed", None)  # a seed disables batching in mlx_lm.server (backends.md §1.8)
    parser = StreamParser()
    clock = time.perf_counter
    t0 = clock()
    sent: list[float] = []

    async def trace(name: str, info: dict[str, Any]) -> None:
        if not sent and name == "http11.send_request_headers.started":
            sent.append(clock())

    def finish() -> StreamResult:
        result = parser.close(clock() - t0)
        if sent:
            _shift(result, sent[0] - t0)
        return result

    try:
        async with client.stream("POST", chat_url(base_url), json=body, headers=headers(api_key),
                                 timeout=timeout, extensions={"trace": trace}) as resp:
            parser.result.http_status = resp.status_code
            if resp.status_code != 200:
                raw = (await resp.aread()).decode("utf-8", "replace")
                result = finish()
                result.error = f"HTTP {resp.status_code}: {_error_message(raw)}"
                return result
            async for line in resp.aiter_lines():
                parser.feed(line, clock() - t0)
    except httpx.HTTPError as e:
        result = finish()
        result.error = _describe_http_error(e, result)
        return result
    result = finish()
    if result.error is None and not result.done:
        result.error = "stream truncated: ended without [DONE]"
    result.ok = result.error is None
    return result


def _shift(r: StreamResult, offset: float) -> None:
    r.connect_ms = offset * 1000.0
    for name in ("t_first", "t_first_content", "t_last", "t_end"):
        v = getattr(r, name)
        if v is not None:
            setattr(r, name, v - offset)
    r.chunk_times = [t - offset for t in r.chunk_times]


def _describe_http_error(e: httpx.HTTPError, r: StreamResult) -> str:
    name = type(e).__name__
    if r.content_chunks:
        return f"stream truncated after {r.content_chunks} chunks: {name}: {e}"
    return f"{name}: {e}" if str(e) else name


def _error_message(raw: str) -> str:
    try:
        obj = json.loads(raw)
    except ValueError:
        return raw.strip()[:300] or "(empty body)"
    if isinstance(obj, dict):
        err = obj.get("error", obj.get("detail", obj))
        if isinstance(err, dict):
            return str(err.get("message", err))
        return str(err)
    return raw.strip()[:300]
