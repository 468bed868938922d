"""LiveTriage: the file as it is, then as it grows, across a rotation; a file that appears later."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlx_console.core.logs.live import LiveTriage

HANG = (
    "2026-11-25 14:36:08,771 - ERROR - mlx_lm.server generation thread died: [broadcast_shapes] Shapes (1,8,3,64) "
    "and (1,8,2,64) cannot be broadcast.\nTraceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
    "ValueError: [broadcast_shapes] Shapes (1,8,3,64) and (1,8,2,64) cannot be broadcast.\n"
)


def _drain(live: LiveTriage, seconds: float) -> list:
    out: list = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out += live.step(0.05)
    return out


def test_initial_then_growth_then_rotation(tmp_path: Path) -> None:
    f = tmp_path / "server.log"
    f.write_text("OSError: [Errno 48] Address already in use\nhalf")
    with LiveTriage(f, quiet=0.2) as live:
        [first] = live.initial()
        assert (first.first_line, first.categories) == (1, ["port_in_use"])
        with f.open("a") as w:
            w.write(" a line\n" + HANG)
        evs = _drain(live, 0.6)
        assert [(e.first_line, e.last_line, e.categories) for e in evs] == [
            (3, 6, ["batch_cache_shape", "server_hang"])
        ]
        os.rename(f, tmp_path / "server.log.2026-11-25")
        f.write_text("INFO:     Started\n" + HANG)
        evs = _drain(live, 0.6)
        assert live.generation == 1
        assert [(e.first_line, e.last_line) for e in evs] == [(2, 5)]


def test_missing_file_is_followed_from_its_creation(tmp_path: Path) -> None:
    f = tmp_path / "later.log"
    with LiveTriage(f, quiet=0.1) as live:
        assert live.initial() == []
        f.write_text(HANG)
        evs = _drain(live, 0.5)
        assert [(e.first_line, e.categories) for e in evs] == [(1, ["batch_cache_shape", "server_hang"])]
