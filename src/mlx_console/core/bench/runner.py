"""Run a suite against an OpenAI-compatible server and build the run record.

`run_suite(...)` is synchronous (call it from a worker thread); `run_suite_async(...)` is the same
coroutine. Progress is reported as structured `ProgressEvent`s: run_started, cell_started,
sample_done, cell_finished, run_finished. Never sends `seed` (it disables batching in mlx_lm.server).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mlx_console.core.backends.base import headers
from mlx_console.core.bench import prompts, sandbox, scoring, stats, store
from mlx_console.core.bench.client import StreamResult, server_root, stream_chat
from mlx_console.core.bench.record import RunRecord, new_summary
from mlx_console.core.bench.suites import Cell, Suite
from mlx_console.core.common import net
from mlx_console.core.errors import ConsoleError

PERF_METRICS = ("decode_tps", "ttft_ms", "prefill_tps", "e2e_s", "completion_tokens")
# Cached prompt tokens above this share of the prompt mean the cache buster did not work.
CACHE_HIT_SHARE = 0.10
# The first request may load the model (oMLX loads on demand): give it time.
PROBE_TIMEOUT_S = 600.0


@dataclass
class ProgressEvent:
    """One step of a run, for a CLI line or a UI row. `event` is one of run_started, cell_started,
    sample_done, cell_finished, run_finished."""

    event: str
    cell: str | None = None
    kind: str | None = None
    index: int = 0  # 1-based cell position
    total: int = 0  # number of cells
    sample: int = 0  # 1-based sample number within the cell
    samples: int = 0
    phase: str = ""  # warmup | trial | reference | parallel | turn | probe | busted | longer | cached
    ok: bool = True
    message: str = ""
    result: dict[str, Any] | None = None  # the cell's record entry (cell_finished)
    run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}

    def __str__(self) -> str:
        """One human line (for a status bar)."""
        where = f"[{self.index}/{self.total}] {self.cell}" if self.cell else ""
        if self.event == "cell_finished" and self.result is not None:
            return f"{where} {self.result.get('status')} {self.message}".strip()
        if self.event == "sample_done":
            return f"{where} {self.phase} {self.sample}/{self.samples} {'ok' if self.ok else 'FAILED'} " \
                   f"{self.message}".strip()
        if self.event == "cell_started":
            return f"{where} ({self.kind}) …"
        return self.message or self.event


Progress = Callable[[ProgressEvent], None]


@dataclass
class _Ctx:
    client: httpx.AsyncClient
    base_url: str
    model: str
    api_key: str | None
    record: RunRecord
    progress: Progress
    runs: int | None
    concurrency: int | None
    model_path: str | None
    cancel: threading.Event | None
    unsafe_exec: bool = False  # run model code even where no sandbox contains it
    sizer: prompts.TokenSizer = field(default_factory=prompts.TokenSizer)
    cell: Cell | None = None
    index: int = 0
    total: int = 0

    def emit(self, event: str, **kw: Any) -> None:
        c = self.cell
        self.progress(ProgressEvent(event, cell=c.id if c else None, kind=c.kind if c else None,
                                    index=self.index, total=self.total, run_id=self.record.run_id, **kw))

    def cancelled(self) -> bool:
        return bool(self.cancel and self.cancel.is_set())


class Cancelled(Exception):
    pass


def run_suite(base_url: str, model: str, suite: Suite, *, label: str = "", api_key: str | None = None,
              runs: int | None = None, concurrency: int | None = None, backend_kind: str | None = None,
              server_flags: Any = None, model_settings: Any = None, model_path: str | None = None,
              progress: Progress | None = None, save: bool = True, out_dir: str | Path | None = None,
              cancel: threading.Event | None = None, unsafe_exec: bool = False) -> RunRecord:
    """Run every cell of `suite` (already filtered with Suite.select) and return the record.
    runs overrides the trials of throughput/concurrency cells; concurrency the streams of concurrency
    cells. The record is saved to the history unless save=False (and into out_dir when given).
    unsafe_exec: run coding cells' model code even where no sandbox can contain it."""
    return asyncio.run(run_suite_async(
        base_url, model, suite, label=label, api_key=api_key, runs=runs, concurrency=concurrency,
        backend_kind=backend_kind, server_flags=server_flags, model_settings=model_settings,
        model_path=model_path, progress=progress, save=save, out_dir=out_dir, cancel=cancel,
        unsafe_exec=unsafe_exec))


