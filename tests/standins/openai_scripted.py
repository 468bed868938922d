"""A scripted OpenAI-compatible chat server with exact, known timing and known answers.

Each request is matched to a `Script` by a substring of its last user message (first match wins; the
default script echoes a deterministic pseudo-answer of max_tokens tokens). A script fixes the TTFT,
the spacing between chunks, the content (or reasoning, or tool calls streamed as deltas), the
finish_reason, usage (prompt/cached tokens), oMLX keepalive chunks, SSE comments, a stream cut
without [DONE], HTTP errors, and two planted bugs: cross-talk under concurrency and a prompt-cache
bug (a conversation that is a prefix of an earlier longer one gets a different answer).

Use it in-process (`ScriptedServer(...)` as a context manager) or as a process:
`python tests/standins/openai_scripted.py serve --port N [--preset good|bad] [--script FILE.json]`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FINGERPRINT = "0.32.2-0.32.4-Linux-scripted"


@dataclass
class Script:
    match: str = ""  # substring of the last user message ("" matches everything)
    ttft_ms: float = 20.0  # from request to the first content chunk
    gap_ms: float = 2.0  # between content chunks
    content: str | list[str] | None = None  # a string is split into word tokens; a list is the tokens
    reasoning: list[str] | None = None  # reasoning chunks sent before the content
    tool_calls: list[dict[str, Any]] | None = None  # [{"name","arguments"(str|dict)}]
    finish_reason: str | None = None  # default: stop (or tool_calls, or length in echo mode)
    prompt_tokens: int | None = None  # default: words in the prompt + 4 per message
    cached_tokens: int = 0
    usage: bool = True  # send the usage chunk when include_usage is asked
    keepalive: bool = False  # oMLX: a "model":"keepalive" chunk first
    comments: int = 0  # `: keepalive n/m` comment lines during the prefill wait
    cut_after: int | None = None  # close after this many content chunks, without [DONE]
    status: int = 200
    error: str = ""  # body message for a non-200 status
    crosstalk: bool = False  # answers change while another request is in flight
    cache_bug: bool = False  # a conversation that prefixes an earlier longer one gets a wrong answer
    prefix_cache: bool = True  # report cached_tokens = the prompt tokens shared with an earlier request


def _echo_tokens(key: str, n: int) -> list[str]:
    h = hashlib.sha256(key.encode()).hexdigest()[:6]
    return [f"{h}{i} " for i in range(n)]


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts) if p or i == 0]


PRESETS: dict[str, list[Script]] = {
    "good": [
        Script(match="capital of France", content="Paris"),
        Script(match="Remember this code word", content="OK"),
        Script(match="code word I gave you", content="PELICAN-42"),
        Script(match="fizzbuzz", content=["```python\n", "def fizzbuzz(n: int) -> str:\n",
                                          "    if n % 15 == 0:\n        return 'FizzBuzz'\n",
                                          "    if n % 3 == 0:\n        return 'Fizz'\n",
                                          "    if n % 5 == 0:\n        return 'Buzz'\n",
                                          "    return str(n)\n", "```"]),
        Script(match="weather in Paris", tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]),
        Script(match="hello in French", content="Bonjour !"),
    ],
    "bad": [
        Script(match="capital of France", content="Lyon"),
        Script(match="Remember this code word", content="OK"),
        Script(match="code word I gave you", content="I do not remember."),
        Script(match="fizzbuzz", content=["```python\n", "def fizzbuzz(n):\n", "    return str(n)\n", "```"]),
        Script(match="weather in Paris",
               content='{"name": "get_weather", "parameters": {"city": "Paris"}}'),
        Script(match="hello in French", tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]),
        Script(match="", crosstalk=True, cache_bug=True),
    ],
}


class _State:
    def __init__(self, scripts: list[Script], default: Script) -> None:
        self.scripts = scripts
        self.default = default
        self.lock = threading.Lock()
        self.in_flight = 0
        self.requests: list[dict[str, Any]] = []
        self.seen: list[list[dict[str, Any]]] = []  # conversations served, for the planted cache bug


def _shared_tokens(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> int:
    """Prompt tokens (words + 4 per message) of the leading messages two conversations share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            wx, wy = str(x.get("content") or "").split(), str(y.get("content") or "").split()
            k = 0
            while k < min(len(wx), len(wy)) and wx[k] == wy[k]:
                k += 1
            return n + k
        n += len(str(x.get("content") or "").split()) + 4
    return n


