"""Where the series come from, parsed from what the servers really write (formats: shared docs/backends.md).

Log lines (the server's captured stdout+stderr, read incrementally by the sampler):
- mlx_lm.server access line `127.0.0.1 - - [25/Nov/2026 13:22:38] "POST /v1/chat/completions HTTP/1.1" 200 -`
  → one request of that status class (written when headers are sent, before prefill).
- mlx_lm.server `Prompt processing progress: 14/14` → prompt tokens (counted when done == total).
- mlx_lm.server `Prompt Cache: 0 sequences, 0.00 GB` (0.32) / `KV Caches: 1 seq, 7.06 GB, latest user cache
  0 tokens` (0.31) → KV/prompt cache size in bytes (and cached tokens of the latest user cache, 0.31).
- oMLX `Chat completion: 6 tokens in 0.03s (180.1 tok/s), prompt: 7, finish_reason=length …` (also
  `Completion`, `Anthropic message`, `Responses API`) → one 2xx request, completion and prompt tokens, decode
  tok/s (oMLX's own figure: it includes prefill for short generations).
- oMLX `POST /v1/chat/completions → 404: …` → one request of that status class.
- oMLX `Memory pressure level: ok -> soft (…)` → a pressure event.
oMLX APIs: `/api/status` (in-flight and waiting requests, cached tokens), `/v1/models/status` (per model:
loaded, actual_size bytes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx

ACCESS_RE = re.compile(r'^\S+ - - \[[^\]]+\] "(\w+) (\S+) HTTP/[\d.]+" (\d{3}) \S+$')
PROMPT_PROGRESS_RE = re.compile(r"Prompt processing progress: (\d+)/(\d+)")
PROMPT_CACHE_RE = re.compile(r"- INFO - Prompt Cache: (\d+) sequences?, ([\d.]+) GB")
KV_CACHES_RE = re.compile(r"KV Caches: (\d+) seqs?, ([\d.]+) GB(?:, latest user cache (\d+) tokens)?")
OMLX_DONE_RE = re.compile(r"(?:Chat completion|Completion|Anthropic message|Responses API): (\d+) tokens in "
                          r"([\d.]+)s \(([\d.]+) tok/s\)(?:, prompt: (\d+))?")
OMLX_ERROR_RE = re.compile(r"\b(GET|POST|PUT|DELETE) (/\S+) (?:→|->) (\d{3})")
OMLX_PRESSURE_RE = re.compile(r"Memory pressure level: (\w+) -> (\w+)")
GB = 1024**3

# Only generation requests count as requests (not /health, /v1/models, the console's own probes do count:
# they are real completions the server served).
GENERATION_PATHS = ("/v1/chat/completions", "/chat/completions", "/v1/completions", "/v1/messages",
                    "/v1/responses")


@dataclass
class LogTally:
    """What a batch of log lines added. Counters are increments; gauges are the last value seen."""

    requests: dict[str, int] = field(default_factory=dict)  # status class "2xx" → count
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    decode_tps: list[float] = field(default_factory=list)
    request_seconds: list[float] = field(default_factory=list)
    kv_cache_bytes: float | None = None
    pressure: list[str] = field(default_factory=list)  # oMLX's own pressure transitions, as text

    @property
    def request_count(self) -> int:
        return sum(self.requests.values())


def tally_lines(kind: str, lines: list[str], tally: LogTally | None = None) -> LogTally:
    t = tally or LogTally()
    for line in lines:
        if kind == "mlx-lm":
            m = ACCESS_RE.match(line)
            if m:
                if m.group(1) == "POST" and m.group(2).split("?")[0] in GENERATION_PATHS:
                    cls = m.group(3)[0] + "xx"
                    t.requests[cls] = t.requests.get(cls, 0) + 1
                continue
            m = PROMPT_PROGRESS_RE.search(line)
            if m:
                done, total = int(m.group(1)), int(m.group(2))
                if done == total:
                    t.prompt_tokens += total
                continue
            m = PROMPT_CACHE_RE.search(line)
            if m:
                t.kv_cache_bytes = float(m.group(2)) * GB
                continue
            m = KV_CACHES_RE.search(line)
            if m:
                t.kv_cache_bytes = float(m.group(2)) * GB
                if m.group(3):
                    t.cached_tokens += int(m.group(3))
        else:
            m = OMLX_DONE_RE.search(line)
            if m:
                t.requests["2xx"] = t.requests.get("2xx", 0) + 1
                t.completion_tokens += int(m.group(1))
                t.request_seconds.append(float(m.group(2)))
                t.decode_tps.append(float(m.group(3)))
                if m.group(4):
                    t.prompt_tokens += int(m.group(4))
                continue
            m = OMLX_ERROR_RE.search(line)
            if m and m.group(2).split("?")[0] in GENERATION_PATHS:
                cls = m.group(3)[0] + "xx"
                t.requests[cls] = t.requests.get(cls, 0) + 1
                continue
            m = OMLX_PRESSURE_RE.search(line)
            if m:
                t.pressure.append(f"oMLX memory pressure {m.group(1)} -> {m.group(2)}")
    return t


@dataclass
class OmlxReading:
    in_flight: float | None = None
    waiting: float | None = None
    cached_tokens_total: float | None = None
    model_bytes: dict[str, float] = field(default_factory=dict)  # loaded models only


def read_omlx(base_url: str, api_key: str | None, timeout: float = 2.0) -> OmlxReading:
    """oMLX's /api/status and /v1/models/status; whatever does not answer stays None."""
    out = OmlxReading()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(timeout=timeout, headers=headers) as client:
        status = _get_json(client, f"{base_url}/api/status")
        if status:
            out.in_flight = _num(status.get("active_requests"))
            out.waiting = _num(status.get("waiting_requests"))
            out.cached_tokens_total = _num(status.get("total_cached_tokens"))
        models = _get_json(client, f"{base_url}/v1/models/status")
        for m in (models or {}).get("models") or []:
            if isinstance(m, dict) and m.get("loaded") and m.get("id"):
                size = _num(m.get("actual_size")) or _num(m.get("estimated_size"))
                if size is not None:
                    out.model_bytes[str(m["id"])] = size
    return out


def _get_json(client: httpx.Client, url: str) -> dict[str, Any] | None:
    try:
        r = client.get(url)
        if r.status_code != 200:
            return None
        data = r.json()
        return data if isinstance(data, dict) else None
    except (httpx.HTTPError, ValueError):
        return None


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
