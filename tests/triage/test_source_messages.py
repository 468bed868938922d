"""Catalogue evidence taken from the servers' own source code: one rendering per message family, as the
server would log it (its log prefix, or a traceback ending in the exception it raises), and the category
triage must give it. Near misses (the same words in a harmless context) must get no category.

Sources: ml-explore/mlx-lm, jundot/omlx (v0.5.0 mirror), Blaizzy/mlx-vlm, ml-explore/mlx (metal backend),
lmstudio-ai/mlx-engine, waybarrios/vllm-mlx; the file each message comes from is in its id."""

from __future__ import annotations

import pytest

from mlx_console.core.logs.triage import triage_text

SP = "/opt/homebrew/lib/python3.12/site-packages"


def _omlx(logger: str, level: str, msg: str) -> str:
    return f"2026-07-11 10:00:00,123 - {logger} - {level} - [-] - {msg}"


def _tb(path: str, func: str, exc: str, line: int = 120) -> str:
    return (
        "Traceback (most recent call last):\n"
        f'  File "{SP}/mlx_lm/server.py", line 900, in _load\n'
        "    model, tokenizer = load(...)\n"
        f'  File "{SP}/{path}", line {line}, in {func}\n'
        "    raise ValueError(...)\n"
        f"{exc}"
    )


