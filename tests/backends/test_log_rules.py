"""The log lines that mean a live server is not healthy (backends.md §1.5, §5), as the servers write them."""

from __future__ import annotations

import pytest

from mlx_console.core.backends.mlx_lm import MlxLmKind
from mlx_console.core.backends.omlx import OmlxKind


@pytest.mark.parametrize(("line", "action", "reason"), [
    ("2026-11-25 13:22:47,639 - ERROR - mlx_lm.server generation thread died: No safetensors found in /m",
     "degraded", "generation thread died: No safetensors found in /m"),
    ("Exception in thread Thread-1 (_generate):", "degraded", "generation thread died"),
    ("OSError: [Errno 98] Address already in use", "fatal", "port already in use"),
    ("OSError: [Errno 48] Address already in use", "fatal", "port already in use"),
])
def test_mlx_lm_rules(line: str, action: str, reason: str) -> None:
    hit = MlxLmKind().classify(line)
    assert hit is not None and hit[0] == action and reason in hit[1]


@pytest.mark.parametrize("line", [
    '127.0.0.1 - - [25/Nov/2026 13:22:38] "POST /v1/chat/completions HTTP/1.1" 200 -',
    "2026-11-25 13:22:38,803 - INFO - Prompt processing progress: 14/14",
    "Exception in thread Thread-3 (process_request_thread):",
    "2026-11-25 13:22:47,639 - ERROR - JSONDecodeError: Expecting property name",
])
def test_ordinary_lines_are_not_alarms(line: str) -> None:
    assert MlxLmKind().classify(line) is None


def test_omlx_uvicorn_bind_error() -> None:
    line = "ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', 8000): address already in use"
    assert OmlxKind().classify(line) == ("fatal", "port already in use (the log says: Address already in use)")