async def run_suite_async(base_url: str, model: str, suite: Suite, *, label: str = "",
                          api_key: str | None = None, runs: int | None = None,
                          concurrency: int | None = None, backend_kind: str | None = None,
                          server_flags: Any = None, model_settings: Any = None,
                          model_path: str | None = None, progress: Progress | None = None,
                          save: bool = True, out_dir: str | Path | None = None,
                          cancel: threading.Event | None = None, unsafe_exec: bool = False) -> RunRecord:
    # No client-side connection cap: a queue in the client would show up as server TTFT.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with net.async_client(base_url, limits=limits, timeout=httpx.Timeout(300.0, connect=10.0)) as client:
        kind, version = await detect_backend(client, base_url, model, api_key, backend_kind)
        summary = new_summary(suite=suite.name, label=label, base_url=base_url, kind=kind, version=version,
                              model=model, server_flags=server_flags, model_settings=model_settings)
        record = RunRecord(summary)
        ctx = _Ctx(client, base_url, model, api_key, record, progress or (lambda e: None), runs, concurrency,
                   model_path, cancel, unsafe_exec, total=len(suite.cells))
        ctx.emit("run_started", message=f"{suite.name}: {len(suite.cells)} cells against {base_url}")
        for i, cell in enumerate(suite.cells, 1):
            ctx.cell, ctx.index = cell, i
            ctx.emit("cell_started", message=cell.get("description", ""))
            t0 = time.perf_counter()
            result: dict[str, Any]
            if ctx.cancelled():
                result = {"kind": cell.kind, "status": "error", "reason": "cancelled"}
            else:
                try:
                    result = await _RUNNERS[cell.kind](ctx, cell)
                except Cancelled:
                    result = {"kind": cell.kind, "status": "error", "reason": "cancelled"}
                except Exception as e:  # a bug in one cell must not lose the others' results
                    result = {"kind": cell.kind, "status": "error", "reason": f"{type(e).__name__}: {e}"}
            result.setdefault("reason", "")
            result["must_pass"] = cell.must_pass
            result["seconds"] = round(time.perf_counter() - t0, 3)
            record.cells[cell.id] = result
            ctx.emit("cell_finished", ok=result["status"] in ("pass", "ok"), result=result,
                     message=result["reason"])
        ctx.cell = None
        if save:
            store.save(record, Path(out_dir) if out_dir else None)
        ctx.emit("run_finished", message=record.paths.get("summary", ""))
        return record


# ---------------------------------------------------------------- backend identity

def version_from_fingerprint(fp: str) -> str | None:
    """mlx_lm.server's system_fingerprint is `<mlx-lm>-<mlx>-<platform>`."""
    head = fp.split("-", 1)[0]
    return head if head[:1].isdigit() else None