CASES = [
    # --- batch_cache_shape ---
    ("omlx/scheduler.py chunked merge", "batch_cache_shape", _omlx("omlx.scheduler", "ERROR", "Error in batch generation step: ChunkedKVCache.merge for batch_size > 1 is not implemented. Run with --max-concurrent-requests 1 when serving Llama-4.")),
    ("omlx/scheduler.py singleton filter", "batch_cache_shape", _tb("omlx/scheduler.py", "_regular_kv_filter_singleton", "NotImplementedError: KVCache.filter only supports singleton pass-through; convert to a batched cache before keeping multiple rows.")),
    ("omlx/scheduler.py singleton extract", "batch_cache_shape", _tb("omlx/scheduler.py", "_regular_cache_extract_singleton", "IndexError: RotatingKVCache singleton cache only has row 0")),
    ("omlx/scheduler.py rotating windows", "batch_cache_shape", _tb("omlx/scheduler.py", "_align_block_size_with_rotating_window", "ValueError: Multiple RotatingKVCache window sizes detected ([512, 1024]). Set a single aligned block size or disable paged cache for this model.")),
    ("omlx/cache/prefix_cache.py incomplete", "batch_cache_shape", _omlx("omlx.cache.prefix_cache", "WARNING", "Incomplete cache reconstruction: got 30 layers, expected 48")),
    ("omlx/cache/type_handlers.py cachelist", "batch_cache_shape", _omlx("omlx.cache.type_handlers", "ERROR", "CacheList reconstruct: length mismatch — sub_states=3, class_names=2, sub_meta_states=3")),
    ("omlx/patches/deepseek_v4 pooling", "batch_cache_shape", _tb("omlx/patches/deepseek_v4/cache_extras.py", "prepare", "RuntimeError: BatchPoolingCache does not support left padding")),
    ("mlx_vlm/generate/ar.py mrope", "batch_cache_shape", _tb("mlx_vlm/generate/ar.py", "extend", "RuntimeError: extend() mixes MRoPE and non-MRoPE batches; both sides must carry rope_deltas or neither side may.")),
    ("mlx_engine batched_vision rope deltas", "batch_cache_shape", _tb("mlx_engine/model_kit/batched_vision/batch_generator.py", "_capture_rope_deltas", "RuntimeError: _rope_deltas shape (3, 1) does not match batch size 2")),
    ("mlx_lm/models/cache.py state", "batch_cache_shape", _tb("mlx_lm/models/cache.py", "state", "ValueError: This cache has no state but a state was set.")),
    # --- kv_cache_quant ---
    ("mlx_lm/models/base.py sinks", "kv_cache_quant", _tb("mlx_lm/models/base.py", "scaled_dot_product_attention", "ValueError: Quantized SDPA does not support attention sinks.")),
    ("mlx_engine/generate.py vision kv", "kv_cache_quant", _tb("mlx_engine/generate.py", "load_model", "ValueError: The mlx-vlm batched vision path does not support KV cache quantization yet")),
    # --- oom_load ---
    ("omlx/process_memory_enforcer.py load abort", "oom_load", _omlx("omlx.process_memory_enforcer", "WARNING", "Aborting in-progress load of 'Qwen3-235B-A22B-4bit' (hard memory pressure)")),
    ("vllm_mlx/model_registry.py budget", "oom_load", _tb("vllm_mlx/model_registry.py", "acquire", "RuntimeError: Cannot load 'mlx-community/Qwen3-32B-8bit' within memory budget (48.0 GB)")),
    # --- oom_inference ---
    ("omlx/scheduler.py preflight", "oom_inference", _omlx("omlx.scheduler", "WARNING", "Preflight rejected (98304 tokens, cached=0, request_id=chatcmpl-1a2b): prefill would need 31.2GB")),
    ("omlx/scheduler.py safety cap", "oom_inference", _omlx("omlx.scheduler", "WARNING", "[guard:chatcmpl-9] context too large at progress=65536 kv_len=65536: 20.10GB + min-chunk transient exceeds prefill safety cap 19.50GB (90% of effective ceiling)")),
    ("omlx/scheduler.py prefill guard", "oom_inference", _omlx("omlx.scheduler", "WARNING", "Request chatcmpl-77 rejected by prefill memory guard: not enough memory for 120000 tokens")),
    ("omlx/scheduler.py capacity", "oom_inference", _omlx("omlx.scheduler", "ERROR", "Chunked prefill (first chunk) capacity rejected for chatcmpl-5: projected 40.0GB")),
    ("omlx/scheduler.py retries", "oom_inference", _omlx("omlx.scheduler", "WARNING", "Prefill for chatcmpl-5 exhausted 3 memory-pressure retries; failing with a clean error.")),
    ("omlx/scheduler.py admission", "oom_inference", _omlx("omlx.scheduler", "WARNING", "Memory admission stalled for chatcmpl-5: Request could not be admitted because memory pressure persisted for 30.0s (hard). Reduce context length, free memory, lower hot_cache_max_size, or loosen memory_guard_tier.")),
    ("omlx/engine_core.py abort", "oom_inference", _omlx("omlx.engine_core", "WARNING", "Aborted 3 requests due to memory pressure")),
    ("omlx/process_memory_enforcer.py emergency", "oom_inference", _omlx("omlx.process_memory_enforcer", "WARNING", "Emergency memory pressure: aborted 2 in-flight request(s) (current=61.2GB, ceiling=60.0GB); models kept loaded.")),
    ("vllm_mlx/engine_core.py pressure", "oom_inference", "2026-07-11 10:00:00,123 - vllm_mlx.engine_core - WARNING - [Memory pressure] 58.2GB > 55.0GB threshold, forced cache clear"),
    # --- metal_error ---
    ("mlx metal/device.cpp metallib", "metal_error", "libc++abi: terminating due to uncaught exception of type std::runtime_error: Can not load metallib from specified location /tmp/x.metallib"),
    ("mlx metal/event.cpp", "metal_error", "RuntimeError: [Event::Event] Failed to create Metal shared event."),
    # --- server_hang ---
    ("omlx/engine_core.py stream timeout", "server_hang", _omlx("omlx.engine_core", "WARNING", "Timeout waiting for request chatcmpl-8f2e1a")),
    ("omlx/scheduler.py step error", "server_hang", _omlx("omlx.scheduler", "ERROR", "Error in batch generation step: boom")),
    ("vllm_mlx/engine_core.py stream timeout", "server_hang", "2026-07-11 10:00:00,123 - vllm_mlx.engine_core - WARNING - [stream_outputs] chatcmpl-1a2b TIMEOUT after 12 tokens, 300.0s"),
    ("vllm_mlx/server.py inactivity", "server_hang", "2026-07-11 10:00:00,123 - vllm_mlx.server - WARNING - [disconnect_guard] OUTPUT INACTIVITY TIMEOUT after 120s without a generator chunk, 3 chunks"),
    ("mlx_vlm/server/generation.py token queue", "server_hang", _tb("mlx_vlm/server/generation.py", "__next__", "RuntimeError: Timed out waiting 300s for the next generated token. Increase MLX_VLM_TOKEN_QUEUE_TIMEOUT for long prefills, or reduce the prompt.")),
    # --- settings_invalid ---
    ("omlx/cli.py argparse", "settings_invalid", "usage: omlx serve [-h] [--port PORT]\nomlx serve: error: argument --memory-limit-gb: must be a finite number greater than 0"),
    ("omlx/scheduler.py env", "settings_invalid", _omlx("omlx.scheduler", "WARNING", "Ignoring invalid integer env OMLX_PREFILL_STEP_SIZE='2k'")),
    ("mlx_vlm/server/runtime_config.py env", "settings_invalid", "WARNING:mlx_vlm.server.runtime_config:Invalid MLX_VLM_TOKEN_QUEUE_TIMEOUT='abc'; falling back to 300s."),
    ("omlx/custom_kernels gdn env", "settings_invalid", _tb("omlx/custom_kernels/qwen35_prefill/gdn.py", "_normalize_block_t", "ValueError: OMLX_GDN_BLOCK_T must be one of (16, 32, 64), got 48")),
    ("omlx/memory_monitor.py", "settings_invalid", _tb("omlx/memory_monitor.py", "__init__", "ValueError: max_kv_cache_memory must be positive when eviction_enabled=True, got 0")),
    ("vllm_mlx/model_registry.py config", "settings_invalid", _tb("vllm_mlx/model_registry.py", "load_registry_config", "ValueError: models-config entry 'qwen' gpu_memory_utilization must be finite and within (0, 1]")),
    # --- tool_call_plaintext ---
    ("omlx/api/tool_calling.py gemma4", "tool_call_plaintext", _tb("omlx/api/tool_calling.py", "_parse_gemma4_tool_call_fallback", "ValueError: No function call found in Gemma 4 format")),
    ("omlx/engine/vlm.py parser module", "tool_call_plaintext", _omlx("omlx.engine.vlm", "WARNING", "VLM tool parser module not found: gemma4")),
    ("vllm_mlx/server.py parser missing", "tool_call_plaintext", "2026-07-11 10:00:00,123 - vllm_mlx.server - ERROR - Tool parser 'hermes2' not found. Available parsers: ['hermes', 'qwen3']"),
    ("vllm_mlx/api/utils.py buffer", "tool_call_plaintext", "2026-07-11 10:00:00,123 - vllm_mlx.api.utils - WARNING - Tool call buffer exceeded 65536 bytes, discarding and exiting block"),
    # --- tokenizer ---
    ("mlx_engine fix_mistral_pre_tokenizer", "tokenizer", "[mlx-engine] WARNING Tokenizer could not be fixed."),
    ("vllm_mlx/utils/tokenizer.py fallback", "tokenizer", "2026-07-11 10:00:00,123 - vllm_mlx.utils.tokenizer - WARNING - Standard tokenizer loading failed, using fallback: boom"),
    ("mlx_engine/utils/eot_tokens.py", "tokenizer", _tb("mlx_engine/utils/eot_tokens.py", "sanitize_eos_tokens", "RuntimeError: EOS tokens cannot be empty. Before cleaning, the tokens were {2}")),
    # --- model_not_found ---
    ("omlx/engine_pool.py pinned", "model_not_found", _omlx("omlx.engine_pool", "WARNING", "Pinned model not found: Qwen3-8B-4bit")),
    ("omlx/settings.py model dir", "model_not_found", _omlx("omlx.settings", "WARNING", "Model directory unavailable, skipping: /Volumes/External/models ([Errno 2] No such file or directory)")),
    ("mlx_lm/tuner/utils.py adapter", "model_not_found", _tb("mlx_lm/tuner/utils.py", "load_adapters", "FileNotFoundError: The adapter path does not exist: adapters/qwen")),
    ("mlx_vlm/utils.py config", "model_not_found", _tb("mlx_vlm/utils.py", "load_config", "FileNotFoundError: Config not found at /Users/me/models/Qwen2.5-VL-7B")),
    # --- model_load_missing_weights ---
    ("omlx/models/embedding.py missing", "model_load_missing_weights", _tb("omlx/models/embedding.py", "_validate_native_weights", "ValueError: Native embedding checkpoint is missing required weights: encoder.layer.0.attention.self.query.weight (+3 more)")),
    ("vllm_mlx/rerank.py no safetensors", "model_load_missing_weights", _tb("vllm_mlx/rerank.py", "_load_mlx_model", "FileNotFoundError: No safetensors files found in /Users/me/models/bge-reranker")),
    ("omlx/engine/tts.py strict", "model_load_missing_weights", _omlx("omlx.engine.tts", "WARNING", "Strict weight loading failed for Kokoro-82M (likely quantized model with mlx-audio compatibility issue), retrying with strict=False")),
    ("mlx_lm/utils.py g_idx", "model_load_missing_weights", _tb("mlx_lm/utils.py", "_transform_awq_weights", "ValueError: Found model.layers.0.mlp.g_idx in weights. Models with non-contiguous group indices (g_idx) are not currently supported. Please use a model without g_idx or re-quantize it.")),
    # --- unsupported_arch ---
    ("mlx_lm/models/rope_utils.py", "unsupported_arch", _tb("mlx_lm/models/rope_utils.py", "initialize_rope", "ValueError: Unsupported RoPE type mrope_interleaved")),
    ("mlx_lm/models/gemma3n.py layer type", "unsupported_arch", _tb("mlx_lm/models/gemma3n.py", "__init__", "NotImplementedError: Unknown layer type: chunked_attention")),
    ("mlx_lm/models/internlm2.py rope_scaling", "unsupported_arch", _tb("mlx_lm/models/internlm2.py", "__post_init__", "ValueError: rope_scaling 'type' currently only supports 'linear' or 'dynamic")),
    ("mlx_vlm/models/x/vision.py", "unsupported_arch", _tb("mlx_vlm/models/qwen3_vl/vision.py", "__init__", "ValueError: Unsupported model type: qwen3_vl_vision_v2")),
    ("omlx/patches/deepseek_v4 rope", "unsupported_arch", _tb("omlx/patches/deepseek_v4/deepseek_v4_model.py", "__init__", "ValueError: Unsupported DeepSeek-V4 RoPE type: yarn2")),
    ("mlx_vlm/prompt_utils.py", "unsupported_arch", _tb("mlx_vlm/prompt_utils.py", "__init__", "ValueError: Unsupported model: glm5v")),
    ("vllm_mlx/mllm_batch_generator.py merge", "batch_cache_shape", "2026-07-11 10:00:00,123 - vllm_mlx.mllm_batch_generator - ERROR - Failed to merge per-request caches (RotatingKVCache): ValueError: boom"),
    ("vllm_mlx/engine/simple.py worker busy", "server_hang", "2026-07-11 10:00:00,123 - vllm_mlx.engine.simple - WARNING - SimpleEngine.stop: generation worker still busy after 30.0s; detaching it to finish in the background"),
    ("vllm_mlx/mllm_scheduler.py failing", "server_hang", "2026-07-11 10:00:00,123 - vllm_mlx.mllm_scheduler - ERROR - Failing 4 MLLM requests after an unrecoverable scheduler step: boom"),
    ("vllm_mlx/engine/batched.py env", "settings_invalid", "2026-07-11 10:00:00,123 - vllm_mlx.engine.batched - WARNING - Ignoring invalid MLX_BUFFER_CACHE_LIMIT='lots'; using device-scaled cap"),
    ("mlx_vlm/apc.py env", "settings_invalid", "WARNING:mlx_vlm.apc:APC disk: unknown APC_DISK_READ_MODE='fast'; using direct"),
    ("vllm_mlx/utils/download.py", "model_not_found", _tb("vllm_mlx/utils/download.py", "ensure_model_downloaded", "RuntimeError: Failed to download 'mlx-community/Qwen3-8B-4bit' after 3 attempts. Last error: boom")),
    ("mlx_engine/utils/disable_hf_download.py", "model_not_found", _tb("mlx_engine/utils/disable_hf_download.py", "snapshot_download", "RuntimeError: Internal error: Cannot proceed without downloading from huggingface. Please report this error to the LM Studio team.")),
    ("mlx_vlm/server/reranking.py template", "chat_template", _tb("mlx_vlm/server/reranking.py", "ensure_chat_template", "ValueError: The reranker model does not include a chat template.")),
    ("mlx_lm/chat_templates/deepseek_v32.py role", "chat_template", _tb("mlx_lm/chat_templates/deepseek_v32.py", "render_message", "NotImplementedError: Unknown role: developer")),
    ("mlx fast.cpp sdpa batch", "batch_cache_shape", _tb("mlx_lm/models/base.py", "scaled_dot_product_attention", "ValueError: [scaled_dot_product_attention] mismatching batch dimension for input with shape (3, 8, 1, 128).")),
    ("mlx fast.cpp rope offset", "batch_cache_shape", _tb("mlx_lm/models/llama.py", "__call__", "ValueError: [rope] offset must be a scalar or vector with 4 elements but has shape (3).")),
    ("omlx/engine_pool.py dflash fallback failed", "speculative_decoding", _omlx("omlx.engine_pool", "WARNING", "DFlash load failed: boom; batched fallback also failed: boom")),
    ("mlx_vlm/utils.py nvfp4", "model_load_missing_weights", _tb("mlx_vlm/utils.py", "_transform_modelopt_nvfp4", "ValueError: Missing ModelOpt NVFP4 tensors for language_model.model.layers.3.mlp.down_proj.")),
    ("mlx_vlm/utils.py model_file", "model_load_missing_weights", _tb("mlx_vlm/utils.py", "get_model_and_args", "FileNotFoundError: config.json declares model_file=modeling_x.py but /Users/me/models/X/modeling_x.py does not exist")),
    ("vllm_mlx/server.py unknown model", "model_not_found", "2026-07-11 10:00:00,123 - vllm_mlx.server - WARNING - HTTP 404: The model `gpt-4o` does not exist. Available models: ['qwen3-8b']"),
    ("mlx_engine model_kit fatal", "server_hang", "[mlx-engine] ERROR Encountered fatal exception in the backend scheduler: Traceback (most recent call last):"),
]


