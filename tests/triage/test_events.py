"""Line formats and event grouping (records, tracebacks, thread exceptions, continuation lines)."""

from __future__ import annotations

import pytest

from mlx_console.core.logs.events import group_lines, parse_line


@pytest.mark.parametrize(
    ("line", "fmt", "level"),
    [
        ("2026-11-25 13:22:31,030 - INFO - Starting httpd at 127.0.0.1 on port 8080...", "mlx_lm", "INFO"),
        ("2026-11-25 13:22:47,639 - ERROR - JSONDecodeError: Expecting value", "mlx_lm", "ERROR"),
        ("2026-03-12 17:58:26,674 - omlx.server - INFO - [-] - CORS origins: ['*']", "omlx", "INFO"),
        ("omlx.server - WARNING - [-] - POST /v1/chat/completions → 404: Model 'nope' not found.", "omlx", "WARNING"),
        ("2026-03-12 17:58:26,674 - omlx.scheduler - ERROR - Error in batch", "omlx", "ERROR"),
        ("omlx.scheduler - ERROR   - Prefill failed for x: Memory limit exceeded during prefill", "omlx", "ERROR"),
        ('127.0.0.1 - - [25/Nov/2026 13:22:38] "POST /v1/chat/completions HTTP/1.1" 200 -', "access", None),
        ('127.0.0.1 - - [25/Nov/2026 13:22:38] "POST /v1/chat/completions HTTP/1.1" 500 -', "access", "ERROR"),
        ("INFO:     Application startup complete.", "stdlib", "INFO"),
        ("ERROR:root:Model type mistral3 not supported.", "stdlib", "ERROR"),
        ("[INFO] Loading", "bracket", "INFO"),
        ("/x/mlx_lm/server.py:1894: UserWarning: mlx_lm.server is not recommended for production", "pywarning", "WARNING"),
        ("Exception in thread Thread-1 (_generate):", "thread_exc", "ERROR"),
        ("Exception occurred during processing of request from ('127.0.0.1', 52368)", "request_exc", "ERROR"),
        ("Traceback (most recent call last):", "traceback", "ERROR"),
        ("ValueError: bad thing", "unknown", "ERROR"),
        ("libc++abi: terminating due to uncaught exception of type std::runtime_error: boom", "unknown", "ERROR"),
        ("Fetching 5 files: 100%|██████████| 5/5", "unknown", None),
        ("    raise ValueError(msg)", "indented", None),
        ("", "blank", None),
    ],
)
def test_parse_line(line: str, fmt: str, level: str | None) -> None:
    p = parse_line(line)
    assert (p.fmt, p.level) == (fmt, level)


def _ranges(text: str) -> list[tuple[int, int, str]]:
    return [(e.first_line, e.last_line, e.fmt) for e in group_lines(text.split("\n"))]


def test_logged_exception_keeps_its_traceback() -> None:
    log = """2026-11-25 14:36:08,771 - INFO - Starting httpd at 127.0.0.1 on port 34661...
2026-11-25 14:36:08,771 - ERROR - mlx_lm.server generation thread died: boom
Traceback (most recent call last):
  File "x.py", line 1, in f
    f()
RuntimeError: boom
127.0.0.1 - - [25/Nov/2026 14:36:11] "GET /health HTTP/1.1" 503 -"""
    evs = group_lines(log.split("\n"))
    assert [(e.first_line, e.last_line) for e in evs] == [(1, 1), (2, 6), (7, 7)]
    assert evs[1].has_traceback and evs[1].exception == "RuntimeError: boom"


def test_chained_traceback_is_one_event_and_trailing_blank_lines_are_dropped() -> None:
    log = """Exception in thread Thread-1 (_generate):
Traceback (most recent call last):
  File "a.py", line 1, in a
OSError: first

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "b.py", line 2, in b
ValueError: second


2026-11-25 14:36:11,000 - INFO - next"""
    evs = group_lines(log.split("\n"))
    assert [(e.first_line, e.last_line) for e in evs] == [(1, 10), (13, 13)]
    assert evs[0].exception == "ValueError: second"


def test_multiline_exception_message_stays_with_its_traceback() -> None:
    log = """Traceback (most recent call last):
  File "base.py", line 191, in load_weights
ValueError: Received 126 parameters not in model:
language_model.model.layers.24.self_attn.k_norm.weight,
language_model.model.layers.25.self_attn.k_norm.weight.
[INFO] done"""
    assert _ranges(log) == [(1, 5, "traceback"), (6, 6, "bracket")]


def test_traceback_without_introducer_starts_its_own_event() -> None:
    log = """2026-11-25 14:36:08,771 - INFO - Prompt processing progress: 1/2
Traceback (most recent call last):
  File "x.py", line 1, in f
KeyError: 'x'"""
    assert _ranges(log) == [(1, 1, "mlx_lm"), (2, 4, "traceback")]


def test_indented_lines_continue_a_record_and_print_lines_stand_alone() -> None:
    log = """/x/server.py:1894: UserWarning: not for production
  warnings.warn(
Calling `python -m mlx_lm.server...` directly is deprecated.
Fetching 9 files"""
    assert _ranges(log) == [(1, 2, "pywarning"), (3, 3, "unknown"), (4, 4, "unknown")]


def test_request_exception_block() -> None:
    log = """----------------------------------------
Exception occurred during processing of request from ('127.0.0.1', 52368)
Traceback (most recent call last):
  File "socketserver.py", line 318, in _handle_request_noblock
jinja2.exceptions.TemplateError: Conversation roles must alternate
----------------------------------------"""
    assert _ranges(log) == [(1, 1, "unknown"), (2, 6, "request_exc")]


def test_a_record_that_ends_with_a_colon_goes_on_on_the_next_line() -> None:
    # `logger.error(f"Engine loop error: {e}")` where the error's text starts on a new line (or a paste wrapped after
    # the colon): the text, and the traceback after it, are the record's
    lines = ["2026-04-24 21:49:12,869 - omlx.engine_core - ERROR - [-] - Engine loop error:",
             "There is no Stream(gpu, 0) in current thread.",
             "Traceback (most recent call last):", '  File "x.py", line 1, in f', "    y()"]
    assert [(e.first_line, e.last_line) for e in group_lines(lines)] == [(1, 5)]
    # an INFO record that ends with a colon, and a record whose next line is a print after a blank: their own
    info = ["2026-04-24 21:49:12,869 - INFO - Loading model:", "hello from a print"]
    assert [(e.first_line, e.last_line) for e in group_lines(info)] == [(1, 1), (2, 2)]
    gap = ["2026-04-24 21:49:12,869 - ERROR - Failed:", "", "hello from a print"]
    assert [(e.first_line, e.last_line) for e in group_lines(gap)] == [(1, 1), (3, 3)]


def test_a_pasted_traceback_tail_without_its_frames_is_one_event() -> None:
    # only the last source line, its carets and the exception: the code the exception was raised in belongs to it
    lines = ['    return {"capture_layer_ids": list(drafter.config.target_layer_ids)}',
             "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
             "AttributeError: 'ModelConfig' object has no attribute 'target_layer_ids'"]
    [ev] = group_lines(lines)
    assert (ev.first_line, ev.last_line, ev.level) == (1, 3, "ERROR") and ev.exception == lines[2]
    # indented lines of a record's own, a blank line, then an exception: two events
    apart = ["    detail one", "", "ValueError: bad"]
    assert [(e.first_line, e.last_line) for e in group_lines(apart)] == [(1, 1), (3, 3)]