async def detect_backend(client: httpx.AsyncClient, base_url: str, model: str, api_key: str | None,
                         kind: str | None) -> tuple[str | None, str | None]:
    """(kind, version), from a 1-token probe that also proves the server answers at all.
    oMLX answers /health with an engine_pool and /api/status with its version; mlx_lm.server's
    version is the head of the system_fingerprint of its answers."""
    probe = await stream_chat(client, base_url, {"model": model, "max_tokens": 1, "temperature": 0,
                                                 "messages": [{"role": "user", "content": "ping"}]},
                              api_key, timeout=PROBE_TIMEOUT_S)
    if not probe.ok:
        raise ConsoleError(f"{base_url} does not answer a 1-token chat completion for model {model!r}: "
                           f"{probe.error}")
    root = server_root(base_url)
    version = None
    try:
        r = await client.get(root + "/health", timeout=5)
        health = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    except (httpx.HTTPError, ValueError):
        health = {}
    if kind is None and isinstance(health, dict) and "engine_pool" in health:
        kind = "omlx"
    if kind == "omlx":
        try:
            r = await client.get(root + "/api/status", headers=headers(api_key), timeout=5)
            if r.status_code == 200:
                version = r.json().get("version")
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
    elif probe.fingerprint:
        version = version_from_fingerprint(probe.fingerprint)
        if kind is None and version:
            kind = "mlx-lm"
    return kind, version


# ---------------------------------------------------------------- requests

def _body(ctx: _Ctx, cell: Cell, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": ctx.model, "messages": messages,
                            "temperature": cell.get("temperature", 0),
                            "max_tokens": cell.get("max_tokens", 128)}
    body.update(extra)
    return body


def _messages(cell: Cell, user: str) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    if cell.get("system"):
        msgs.append({"role": "system", "content": cell.get("system")})
    msgs.append({"role": "user", "content": user})
    return msgs


async def _request(ctx: _Ctx, cell: Cell, body: dict[str, Any], phase: str, trial: int = 0,
                   stream: int | None = None) -> StreamResult:
    if ctx.cancelled():
        raise Cancelled()
    r = await stream_chat(ctx.client, ctx.base_url, body, ctx.api_key, timeout=float(cell.get("timeout_s", 300)))
    row = {"cell": cell.id, "kind": cell.kind, "phase": phase, "trial": trial, **r.to_json()}
    if stream is not None:
        row["stream"] = stream
    row["max_tokens"] = body.get("max_tokens")
    ctx.record.requests.append(row)
    return r


def _request_error(r: StreamResult) -> str:
    return r.error or "request failed"


# ---------------------------------------------------------------- quality cells

async def _run_chat(ctx: _Ctx, cell: Cell) -> dict[str, Any]:
    turns: list[str] = cell.get("turns") or [cell.get("prompt")]
    msgs: list[dict[str, Any]] = []
    if cell.get("system"):
        msgs.append({"role": "system", "content": cell.get("system")})
    r: StreamResult | None = None
    for t, text in enumerate(turns, 1):
        msgs.append({"role": "user", "content": text})
        r = await _request(ctx, cell, _body(ctx, cell, msgs), "turn", t)
        ctx.emit("sample_done", sample=t, samples=len(turns), phase="turn", ok=r.ok,
                 message=r.error or "")
        if not r.ok:
            return {"kind": "chat", "status": "error", "reason": f"turn {t}: {_request_error(r)}"}
        msgs.append({"role": "assistant", "content": r.content})
    assert r is not None
    s = scoring.score_chat(r.content, r.finish_reason, cell.get("expect", []), cell.get("forbid"),
                           cell.get("require_stop", True))
    reason = s.reason
    if not s.passed and len(turns) > 1:
        reason = f"turn {len(turns)} (recall): {reason}"
    return {"kind": "chat", "status": "pass" if s.passed else "fail", "reason": reason,
            "finish_reason": r.finish_reason, "answer": r.content[:500], "turns": len(turns)}


