"""Shapes added in the eighth session on issue 10 (round 23 on): wordings read from the libraries' own source
(mlx-lm's `No safetensors found in {path}`, swift-transformers' `TokenizerError.chatTemplate`, oMLX's prefix and SSD
cache, vllm-mlx's prefix cache, mlx-vlm's weight loaders, read with a script over their raise/log calls) or from a
train row, and Rich's logging format, each with the near misses that must stay quiet."""

from __future__ import annotations

import pytest
from tests.triage.test_catalog import GOOD

from mlx_console.core.logs.events import parse_line
from mlx_console.core.logs.triage import triage_text


def _cats(text: str) -> set[str]:
    return {c for ev in triage_text(text) for c in ev.categories}


@pytest.mark.parametrize(
    ("text", "cat"),
    [
        # mlx-lm's loader, also when quoted cut short
        ("FileNotFoundError: No safetensors found in /Users/u/models/phi-2", "model_load_missing_weights"),
        ("ERROR:root:No safetensors found ...", "model_load_missing_weights"),
        ("FileNotFoundError: No safetensors files found under /Users/u/models/flux2", "model_load_missing_weights"),
        ("ValueError: Incomplete quantized weights for module: transformer.blocks.3.attn", "model_load_missing_weights"),
        # oMLX's prefix/SSD cache that cannot rebuild a layer's stored state (the message alone, no logger)
        ("ERROR - Layer 12: failed to reconstruct RotatingKVCache", "batch_cache_shape"),
        ("ERROR - Missing N-tuple state for layer 4", "batch_cache_shape"),
        ("WARNING - Failed to slice KVCache state: [slice] Invalid slice", "batch_cache_shape"),
        # vllm-mlx's prefix cache and simple engine
        ("ValueError: exact prefix-trie cache hit is not trimmable", "batch_cache_shape"),
        ("ValueError: Cache state does not support sequence concatenation", "batch_cache_shape"),
        ("WARNING - Failed to store prefix cache for req-1: ValueError: [concatenate] All the input array dimensions "
         "must match exactly", "batch_cache_shape"),
        ("WARNING - Pure-LLM KV-cache path failed before first token (boom); falling back to uncached stream_generate",
         "batch_cache_shape"),
        # argparse's refusal as a server logs it itself (oMLX's cli, at ERROR), not only as `prog: error: …`
        ("2026-01-01 10:00:00,000 - omlx.cli - ERROR - unrecognized arguments: --max-kv-size 4096", "settings_invalid"),
        # swift-transformers: a tokenizer config without a template, as mlx-swift apps print the error
        ('Error: chatTemplate("No chat template was specified")', "chat_template"),
        ("Fatal error: TokenizerError.chatTemplate(\"No chat template was specified\")", "chat_template"),
        # Rich's logging handler: the level column makes the record an error or a warning event
        ("[12/05/26 10:00:00] ERROR    Engine loop error: [broadcast_shapes] Shapes (1,8,512,64) and (2,8,1,64) "
         "cannot be broadcast.    engine.py:88", "batch_cache_shape"),
        ("WARNING  Received tools but model does not support tool calling.", "tool_call_plaintext"),
        # older mlx's allocator (`malloc_or_wait`), aborting mid-generation
        ("libc++abi: terminating due to uncaught exception of type std::runtime_error: [malloc_or_wait] Unable to "
         "allocate 134217728 bytes.", "oom_inference"),
        # a server's model discovery skipping an architecture it has no code for (mlx-serve)
        ("[discovery] skip Qwen3-Coder-30B-A3B-Instruct-8bit: unsupported model_type 'qwen3_moe'", "unsupported_arch"),
        # oMLX's batched MTP step and mlx-vlm's drafters, in their own words
        ("_MtpStepFallback: row uid=17 verify produced no tokens", "speculative_decoding"),
        ("AttributeError: Cannot find target embed_tokens in Model.", "speculative_decoding"),
        # mlx-vlm's processors: a tokenizer's files or a chat template missing
        ("FileNotFoundError: Missing Kimi K3 tokenizer files: tiktoken.model", "tokenizer"),
        ("ValueError: No chat template found. Please provide a chat_template argument or ensure the tokenizer has a "
         "chat_template attribute.", "chat_template"),
        # a multi-model server's registry, in Xinference's words
        ("ValueError: Model not found, name: gemma-3-it, format: mlx, size: 12, quantization: bf16", "model_not_found"),
        # a reply that ends in an end-of-turn token, with no prompt echoed above it
        ("2026-01-01 10:00:00,000 - INFO - request done\nThe capital of France is Paris.<|im_end|>", "tokenizer"),
    ],
)
def test_round8_shapes(text: str, cat: str) -> None:
    assert cat in _cats(text), triage_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "INFO:root:Found 4 safetensors files in /Users/u/models/phi-2",
        "chat template was specified by the request (chat_template_kwargs)",
        "ERROR    ",  # a bare level column, nothing after it
        "INFO - Prefix cache hit for req-3 has empty RotatingKVCache layers",  # (handled: no error words)
        # a prefix cache that could not be stored for a reason that is no cache layout (the disk)
        "WARNING - Failed to store prefix cache for req-1: OSError: [Errno 28] No space left on device",
        "the flag is unrecognized by older servers",
        "AttributeError: Cannot find embed_tokens in Model.",  # (no `target`: a model's own loader, not a drafter)
        # a sampling parameter that has no effect under speculative decoding: a note, not a failure
        "WARNING 05-04 18:21:41 [__init__.py:206] min_p and logit_bias parameters won't work with speculative decoding.",
        # mlx_lm.generate echoing its prompt: the template's lines end in end-of-turn tokens (not_nearby)
        "Prompt: <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>",
    ],
)
def test_round8_near_misses(text: str) -> None:
    assert _cats(text) == set(), triage_text(text)


