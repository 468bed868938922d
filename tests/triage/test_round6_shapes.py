"""Bug shapes added in the sixth recall round of issue 10, each written for the bug (other names, numbers and
servers than the corpus row it came from), with the near-misses that must stay quiet."""

from __future__ import annotations

import pytest

from mlx_console.core.logs.triage import triage_text


def _cats(text: str) -> set[str]:
    return {c for ev in triage_text(text) for c in ev.categories}


@pytest.mark.parametrize(
    ("text", "cat"),
    [
        # a thread dump of a server that stopped answering: py-spy's two header shapes, faulthandler's watchdog
        ('Thread 0x16B0F3000 (active): "generate-worker"\n    wait (threading.py:331)\n'
         "    get (queue.py:180)", "server_hang"),
        ('Thread 48211 (idle): "MainThread"\n    select (selectors.py:561)', "server_hang"),
        ("Timeout (0:15:00)!\nThread 0x0000000171e43000 (most recent call first):\n"
         '  File "/opt/venv/lib/python3.12/site-packages/mlx_lm/generate.py", line 402 in _step', "server_hang"),
        # UTF-8 decoded byte by byte as Latin-1: CJK text and accented Latin text
        ("你好ï¼\x81æ\x88\x91æ\x98¯ä¸\x80个助手", "tokenizer"),
        ("data: {\"content\": \"Le cafÃ© est prÃ¨s de la gare\"}", "tokenizer"),
        # Metal kernels this macOS cannot build, or a metallib for a Metal language it does not have
        ("Error: Unable to build the Metal library for custom kernel fused_moe_gate", "metal_error"),
        ("xcrun: error: invalid value 'metal3.2' in '-std=metal3.2'", "metal_error"),
        ("RuntimeError: Failed loading libmlx.metallib: this library is using language version 3.2 which is not "
         "supported on this OS", "metal_error"),
        # a server refusing KV quantization in its own words; a wrapper of a quantized cache; a quantized layer
        ("RuntimeError: This model does not yet support KV cache quantization (sliding-window layers)",
         "kv_cache_quant"),
        ("ERROR: kv-cache quantization is not supported with --max-kv-size", "kv_cache_quant"),
        ("AttributeError: '_TurboQuantKVCacheProxy' object has no attribute 'offset'", "kv_cache_quant"),
        ("2026-07-01 09:00:00,000 - omlx.cache.prefix_cache - ERROR - [-] - TQ layer 7: rebuild failed: bad shape",
         "kv_cache_quant"),
        # the Hub refusing a repo that does not exist (an anonymous client gets 401), as requests and httpx say it
        ("requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: "
         "https://huggingface.co/someorg/no-such-model/resolve/main/config.json", "model_not_found"),
        ("httpx.HTTPStatusError: Client error '404 Not Found' for url "
         "'https://huggingface.co/api/models/someorg/no-such-model/revision/main'", "model_not_found"),
        # a tokenizer that cannot decode or parse what it is given
        ('  File "tokenizers/implementations/base_tokenizer.py", line 33, in decode\n'
         "OverflowError: out of range integral type conversion attempted", "tokenizer"),
        ("RuntimeError: Internal: could not parse ModelProto from /models/x/tokenizer.model "
         "src/sentencepiece_processor.cc(1102) [model_proto->ParseFromArray(serialized.data(), serialized.size())]",
         "tokenizer"),
        ("ValueError: Encountered text corresponding to disallowed special token '<|endoftext|>'.", "tokenizer"),
        # servers that do not have the model a request or a load names
        ("Error: pull model manifest: file does not exist", "model_not_found"),
        ('HTTPException: 404: {"detail": "No instance found for model mlx-community/Qwen3-8B-4bit"}',
         "model_not_found"),
        ("Error: No model found that matches model key qwen3-99b", "model_not_found"),
        ("ValueError: Invalid repository ID: 'qwen3-8b'. Expected format: 'owner/model'", "model_not_found"),
        # oMLX's memory guard stopping a prefill, holding requests back, failing to reclaim
        ("2026-07-01 09:00:00,000 - omlx.scheduler - WARNING - [-] - Prefill force-stopped at 61440 tokens: memory "
         "47.1GB exceeds physical cap 45.0GB (after reclaim)", "oom_inference"),
        ("2026-07-01 09:00:00,000 - omlx.scheduler - WARNING - [-] - Memory admission stalled for req-7: 3 waiting",
         "oom_inference"),
        ("ValueError: uniform KV quantization requires integer bits, got 3.5", "kv_cache_quant"),
        # tool calls left in the text in other models' formats
        ("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather", "tool_call_plaintext"),
        ('{"content": "functools[{\\"name\\": \\"get_weather\\", \\"arguments\\": {}}]"}', "tool_call_plaintext"),
        ("""{"role": "assistant", "content": "```tool_code\\nprint(get_weather(city='Paris'))\\n```"}""",
         "tool_call_plaintext"),
        # ENOMEM while the weights load, and during a request
        ('  File "/opt/venv/lib/python3.12/site-packages/mlx_lm/utils.py", line 188, in load_model\n'
         "    weights.update(mx.load(wf))\nOSError: [Errno 12] Cannot allocate memory", "oom_load"),
        ("RuntimeError: [Errno 12] Cannot allocate memory (while generating 32768 tokens)", "oom_inference"),
        # a reply whose byte tokens were never decoded (SentencePiece byte fallback, byte-level BPE symbols)
        ('{"content": "Sure!<0x0A><0x0A>Here is the list:<0x0A>1. Apples"}', "tokenizer"),
        ("data: {\"delta\": {\"content\": \"Hello!ĊĊHow can I help? ItâĢĻs a pleasure.\"}}", "tokenizer"),
        ("TypeError: TokenizersBackend.__init__() got an unexpected keyword argument 'fix_mistral_regex'",
         "tokenizer"),
        # gpt-oss's Harmony vocabulary that cannot be fetched (offline), as openai_harmony and oMLX's adapter say it
        ("openai_harmony.HarmonyError: error downloading or loading vocab file: failed to download or load vocab "
         "file", "tokenizer"),
        ("2026-07-01 09:00:00,000 - omlx.adapter.harmony - WARNING - [-] - Failed to load HarmonyGptOss encoding "
         "(attempt 2/3): timed out; retrying in 1.0s", "tokenizer"),
        ("ValueError: Unknown encoding o200k_base.\nPlugins found: []", "tokenizer"),
        # a reply that runs past its end of turn into the next one, or carries gpt-oss's Harmony channels
        ('data: {"choices": [{"delta": {"content": "Bonjour !<|im_end|>\\n<|im_start|>user\\nMerci"}}]}',
         "tokenizer"),
        ('{"message": {"content": "42<|eot_id|><|start_header_id|>assistant<|end_header_id|>"}}', "tokenizer"),
        ('{"content": "<|channel|>final<|message|>The sum is 9."}', "tokenizer"),
        # tool calls left in the text: the pythonic list, MiniMax's and Kimi's markers
        ('{"content": "[search_web(query=\\"mlx\\"), get_time()]", "tool_calls": null}', "tool_call_plaintext"),
        ('"content": "<minimax:tool_call>\\n<invoke name=\\"read_file\\">"', "tool_call_plaintext"),
        ('"content": "<|tool_calls_section_begin|><|tool_call_begin|>functions.ls:0"', "tool_call_plaintext"),
        # other drafter families and a rejected draft the cache cannot roll back
        ("WARNING: EAGLE-3 draft head failed to load (missing fc.weight); continuing without it",
         "speculative_decoding"),
        ("ValueError: assistant model is not compatible with the target: vocab 262144 vs 262208",
         "speculative_decoding"),
        ("RuntimeError: rollback of 4 tokens exceeds the cache offset 2", "speculative_decoding"),
        # tool parsers refusing what the model wrote, in their own words
        ("ValueError: MiniMax M2 tool invocation is missing a name.", "tool_call_plaintext"),
        ("WARNING:vllm_mlx.tool_parsers:Gemma 4 tool parser: failed to parse args for call:search: bad escape",
         "tool_call_plaintext"),
        ("2026-07-01 09:00:00,000 - omlx.api.tool_calling - WARNING - [-] - Tool parser returned non-dict arguments "
         "(type=str, repr='x'); coercing to empty object", "tool_call_plaintext"),
        # a flag that needs another one, in a server's own validation
        ("ValueError: --draft-kv-bits requires --kv-bits", "settings_invalid"),
        ("Error: --adapter-scale can only be used with --adapter-path", "settings_invalid"),
        # a loader that shouts the weight it cannot find
        ("Loading weights...\nMISSING WEIGHT: model.layers.12.block_sparse_moe.gate.biases\nAbort trap: 6",
         "model_load_missing_weights"),
    ],
)
def test_round6_shapes(text: str, cat: str) -> None:
    assert cat in _cats(text)