async def _run_coding(ctx: _Ctx, cell: Cell) -> dict[str, Any]:
    r = await _request(ctx, cell, _body(ctx, cell, _messages(cell, cell.get("prompt"))), "trial", 1)
    ctx.emit("sample_done", sample=1, samples=1, phase="trial", ok=r.ok, message=r.error or "")
    if not r.ok:
        return {"kind": "coding", "status": "error", "reason": _request_error(r), "result": None}
    code = scoring.extract_code(r.content)
    cpu_s = int(cell.get("cpu_s", 5))
    sb = await asyncio.to_thread(sandbox.run_code, code, cell.get("asserts"), 2.0 * cpu_s, cpu_s,
                                 int(cell.get("memory_mb", 512)) * 1024 * 1024, unsafe_exec=ctx.unsafe_exec)
    if sb.result == "refused":
        return {"kind": "coding", "status": "error", "reason": sb.detail, "result": sb.result,
                "containment": sb.containment, "network_isolation": sb.network_isolation,
                "finish_reason": r.finish_reason}
    passed = sb.result == "passed"
    reason = "" if passed else f"{sb.result}: {sb.detail}".rstrip(": ")
    if sb.result == "no code" and r.finish_reason == "length":
        reason += " (answer cut at max_tokens)"
    return {"kind": "coding", "status": "pass" if passed else "fail", "reason": reason, "result": sb.result,
            "containment": sb.containment, "network_isolation": sb.network_isolation,
            "finish_reason": r.finish_reason}


async def _run_tool_call(ctx: _Ctx, cell: Cell) -> dict[str, Any]:
    tools = cell.get("tools")
    body = _body(ctx, cell, _messages(cell, cell.get("prompt")), tools=tools)
    r = await _request(ctx, cell, body, "trial", 1)
    ctx.emit("sample_done", sample=1, samples=1, phase="trial", ok=r.ok, message=r.error or "")
    if not r.ok:
        return {"kind": "tool_call", "status": "error", "reason": _request_error(r), "layer": None}
    s = scoring.score_tool_call(r.tool_calls, r.content, r.finish_reason, cell.get("expect_calls"), tools)
    out = {"kind": "tool_call", "status": "pass" if s.passed else "fail", "reason": s.reason,
           "layer": s.extra.get("layer"), "finish_reason": r.finish_reason,
           "tool_calls": r.tool_calls}
    if "content_format" in s.extra:
        out["content_format"] = s.extra["content_format"]
    return out


# ---------------------------------------------------------------- throughput

async def _calibrate(ctx: _Ctx, cell: Cell) -> None:
    """Fit words→tokens from two short cache-busted requests (the server's own usage counts)."""
    if ctx.sizer.calibrated:
        return
    points = []
    for n in (40, 200):
        body = _body(ctx, cell, [{"role": "user", "content": prompts.busted_prompt(n)}], max_tokens=1)
        r = await _request(ctx, cell, body, "probe")
        if not r.ok or not r.prompt_tokens:
            return  # no usage: stay with the default ratio (the record says token_count_source)
        points.append((n, r.prompt_tokens))
    ctx.sizer.fit(points[0][0], points[0][1], points[1][0], points[1][1])


def _trials(ctx: _Ctx, cell: Cell, default: int) -> int:
    return ctx.runs if ctx.runs else int(cell.get("trials", default))


def _perf_block(results: list[StreamResult], max_tokens: int | None) -> dict[str, Any]:
    ok = [r for r in results if r.ok]
    block: dict[str, Any] = {"n": len(ok)}
    for metric in ("decode_tps", "prefill_tps"):  # rates: one timed over a burst can be off by any factor
        kept, outliers = stats.split_outliers([getattr(r, metric) for r in ok])
        block[metric] = stats.summary(kept)
        if outliers:
            block[metric]["outliers"] = outliers
    missing = [r.decode_reason for r in ok if r.decode_tps is None and r.decode_reason]
    if missing:
        block["decode_missing"] = {"n": len(missing), "reason": missing[0]}
    block["ttft_ms"] = stats.summary([r.ttft_ms for r in ok])
    block["e2e_s"] = stats.summary([r.e2e_s for r in ok])
    block["completion_tokens"] = stats.summary([r.completion_tokens for r in ok])
    sources = {r.token_count_source for r in ok}
    block["token_count_source"] = sources.pop() if len(sources) == 1 else ("mixed" if sources else None)
    block["prompt_tokens"] = stats.summary([r.prompt_tokens for r in ok])["median"]
    cached = [r.cached_tokens for r in ok if r.cached_tokens is not None]
    block["cached_tokens_max"] = max(cached) if cached else None
    block["early_stops"] = sum(1 for r in ok if r.early_stop(max_tokens))
    block["prefill_tps_source"] = "client: prompt_tokens / TTFT (includes HTTP and queueing)"
    if any(r.reasoning for r in ok):
        # Thinking models: TTFT counts reasoning; this is when the visible answer starts.
        block["first_content_ms"] = stats.summary([None if r.t_first_content is None else 1000 * r.t_first_content
                                                   for r in ok])
    return block