def _flatten(messages: list[dict[str, Any]]) -> str:
    return "\n".join(f"{m.get('role')}: {m.get('content') or ''}" for m in messages)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.rstrip("/") in ("/health",):
            self._json(200, {"status": "ok"})
        elif self.path.rstrip("/") in ("/v1/models",):
            self._json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        else:
            self._json(404, {"error": "Not Found"})

    def do_POST(self) -> None:  # noqa: N802
        t0 = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._json(400, {"error": {"message": "bad JSON"}})
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": "Not Found"})
            return
        st = self.server.state
        messages = body.get("messages") or []
        last_user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
        script = next((s for s in st.scripts if s.match and s.match in last_user), st.default)
        with st.lock:
            st.requests.append(body)
            st.in_flight += 1
            crowded = st.in_flight > 1
            shared = max((_shared_tokens(seen, messages) for seen in st.seen), default=0)
            prefix_of_longer = any(len(seen) > len(messages) and seen[:len(messages)] == messages
                                   for seen in st.seen)
        answer = ""
        try:
            answer = self._serve(body, messages, script, t0, crowded, prefix_of_longer, shared)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away mid-stream
        finally:
            with st.lock:
                st.in_flight -= 1
                # Like a real prompt cache, the entry holds the prompt plus the generated answer.
                st.seen.append([*messages, {"role": "assistant", "content": answer}])

    # ---- helpers
    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send(self, text: str) -> None:
        self.wfile.write(text.encode())
        self.wfile.flush()

    def _chunk(self, cid: str, model: str, delta: dict[str, Any], finish: str | None = None) -> str:
        obj = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
               "system_fingerprint": FINGERPRINT,
               "choices": [{"index": 0, "finish_reason": finish, "delta": {"role": "assistant", **delta}}]}
        return "data: " + json.dumps(obj) + "\n\n"

    def _serve(self, body: dict[str, Any], messages: list[dict[str, Any]], s: Script, t0: float,
               crowded: bool, prefix_of_longer: bool, shared: int) -> str:
        if s.status != 200:
            self._json(s.status, {"error": {"message": s.error or f"scripted HTTP {s.status}"}})
            return ""
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        model = body.get("model") or "default_model"
        cid = f"chatcmpl-{uuid.uuid4()}"
        flat = _flatten(messages)
        finish = s.finish_reason
        tokens: list[str]
        if s.tool_calls is not None:
            tokens = []
            finish = finish or "tool_calls"
        elif s.content is None:
            key = flat + ("|crosstalk" if s.crosstalk and crowded else "") + (
                "|stale-cache" if s.cache_bug and prefix_of_longer else "")
            tokens = _echo_tokens(key, max_tokens)
            finish = finish or "length"
        else:
            tokens = list(s.content) if isinstance(s.content, list) else _words(s.content)
            finish = finish or "stop"
        prompt_tokens = s.prompt_tokens if s.prompt_tokens is not None else (
            sum(len(str(m.get("content") or "").split()) for m in messages) + 4 * len(messages))
        cached = max(s.cached_tokens, min(shared, prompt_tokens - 1) if s.prefix_cache else 0)
        if s.cache_bug and prefix_of_longer:
            cached = max(cached, prompt_tokens - 1)
        stream = bool(body.get("stream"))
        if not stream:
            time.sleep(max(0.0, s.ttft_ms / 1000 + s.gap_ms / 1000 * max(0, len(tokens) - 1)
                           - (time.perf_counter() - t0)))
            msg: dict[str, Any] = {"role": "assistant", "content": "".join(tokens)}
            if s.tool_calls:
                msg["tool_calls"] = self._calls(s.tool_calls)
            self._json(200, {"id": cid, "object": "chat.completion", "model": model,
                             "system_fingerprint": FINGERPRINT,
                             "choices": [{"index": 0, "finish_reason": finish, "message": msg}],
                             "usage": self._usage(prompt_tokens, len(tokens), cached)})
            return "".join(tokens)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if s.keepalive:
            self._send("data: " + json.dumps({"id": cid, "object": "chat.completion.chunk", "created": 0,
                                              "model": "keepalive", "choices": [{"index": 0, "delta": {
                                                  "role": "assistant", "content": ""}, "finish_reason": None}]})
                       + "\n\n")
        first_at = t0 + s.ttft_ms / 1000
        for i in range(s.comments):
            _sleep_until(t0 + (i + 1) * (s.ttft_ms / 1000) / (s.comments + 1))
            self._send(f": keepalive {i + 1}/{s.comments + 1}\n\n")
        pieces: list[dict[str, Any]] = [{"reasoning": r} for r in (s.reasoning or [])]
        pieces += [{"content": t} for t in tokens]
        if s.tool_calls:
            for i, c in enumerate(self._calls(s.tool_calls)):
                pieces.append({"tool_calls": [{"index": i, **c}]})
        n_sent = 0
        for i, delta in enumerate(pieces):
            _sleep_until(first_at + i * s.gap_ms / 1000)
            if s.cut_after is not None and n_sent >= s.cut_after:
                return "".join(tokens)  # connection closes without [DONE]
            self._send(self._chunk(cid, model, delta))
            n_sent += 1
        if s.cut_after is not None and n_sent >= s.cut_after:
            return "".join(tokens)
        # Like mlx_lm.server: the finish_reason rides on a final role-only delta.
        self._send(self._chunk(cid, model, {}, finish))
        if s.usage and (body.get("stream_options") or {}).get("include_usage"):
            n_completion = len(tokens) + len(s.reasoning or []) + (8 * len(s.tool_calls or []))
            self._send("data: " + json.dumps({"id": cid, "object": "chat.completion", "model": model,
                                              "choices": [], "usage": self._usage(prompt_tokens, n_completion,
                                                                                  cached)}) + "\n\n")
        self._send("data: [DONE]\n\n")
        return "".join(tokens)

    @staticmethod
    def _calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for c in calls:
            args = c.get("arguments", {})
            out.append({"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                        "function": {"name": c["name"], "arguments": args if isinstance(args, str)
                                     else json.dumps(args)}})
        return out

    @staticmethod
    def _usage(prompt: int, completion: int, cached: int) -> dict[str, Any]:
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached}}