@pytest.mark.parametrize(
    ("line", "level", "message"),
    [
        ("[12/05/26 10:00:00] ERROR    Model load failed: boom    server.py:12", "ERROR",
         "Model load failed: boom    server.py:12"),
        ("WARNING  Received tools", "WARNING", "Received tools"),
        ("CRITICAL Metal device lost", "CRITICAL", "Metal device lost"),
        # a debug column is read through but is no problem level; one space is no Rich column
        ("DEBUG    Model type bert not supported by mlx-lm", None, "Model type bert not supported by mlx-lm"),
        ("ERROR something", "ERROR", "ERROR something"),
    ],
)
def test_rich_level_column(line: str, level: str | None, message: str) -> None:
    p = parse_line(line)
    assert (p.level, p.message) == (level, message)


def test_not_nearby_reads_the_lines_just_before_the_event_and_explain_says_so() -> None:
    from mlx_console.core.logs.events import Event
    from mlx_console.core.logs.patterns import Catalog, parse_catalog_text

    entry = GOOD.replace("patterns = ['my backend is stuck at step \\d+']",
                         "patterns = ['<\\|im_end\\|>$']\nnot_nearby = ['^Prompt:']")
    assert "not_nearby" in entry
    cat = Catalog(parse_catalog_text(entry, "user.toml"))
    assert [t.categories for t in triage_text("Done.<|im_end|>", cat)] == [["server_hang"]]  # (GOOD's category)
    echoed = "Prompt: hi\nDone.<|im_end|>"
    assert triage_text(echoed, cat) == []
    event = Event(first_line=2, lines=["Done.<|im_end|>"], fmt="unknown", level=None)
    [v] = cat.explain(event, before=[(1, "Prompt: hi")])
    assert not v.chosen and "line 1, just before the event, matches its not_nearby '^Prompt:'" in v.reasons
    assert [w.chosen for w in cat.explain(event, before=[(1, "INFO: request done")])] == [True]


def test_a_settings_request_oMLX_refused_is_no_category() -> None:
    """oMLX's admin API refusing a model's settings (the console's settings editor applies through it) answered its
    client with a 4xx and changed nothing: no category, also when the setting is a speculative one (the line once
    read as speculative decoding), and not the line after it either. The card's first move is the quiet rule's."""
    log = "\n".join(f"2026-12-07 10:00:0{i},123 - omlx.server - WARNING - [-] - PUT /admin/api/models/qwen3-4b/settings "
                    f"→ 400: {why}" for i, why in enumerate([
                        "MTP and DFlash cannot both be enabled; choose one speculative-decoding path.",
                        "Invalid model_type_override: foo",
                        "DFlash SSD cache requires the in-memory cache to be enabled."]))
    assert triage_text(log) == []
    shown = triage_text(log, include_all=True)
    assert [t.quiet.id if t.quiet else None for t in shown] == ["omlx-admin-settings-refused"] * 3
    assert shown[0].first_move.startswith("oMLX's admin API refused a request to change a model's settings")
