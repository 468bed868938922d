"""The metering front (`meter = true` in a profile): a small asyncio reverse proxy in the supervising process
that serves the backend's public port, passes every byte through as it arrives (streams unbuffered) and
records per request: TTFT, completion/prompt tokens (from `usage`, else counted content events), duration,
status and client. The server itself listens on an internal loopback port.

One request per client connection (the proxy answers with the upstream's bytes, then closes: the request is
sent upstream with `Connection: close`). Request bodies need a Content-Length (what OpenAI clients send).
What it watches is a copy: the bytes forwarded are never changed or held back.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlx_console.core.metrics.sampler import Observation

MAX_HEADER = 64 * 1024


@dataclass
class Watch:
    """Reads a copy of a response as it passes: status, then the body (de-chunked) for SSE events."""

    t0: float
    head: bytes = b""
    status: int = 0
    chunked: bool = False
    stream: bool = False
    body: bytearray = field(default_factory=bytearray)
    raw: bytearray = field(default_factory=bytearray)  # chunked framing not yet decoded
    line_buf: bytearray = field(default_factory=bytearray)
    first_token: float | None = None
    content_events: int = 0
    usage: dict[str, Any] | None = None

    def feed(self, data: bytes, now: float) -> None:
        if not self.status:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, rest = self.head[:end].decode("latin-1"), self.head[end + 4:]
            first, *headers = head.split("\r\n")
            parts = first.split(" ", 2)
            self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 502
            lower = [h.lower() for h in headers]
            self.chunked = any(h.startswith("transfer-encoding:") and "chunked" in h for h in lower)
            self.stream = any(h.startswith("content-type:") and "text/event-stream" in h for h in lower)
            data = rest
        if self.chunked:
            self.raw += data
            data = self._dechunk()
        if self.stream:
            self._sse(data, now)
        elif len(self.body) < (4 << 20):
            self.body += data

    def _dechunk(self) -> bytes:
        out = bytearray()
        while True:
            nl = self.raw.find(b"\r\n")
            if nl < 0:
                return bytes(out)
            try:
                size = int(self.raw[:nl].split(b";")[0], 16)
            except ValueError:
                self.raw.clear()
                return bytes(out)
            if len(self.raw) < nl + 2 + size + 2:
                return bytes(out)
            out += self.raw[nl + 2: nl + 2 + size]
            del self.raw[: nl + 2 + size + 2]
            if size == 0:
                return bytes(out)

    def _sse(self, data: bytes, now: float) -> None:
        self.line_buf += data
        *lines, rest = bytes(self.line_buf).split(b"\n")
        self.line_buf = bytearray(rest)
        for raw in lines:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue  # comments (`: keepalive`), blank separators
            payload = line[5:].strip()
            if payload == b"[DONE]":
                continue
            try:
                event = json.loads(payload)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            if isinstance(event.get("usage"), dict):
                self.usage = event["usage"]
            if event.get("model") == "keepalive":  # oMLX's keepalive chunk is not a token
                continue
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                text = delta.get("content") or delta.get("reasoning") or delta.get("reasoning_content") \
                    or choice.get("text")
                if text:
                    self.content_events += 1
                    if self.first_token is None:
                        self.first_token = now

    def observation(self, end: float, client: str, request: dict[str, Any]) -> Observation:
        usage = self.usage
        if usage is None and not self.stream and self.body:
            try:
                usage = json.loads(bytes(self.body)).get("usage")
            except (ValueError, AttributeError):
                usage = None
        completion = prompt = None
        if isinstance(usage, dict):
            completion = usage.get("completion_tokens")
            prompt = usage.get("prompt_tokens")
        if completion is None and self.stream:
            completion = self.content_events  # one token per content event (mlx-lm sends one per token)
        ttft = (self.first_token - self.t0) * 1000 if self.first_token is not None else None
        return Observation(ts=end, status=self.status or 502, ttft_ms=ttft, duration_s=end - self.t0,
                           prompt_tokens=prompt if isinstance(prompt, int) else None,
                           completion_tokens=completion if isinstance(completion, int) else None,
                           client=client, model=str(request.get("model") or ""))


class Meter:
    """`Meter(listen_host, listen_port, upstream_host, upstream_port, record)`; `start()` runs it in a thread
    with its own event loop; `stop()`."""

    def __init__(self, host: str, port: int, upstream_host: str, upstream_port: int,
                 record: Callable[[Observation], None]):
        self.host, self.port = host, port
        self.upstream = (upstream_host, upstream_port)
        self.record = record
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.base_events.Server | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def start(self) -> Meter:
        threading.Thread(target=self._run, name="meter", daemon=True).start()
        self.ready.wait(10)
        if self.error is not None:
            raise self.error
        return self

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.server = self.loop.run_until_complete(
                asyncio.start_server(self._handle, self.host, self.port, reuse_address=True))
            if not self.port:
                self.port = self.server.sockets[0].getsockname()[1]
        except OSError as e:
            self.error = e
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        if self.loop is not None and self.server is not None:
            self.loop.call_soon_threadsafe(self.server.close)
            self.loop.call_soon_threadsafe(self.loop.stop)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            t0 = time.perf_counter()
            wall0 = time.time()
            lines = head.decode("latin-1").split("\r\n")
            request_line, headers = lines[0], [h for h in lines[1:] if h]
            length = 0
            kept = []
            for h in headers:
                name = h.split(":", 1)[0].strip().lower()
                if name == "content-length":
                    length = int(h.split(":", 1)[1].strip() or 0)
                if name in ("connection", "keep-alive", "proxy-connection"):
                    continue
                kept.append(h)
            body = await reader.readexactly(length) if length else b""
            request: dict[str, Any] = {}
            if body[:1] == b"{":
                try:
                    request = json.loads(body)
                except ValueError:
                    request = {}
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError as e:
                msg = json.dumps({"error": f"mlx-console meter: the server is not answering: {e}"}).encode()
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nConnection: close\r\n"
                             + f"Content-Length: {len(msg)}\r\n\r\n".encode() + msg)
                await writer.drain()
                return
            up_writer.write(("\r\n".join([request_line, *kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1")
                            + body)
            await up_writer.drain()
            watch = Watch(t0=t0)
            while True:
                data = await up_reader.read(65536)
                if not data:
                    break
                writer.write(data)  # first: the client gets the bytes before we look at them
                await writer.drain()
                watch.feed(data, time.perf_counter())
            end = time.perf_counter()
            is_generation = request_line.split(" ")[0] == "POST" and any(
                p in request_line for p in ("/completions", "/v1/messages", "/v1/responses"))
            if is_generation:
                obs = watch.observation(end, client, request)
                obs.ts = wall0 + (end - t0)
                self.record(obs)
        except (ConnectionError, asyncio.IncompleteReadError, OSError, ValueError):
            pass
        finally:
            for w in (writer, up_writer):
                if w is not None:
                    w.close()
