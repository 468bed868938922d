"""Bug shapes added from the seventh recall round of issue 10 on. They were written from the libraries' own wording
(tokenizers, mlx's shape errors, tool-call formats of model families; from the eighteenth round, jinja2's runtime
and sandbox errors, swift-jinja's parser, mlx-swift's model factory, and the corpus convention that MLX's
thread-local stream error is no category), not from a corpus row. Each comes with
the near misses that must stay quiet."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_console.core.logs.triage import triage_file, triage_text


def _cats(text: str) -> set[str]:
    return {c for ev in triage_text(text) for c in ev.categories}


@pytest.mark.parametrize(
    ("text", "cat"),
    [
        # Python's base class raised as is: an event of its own, read like any other exception
        ("Exception: MTP head not found in the checkpoint's weights", "speculative_decoding"),
        ("Traceback (most recent call last):\n  File \"/srv/app.py\", line 9, in <module>\n"
         "    main()\nException: Tokenizer for this model could not be built", "tokenizer"),
        # the tokenizers library refusing a vocabulary, an added-token table, an id, an argument
        ("Exception: Error while initializing WordPiece: Token `[UNK]` out of vocabulary", "tokenizer"),
        ("ValueError: Non-consecutive added token '<|fim_pad|>' found. Should have index 32010 but has index 32014 "
         "in saved vocabulary.", "tokenizer"),
        ("ValueError: cannot decode: out-of-vocabulary id 200019 in the generated tokens", "tokenizer"),
        ("TypeError: argument 'ids': 'list' object cannot be interpreted as an integer", "tokenizer"),
        ("AttributeError: 'NoneType' object has no attribute 'eos_token_ids'", "tokenizer"),
        ("KeyError: 'added_tokens_decoder'", "tokenizer"),
        # byte-level BPE's space marker between two words of a reply
        ('data: {"choices": [{"delta": {"content": "theĠanswer"}}]}', "tokenizer"),
        # a call printed as text in a fence, in the OpenAI wire shape, in Cohere's Action list
        ('"content": "```json\\n{\\"name\\": \\"search_docs\\", \\"arguments\\": {\\"q\\": \\"mlx\\"}}\\n```"',
         "tool_call_plaintext"),
        ('{"content": "[{\\"type\\": \\"function\\", \\"function\\": {\\"name\\": \\"ls\\", \\"arguments\\": \\"{}\\"}}]"}',
         "tool_call_plaintext"),
        ('"content": "Action: ```json\\n[{\\"tool_name\\": \\"web_search\\", \\"parameters\\": {\\"query\\": '
         '\\"x\\"}}]\\n```"', "tool_call_plaintext"),
        # attention ops refusing two KV-layout shapes; the batch cache classes refusing a call
        ("ValueError: [where] Shapes (3,1,1,51) and (3,8,1,64) cannot be broadcast.", "batch_cache_shape"),
        ("ValueError: [scaled_dot_product_attention] Mask with shape (4,1,1,9) cannot be broadcast to (4,32,1,17).",
         "batch_cache_shape"),
        ("ValueError: [slice_update] Shapes (1,4,256,64) and (3,4,256,64) do not match.", "batch_cache_shape"),
        ("TypeError: BatchKVCache.__init__() got an unexpected keyword argument 'padding'", "batch_cache_shape"),
        ("NotImplementedError: BatchRotatingKVCache does not support trim", "batch_cache_shape"),
        ("RuntimeError: cannot merge KV caches of requests 3 and 7", "batch_cache_shape"),
        # prompt-lookup and lookahead drafting; a drafter nothing of which is accepted
        ("ValueError: prompt_lookup_num_tokens must be positive", "speculative_decoding"),
        ("RuntimeError: Lookahead decoding failed: empty n-gram pool", "speculative_decoding"),
        ("[spec] draft acceptance rate: 0.0% over 40 rounds", "speculative_decoding"),
        ("INFO: 0/384 draft tokens accepted", "speculative_decoding"),
        # a server's watchdog words for work that stopped moving
        ("WARNING: Scheduler appears stuck: 3 requests waiting, none running", "server_hang"),
        ("2026-07-01 09:00:00,000 - omlx.engine_core - WARNING - [-] - no tokens for 45.0s on req-17", "server_hang"),
        ("TimeoutError: Generation timed out after 600.0 seconds", "server_hang"),
        ("ERROR: decode worker still alive after join(timeout=5)", "server_hang"),
        ("WARNING: runner 2 did not respond to heartbeat within 20s", "server_hang"),
        ("WARNING: Request chatcmpl-8f1e has been running for 1204.7s", "server_hang"),
        # the rest of this round's bug shapes, from other servers' wording
        ('data: {"error": {"message": "<|tool_call_begin|>functions.read_file:0<|tool_call_argument_begin|>{}"}}',
         "tool_call_plaintext"),
        ('{"choices": [{"text": "<tool_call>\\n{\\"name\\": \\"ls\\"}"}]}', "tool_call_plaintext"),
        ('data: {"choices": [{"delta": {"content": "\\ufffd\\ufffd"}}]}', "tokenizer"),
        ("答案是：�京", "tokenizer"),
        ("Error: Model mlx-community/Qwen3-235B-A22B-8bit does not fit in the available unified memory", "oom_load"),
        ("rank 0 (studio-1) needs 212.4 GiB but only has 180.0 GiB", "oom_load"),
        ("Prefill rejected: the prompt would exceed the memory budget of this node", "oom_inference"),
        ("Please reduce the context length or free memory and retry.", "oom_inference"),
        ('msg="failed to load weight model.layers.3.mlp.up_proj: tensor \\"model.layers.3.mlp.up_proj.scales\\" '
         'not found"', "model_load_missing_weights"),
        ('{"error": {"message": "The model \'qwen3-coder\' does not exist", "type": "invalid_request_error"}}',
         "model_not_found"),
        ("Error downloading shard: Failed to fetch file list: 404", "model_not_found"),
        # other servers' words: exo's placement and runner, its DeepSeek encoder, LM Studio's prompt cache and
        # tokenizer fix, vllm-mlx's prefix cache
        ("ValueError: Node 12D3Koo (mac-studio) has insufficient memory: requires 88.2 GB for 61 layers, but only "
         "has 70.0 GB available", "oom_load"),
        ("ERROR: Prefill request 5c1e not picked up within 45s — runner busy", "server_hang"),
        ("ValueError: Tool name format error: 'get weather'", "tool_call_plaintext"),
        ("ValueError: No audio weights found with prefixes ['audio_tower'] in /models/x", "model_load_missing_weights"),
        ("ERROR: Failed to parse tokenizer: unexpected pre_tokenizer type", "tokenizer"),
        ("PromptCacheRecordCoverageError: rotating cache snapshot covers [128, 4224), not [0, 4224)",
         "batch_cache_shape"),
        ("RuntimeError: Cannot merge inconsistent sliding-window cache state", "batch_cache_shape"),
        ("WARNING: Prefix cache hit for req-9 has unsupported or inconsistent cache state — full prefill",
         "batch_cache_shape"),
        ("IndexError: BatchKVCache row index 5 out of range for batch size 4", "batch_cache_shape"),
        ("ValueError: Pooling cache metadata must match the input batch size", "batch_cache_shape"),
        # a paged KV cache whose block pool is used up
        ("2026-07-01 09:00:00,000 - omlx.cache.paged_cache - ERROR - [-] - Out of cache blocks (max reached)",
         "oom_inference"),
        ("ValueError: Cannot allocate 128 blocks, only 7 available (max=8192)", "oom_inference"),
        # plain words a server may use for each bug, with no library's wording to go by
        ("RuntimeError: Not enough unified memory for this request; try a shorter prompt", "oom_inference"),
        ("ERROR: memory budget exceeded while decoding request 4", "oom_inference"),
        ("ERROR: insufficient memory while loading model mlx-community/Llama-3.3-70B-8bit", "oom_load"),
        ("ERROR: failed to decode generated tokens for request 3", "tokenizer"),
        ("ERROR: architecture 'minimax_m3' is not supported by this build", "unsupported_arch"),
        ("ERROR: model 'acme/llama-9b' could not be found locally or on the hub", "model_not_found"),
        ("ERROR: failed to load model: weights do not match the architecture in config.json", "model_load_missing_weights"),
        ("RuntimeError: shape mismatch for model.layers.3.mlp.gate_proj.weight: (512, 64) vs (256, 64)",
         "model_load_missing_weights"),
        ("ERROR: invalid value for max_context_window in model_settings.json: must be a positive integer",
         "settings_invalid"),
        ("error: unrecognized arguments: --max-batch 4", "settings_invalid"),
        ("ERROR: Metal device lost during generation", "metal_error"),
        ("ERROR: GPU command buffer timed out after 5 s", "metal_error"),
        ("ERROR: failed to quantize KV cache: group size 64 does not divide head dim 80", "kv_cache_quant"),
        ("WARNING: the server stopped responding after 3 requests", "server_hang"),
        # Jinja's Undefined as a server prints only the message; a prefill guard's sentences, wrapped
        ("2026-07-01 09:00:00,000 - omlx.server - ERROR - [-] - POST /v1/chat/completions → 500 (unhandled): "
         "'list object' has no attribute 'content'", "chat_template"),
        ("Prefill context too large\nfor available memory (kv_len=90000)", "oom_inference"),
        ("WARNING: memory guard rejected request 12: predicted peak would require ~61.2 GB", "oom_inference"),
        # a KV budget that the weights alone have used up at start-up; a Hub repo an offline loader does not have
        ("ValueError: not enough memory for KV cache: model_memory=40.1GB, kv_budget=-3.5GB", "oom_load"),
        ("ModelRunner: Offline mode error: No files available locally for this repository", "model_not_found"),
        # a call whose arguments the server's own response model refuses
        ("2026-07-01 09:00:00,000 - omlx.server - ERROR - [-] - SSE generator error: 2 validation errors for "
         "ToolCallFunction", "tool_call_plaintext"),
        ("ValueError: arguments must be valid JSON, got parse error: Expecting value: line 1 column 1 (char 0)",
         "tool_call_plaintext"),
        # the header of a crash report whose crashed thread is Metal's completion queue
        ("Triggered by Thread: 12, Dispatch Queue: com.Metal.CompletionQueueDispatch", "metal_error"),
        # a server's guard for a family it cannot run yet; a Node CLI refusing an argument; weights without a head
        ("RuntimeError: Qwen 3.8 support is not available yet in this runtime", "unsupported_arch"),
        ("error: command-argument value 'x.gguf' is invalid for argument 'model-path'. File not found",
         "settings_invalid"),
        ("ERROR - the converted weights are missing the vision_tower.* tensors", "model_load_missing_weights"),
        ("Error: 'model.layers.3.mlp.up_proj.scales'", "model_load_missing_weights"),
        # the tail of a "parameters not in model" list; a kernel the metallib lacks; a config variant this
        # version has no branch for; the loader's model-type lookup as a traceback shows it
        ("audio_tower.conformer.3.attention.attn.v_proj.scales,\naudio_tower.conformer.3.attention.attn.v_proj.biases,",
         "model_load_missing_weights"),
        ("Function affine_qmm_t_nax_bfloat16_gs_64_b_4 was not found in the library", "metal_error"),
        ("ValueError: rope_scaling must contain keys {'type', 'factor'}", "unsupported_arch"),
        ('    arch = importlib.import_module(f"mlx_vlm.models.{model_type}")', "unsupported_arch"),
        # a macOS crash report: the crashed thread's frames belong to its header line
        ("Exception Type:    EXC_CRASH (SIGABRT)\n\nThread 7 Crashed::  Dispatch queue: com.apple.main-thread\n"
         "0   libsystem_kernel.dylib        \t       0x18a1e25e8 __pthread_kill + 8\n"
         "1   Metal                         \t       0x1930a1db8 MTLReportFailure + 576\n"
         "2   Metal                         \t       0x192f16034 -[_MTLCommandBuffer commit] + 104", "metal_error"),
        # (eighteenth round)
        # jinja2's filters and runtime meeting data of another shape while a chat template renders
        ("TypeError: Can only get item pairs from a mapping.", "chat_template"),
        ("2026-01-01 10:00:00,000 - ERROR - Failed to generate: no items for cycling given", "chat_template"),
        ("TypeError: macro 'render_tool' takes no keyword argument 'strict'", "chat_template"),
        ("TypeError: The loop must have the 'recursive' marker to be called recursively.", "chat_template"),
        ("SecurityError: access to attribute '__class__' of 'str' object is unsafe.", "chat_template"),
        ("FilterArgumentError: map requires a filter argument", "chat_template"),
        # swift-jinja (apps on mlx-swift)
        ('Error: parser("Parser Error: Expected closing statement token. openSquareBracket != closeStatement.")',
         "chat_template"),
        ('Failed to render the prompt: syntax("Expected opening expression token")', "chat_template"),
        # a model type the backend's code has no class for, in other words
        ("ValueError: Model type qwen3_next isn't supported yet", "unsupported_arch"),
        ("ValueError: model_type 'seed_oss' does not supported by this release", "unsupported_arch"),
        ('Failed to load model: unsupportedModelType("gemma3n")', "unsupported_arch"),
        # (nineteenth round) a quantized cache's tuple read as an array by a model's attention
        ("AttributeError: 'tuple' object has no attribute 'swapaxes'", "kv_cache_quant"),
        # swift-jinja's filters, swift-transformers' tokenizer errors
        ('Error: template render failed: join filter requires array', "chat_template"),
        ('Caught error: .unsupportedTokenizer("BertJapaneseTokenizer")', "tokenizer"),
        ("Tokenizers/UnigramTokenizer.swift:88: Fatal error: Unexpectedly found nil while unwrapping", "tokenizer"),
        ("Fatal error: WordPieceTokenizer requires vocab", "tokenizer"),
        # other CLI parsers refusing a flag (Swift ArgumentParser, Go cobra, Rust clap)
        ("Error: Unknown option '--ctx-size'", "settings_invalid"),
        ("Error: unknown flag: --kv-bits", "settings_invalid"),
        ("error: unexpected argument '--hostname' found", "settings_invalid"),
        # the Metal compiler's diagnostics on a JIT kernel or on mlx's kernel headers
        ("program_source:24:9: error: use of undeclared identifier 'bfloat'", "metal_error"),
        ("mlx/backend/metal/kernels/steel/attn/kernels/steel_attention.h:12:10: fatal error: 'MetalPerformancePrimitives/"
         "MetalPerformancePrimitives.h' file not found", "metal_error"),
        # MLX's buffer-size refusal wrapped by a paste after `greater`
        ("[metal::malloc] Attempting to allocate 447143641344 bytes which is greater\n  than the maximum allowed "
         "buffer size of 373662154752 bytes.", "oom_inference"),
        # (twentieth round, from the sources of mlx-swift, swift-transformers and swift-jinja) the Swift side
        ('Error: keyNotFound(path: ["model", "norm"], modules: ["LlamaModel"])', "model_load_missing_weights"),
        ('Unhandled keys ["lm_head"] in model in LlamaModel', "model_load_missing_weights"),
        ("Mismatched parameter model.embed_tokens.weight in LlamaModel shape. Actual [32000, 512], expected [32000, 1024]",
         "model_load_missing_weights"),
        ("Error: Key model.layers.0.self_attn.q_norm not found in Qwen3Model", "model_load_missing_weights"),
        ("The tokenizer type 'GPTNeoXTokenizer' is not supported.", "tokenizer"),
        ("Tokenizer configuration could not be found. The model may be missing required tokenizer files.", "tokenizer"),
        ('runtime("Cannot call something that is not a function")', "chat_template"),
        ('Error: resourceNotFound("mlx-community/Nope-4bit")', "model_not_found"),
        # (twentieth round, from its train rows) mlx-swift's missing key wrapped before the module path; a tool call
        # the model opened and never closed
        ("Key language_model.model.layers.15.self_attn.v_proj.weight not found in\nGemma4.Gemma4TextLanguageModel",
         "model_load_missing_weights"),
        ("Incomplete tool call block at end of stream; 120 characters returned as content", "tool_call_plaintext"),
        # (twenty-first round, from its train rows) a stream that timed out on its generation queue, two settings
        # a validator refuses together, a weight's shape error wrapped by a paste
        ("2026-05-04 12:29:50 | ERROR    | app.api.endpoints:handle_stream_response:1037 | Error in stream: TimeoutError: \n"
         "Traceback (most recent call last):\n"
         '  File "/opt/py/lib/python3.11/asyncio/tasks.py", line 500, in wait_for\n    return fut.result()\n'
         '  File "/opt/py/lib/python3.11/asyncio/queues.py", line 158, in get\n    await getter\n'
         "asyncio.exceptions.CancelledError", "server_hang"),
        ("ValueError: kv_bits cannot be combined with turboquant_kv; pick one", "settings_invalid"),
        ("Model 'GLM-5' is unavailable after a previous load failure: Expected shape (160, 1536) but received shape\n"
         "(160, 960) for parameter model.layers.0.self_attn.wk.weight.", "model_load_missing_weights"),
        # (twenty-second round) a server falling back to the chat template transformers removed
        ("AttributeError: PreTrainedTokenizerFast has no attribute default_chat_template", "chat_template"),
        # (from the sources of Rapid-MLX, vMLX and mlx-openai-server) their own words
        ("2026-05-01 10:00:00,000 - vmlx_engine.mllm_batch_generator - ERROR - Cache merge failed: bad dims",
         "batch_cache_shape"),
        ("ERROR:vllm_mlx.mllm_batch_generator:Failed to merge per-request KV caches: ValueError: bad", "batch_cache_shape"),
        ("WARNING - KV dequantization failed in CacheList sub-cache: bad", "kv_cache_quant"),
        ("WARNING - qwen3: unresolved eos strings ['<|im_end|>'] (not in vocab as single tokens)", "tokenizer"),
        ("ERROR - Metal runtime error caught in engine loop — failing in-flight requests and clearing buffers: x",
         "metal_error"),
        ("WARNING - [Memory pressure] 61.2GB > 58.0GB threshold, forced cache clear", "oom_inference"),
        ("ERROR - --port must be between 1 and 65535, got 80800.", "settings_invalid"),
        ("WARNING - Invalid VMLX_DEFAULT_KV_CACHE_QUANTIZATION='q5'; using q4", "settings_invalid"),
        ("ERROR - Error extracting V3 tool call from response.", "tool_call_plaintext"),
        ("WARNING - Tool call 'get_weather': arguments is not valid JSON: Expecting value", "tool_call_plaintext"),
        ("WARNING - Failed to create tool parser 'hermes': No module named 'x'", "tool_call_plaintext"),
        ("WARNING - Failed to apply MLLM chat template: 'dict object' has no attribute 'text'", "chat_template"),
        # only the last lines of a paste: the rest of a weight's shape error, the Metal compiler's list of standards
        ("(160, 960) for parameter\nmodel.layers.0.self_attn.wk.weight.\nReload models after fixing the files to retry.",
         "model_load_missing_weights"),
        ("note: use 'ios-metal2.0' for 'Metal 2.0 (iOS)' standard\nnote: use 'ios-metal2.1' for 'Metal 2.1 (iOS)' standard",
         "metal_error"),
        # mojibake in a JSON body that escapes everything above ASCII: UTF-8 bytes as code points
        ('data: {"choices": [{"delta": {"content": "It\\u00e2\\u0080\\u0099s"}}]}', "tokenizer"),
        ('"content": "\\u00c3\\u00a9t\\u00c3\\u00a9"', "tokenizer"),
    ],
)
def test_round7_shapes(text: str, cat: str) -> None:
    assert cat in _cats(text)


@pytest.mark.parametrize(
    "text",
    [
        # JSON with a `name` key in a fence is an answer, not a call
        '"content": "```json\\n{\\"name\\": \\"Alice\\", \\"age\\": 3}\\n```"',
        # a healthy drafter
        "[spec] draft acceptance rate: 71.5% over 40 rounds",
        # Maltese, where Ġ is a capital letter
        "Il-belt ta' Ġgantija hija antika",
        # shapes that are not the KV layout, and a bare word Exception in prose
        "ValueError: [where] Shapes (3) and (4) cannot be broadcast.",
        "No Exception: the request finished in 3.1 s",
        # a client's own timeout, a client that hung up, a short request
        "openai.APITimeoutError: Request timed out.",
        "httpx.ReadTimeout: timed out",
        "ERROR: client hung up before the reply was sent",
        "WARNING: Request chatcmpl-8f1e has been running for 12.5s",
        # a crash report whose frames are not in Metal or MLX
        "Exception Type:    EXC_BAD_ACCESS (SIGSEGV)\n\nThread 0 Crashed::  Dispatch queue: com.apple.main-thread\n"
        "0   libsystem_platform.dylib      \t       0x18a2a1c44 _platform_memmove + 52\n"
        "1   Python                        \t       0x1021b5a10 PyUnicode_Concat + 96",
        # a CPU architecture is an install problem, not a model architecture
        "RuntimeError: This build of mlx requires arm64; architecture x86_64 is not supported",
        "INFO: Metal device: Apple M2 Max (GPU family apple8)",
        # Python's own wording for a missing attribute is not Jinja's
        "AttributeError: 'dict' object has no attribute 'type'",
        # a positive KV budget
        "INFO: kv_budget=12.0GB, model_memory=19.7GB",
        # a server calling the tokenizer object as a function, or passing mlx-lm's batch generator a keyword it
        # no longer takes: the server's code and mlx-lm's do not fit, neither the tokenizer nor a stalled loop
        "ERROR:engine.scheduler:batch generation error: <mlx_lm.tokenizer_utils.TokenizerWrapper object at "
        "0x12e6b24e0> is not a callable object",
        "Engine loop error: BatchGenerator.__init__() got an unexpected keyword argument 'prompt_progress_callback'",
        # Python's `<frozen importlib._bootstrap>` after a server's engine name is not a frozen engine
        "[2025-03-07 01:45:37.078][ERROR][mlx-engine] <frozen importlib._bootstrap>:241: RuntimeWarning: "
        "nanobind: type 'Device' was already registered!",
        # a feature (not a model family) that is not ready yet
        "WARNING: Tool calling support is not ready yet",
        # a weight map of model.safetensors.index.json is not a list of refused parameters
        '    "model.layers.0.mlp.down_proj.weight": "model-00001-of-00002.safetensors",',
        # a model that fits, a download that worked
        "INFO: Model mlx-community/Qwen3-8B-4bit fits in memory (5.1 GB of 48 GB)",
        "Downloaded 4 files: 200",
        # (eighteenth round)
        # a browser's SecurityError in a web UI's log is not a template sandbox
        "SecurityError: Failed to read the 'localStorage' property from 'Window': Access is denied",
        "2026-01-01 10:00:00,000 - INFO - Model type llama supported natively, loading",
        # MLX's thread-local stream error is a version mismatch, whatever path it was raised on (the draft, the KV
        # quantizer, the batch cache): the corpus's `none` convention
        "Traceback (most recent call last):\n"
        '  File "/opt/omlx/omlx/scheduler.py", line 3201, in step\n    responses.extend(self._step_mtp())\n'
        '  File "/opt/omlx/omlx/speculative/mtp.py", line 88, in _step_mtp\n    mx.eval(draft_tokens)\n'
        "RuntimeError: There is no Stream(gpu, 1) in current thread.",
        "Traceback (most recent call last):\n"
        '  File "/opt/mlx_lm/models/cache.py", line 301, in update_and_fetch\n    self.keys = mx.quantize(keys)\n'
        "RuntimeError: There is no Stream(gpu, 0) in current thread.",
        # (nineteenth round) a menu's word, a C header of another library, a model's own 2-D positions
        "Error: Unknown option in the sampling menu",
        "fatal error: 'omp.h' file not found",
        "ValueError: [broadcast_shapes] Shapes (1024,768) and (1023,768) cannot be broadcast.",
        # (twentieth round) a settings file's dotted key, a runtime word in prose
        "KeyError: Key user.name not found in settings",
        'print("runtime error: none")',
        # (twenty-first round) a client that hung up cancels the same await, with no timeout
        ("2026-05-04 12:29:50 | ERROR    | app.api.endpoints:handle_stream_response:1037 | Error in stream\n"
         "Traceback (most recent call last):\n"
         '  File "/opt/py/lib/python3.11/asyncio/queues.py", line 158, in get\n    await getter\n'
         "asyncio.exceptions.CancelledError"),
        # (twenty-second round) a wrapper calling another library's tokenizer class with arguments it no longer
        # takes: a version mismatch of two libraries, not a tokenizer bug
        "TypeError: JsonSchemaTokenizerAdapter.__init__() got an unexpected keyword argument 'vocab'",
        "TypeError: TokenEnforcerTokenizerData.__init__() takes 4 positional arguments but 6 were given",
        # a phrase of a not_context that a paste wrapped across two lines still counts (mlx-lm's batch generator
        # refusing a keyword: a version mismatch), and the stream error after a record that ends with a colon
        "2026-01-01 10:00:00,000 - omlx.engine_core - ERROR - [-] - Engine loop error: BatchGenerator.__init__() got an\n"
        "unexpected keyword argument 'prompt_progress_callback'",
        "2026-04-24 21:49:12,869 - omlx.engine_core - ERROR - [-] - Engine loop error:\n"
        "There is no Stream(gpu, 0) in current thread.",
        # (the same sources) a flag's help text, an environment variable set as it should be
        "  --port PORT  must be between 1 and 65535 (default 8000)",
        "INFO - using VMLX_DEFAULT_KV_CACHE_QUANTIZATION=q4",
        # an escaped accented letter and a no-break space (French typography), escaped accents apart
        '"content": "caf\\u00e9\\u00a0: oui"',
        '"content": "caf\\u00e9 \\u00fcber"',
    ],
)
def test_round7_near_misses(text: str) -> None:
    assert _cats(text) == set()


def test_deepseek_markers_are_a_tool_call_not_a_detokenizer_leak() -> None:
    text = ('"content": "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\\n'
            '```json\\n{\\"city\\": \\"Paris\\"}\\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"')
    assert _cats(text) == {"tool_call_plaintext"}


@pytest.mark.parametrize("text", ["Drafter could not be attached to target model qwen3-32b",
                                  "mlx runner failed: TurboQuant KV cache cannot be built for this model"])
def test_a_line_without_a_level_that_says_it_failed_is_an_error_event(text: str, tmp_path: Path) -> None:
    # (the evidence of an entry is weighed on warning and error events only: a failure in words is one)
    assert _cats(text) - {"server_hang"}
    log = tmp_path / "x.log"
    log.write_text("INFO: ok\n" + text + "\n")
    assert [ev.event.level for ev in triage_file(log)] == ["ERROR"]



def test_a_not_context_phrase_wrapped_across_two_lines_of_an_event_still_counts(tmp_path: Path) -> None:
    # the exception's message goes on on the next line (the file as written, not a paste: nothing unwraps it)
    log = tmp_path / "server.log"
    log.write_text('Traceback (most recent call last):\n  File "/srv/vllm_mlx/constrain.py", line 40, in build\n'
                   "    data = TokenEnforcerTokenizerData(tok, vocab, eos, a, b)\n"
                   "TypeError: TokenEnforcerTokenizerData.__init__() takes\n"
                   "4 positional arguments but 6 were given\n")
    assert triage_file(log) == []
