"""A paste wrapped by where it came from (a log collector's prefix, a list item's indentation, HTML entities) is
triaged as the log it holds, through the API and through `mlx-console triage -`; a server's own log, and a line
that only looks wrapped, are read as they are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlx_console.core.logs.paste import unquote_paste
from mlx_console.core.logs.triage import triage_file, triage_text

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "logs"

# A generic exception whose frames say where it broke: only a reader of the frames names the tokenizer.
TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/opt/venv/lib/python3.12/site-packages/mlx_lm/tokenizer_utils.py", line 463, in load',
    "    tokenizer = AutoTokenizer.from_pretrained(model_path)",
    '  File "/opt/venv/lib/python3.12/site-packages/transformers/tokenization_utils_base.py", line 2061, in '
    "from_pretrained",
    "    return cls._from_pretrained(",
    "TypeError: expected str, bytes or os.PathLike object, not NoneType",
]


def _cats(text: str) -> set[str]:
    return {c for ev in triage_text(text) for c in ev.categories}


@pytest.mark.parametrize(
    "prefix",
    [
        "mlx-1  | ",  # docker compose v2
        "Dec 06 10:00:00 studio mlx_lm.server[4242]: ",  # journalctl
        "2026-12-06T10:00:00.123456789Z ",  # docker logs -t, kubectl logs --timestamps
        "[15:59:49.692] ",  # an app stamping its child's output
    ],
)
def test_a_collectors_prefix_is_read_through(prefix: str) -> None:
    wrapped = "\n".join(prefix + ln for ln in TRACEBACK)
    assert "tokenizer" in _cats(wrapped)
    assert unquote_paste(wrapped.split("\n")) == TRACEBACK


def test_an_indented_paste_and_html_entities_are_read_through() -> None:
    indented = "\n".join("    " + ln for ln in TRACEBACK)
    assert unquote_paste(indented.split("\n")) == TRACEBACK
    assert "tokenizer" in _cats(indented)
    escaped = "AttributeError: &#39;QuantizedKVCache&#39; object has no attribute &#39;offsets&#39;"
    assert "kv_cache_quant" in _cats(escaped)
    # copied from a rendered page: no-break spaces for the indentation, a zero-width space in a word
    copied = "\n".join(ln.replace(" ", "\u00a0") for ln in TRACEBACK).replace("Traceback", "Trace\u200bback")
    assert unquote_paste(copied.split("\n")) == TRACEBACK
    assert "tokenizer" in _cats(copied)


def test_a_servers_own_lines_are_left_as_they_are() -> None:
    own = [
        "2026-12-06 10:00:00,000 - INFO - Starting httpd at 127.0.0.1 on port 8080...",
        "  continuation of a message, indented by the server",
        "  and another",
    ]
    assert unquote_paste(own) == own
    # one `name | text` line is a log's own text, not a compose prefix; two spaces of indentation are structure
    assert unquote_paste(["INFO | engine ready"]) == ["INFO | engine ready"]
    loguru = ["INFO     | app.server:lifespan:224 | ready", "ERROR    | app.server:chat:88 | Model 'x' not found"]
    assert unquote_paste(loguru) == loguru
    two = ["  File \"a.py\", line 1, in f", "    g()", "  ValueError: x"]
    assert unquote_paste(two) == two


def test_stdin_reads_a_wrapped_paste_through() -> None:
    wrapped = "".join("mlx-1  | " + ln + "\n" for ln in TRACEBACK)
    out = subprocess.run([sys.executable, "-m", "mlx_console", "triage", "--json", "-"], input=wrapped.encode(),
                         capture_output=True, timeout=60, check=False)
    assert out.returncode in (0, 1), out.stderr.decode()
    events = [json.loads(line) for line in out.stdout.decode().splitlines() if line.startswith("{")]
    assert any("tokenizer" in (e.get("categories") or [e.get("category")]) for e in events), out.stdout


def test_a_saved_compose_log_file_is_read_through(tmp_path: Path) -> None:
    log = tmp_path / "compose.log"
    log.write_text("".join("mlx-1  | " + ln + "\n" for ln in TRACEBACK))
    out = subprocess.run([sys.executable, "-m", "mlx_console", "triage", "--json", str(log)], capture_output=True,
                         timeout=60, check=False)
    events = [json.loads(line) for line in out.stdout.decode().splitlines() if line.startswith("{")]
    assert [e["line"] for e in events if "tokenizer" in (e.get("categories") or [])] == [1], out.stdout


def test_a_paste_cut_at_a_fixed_width_gets_its_lines_back() -> None:
    long = [
        "2026-12-06 10:00:00,000 - omlx.engine_core - ERROR - [-] - Engine loop error: [broadcast_shapes] Shapes "
        "(1,16,1024,64) and (1,1,549,64) cannot be broadcast.",
        "2026-12-06 10:00:01,000 - omlx.scheduler - ERROR - [-] - Cache corruption not recoverable after 2 attempts",
    ]
    cut = [ln[i:i + 80] for ln in long for i in range(0, len(ln), 80)]
    assert unquote_paste(cut) == [long[0], "", long[1], ""]
    assert "batch_cache_shape" in _cats("\n".join(cut))
    # lines that happen to be as long as each other, each followed by a record of its own, stay as they are
    natural = ["2026-12-06 10:00:00,000 - INFO - " + "a" * 60, "2026-12-06 10:00:01,000 - INFO - " + "b" * 60,
               "2026-12-06 10:00:02,000 - INFO - done"]
    assert unquote_paste(natural) == natural


def test_one_line_cut_at_a_terminals_width_gets_its_rest_back() -> None:
    line = ("ValueError: [broadcast_shapes] Shapes (4,16,1,2213) and (4,1,1,1962) cannot be broadcast while merging "
            "the batch caches")
    head = ['  File "/opt/venv/lib/python3.12/site-packages/mlx_lm/models/cache.py", line 912, in merge']
    cut = [*head, line[:100], line[100:]]
    assert unquote_paste(cut) == [*head, line, ""]
    # one line of another width is not glued to its rest as a cut (it is read as a word-wrapped line: a space
    # between, each part's words intact); a rest that is indented (a frame, a detail) is left as it is
    odd = [*head, line[:97], line[97:]]
    assert unquote_paste(odd) == [*head, line[:97] + " " + line[97:], ""]
    indented = [*head, "x" * 100, "    raise ValueError(msg)"]
    assert unquote_paste(indented) == indented


def test_a_paste_indented_as_a_whole_is_read_at_the_margin() -> None:
    # a single line of a list item or a code block, and a thread dump whose first line is at the margin
    one = ["    Error in iterating prediction stream: AttributeError: 'MambaCache' object has no attribute 'offset'"]
    assert unquote_paste(one) == [one[0].lstrip()]
    dump = ['    Thread "mlx-engine_0" (active):', "        step (omlx/scheduler.py:10546)"]
    assert unquote_paste(dump) == ['Thread "mlx-engine_0" (active):', "    step (omlx/scheduler.py:10546)"]
    assert "server_hang" in _cats("\n".join(dump))
    # a log's own continuation lines, indented two or three spaces, keep their indentation
    cont = ["   at libs/mlx-swift/Source/Cmlx/mlx-c/mlx/c/ops.cpp:677", "   at main.swift:12"]
    assert unquote_paste(cont) == cont


@pytest.mark.parametrize(
    "line",
    [
        "2026-12-06 10:00:00,000 - omlx.engine_core - error - [-] - Engine loop error: boom",
        "2026-12-06 10:00:00,000 - error - Engine loop error: boom",
        'time=2026-12-06T10:00:00Z level=error msg="Engine loop error: boom"',
        "[error] Engine loop error: boom",
    ],
)
def test_a_level_in_lower_case_is_a_level(line: str, tmp_path: Path) -> None:
    # the same record from a file (the fast scan selects it) and from a paste
    log = tmp_path / "x.log"
    log.write_text("ok\n" + line + "\n")
    assert [e.event.level for e in triage_file(log)] == ["ERROR"]
    assert "server_hang" in _cats(line)


@pytest.mark.parametrize(
    "prefix",
    [
        "2026-12-06 10:00:00.123 swama[1234:5678] ",  # NSLog from a Swift app
        "2026-12-06 10:00:00.123456+0100 0x1a2b     Error       0x0                  1234   0    python3: ",  # log show
        "0|omlx     | ",  # pm2
    ],
)
def test_macos_and_pm2_prefixes_are_read_through(prefix: str) -> None:
    tb = ["Traceback (most recent call last):",
          '  File "/opt/venv/lib/python3.12/site-packages/mlx_lm/tokenizer_utils.py", line 412, in load',
          "    tokenizer = AutoTokenizer.from_pretrained(model_path)",
          "ValueError: something went wrong"]
    assert unquote_paste([prefix + ln for ln in tb]) == tb
    assert "tokenizer" in _cats("\n".join(prefix + ln for ln in tb))


@pytest.mark.parametrize(
    "prefix",
    [
        "[ 10:00:00.1234AM | ERROR   ] ",  # exo, short
        "[ 2026-12-06 10:00:00.123 | ERROR    | exo.worker.runner:main:12 ] ",  # exo, long
        "(APIServer pid=83023) ERROR 02-23 18:49:03 [serving_chat.py:1343] ",  # vllm-metal
        "[2025-03-07 01:45:37.078][ERROR][mlx-engine] ",  # LM Studio
    ],
)
def test_a_pattern_anchored_at_the_start_also_sees_the_line_after_a_servers_prefix(prefix: str) -> None:
    assert "tool_call_plaintext" in _cats(prefix + '<tool_call>{"name": "ls", "arguments": {}}</tool_call>')
    assert "tool_call_plaintext" in _cats(prefix + '{"name": "get_weather", "arguments": {"city": "Paris"}}')


def test_a_paste_word_wrapped_at_a_width_gets_its_lines_back() -> None:
    import textwrap

    long = ["2026-12-06 10:00:00,000 - omlx.engine_core - ERROR - [-] - Engine loop error: There is no Stream(gpu, 0) "
            "in current thread.",
            "ValueError: [broadcast_shapes] Shapes (4,16,1,2213) and (4,1,1,1962) cannot be broadcast while the "
            "batch caches were merged"]
    wrapped = [x for ln in long for x in textwrap.wrap(ln, 80)]
    assert len(wrapped) > len(long)
    joined = [ln for ln in unquote_paste(wrapped) if ln]
    assert joined == long
    assert "batch_cache_shape" in _cats("\n".join(wrapped))
    # a short paste with one break: a guard's sentence
    two = ["oMLX prefill memory guard rejected this prompt: Prefill context too large", "for available memory (kv_len=143)"]
    assert unquote_paste(two)[0] == " ".join(two)


def test_a_servers_own_log_is_not_unwrapped() -> None:
    # a repeated long line followed by a rule, a long line followed by an access line or a frame: records of their own
    log = ["huggingface_hub.errors.CacheNotFound: Cache directory not found: /Users/me/.cache/huggingface/hub. "
           "Please use `cache_dir` argument.", "-" * 40] * 2 + [
           "2026-12-06 10:00:00,000 - INFO - Prompt processing progress: 1024/4096 (the prompt is long, a line near "
           "the width)", '127.0.0.1 - - [06/Dec/2026 10:00:00] "POST /v1/chat/completions HTTP/1.1" 200 -']
    assert unquote_paste(log) == log
    # two quoted lines, the first ending its sentence: two records, the second a shell's word for a killed process
    quoted = ['"Model does not support SSD expert streaming (the model is not MoE). Ignoring --stream-experts flag."',
              '"zsh: killed ./SwiftLM --model big"']
    assert unquote_paste(quoted) == quoted and "oom_inference" in _cats("\n".join(quoted))
    for f in FIXTURES.glob("*.log"):
        lines = f.read_text().splitlines()
        assert unquote_paste(lines) == lines, f.name