def _sleep_until(t: float) -> None:
    while True:
        left = t - time.perf_counter()
        if left <= 0:
            return
        time.sleep(left if left > 0.002 else 0)  # spin the last 2 ms for exact spacing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], state: _State) -> None:
        super().__init__(addr, _Handler)
        self.state = state


class ScriptedServer:
    """In-process server: `with ScriptedServer([Script(...)]) as srv: srv.base_url`."""

    def __init__(self, scripts: list[Script] | None = None, default: Script | None = None,
                 preset: str | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        chosen = list(scripts or []) + (PRESETS[preset] if preset else [])
        fallback = [s for s in chosen if not s.match]
        self.state = _State([s for s in chosen if s.match], default or (fallback[0] if fallback else Script()))
        self._srv = _Server((host, port), self.state)
        self.port = self._srv.server_address[1]
        self.base_url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.state.requests

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, required=True)
    sp.add_argument("--preset", choices=sorted(PRESETS))
    sp.add_argument("--script", help="JSON file: a list of Script fields objects")
    sp.add_argument("--dump-preset", action="store_true", help="print the preset as JSON and exit")
    a = ap.parse_args(argv)
    scripts = []
    if a.script:
        with open(a.script, encoding="utf-8") as f:
            scripts = [Script(**d) for d in json.load(f)]
    if a.dump_preset:
        json.dump([asdict(s) for s in PRESETS[a.preset or "good"]], sys.stdout, indent=2)
        return 0
    srv = ScriptedServer(scripts, preset=a.preset, host=a.host, port=a.port)
    print(f"scripted OpenAI server on {srv.base_url}", flush=True)
    try:
        srv._srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
