"""Bug shapes added in the sixth recall round of issue 10, each written for the bug (other names, numbers and
servers than the corpus row it came from), with the near-misses that must stay quiet."""

from __future__ import annotations

import pytest

from mlx_console.core.logs.triage import triage_text


def _cats(text: str) -> set[str]:
    return {c for ev in triage_text(text) for c in ev.categories}


@pytest.mark.parametrize(
    ("text", "cat"),
    [
        # a thread dump of a server that stopped answering: py-spy's two header shapes, faulthandler's watchdog
        ('Thread 0x16B0F3000 (active): "generate-worker"\n    wait (threading.py:331)\n'
         "    get (queue.py:180)", "server_hang"),
        ('Thread 48211 (idle): "MainThread"\n    select (selectors.py:561)', "server_hang"),
        ("Timeout (0:15:00)!\nThread 0x0000000171e43000 (most recent call first):\n"
         '  File "/opt/venv/lib/python3.12/site-packages/mlx_lm/generate.py", line 402 in _step', "server_hang"),
        # UTF-8 decoded byte by byte as Latin-1: CJK text and accented Latin text
        ("你好ï¼\x81æ\x88\x91æ\x98¯ä¸\x80个助手", "tokenizer"),
        ("data: {\"content\": \"Le cafÃ© est prÃ¨s de la gare\"}", "tokenizer"),
        # Metal kernels this macOS cannot build, or a metallib for a Metal language it does not have
        ("Error: Unable to build the Metal library for custom kernel fused_moe_gate", "metal_error"),
        ("xcrun: error: invalid value 'metal3.2' in '-std=metal3.2'", "metal_error"),
        ("RuntimeError: Failed loading libmlx.metallib: this library is using language version 3.2 which is not "
         "supported on this OS", "metal_error"),
    ],
)
def test_round6_shapes(text: str, cat: str) -> None:
    assert cat in _cats(text)


@pytest.mark.parametrize(
    "text",
    [
        # a segfault's thread dump is a crash, not a hang
        "Fatal Python error: Segmentation fault\n\nThread 0x00007f3a2b7fe640 (most recent call first):\n"
        '  File "/usr/lib/python3.12/threading.py", line 355 in wait',
        # a mention of a thread being active, and one lone Latin-1 pair in real text
        "Thread pool (active): 4 workers",
        "Model card © 2025 — see Â§3 of the licence; déjà vu à côté",
    ],
)
def test_round6_near_misses(text: str) -> None:
    assert _cats(text) == set()
