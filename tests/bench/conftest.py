"""Bench fixtures: the scripted OpenAI-compatible stand-in, in-process, on a free port."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "standins"))

from openai_scripted import Script, ScriptedServer  # noqa: E402

__all__ = ["Script", "ScriptedServer"]


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    """Factory: scripted(scripts=[Script(...)], preset="good"|"bad", default=Script(...)) → started server."""
    started: list[ScriptedServer] = []

    def start(*args: Any, **kw: Any) -> ScriptedServer:
        srv = ScriptedServer(*args, **kw).start()
        started.append(srv)
        return srv

    yield start
    for s in started:
        s.stop()
