"""Bug shapes added in the third recall round of issue 10, each written for the bug (other names, numbers and
servers than the corpus row it came from), with the near-misses that must stay quiet."""

from __future__ import annotations

import pytest

from mlx_console.core.logs.triage import triage_text

OMLX = "2026-07-01 09:00:00,000 - {logger} - {level} - [-] - {msg}"


def _cats(text: str) -> set[str]:
    return {c for ev in triage_text(text) for c in ev.categories}


@pytest.mark.parametrize(
    ("text", "cat"),
    [
        # mlx's concatenate error wrapped by a Swift or Python printer: the shapes open the continuation line
        ("Fatal error: [concatenate] All the input array dimensions must match exactly except for the\n"
         "concatenation axis. However, the provided shapes are\n(4,16,100,128), (1,16,100,64), and the "
         "concatenation axis is 3.", "batch_cache_shape"),
        # mlx's broadcast error as other versions print it, on two 4-D (KV cache) shapes
        ("mlx.core.ValueError: broadcast_shapes: shapes (2,4,0,64) and (2,4,17,64) cannot be broadcast",
         "batch_cache_shape"),
        # two settings that cannot go together
        ("pydantic_core.ValidationError: 1 validation error for LoadConfig\n  Value error, draft model and "
         "kv quantization are mutually exclusive", "settings_invalid"),
        ("mlx_lm.server: error: argument --kv-bits: not allowed with argument --draft-model", "settings_invalid"),
        # a Metal command buffer failure in a crash report that lists frames without addresses
        ("0  libsystem_kernel.dylib  __pthread_kill\n1  libc++abi.dylib  __cxa_throw\n"
         "2  libmlx.dylib  mlx::core::gpu::check_error(MTL::CommandBuffer*)", "metal_error"),
        (OMLX.format(logger="omlx.engine_core", level="ERROR", msg="Engine loop error: Thread group size (896) is "
                     "greater than the maximum allowed threads per threadgroup (768)."), "metal_error"),
        # a speculative engine's own error line, words between its name and "error"
        ("MTP draft verification error: verify_tokens() missing 1 required positional argument: 'cache'",
         "speculative_decoding"),
        ("dflash batched prefill failed: index out of range", "speculative_decoding"),
        # quantized KV caches missing their quantization attributes
        ("Cache corruption detected: 'QuantizedKVCache' object has no attribute 'offsets', clearing cache",
         "kv_cache_quant"),
        (OMLX.format(logger="omlx.cache.prefix_cache", level="WARNING",
                     msg="Failed to reconstruct cache: 'array' object has no attribute 'group_size'"), "kv_cache_quant"),
        # an ERROR right after KV quantization was announced for the model
        (OMLX.format(logger="omlx.engine.batched", level="INFO", msg="TurboQuant KV cache enabled: 3.0 bits") + "\n"
         + OMLX.format(logger="omlx.engine_core", level="ERROR", msg="Engine loop error: [matmul] Last dimension of "
                       "first input with shape (1,8,1,96) must match second to last dimension of second input"),
         "kv_cache_quant"),
        # tool calls left in the text: Harmony's call syntax, a parser that says it missed one, escaped JSON
        ('data: {"choices":[{"delta":{"content":"<|channel|>commentary to=functions.search_web <|constrain|>json"}}]}',
         "tool_call_plaintext"),
        ("WARNING: tool call detected but not parsed, returning raw text", "tool_call_plaintext"),
        ("""raw output: '{\\n "name": "read_file",\\n "parameters": {"path": "a.txt"}}'""", "tool_call_plaintext"),
        # a stop token at the end of the reply text
        ('{"role": "assistant", "content": "Sure, here it is.<|eot_id|>"}'.replace('"role": "assistant", ', ""),
         "tokenizer"),
        ("The capital of France is Paris.<end_of_turn>", "tokenizer"),
        # model ids refused by OpenAI-compatible servers, and Hugging Face refusing a download of a missing repo
        ("""openai.NotFoundError: Error code: 404 - {'error': {'message': 'The model gpt-4o does not exist', """
         """'type': 'invalid_request_error', 'code': 'model_not_found'}}""", "model_not_found"),
        ("RuntimeError: Failed to download config.json from https://huggingface.co/someone/gone-model/resolve/main/"
         "config.json: 404", "model_not_found"),
        # a stop token repeated to max_tokens; a character split over byte tokens decoded one token at a time
        ("Sure! The answer is 42.<|im_end|><|im_end|><|im_end|><|im_end|>", "tokenizer"),
        ("Flags of Japan and France: \ufffd\ufffd\ufffd\ufffd and \ufffd\ufffd", "tokenizer"),
        # a speculative option handed to a generate function that does not take it
        ("TypeError: stream_generate() got an unexpected keyword argument 'draft_model'", "speculative_decoding"),
        # a worker of a distributed instance died while the API stays up
        ("Runner 1f2e3d4c: RunnerFailed — \"Terminated (signal=9 (Killed: 9))\"", "server_hang"),
    ],
)
def test_round3_shapes(text: str, cat: str) -> None:
    assert cat in _cats(text)


@pytest.mark.parametrize(
    "text",
    [
        # a stop token inside a prompt or a chat template is normal
        "prompt: '<|im_start|>user\\nHello<|im_end|>\\n<|im_start|>assistant\\n'",
        '{"role": "user", "content": "Hi.<|im_end|>"}',
        # a WARNING after KV quantization was announced (oMLX's hardware defaults on every load)
        OMLX.format(logger="omlx.engine.batched", level="INFO", msg="TurboQuant KV cache enabled: 4.0 bits") + "\n"
        + OMLX.format(logger="omlx.utils.hardware", level="WARNING", msg="Using default memory size: 8 GB"),
        # a tool definition is not a call
        """tools: '{\\n "name": "read_file",\\n "parameters": {"type": "object", "properties": {}}}'""",
        # a rendered prompt in one line of a record, and binary noise decoded with replacement characters
        OMLX.format(logger="omlx.server", level="DEBUG", msg="Rendered: <|im_start|>user Hello.<|im_end|>"),
        "\ufffd\ufffd\ufffd\ufffd\x07\ufffd",
        # a Harmony token in a template, no call
        "chat template renders <|channel|>analysis for reasoning",
    ],
)
def test_round3_near_misses(text: str) -> None:
    assert _cats(text) == set()
