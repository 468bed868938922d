"""Cost of the stream parser per SSE chunk, side by side with a bare `json.loads` per line.

Run: .venv/bin/python bench/client_parse.py [N_CHUNKS]. Prints µs per chunk for both and the ratio.
The client must not be the bottleneck: a 100 tok/s stream leaves 10,000 µs per chunk.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from mlx_console.core.bench.client import StreamParser


def sse_lines(n: int) -> list[str]:
    """An mlx_lm.server-shaped stream: comments, n content chunks, finish, usage, [DONE]."""
    lines = [": keepalive 10/100", ""]
    for i in range(n):
        obj = {"id": "chatcmpl-1", "system_fingerprint": "0.32.2-0.32.4-Linux", "object": "chat.completion.chunk",
               "model": "default_model", "created": 1, "choices": [
                   {"index": 0, "finish_reason": None, "delta": {"role": "assistant", "content": f"tok{i} "}}]}
        lines += ["data: " + json.dumps(obj), ""]
    lines += ["data: " + json.dumps({"choices": [{"index": 0, "finish_reason": "length",
                                                  "delta": {"role": "assistant"}}]}), ""]
    lines += ["data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": n}}), ""]
    lines += ["data: [DONE]", ""]
    return lines


def ours(lines: list[str]) -> float:
    t0 = time.perf_counter()
    p = StreamParser()
    for i, line in enumerate(lines):
        p.feed(line, i * 1e-3)
    r = p.close(1.0)
    assert r.done and r.content_chunks > 0
    return time.perf_counter() - t0


def reference(lines: list[str]) -> float:
    """The least any client must do: decode each data line's JSON."""
    t0 = time.perf_counter()
    for line in lines:
        if line.startswith("data: ") and line != "data: [DONE]":
            json.loads(line[6:])
    return time.perf_counter() - t0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    lines = sse_lines(n)
    best_ours = min(ours(lines) for _ in range(5))
    best_ref = min(reference(lines) for _ in range(5))
    print(f"chunks: {n}")
    print(f"StreamParser      : {1e6 * best_ours / n:7.2f} µs/chunk")
    print(f"json.loads only   : {1e6 * best_ref / n:7.2f} µs/chunk")
    print(f"ratio ours/ref    : {best_ours / best_ref:7.2f}×")
    print(f"share of a 100 tok/s budget (10,000 µs/chunk): {100 * best_ours / n / 1e-2:.3f} %")
    sys.path.insert(0, str(Path(__file__).parent))
    from harness import Row, emit

    share = 100 * best_ours / n / 1e-2
    emit(Row("client_parse", "inner figure: stream parser CPU, share of a 100 tok/s stream's time", share, "%",
             "< 1 %", share < 1, {"json.loads of each line alone": f"{1e6 * best_ref / n:.2f} µs/chunk"},
             f"{1e6 * best_ours / n:.2f} µs a chunk, {best_ours / best_ref:.2f}× bare json.loads; best of 5"))


if __name__ == "__main__":
    main()