@pytest.mark.parametrize(
    "text",
    [
        # a segfault's thread dump is a crash, not a hang
        "Fatal Python error: Segmentation fault\n\nThread 0x00007f3a2b7fe640 (most recent call first):\n"
        '  File "/usr/lib/python3.12/threading.py", line 355 in wait',
        # a mention of a thread being active, and one lone Latin-1 pair in real text
        "Thread pool (active): 4 workers",
        "Model card © 2025 — see Â§3 of the licence; déjà vu à côté",
        # a 401 from the server's own API (a missing API key) is not a missing model
        "requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: http://127.0.0.1:8000/v1/models",
        # a pointer printed in a crash report is not a byte token
        "Thread 3 crashed at <0x1a2b3c>",
        # a rendered prompt has the turn tokens legitimately; a Harmony tool call is a tool call
        '{"prompt": "<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n"}',
        # a reply that starts with a bracketed note is not a pythonic call
        '{"content": "[Note: the file is empty] Nothing to summarise."}',
        # mlx built without Metal (a CPU-only install) refusing a Metal call: an install problem, not the GPU
        "RuntimeError: [metal::synchronize] Cannot synchronize GPU without metal backend",
        "RuntimeError: [metal_kernel] No Metal back-end.",
    ],
)
def test_round6_near_misses(text: str) -> None:
    assert _cats(text) == set()