def _perf_notes(results: list[StreamResult], block: dict[str, Any], max_tokens: int | None) -> list[str]:
    notes = []
    errors = [r for r in results if not r.ok]
    if errors:
        notes.append(f"{len(errors)}/{len(results)} requests failed: {_request_error(errors[0])}")
    hits = [r for r in results if r.ok and r.cached_tokens and r.prompt_tokens
            and r.cached_tokens > CACHE_HIT_SHARE * r.prompt_tokens]
    if hits:
        notes.append(f"prefix cache hit on {len(hits)} trial(s) (cached_tokens up to "
                     f"{max(h.cached_tokens or 0 for h in hits)}): prefill numbers flattered")
    for metric in ("decode_tps", "prefill_tps"):
        if block[metric].get("outliers"):
            notes.append(f"{metric}: {len(block[metric]['outliers'])} sample(s) over 10× the median set apart "
                         f"({', '.join(f'{x:,.0f}' for x in block[metric]['outliers'][:3])}; median "
                         f"{block[metric]['median']:,.1f})")
    if block.get("decode_missing"):
        notes.append(f"no decode rate for {block['decode_missing']['n']}/{block['n']} trial(s): "
                     f"{block['decode_missing']['reason']}")
    if block["early_stops"]:
        notes.append(f"{block['early_stops']} trial(s) stopped early (< 80% of max_tokens {max_tokens})")
    if block["token_count_source"] == "chunks":
        notes.append("no usage from the server: token counts are chunk counts (estimate)")
    return notes


async def _run_throughput(ctx: _Ctx, cell: Cell) -> dict[str, Any]:
    max_tokens = int(cell.get("max_tokens", 128))
    target = int(cell.get("prompt_tokens", 128))
    await _calibrate(ctx, cell)
    words = ctx.sizer.words_for(target)
    warmup, trials = int(cell.get("warmup", 1)), _trials(ctx, cell, 5)
    results: list[StreamResult] = []
    for i in range(warmup + trials):
        phase = "warmup" if i < warmup else "trial"
        body = _body(ctx, cell, [{"role": "user", "content": prompts.busted_prompt(words)}],
                     max_tokens=max_tokens)
        r = await _request(ctx, cell, body, phase, i + 1 - (warmup if phase == "trial" else 0))
        n = i + 1 - warmup
        if phase == "trial":
            results.append(r)
        ctx.emit("sample_done", sample=max(n, 0), samples=trials, phase=phase, ok=r.ok,
                 message=r.error or _sample_msg(r))
    block = _perf_block(results, max_tokens)
    notes = _perf_notes(results, block, max_tokens)
    if not block["n"]:
        status = "error"
    else:
        status = "error" if any(not r.ok for r in results) else "ok"
    out = {"kind": "throughput", "status": status, "reason": "; ".join(notes), **block,
           "prompt_tokens_target": target, "max_tokens": max_tokens}
    return out


def _sample_msg(r: StreamResult) -> str:
    parts = []
    if r.decode_tps is not None:
        parts.append(f"{r.decode_tps:.1f} tok/s")
    if r.ttft_ms is not None:
        parts.append(f"TTFT {r.ttft_ms:.0f} ms")
    return ", ".join(parts)


