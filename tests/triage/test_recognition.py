"""Recognition on real excerpts: the corpus, held-out upstream excerpts, real server logs, clean logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_console.core.logs.triage import triage_file, triage_text

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "logs"
# Excerpts whose text does not say what the bug is (trimmed before the exception): not guessed.
KNOWN_SILENT = {"https://github.com/containers/ramalama/issues/2250"}


def _cats(text: str) -> set[str]:
    return {c for ev in triage_text(text) for c in ev.categories}


def test_corpus_excerpt_recognised(corpus_item: dict) -> None:
    item = corpus_item
    if item["source"] in KNOWN_SILENT:
        assert item["category"] not in _cats(item["excerpt"])
        return
    assert item["category"] in _cats(item["excerpt"])


def test_heldout_excerpt_recognised(heldout_item: dict) -> None:
    assert set(heldout_item["categories"]) <= _cats(heldout_item["excerpt"])


def test_garbled_output_is_not_a_log_event(garbage_item: dict) -> None:
    assert _cats(garbage_item["excerpt"]) == set()


def test_every_category_seen_on_both_backends(all_excerpts: list[dict]) -> None:
    seen: dict[str, set[str]] = {}
    for item in all_excerpts:
        cats = _cats(item["excerpt"])
        backend = "omlx" if item["backend"] == "omlx" else "mlx-lm"
        for c in cats:
            seen.setdefault(c, set()).add(backend)
    assert len(seen) == 14
    assert seen["port_in_use"] == {"omlx", "mlx-lm"}
    assert seen["batch_cache_shape"] == {"omlx", "mlx-lm"}


@pytest.mark.parametrize("name", ["mlx_lm_clean.log", "mlx_lm_clean_client_gone.log", "omlx_clean.log"])
def test_clean_logs_have_no_bug_events(name: str) -> None:
    assert triage_file(FIXTURES / name) == []


def test_clean_mlx_lm_log_with_all_shows_only_the_warning_and_bad_json() -> None:
    evs = triage_file(FIXTURES / "mlx_lm_clean.log", include_all=True)
    assert [(e.categories, e.severity) for e in evs] == [([], "warning"), ([], "error")]
    assert "UserWarning" in evs[0].event.lines[0] and evs[0].last_line == evs[0].first_line + 1
    assert "JSONDecodeError" in evs[1].title


@pytest.mark.parametrize(
    ("name", "first", "last", "cats", "pattern"),
    [
        ("mlx_lm_port_in_use.log", 2, 20, ["port_in_use"], "port-in-use"),
        ("mlx_lm_no_safetensors.log", 5, 23, ["model_load_missing_weights", "server_hang"], "weights-missing"),
        ("mlx_lm_model_not_found_offline.log", 5, 67, ["model_not_found", "server_hang"], "model-not-found"),
    ],
)
def test_real_failing_server_logs(name: str, first: int, last: int, cats: list[str], pattern: str) -> None:
    [ev] = triage_file(FIXTURES / name)
    assert (ev.first_line, ev.last_line, ev.categories, ev.main.id) == (first, last, cats, pattern)


def test_batch_error_that_killed_the_thread_has_both_categories() -> None:
    log = (
        "Exception in thread Thread-1 (_generate):\n"
        "Traceback (most recent call last):\n"
        '  File "/x/mlx_lm/generate.py", line 871, in _merge_caches\n'
        "ValueError: <class 'mlx_lm.models.cache.ChunkedKVCache'> does not yet support batching with history\n"
    )
    [ev] = triage_text(log)
    assert ev.categories == ["batch_cache_shape", "server_hang"]
    assert (ev.first_line, ev.last_line) == (1, 4)


@pytest.mark.parametrize(
    ("line", "cat"),
    [
        ("OSError: [Errno 98] Address already in use", "port_in_use"),
        ("OSError: [Errno 48] Address already in use", "port_in_use"),
        ("ERROR:    [Errno 48] error while attempting to bind on address ('127.0.0.1', 8000): address already in use", "port_in_use"),
        ("ValueError: Model type qwen9_moe not supported.", "unsupported_arch"),
        ("FileNotFoundError: No safetensors found in /Volumes/models/foo-4bit", "model_load_missing_weights"),
        ("ValueError: Missing 12 parameters: lm_head.weight, ...", "model_load_missing_weights"),
        ("omlx.server - WARNING - [-] - POST /v1/chat/completions → 404: Model 'nope' not found. Available models: (none)", "model_not_found"),
        ("omlx.server - ERROR - [-] - POST /v1/models/big/load → 507: Model 'big' (80.00GB) does not fit under the memory ceiling (60.00GB).", "oom_load"),
        ("omlx.engine_pool - WARNING - [-] - Model load aborted by memory enforcer: big-model", "oom_load"),
        ("omlx.server - ERROR - [-] - POST /v1/chat/completions → 500 (unhandled): Cache corruption not recoverable after retries: [broadcast_shapes] Shapes (2,8,1,128) and (1,8,1,64) cannot be broadcast.", "batch_cache_shape"),
        ("NotImplementedError: RotatingKVCache Quantization NYI", "kv_cache_quant"),
        ("ValueError: Speculative decoding requires a trimmable prompt cache (got {'ArraysCache'}).", "speculative_decoding"),
        ("2026-01-01 10:00:00,000 - WARNING - Draft model tokenizer does not match model tokenizer. Speculative decoding may not work as expected.", "speculative_decoding"),
        ("2026-01-01 10:00:00,000 - WARNING - Failed to parse tool call (JSONDecodeError: Expecting value) — tool text was likely truncated mid-generation.", "tool_call_plaintext"),
        ("jinja2.exceptions.TemplateError: Conversation roles must alternate user/assistant/user/assistant/...", "chat_template"),
        ("libc++abi: terminating due to uncaught exception of type std::runtime_error: [METAL] Command buffer execution failed: Caused GPU Timeout Error (00000002:kIOGPUCommandBufferCallbackErrorTimeout)", "metal_error"),
        ("2026-01-01 10:00:00,000 - ERROR - mlx_lm.server generation thread died: [metal::malloc] Resource limit (499000) exceeded", "server_hang"),
        ('  "content": "<tool_call>\\n{\\"name\\": \\"get_weather\\", \\"arguments\\": {}}\\n</tool_call>",', "tool_call_plaintext"),
        ("huggingface_hub.errors.LocalEntryNotFoundError: Cannot find an appropriate cached snapshot folder", "model_not_found"),
        ("ValueError: Tokenizer class TokenizersBackend does not exist or is not currently imported.", "tokenizer"),
        ("AttributeError: 'ArraysCache' object has no attribute 'merge'", "batch_cache_shape"),
        ("RuntimeError: [malloc] Unable to allocate 68719476736 bytes.", "oom_inference"),
        ("-[MTLDebugComputeCommandEncoder validateCommonDrawErrors:]:5782: failed assertion `… MTLBuffer …'", "metal_error"),
    ],
)
def test_family_variants(line: str, cat: str) -> None:
    assert cat in _cats(line)


@pytest.mark.parametrize(
    "line",
    [
        "2026-01-01 10:00:00,000 - INFO - Prompt processing progress: 2048/4096",
        "omlx.engine_pool - INFO - [-] - Llama 4 detected; serializing requests because ChunkedKVCache does not support multi-row batching yet",
        "omlx.engine_pool - INFO - [-] - Output parser detected: qwen3_coder for Qwen3-Coder, stop_tokens=[]",
        '{"choices": [{"message": {"role": "assistant", "content": "The weather is nice", "tool_calls": null}}]}',
        "omlx.process_memory_enforcer - INFO - [-] - Memory pressure level: ok -> soft (current=22.7GB, soft=22.1GB, hard=24.7GB, ceiling=26.0GB)",
        "127.0.0.1 - - [25/Nov/2026 13:22:38] \"GET /v1/models/mlx-community/Model-not-found HTTP/1.1\" 404 -",
        '2026-01-01 10:00:00,000 - DEBUG - Incoming Request Body: {"messages": [{"role": "user", "content": '
        '"why does it say [Errno 48] Address already in use?"}]}',
        "2026-01-01 10:00:00,000 - omlx.server - TRACE - [-] - Response text: <tool_call>{\"name\": \"x\"}</tool_call>",
    ],
)
def test_normal_lines_are_not_bugs(line: str) -> None:
    assert triage_text(line) == []


# mlx_lm.server at --log-level DEBUG logs the reply it sends (server.py: `Outgoing Response: ` + json.dumps(resp,
# indent="\t")): a tool call left in its content is what the client received, the bug itself.
_REPLY = (
    '2026-01-01 10:00:01,000 - DEBUG - Outgoing Response: {{\n\t"id": "chatcmpl-1",\n\t"object": "chat.completion",\n'
    '\t"choices": [\n\t\t{{\n\t\t\t"index": 0,\n\t\t\t"finish_reason": "{finish}",\n\t\t\t"message": {{\n'
    '\t\t\t\t"role": "assistant",\n\t\t\t\t"content": {content},\n\t\t\t\t"tool_calls": {calls}\n\t\t\t}}\n\t\t}}\n\t],\n'
    '\t"usage": {{"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60}}\n}}\n'
)
_CALL_TEXT = r'"<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"'
_PARSED = '[{"function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}, "type": "function", "id": "1"}]'


def test_a_logged_reply_with_the_call_left_in_content_is_a_tool_call_bug(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(_REPLY.format(finish="stop", content=_CALL_TEXT, calls="[]"), encoding="utf-8")
    (ev,) = triage_file(log)
    assert "tool_call_plaintext" in ev.categories and ev.event.first_line == 1
    assert _cats(log.read_text()) == {"tool_call_plaintext"}  # a paste of it too


@pytest.mark.parametrize(
    "text",
    [
        # the same call parsed: content empty, tool_calls filled
        _REPLY.format(finish="tool_calls", content='""', calls=_PARSED),
        # a request whose system prompt teaches the call format, and tool definitions
        '2026-01-01 10:00:00,000 - DEBUG - Incoming Request Body: {\n\t"messages": [\n\t\t{\n\t\t\t"role": "system",\n'
        '\t\t\t"content": "<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args>}\\n</tool_call>"\n'
        '\t\t}\n\t],\n\t"tools": []\n}\n',
        # mlx_lm.server's DEBUG stream of the raw text, which holds the markup of calls that do parse
        "2026-01-01 10:00:00,500 - DEBUG - <tool_call>\n2026-01-01 10:00:00,501 - DEBUG - {\"name\": \"get_weather\", "
        "\"arguments\": {}}\n2026-01-01 10:00:00,502 - DEBUG - </tool_call>\n",
    ],
)
def test_request_bodies_and_parsed_replies_are_not_tool_call_bugs(text: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(text, encoding="utf-8")
    assert triage_file(log) == [] and triage_text(text) == []
