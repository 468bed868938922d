"""The log lines that mean a live server is not healthy (backends.md §1.5, §5), as the servers write them.

They are catalogue entries with an `action` (core/logs/catalog.toml), read by the supervising daemon
through core/logs/live.py's Reactions: the same catalogue that `triage` and the console use."""

from __future__ import annotations

import pytest

from mlx_console.core.logs.live import Reactions
from mlx_console.core.logs.patterns import Catalog, CatalogError, parse_catalog_text


@pytest.mark.parametrize(("line", "action", "reason"), [
    ("2026-11-25 13:22:47,639 - ERROR - mlx_lm.server generation thread died: No safetensors found in /m",
     "degraded", "generation thread died: No safetensors found in /m"),
    ("Exception in thread Thread-1 (_generate):", "degraded", "generation thread died"),
    ("OSError: [Errno 98] Address already in use", "stop", "port is already in use"),
    ("OSError: [Errno 48] Address already in use", "stop", "port is already in use"),
])
def test_mlx_lm_reactions(line: str, action: str, reason: str) -> None:
    hit = Reactions("mlx-lm").react(line)
    assert hit is not None and hit.action == action and reason in hit.reason, hit


@pytest.mark.parametrize("line", [
    '127.0.0.1 - - [25/Nov/2026 13:22:38] "POST /v1/chat/completions HTTP/1.1" 200 -',
    "2026-11-25 13:22:38,803 - INFO - Prompt processing progress: 14/14",
    "Exception in thread Thread-3 (process_request_thread):",
    "2026-11-25 13:22:47,639 - ERROR - JSONDecodeError: Expecting property name",
])
def test_ordinary_lines_are_not_alarms(line: str) -> None:
    assert Reactions("mlx-lm").react(line) is None


def test_omlx_uvicorn_bind_error_and_no_mlx_lm_only_reactions() -> None:
    line = "ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', 8000): address already in use"
    hit = Reactions("omlx").react(line)
    assert hit is not None and (hit.action, hit.entry) == ("stop", "port-in-use")
    assert hit.reason.startswith("the port is already in use (the log says: ERROR: [Errno 98]")
    assert Reactions("omlx").react("mlx_lm.server generation thread died: boom") is None  # an mlx-lm entry


def test_a_user_catalogue_can_add_a_reaction_and_a_bad_action_is_named() -> None:
    entry = ('[[entry]]\nid = "x"\ncategory = "server_hang"\npatterns = ["wedged forever"]\nseverity = "error"\n'
             'title = "Wedged"\ncause = "c"\nfirst_move = "f"\naction = "{}"\n')
    cat = Catalog(parse_catalog_text(entry.format("degraded"), "user.toml"))
    hit = Reactions("omlx", cat).react("the engine is wedged forever")
    assert hit is not None and hit.action == "degraded" and hit.entry == "x"
    with pytest.raises(CatalogError, match=r"user.toml, line 1, entry 'x': action 'restart' must be one of degraded, stop"):
        parse_catalog_text(entry.format("restart"), "user.toml")


def test_a_reaction_whose_line_names_the_cause_says_the_cause_first() -> None:
    line = "2026-11-25 13:22:47,639 - ERROR - mlx_lm.server generation thread died: No safetensors found in /m"
    hit = Reactions("mlx-lm").react(line)
    assert hit is not None and hit.entry == "mlx-lm-generation-thread-died"
    assert hit.reason.startswith("model weights missing or not matching the architecture: the generation thread died")
    bare = Reactions("mlx-lm").react("Exception in thread Thread-1 (_generate):")
    assert bare is not None and bare.reason.startswith("the generation thread died")


def test_a_thread_killed_by_a_stream_mismatch_is_unknown_to_triage_but_still_degrades_the_backend() -> None:
    from mlx_console.core.logs.triage import triage_text

    dump = ("Exception in thread Thread-2 (_generate):\n"
            '  File "mlx_lm/generate.py", line 1161, in prompt\n'
            "    mx.eval([c.state for c in self.prompt_cache])\n"
            "RuntimeError: There is no Stream(gpu, 0) in current thread.")
    assert [ev.categories for ev in triage_text(dump)] == []
    hit = Reactions("mlx-lm").react(dump.splitlines()[0])
    assert hit is not None and hit.action == "degraded"