# ---------------------------------------------------------------- concurrency

async def _run_concurrency(ctx: _Ctx, cell: Cell) -> dict[str, Any]:
    """Each trial sends `streams` cache-busted prompts at once (aggregate tok/s = all completion
    tokens / wall time). Then the last trial's prompts are replayed one at a time: at temperature 0
    each parallel answer must equal its sequential answer (cross-talk, batch>1 cache bugs)."""
    streams = ctx.concurrency or int(cell.get("streams", 4))
    max_tokens = int(cell.get("max_tokens", 64))
    warmup, trials = int(cell.get("warmup", 1)), _trials(ctx, cell, 3)
    base = cell.get("prompt") or "Read this text, then continue it."

    def batch_bodies() -> list[dict[str, Any]]:
        tag = prompts.nonce()
        return [_body(ctx, cell, [{"role": "user", "content": f"[{tag}-{s}] {base}\n\n"
                                   f"{prompts.filler(40, offset=s * 13)}"}], max_tokens=max_tokens)
                for s in range(streams)]

    for w in range(warmup):
        await asyncio.gather(*(_request(ctx, cell, b, "warmup", w + 1, s) for s, b in enumerate(batch_bodies())))
        ctx.emit("sample_done", sample=0, samples=trials, phase="warmup")
    results: list[StreamResult] = []
    aggregate: list[float] = []
    last: list[StreamResult] = []
    bodies: list[dict[str, Any]] = []
    for t in range(1, trials + 1):
        bodies = batch_bodies()
        t0 = time.perf_counter()
        last = list(await asyncio.gather(*(_request(ctx, cell, b, "parallel", t, s)
                                           for s, b in enumerate(bodies))))
        wall = time.perf_counter() - t0
        results.extend(last)
        ok = [r for r in last if r.ok]
        if ok and wall > 0:
            aggregate.append(sum(r.completion_tokens for r in ok) / wall)
        ctx.emit("sample_done", sample=t, samples=trials, phase="parallel", ok=len(ok) == len(last),
                 message=f"{aggregate[-1]:.1f} tok/s aggregate" if ok else _request_error(last[0]))
    mismatches: list[str] = []
    for s, b in enumerate(bodies):
        if not last[s].ok:
            continue
        ref = await _request(ctx, cell, b, "reference", trials, s)
        if not ref.ok:
            results.append(ref)
        elif ref.content != last[s].content:
            mismatches.append(f"stream {s + 1}")
    ctx.emit("sample_done", sample=trials, samples=trials, phase="reference", ok=not mismatches)
    block = _perf_block(results, max_tokens)
    notes = _perf_notes(results, block, max_tokens)
    errors = [r for r in results if not r.ok]
    if errors:
        status = "error"
    elif mismatches:
        status = "fail"
        notes.insert(0, f"{len(mismatches)}/{streams} parallel answer(s) differ from the same prompt sent "
                        f"alone at temperature 0 (cross-talk or a batch>1 cache bug; the solo replay may be "
                        f"served from the prefix cache, see cache_consistency): {', '.join(mismatches[:4])}")
    else:
        status = "ok"
    return {"kind": "concurrency", "status": status, "reason": "; ".join(notes), "streams": streams,
            **block, "aggregate_tps": stats.summary(aggregate), "mismatches": len(mismatches),
            "errors": len(errors), "max_tokens": max_tokens}


# ---------------------------------------------------------------- cache consistency

CACHE_ATTEMPTS = 6


