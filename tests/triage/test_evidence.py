"""Evidence-based classification: exceptions, traceback frames, loggers, other servers' prefixes, settings_invalid,
post-mortem events, a search query for unknown errors, `--explain`, and the cached pattern database."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from mlx_console.core.logs import scan
from mlx_console.core.logs.patterns import CATEGORIES, Catalog, CatalogError
from mlx_console.core.logs.scan import Scanner
from mlx_console.core.logs.triage import (
    Triager,
    default_catalog,
    explain,
    triage_buffer,
    triage_file,
    triage_text,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "logs"
OMLX_REAL = FIXTURES.parent / "omlx-real"


def _cats(text: str) -> set[str]:
    return {c for ev in triage_text(text) for c in ev.categories}


def _tb(*frames: tuple[str, str], exc: str, head: str = "Traceback (most recent call last):") -> str:
    body = "".join(f'  File "{path}", line 10, in {func}\n    x = y\n' for path, func in frames)
    return f"{head}\n{body}{exc}\n"


SITE = "/opt/homebrew/lib/python3.12/site-packages"


def test_fifteen_categories_with_settings_invalid() -> None:
    assert len(CATEGORIES) == 15 and "settings_invalid" in CATEGORIES
    assert {c for e in default_catalog().entries for c in e.categories} == set(CATEGORIES)


def test_every_shipped_regex_compiles() -> None:
    # The shipped catalogue compiles its regexes on first use (start-up time): check them all here.
    for e in Catalog.load().entries:
        e.validate()


@pytest.mark.parametrize(
    ("log", "cat"),
    [
        # A generic exception: where it was raised says what broke.
        (_tb((f"{SITE}/mlx_lm/server.py", "handle_completion"), (f"{SITE}/mlx_lm/tokenizer_utils.py", "add_token"),
             exc="UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe4 in position 3: unexpected end of data"),
         "tokenizer"),
        (_tb((f"{SITE}/mlx_lm/server.py", "_tokenize"), (f"{SITE}/transformers/utils/chat_template_utils.py",
                                                          "render_jinja_template"),
             (f"{SITE}/jinja2/environment.py", "render"), exc="TypeError: 'NoneType' object is not iterable"),
         "chat_template"),
        (_tb((f"{SITE}/mlx_lm/generate.py", "_next"), (f"{SITE}/mlx_lm/models/cache.py", "extend"),
             exc="ValueError: [concatenate] shapes do not line up"), "batch_cache_shape"),
        (_tb((f"{SITE}/mlx_lm/generate.py", "generate_step"), (f"{SITE}/mlx_lm/models/cache.py",
                                                               "maybe_quantize_kv_cache"),
             exc="AttributeError: 'ArraysCache' object has no attribute 'to_quantized'"), "kv_cache_quant"),
        (_tb((f"{SITE}/mlx_lm/utils.py", "load_model"), (f"{SITE}/mlx/nn/layers/base.py", "load_weights"),
             exc="KeyError: 'model.layers.0.mlp.gate.weight'"), "model_load_missing_weights"),
        (_tb((f"{SITE}/omlx/engine/dflash.py", "start"), (f"{SITE}/omlx/engine/dflash.py", "_build_drafter"),
             exc="RuntimeError: shape mismatch in drafter"), "speculative_decoding"),
        (_tb((f"{SITE}/mlx_lm/utils.py", "_get_classes"),
             exc="ModuleNotFoundError: No module named 'mlx_lm.models.newarch'"), "unsupported_arch"),
    ],
)
def test_generic_exception_classified_by_its_frames(log: str, cat: str) -> None:
    [ev] = triage_text(log)
    assert cat in ev.categories
    kinds = {e.kind for e in ev.evidence}
    assert "frame" in kinds or "pattern" in kinds
    assert 0 < ev.confidence <= 1


def test_frames_alone_do_not_make_a_bug_of_an_unrelated_error() -> None:
    log = _tb((f"{SITE}/mlx_lm/server.py", "handle_completion"), (f"{SITE}/mlx_lm/server.py", "_send"),
              exc="BrokenPipeError: [Errno 32] Broken pipe")
    assert _cats(log) == set()


@pytest.mark.parametrize(
    ("log", "cat"),
    [
        ("2026-06-01 10:00:00,000 - omlx.engine.dflash - ERROR - [-] - drafter step raised: index out of range",
         "speculative_decoding"),
        ("2026-06-01 10:00:00,000 - omlx.engine_pool - WARNING - [-] - DFlash start failed for m: boom. "
         "Falling back to batched engine.", "speculative_decoding"),
        ("2026-06-01 10:00:00,000 - omlx.cache.prefix_cache - WARNING - [-] - Failed to reconstruct cache: "
         "[broadcast_shapes] Shapes (1,8,4,64) and (1,8,2,64) cannot be broadcast.", "batch_cache_shape"),
        ("2026-06-01 10:00:00,000 - omlx.engine_core - ERROR - [-] - Engine loop error: Cannot broadcast array "
         "of shape (2,8,1,64) into shape (1,8,1,64)", "batch_cache_shape"),
        ("2026-06-01 10:00:00,000 - omlx.model_discovery - WARNING - [-] - Skipping /m/x: No model weights found in "
         "/m/x", "model_load_missing_weights"),
        ("Configuration error: Invalid port: 99999 (must be 1-65535)", "settings_invalid"),
        ("Configuration error: Invalid memory_guard_tier: huge (must be one of ['balanced', 'custom'])",
         "settings_invalid"),
        ("2026-06-01 10:00:00,000 - omlx.model_settings - ERROR - [-] - Invalid JSON in settings file: Expecting "
         "value: line 1 column 1 (char 0)", "settings_invalid"),
        ("mlx_lm.server: error: unrecognized arguments: --kv-bitz 4", "settings_invalid"),
        ("mlx_lm.server: error: argument --port: invalid int value: 'abc'", "settings_invalid"),
    ],
)
def test_omlx_loggers_wording_and_settings(log: str, cat: str) -> None:
    assert cat in _cats(log)


def test_an_admin_api_400_is_a_client_error_not_invalid_settings() -> None:
    log = ("2026-11-25 14:29:18,191 - omlx.server - WARNING - [-] - PUT /admin/api/models/m/settings → 400: "
           "Invalid model_type_override: xyz")
    assert "settings_invalid" not in _cats(log)


@pytest.mark.parametrize(
    "prefix",
    ["(EngineCore_DP0 pid=86000) ERROR 02-25 01:05:23 [core.py:938] ", "[12:45:00.625] ",
     "2026-02-12 17:10:22.123 | ERROR    | exo.worker.runner:run:88 - "],
)
def test_other_servers_prefixes_keep_the_traceback_one_event(prefix: str) -> None:
    body = _tb((f"{SITE}/vllm_mlx/engine.py", "step"), (f"{SITE}/mlx_lm/models/cache.py", "merge"),
               exc="ValueError: [broadcast_shapes] Shapes (1,8,2196,64) and (1,8,128,64) cannot be broadcast.")
    log = "".join(prefix + line + "\n" for line in body.splitlines())
    evs = triage_text(log)
    assert len(evs) == 1 and evs[0].categories == ["batch_cache_shape"]
    assert (evs[0].first_line, evs[0].last_line) == (1, len(body.splitlines()))


def test_tool_calls_left_in_content() -> None:
    for line in ['{"role": "assistant", "content": "<|tool_call>call:get_weather{city:<|\\"|>Paris<|\\"|>}<tool_call|>"}',
                 '"content": "<function=read_file>\\n<parameter=path>a.txt</parameter>\\n</function>"',
                 '"content": "[TOOL_CALLS]get_weather[ARGS]{\\"city\\": \\"Paris\\"}"',
                 '"content": "{\\"name\\": \\"get_weather\\", \\"arguments\\": {\\"city\\": \\"Paris\\"}}"']:
        assert "tool_call_plaintext" in _cats(line), line


def test_json_adds_evidence_and_confidence_and_keeps_the_contract() -> None:
    log = _tb((f"{SITE}/mlx_lm/tokenizer_utils.py", "add_token"), exc="ValueError: bad byte")
    [ev] = triage_text(log)
    o = ev.to_json()
    assert list(o)[:8] == ["line", "end_line", "categories", "pattern", "severity", "title", "first_move",
                           "references"]
    assert o["categories"] == ["tokenizer"] and o["pattern"] == "tokenizer-frames"
    assert all(set(e) == {"kind", "line", "text"} for e in o["evidence"])
    assert {"kind": "frame", "line": 2, "text": f"{SITE}/mlx_lm/tokenizer_utils.py in add_token"} in o["evidence"]
    assert 0.5 <= o["confidence"] < 0.9  # evidence alone scores below a pattern's wording


def test_unknown_error_gets_a_search_of_its_backends_tracker() -> None:
    log = ("2026-06-01 10:00:00,000 - omlx.scheduler - ERROR - [-] - Frobnicator exploded at step 12 for "
           "request 3f2a9c1e-aaaa-bbbb-cccc-1234567890ab with key sk-abcdefghijklmnopqrstu")
    [ev] = triage_text(log, include_all=True)
    assert ev.categories == [] and ev.backend == "omlx"
    assert ev.search_query == "Frobnicator exploded at step for request with"
    assert ev.search_urls[0].startswith("https://github.com/jundot/omlx/issues?q=")
    assert "sk-" not in " ".join(ev.search_urls)
    assert ev.first_move.startswith('Search jundot/omlx issues for "Frobnicator')
    o = ev.to_json()
    assert o["search_query"] == ev.search_query and o["confidence"] == 0.0


def test_explain_says_why_chosen_and_rejected() -> None:
    log = _tb((f"{SITE}/mlx_lm/server.py", "handle"), (f"{SITE}/transformers/tokenization_utils_base.py",
                                                      "apply_chat_template"),
              (f"{SITE}/jinja2/environment.py", "render"), exc="TypeError: can only concatenate str")
    [ev] = triage_text(log)
    verdicts = {v.id: v for v in explain(ev)}
    assert verdicts["chat-template-frames"].chosen
    assert not verdicts["tokenizer-frames"].chosen
    assert any("not_context" in r for r in verdicts["tokenizer-frames"].reasons)


def test_post_mortem_event_at_end_of_a_dead_backends_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    text = ("2026-01-01 10:00:00,000 - INFO - Starting httpd at 127.0.0.1 on port 8080...\n"
            + _tb((f"{SITE}/mlx_lm/server.py", "_generate"), (f"{SITE}/mlx_lm/models/cache.py", "merge"),
                  exc="ValueError: [broadcast_shapes] Shapes (2,8) and (1,8) cannot be broadcast.",
                  head="Exception in thread Thread-1 (_generate):\nTraceback (most recent call last):"))
    log.write_text(text.rstrip("\n"))  # the process died: no newline after its last words
    [ev] = triage_file(log)
    assert ev.categories[0] == "batch_cache_shape" and ev.last_line == len(text.splitlines())
    # A follower (the console) that read the whole file gets it when it closes the open event.
    t = Triager()
    assert t.feed_many(text.splitlines()) == []
    [ev2] = t.flush()
    assert ev2.to_json() == ev.to_json()


def test_nearby_request_is_evidence(tmp_path: Path) -> None:
    text = ('127.0.0.1 - - [25/Nov/2026 13:22:38] "POST /v1/chat/completions HTTP/1.1" 200 -\n'
            + _tb((f"{SITE}/mlx_lm/tokenizer_utils.py", "add_token"), exc="ValueError: bad byte"))
    [ev] = triage_buffer(text.encode())
    assert any(e.kind == "nearby" and e.line == 1 for e in ev.evidence)
    assert [e.to_json() for e in triage_text(text)] == [ev.to_json()]


def test_evidence_entry_needs_patterns_or_evidence_keys(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[[entry]]\nid='x'\ncategory='server_hang'\nseverity='error'\ntitle='t'\ncause='c'\nfirst_move='m'\n")
    with pytest.raises(CatalogError, match=r"c\.toml, line 1, entry 'x': needs 'patterns' or at least one of"):
        Catalog.load([f])
    f.write_text("[[entry]]\nid='x'\ncategory='server_hang'\nframes=['([']\nseverity='error'\ntitle='t'\n"
                 "cause='c'\nfirst_move='m'\n")
    with pytest.raises(CatalogError, match=r"c\.toml, line 1, entry 'x': invalid regex"):
        Catalog.load([f])


def test_user_entry_on_frames_and_logger(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[[entry]]\nid='my-hang'\ncategory='server_hang'\nloggers=['^myserver\\.engine$']\n"
                 "frames=['wait_forever']\nseverity='error'\ntitle='t'\ncause='c'\nfirst_move='m'\n")
    cat = Catalog.load([f])
    log = ("2026-06-01 10:00:00,000 - myserver.engine - ERROR - [-] - step failed\nTraceback (most recent call "
           'last):\n  File "/x/myserver/engine.py", line 3, in wait_forever\nRuntimeError: no\n')
    [ev] = triage_text(log, cat)
    assert ev.main.id == "my-hang" and {e.kind for e in ev.evidence} >= {"logger", "frame"}


def test_no_bug_category_on_real_clean_runs() -> None:
    for p in [*FIXTURES.glob("*clean*.log"), OMLX_REAL / "serve-stdout.txt"]:
        assert triage_file(p) == [], p


def test_real_omlx_runs_flag_only_what_was_provoked() -> None:
    # The recorded oMLX runs provoke 404s for unknown models and settings errors on purpose: nothing else.
    for p in [*OMLX_REAL.glob("*.log"), OMLX_REAL / "serve-stderr.txt"]:
        cats = {c for ev in triage_file(p) for c in ev.categories}
        assert cats <= {"model_not_found", "settings_invalid", "speculative_decoding"}, (p, cats)


@pytest.mark.skipif(scan.hyperscan is None, reason="hyperscan not installed")
def test_pattern_database_is_cached_and_a_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    cat = Catalog.load()
    first = Scanner(cat, cache_dir=tmp_path)
    assert not first.cache_hit
    [cache] = tmp_path.glob("hs-*.db")
    second = Scanner(cat, cache_dir=tmp_path)
    assert second.cache_hit
    data = b"ok\nOSError: [Errno 48] Address already in use\n"
    assert [e.categories for e in triage_buffer(data, cat, scanner=second)] == [["port_in_use"]]
    good = cache.read_bytes()
    for bad in (good[: len(good) // 2], good[:-1] + bytes([good[-1] ^ 1]), b"garbage"):
        cache.write_bytes(bad)
        again = Scanner(cat, cache_dir=tmp_path)
        assert not again.cache_hit
        assert [e.categories for e in triage_buffer(data, cat, scanner=again)] == [["port_in_use"]]
        assert cache.read_bytes() == good  # rewritten whole
    # Another catalogue (a user entry) is another key.
    f = tmp_path / "c.toml"
    f.write_text("[[entry]]\nid='x'\ncategory='server_hang'\npatterns=['stuck \\d+']\nseverity='error'\n"
                 "title='t'\ncause='c'\nfirst_move='m'\n")
    assert not Scanner(Catalog.load([f]), cache_dir=tmp_path).cache_hit
    assert len(list(tmp_path.glob("hs-*.db"))) == 2


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlx_console", *args], capture_output=True, text=True,
                          timeout=60, env=os.environ.copy())


def test_cli_explain_and_json_explain(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text(_tb((f"{SITE}/mlx_lm/tokenizer_utils.py", "add_token"), exc="ValueError: bad byte"))
    r = _cli("triage", str(log), "--explain")
    assert r.returncode == 0, r.stderr
    assert "chosen   tokenizer-frames [tokenizer]" in r.stdout
    assert "frame     line 2" in r.stdout and "(confidence 0." in r.stdout
    r = _cli("triage", str(log), "--json", "--explain")
    [o] = [json.loads(x) for x in r.stdout.splitlines()]
    why = {v["id"]: v for v in o["explain"]}
    assert why["tokenizer-frames"]["chosen"] is True and why["weights-frames"]["chosen"] is False
    assert "frames: no evidence" in " ".join(why["weights-frames"]["reasons"])
    r = _cli("triage", str(log), "--backend", "nope")
    assert r.returncode == 2 and "invalid choice: 'nope'" in r.stderr


@pytest.mark.slow
def test_follow_reports_a_dead_backends_last_event_at_once(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    text = ("2026-01-01 10:00:00,000 - INFO - Starting httpd at 127.0.0.1 on port 8080...\n"
            + _tb((f"{SITE}/mlx_lm/server.py", "_generate"), (f"{SITE}/mlx_lm/models/cache.py", "merge"),
                  exc="ValueError: [broadcast_shapes] Shapes (2,8) and (1,8) cannot be broadcast."))
    log.write_text(text.rstrip("\n"))  # died mid-line: no newline after its last words
    old = os.stat(log).st_mtime - 60
    os.utime(log, (old, old))
    p = subprocess.Popen([sys.executable, "-m", "mlx_console", "triage", str(log), "--follow", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert p.stdout is not None
        # Before any Ctrl-C: the event is closed when the file is read (wait for it with a deadline).
        ready, _, _ = select.select([p.stdout], [], [], 30)
        assert ready, "no event within 30 s"
        first = p.stdout.readline()
    finally:
        p.terminate()
        p.wait(timeout=30)
    o = json.loads(first)
    assert o["categories"] == ["batch_cache_shape"] and o["end_line"] == len(text.splitlines())
    assert "cannot be broadcast" in o["summary"]


def test_nearby_load_makes_an_oom_a_load_failure() -> None:
    during_load = "2026-01-01 10:00:00,000 - INFO - Loading model /m/big\nRuntimeError: Out of memory\n"
    during_prefill = "2026-01-01 10:00:00,000 - INFO - Prompt processing progress: 1/2\nRuntimeError: Out of memory\n"
    [ev] = triage_text(during_load)
    assert "oom_load" in ev.categories
    assert any(e.kind == "nearby" and e.line == 1 for e in ev.evidence)
    assert _cats(during_prefill) == {"oom_inference"}


@pytest.mark.parametrize(
    "line",
    [
        # An HTTP error body (JSON) holding the server's traceback, as a client logs it.
        '{"error": "Traceback (most recent call last):\\n  File \\"' + SITE + '/mlx_lm/tokenizer_utils.py\\", '
        'line 3, in add_token\\n    x\\nTypeError: unhashable type: \'list\'"}',
        # The same in a Python client's exception (a dict's repr).
        "openai.InternalServerError: Error code: 500 - {'error': {'message': 'Traceback (most recent call last):\\n"
        '  File "' + SITE + '/mlx_lm/tokenizer_utils.py", line 3, in add_token\\n    x\\n'
        "TypeError: unhashable type: \\'list\\''}}",
    ],
)
def test_a_traceback_escaped_in_one_line_is_read_as_its_lines(line: str) -> None:
    [ev] = triage_text(line)
    assert "tokenizer" in ev.categories
    assert any(e.kind == "frame" and "tokenizer_utils.py" in e.text for e in ev.evidence)

