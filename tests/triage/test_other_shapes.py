"""Shapes of evidence other servers and pastes print: pybind11 `At:` frames, Rich and Go tracebacks, logfmt and
loguru prefixes, Markdown-quoted pastes; catalogue keys `text` and `skip_levels`."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_console.core.logs.events import group_lines, parse_line
from mlx_console.core.logs.evidence import facts
from mlx_console.core.logs.patterns import Catalog, CatalogError
from mlx_console.core.logs.triage import explain, triage_text

ENTRY = """
[[entry]]
id = "where-it-broke"
category = "tokenizer"
frames = ['tokenizer_utils\\.py in', 'tokenizer\\.go in|tokenizer\\.\\(\\*\\w+\\)\\.\\w+']
severity = "error"
title = "t"
cause = "c"
first_move = "m"
"""


def _one(text: str):
    evs = group_lines(text.splitlines())
    assert len(evs) == 1, [e.lines for e in evs]
    return evs[0]


def test_pybind11_at_frames_join_the_exception_across_a_blank_line() -> None:
    ev = _one("RuntimeError: something broke\n\nAt:\n  /x/site-packages/mlx_lm/tokenizer_utils.py(237): add_token\n"
              "  /x/site-packages/mlx_lm/generate.py(12): stream_generate\n")
    f = facts(ev)
    assert [fr.text for fr in f.frames][0] == "/x/site-packages/mlx_lm/tokenizer_utils.py in add_token"
    cat = Catalog.load([], shipped=False)
    from mlx_console.core.logs.patterns import parse_catalog_text

    cat = Catalog(parse_catalog_text(ENTRY, "t.toml"))
    assert cat.match(ev, f=f)[0].id == "where-it-broke"


def test_rich_traceback_box_is_one_event_with_frames() -> None:
    text = (
        "╭───────────── Traceback (most recent call last) ─────────────╮\n"
        "│ /x/site-packages/mlx_lm/tokenizer_utils.py:237 in add_token │\n"
        "│                                                             │\n"
        "╰─────────────────────────────────────────────────────────────╯\n"
        "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xa7\n"
    )
    ev = _one(text)
    assert ev.has_traceback and ev.exception and ev.exception.startswith("UnicodeDecodeError")
    assert facts(ev).frames[0].func == "add_token"


def test_go_panic_goroutine_dump_is_one_event_with_frames() -> None:
    text = (
        "panic: runtime error: index out of range [3] with length 3\n\n"
        "goroutine 12 [running]:\n"
        "github.com/ollama/ollama/x/mlxrunner/tokenizer.(*Tokenizer).Decode(...)\n"
        "\t/src/x/mlxrunner/tokenizer/tokenizer.go:88 +0x1d4\n"
    )
    ev = _one(text)
    f = facts(ev)
    assert ev.is_problem
    texts = [fr.text for fr in f.frames]
    assert "github.com/ollama/ollama/x/mlxrunner/tokenizer.(*Tokenizer).Decode" in texts
    assert "/src/x/mlxrunner/tokenizer/tokenizer.go" in texts


def test_logfmt_record_level_and_message() -> None:
    p = parse_line('time=2026-01-02T03:04:05.000Z level=ERROR source=server.go:12 msg="load failed" '
                   'err="listen tcp 127.0.0.1:11434: bind: address already in use"')
    assert (p.fmt, p.level) == ("logfmt", "ERROR")
    assert p.message == "load failed err=listen tcp 127.0.0.1:11434: bind: address already in use"


def test_loguru_with_bar_separator_is_a_prefix() -> None:
    p = parse_line("2026-01-28 11:44:35 | ERROR    | app.handler:run:143 | ValueError: boom")
    assert p.level == "ERROR" and p.message == "ValueError: boom"


def test_markdown_quoted_paste_reads_like_the_log() -> None:
    log = "Traceback (most recent call last):\n  File \"a.py\", line 1, in f\nOSError: [Errno 48] Address already in use"
    quoted = "> ```\n" + "\n".join("> " + ln for ln in log.splitlines()) + "\n> ```\n"
    fenced = "It crashed:\n```\n" + log + "\n```\n"
    for text in (log, quoted, fenced):
        assert [c for ev in triage_text(text) for c in ev.categories] == ["port_in_use"], text


def _cat(body: str) -> Catalog:
    from mlx_console.core.logs.patterns import parse_catalog_text

    return Catalog(parse_catalog_text(body, "u.toml"))


def test_text_key_finds_a_concept_anywhere_in_an_error_event() -> None:
    cat = _cat("""