async def _run_cache_consistency(ctx: _Ctx, cell: Cell) -> dict[str, Any]:
    """Turn 1 cold (fresh nonce) → the cache-busted answer; a longer follow-up conversation that
    extends it (so the server caches the longer sequence and drops turn 1's own entry); then turn 1
    again, served from a cache that must be trimmed back past the attention window. Both answers must
    be equal at temperature 0. The follow-up only extends turn 1's cache entry when the answer's text
    re-tokenizes to the same tokens; a fresh nonce is tried up to CACHE_ATTEMPTS times until it does."""
    window = cell.get("window")
    where = "cell parameter"
    if not window:
        window, where = prompts.model_window(ctx.model, ctx.model_path)
    part = 2 * window + 16 if window else 256
    part = min(part, int(cell.get("max_prompt_tokens", 4096)))
    await _calibrate(ctx, cell)
    words = ctx.sizer.words_for(part)
    info: dict[str, Any] = {"kind": "cache_consistency", "window": window, "window_source": where}
    for attempt in range(1, CACHE_ATTEMPTS + 1):
        # Other text on each attempt: another answer, another chance that it re-tokenizes the same.
        first = [{"role": "user", "content": f"[{prompts.nonce()}] Read this text, then continue it.\n\n"
                                              f"{prompts.filler(words, 41 * (attempt - 1))}"}]
        busted = await _request(ctx, cell, _body(ctx, cell, first), "busted", attempt)
        if not busted.ok:
            return {**info, "status": "error", "reason": _request_error(busted)}
        longer = first + [{"role": "assistant", "content": busted.content},
                          {"role": "user", "content": "Now continue with this.\n\n" + prompts.filler(words, 97)}]
        lr = await _request(ctx, cell, _body(ctx, cell, longer), "longer", attempt)
        if not lr.ok:
            return {**info, "status": "error", "reason": _request_error(lr)}
        cached = await _request(ctx, cell, _body(ctx, cell, first), "cached", attempt)
        if not cached.ok:
            return {**info, "status": "error", "reason": _request_error(cached)}
        turn1 = (busted.prompt_tokens or 0) + busted.completion_tokens - 1
        extended = lr.cached_tokens is not None and lr.cached_tokens >= turn1
        same = cached.content == busted.content
        ctx.emit("sample_done", sample=attempt, samples=CACHE_ATTEMPTS, phase="cached", ok=same,
                 message=f"cached_tokens {cached.cached_tokens}, answers {'equal' if same else 'differ'}")
        info.update({"attempts": attempt, "prompt_tokens": busted.prompt_tokens,
                     "longer_prompt_tokens": lr.prompt_tokens, "longer_cached_tokens": lr.cached_tokens,
                     "cached_tokens": cached.cached_tokens, "extended": extended,
                     "busted_answer": busted.content[:300], "cached_answer": cached.content[:300]})
        if not same:
            return {**info, "status": "fail",
                    "reason": f"answer served from the prefix cache ({cached.cached_tokens} cached tokens, "
                              f"after a {lr.prompt_tokens}-token prompt sharing its prefix) differs from the "
                              f"cache-busted answer at temperature 0: a silent prompt-cache bug"
                              + (f" (cache trimmed back past the {window}-token window)" if window else "")}
        if extended or lr.cached_tokens is None:
            break
    if not info.get("cached_tokens"):  # equal answers prove nothing when the cache never served one
        return {**info, "status": "fail", "exercised": False,
                "reason": f"not exercised: the server's prefix cache was never hit (cached_tokens "
                          f"{info.get('cached_tokens')} after {info.get('attempts')} attempt(s)); enable the "
                          "server's prompt cache, or this cell cannot tell a cache bug from none"}
    if not info.get("extended"):
        return {**info, "status": "pass", "exercised": True,
                "reason": "answers equal; the follow-up never extended turn 1's "
                "cache entry (answer text re-tokenizes differently), so only a short trim was exercised"}
    return {**info, "status": "pass", "exercised": True, "reason": ""}


_RUNNERS: dict[str, Callable[[_Ctx, Cell], Any]] = {
    "chat": _run_chat, "coding": _run_coding, "tool_call": _run_tool_call, "throughput": _run_throughput,
    "concurrency": _run_concurrency, "cache_consistency": _run_cache_consistency,
}