def _cats(text: str) -> set[str]:
    return {c for ev in triage_text(text) for c in ev.categories}


@pytest.mark.parametrize(("name", "category", "text"), CASES, ids=[c[0] for c in CASES])
def test_source_message_recognised(name: str, category: str, text: str) -> None:
    assert category in _cats(text), (name, _cats(text))


NEAR_MISSES = [
    # normal operation of the same modules, or the same words where nothing is wrong
    _omlx("omlx.scheduler", "INFO", "Request chatcmpl-5 admitted after 0.2s (memory ok)"),
    _omlx("omlx.cache.prefix_cache", "INFO", "Cache reconstruction: got 48 layers, expected 48"),
    _omlx("omlx.process_memory_enforcer", "INFO", "Memory pressure level: normal -> soft"),
    _omlx("omlx.engine_pool", "INFO", "Pinned model loaded: Qwen3-8B-4bit"),
    _omlx("omlx.server", "WARNING", "POST /v1/chat/completions → 400: messages must not be empty"),
    "2026-07-11 10:00:00,123 - WARNING - The config value is invalid, using default",
    "2026-07-11 10:00:00,123 - ERROR - Request failed: error while handling cache",
    "usage: mlx_lm.server [-h] [--model MODEL] [--port PORT]",
    _tb("mlx_lm/server.py", "_validate", "ValueError: max_tokens must be at least 1"),
    _tb("mlx_lm/sample_utils.py", "apply_min_p", "ValueError: `min_p` has to be a float in the [0, 1] interval, but is 1.5"),
    "2026-07-11 10:00:00,123 - vllm_mlx.server - WARNING - SECURITY WARNING: Server running without API key authentication.",
    _omlx("omlx.custom_kernels.qwen35_prefill.fast", "WARNING", "qwen35_prefill: native kernels disabled — the extension was built with a nanobind ABI that does not match this mlx wheel; rebuild it"),
    _omlx("omlx.engine_pool", "WARNING", "Unloading pending model 'Qwen3-8B-4bit' after activity drained (idle)"),
    # speculative routing oMLX (engine/dflash.py, scheduler.py) and mlx-engine do by design, logged at INFO
    _omlx("omlx.engine.dflash", "INFO", "DFlashEngine loaded: target=Qwen3-8B-4bit, draft=/Users/me/models/Qwen3-DFlash, max_ctx=8192, fallback=batched, verify=exact"),
    _omlx("omlx.engine.dflash", "INFO", "DFlash context fallback: 9120 >= 8192, evicting dflash models and switching to batched engine"),
    _omlx("omlx.engine.dflash", "INFO", "DFlash multimodal fallback: image content detected, switching to VLM engine"),
    _omlx("omlx.scheduler", "INFO", "vlm_mtp routing skipped for chatcmpl-3: drafter is busy with 1 request(s); falling back to BatchGenerator"),
    "[mlx-engine] INFO Draft model is loaded but speculative decoding is disabled for this generation",
    _omlx("omlx.patches.index_cache", "DEBUG", "IndexCache: model_type 'qwen3' not supported, skipping"),
    "2026-07-11 10:00:00,123 - uvicorn.error - WARNING - Timeout waiting for request body",
    "2026-07-11 10:00:00,123 - WARNING - Config not found at /Users/me/.config/app.toml, using defaults",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_source_near_miss_not_labelled(text: str) -> None:
    assert not _cats(text), _cats(text)