[[entry]]
id = "c"
category = "speculative_decoding"
text = ['[Dd]raft model']
exceptions = ['ValueError']
severity = "error"
title = "t"
cause = "c"
first_move = "m"
""")
    hit = "ValueError: shapes differ\n  (while running the draft model)"
    assert [e.categories for e in triage_text(hit, cat)] == [["speculative_decoding"]]
    assert triage_text("INFO: draft model loaded", cat) == []  # not a warning/error event


def test_skip_levels_keeps_an_entry_off_debug_records(tmp_path: Path) -> None:
    body = """
[[entry]]
id = "w"
category = "model_load_missing_weights"
patterns = ['No model weights found']
skip_levels = ["DEBUG"]
severity = "error"
title = "t"
cause = "c"
first_move = "m"
"""
    cat = _cat(body)
    assert triage_text("2026-01-01 00:00:00,000 - DEBUG - No model weights found in /x (skipping)", cat) == []
    assert triage_text("2026-01-01 00:00:00,000 - ERROR - No model weights found in /x", cat)[0].main.id == "w"
    t = triage_text("2026-01-01 00:00:00,000 - ERROR - No model weights found in /x", cat)[0]
    assert explain(t, cat)[0].chosen
    f = tmp_path / "bad.toml"
    f.write_text(body.replace('["DEBUG"]', '["VERBOSE"]'))
    with pytest.raises(CatalogError, match=r"bad\.toml, line 2, entry 'w': skip_levels has 'VERBOSE'"):
        Catalog.load([f])


def test_cli_reads_a_quoted_paste_on_stdin() -> None:
    import json
    import subprocess
    import sys

    paste = ("> ```\n> Traceback (most recent call last):\n>   File \"a.py\", line 1, in f\n"
             "> OSError: [Errno 48] Address already in use\n> ```\n")
    out = subprocess.run([sys.executable, "-m", "mlx_console", "triage", "-", "--json"], input=paste.encode(),
                         capture_output=True, check=True, timeout=60).stdout.decode()
    events = [json.loads(x) for x in out.splitlines()]
    assert [(e["line"], e["categories"]) for e in events] == [(2, ["port_in_use"])]


def _cats(text: str) -> list[str]:
    return sorted({c for t in triage_text(text) for c in t.categories})


def test_frame_cut_before_file_still_a_frame() -> None:
    # A paste cut mid-line keeps `path.py", line N, in func` without its `File "`.
    ev = _one('lib/python3.12/site-packages/mlx_lm/models/cache.py", line 512, in to_quantized\n'
              "    return QuantizedKVCache(bits)\nAttributeError: 'ArraysCache' object has no attribute 'bits'\n")
    assert ev.has_traceback
    assert facts(ev).frames[0].text.endswith("mlx_lm/models/cache.py in to_quantized")


def test_json_error_body_and_wrapper_sentence_are_error_events() -> None:
    assert parse_line('{"error": {"message": "boom", "type": "internal_error"}}').level == "ERROR"
    assert parse_line("Failed to load draft model. FooError: no").level == "ERROR"
    assert parse_line('{"choices": [{"message": {"content": "fine"}}]}').level is None
    assert _cats('{"error": {"message": "AttributeError: \'MambaCache\' object has no attribute \'offset\'"}}') == [
        "kv_cache_quant"]


def test_indented_exception_line_makes_an_error_event() -> None:
    ev = _one("  tool_call = json.loads(tool_text)\n  json.decoder.JSONDecodeError: Expecting value: line 1 column 1\n")
    assert ev.level == "ERROR"
    assert "tool_call_plaintext" in _cats("  tool_call = json.loads(tool_text)\n"
                                          "  json.decoder.JSONDecodeError: Expecting value: line 1 column 1\n")


def test_traceback_cut_before_its_exception_is_judged_by_frames_and_text() -> None:
    cut = ('Traceback (most recent call last):\n'
           '  File "/x/mlx_lm/generate.py", line 280, in maybe_quantize_kv_cache\n'
           "    prompt_cache[e] = c.to_quantized(group_size=kv_group_size, bits=kv_bits)\n")
    assert _cats(cut) == ["kv_cache_quant"]
    # no frame or word says where: nothing is claimed
    assert _cats('Traceback (most recent call last):\n  File "/x/app.py", line 3, in main\n    run()\n') == []


def test_command_line_of_the_run_is_nearby_evidence_in_a_paste() -> None:
    text = ("$ mlx_lm.server --model m --draft-model d\n" + "".join(f"INFO: line {i}\n" for i in range(8))
            + "ValueError: [matmul] Last dimension of first input must match second dimension of the second input\n")
    assert _cats(text) == ["speculative_decoding"]
    assert _cats(text.replace(" --draft-model d", "")) == []


def test_iso_time_and_lower_case_level_prefix() -> None:
    p = parse_line("2026-01-02T10:00:00.123Z error ValueError: Model type foo not supported.")
    assert p.level == "ERROR"
    assert parse_line("2026-01-02T10:00:00.123Z INFO loaded").level is None


@pytest.mark.parametrize(("logger", "level", "msg", "want"), [
    ("omlx.cache.prefix_cache", "ERROR", "Failed to restore block 12: 'NoneType' object is not subscriptable",
     ["batch_cache_shape"]),
    ("omlx.cache.paged_ssd_cache", "ERROR", "Failed to write block: [Errno 28] No space left on device", []),
    ("omlx.cache.prefix_cache", "WARNING", "evicting 12 blocks", []),
    # (an engine loop error also stalls the requests of that loop: server_hang comes with it)
        ("omlx.engine.batched", "ERROR", "Engine loop error: 'NoneType' object is not subscriptable",
         ["batch_cache_shape", "server_hang"]),
    ("omlx.api.tool_calling", "WARNING", "Could not parse tool call: unexpected token", ["tool_call_plaintext"]),
    ("omlx.turboquant", "ERROR", "state shape mismatch", ["kv_cache_quant"]),
    ("omlx.server", "INFO", "Chat completion: 10 tokens in 0.5s", []),
])
def test_omlx_logger_names_say_where(logger: str, level: str, msg: str, want: list[str]) -> None:
    assert _cats(f"2026-01-01 10:00:00,000 - {logger} - {level} - [-] - {msg}") == want


COLOURED = (
    "\x1b[32mINFO\x1b[0m:     127.0.0.1:50514 - \"POST /v1/chat/completions HTTP/1.1\" 200 OK\n"
    "\x1b[31mERROR\x1b[0m:    Exception in ASGI application\n"
    "Traceback (most recent call last):\n"
    '  File "\x1b[36m/x/site-packages/mlx_lm/tokenizer_utils.py\x1b[0m", line 237, in \x1b[35madd_token\x1b[0m\n'
    "    self._unflushed += token\n"
    "\x1b[1;31mTypeError\x1b[0m: unhashable type: 'list'\n"
    "\x1b[32mINFO\x1b[0m:     127.0.0.1:50515 - \"GET /health HTTP/1.1\" 200 OK\n"
)


def test_a_coloured_log_is_triaged_through_its_colours(tmp_path: Path) -> None:
    # uvicorn, loguru and rich colour their lines on a terminal (a `script` capture, FORCE_COLOR): the same
    # event in every reader, on the same lines, with its frame and exception as evidence.
    from mlx_console.core.logs.triage import Triager, triage_buffer, triage_file

    log = tmp_path / "coloured.log"
    log.write_text(COLOURED)
    feeder = Triager()
    fed = feeder.feed_many(COLOURED.splitlines()) + feeder.flush()
    for evs in (triage_text(COLOURED), triage_buffer(COLOURED.encode()), triage_file(log), fed):
        [ev] = evs
        assert (ev.first_line, ev.last_line, ev.categories[0]) == (2, 6, "tokenizer")
        assert any(e.kind == "frame" and e.text.endswith("tokenizer_utils.py in add_token") for e in ev.evidence)
        assert all("\x1b" not in e.text for e in ev.evidence)
