"""Build a tiny random-weight model offline, for the demo backend and for tests.

Imports mlx: run it as its own process (`mlx-console demo-model DIR`), never inside the console.
The result is deterministic for a given seed: a llama (batchable KVCache) or a llama4 text model
(chunked attention → ChunkedKVCache, which cannot batch: it reproduces the upstream
"does not yet support batching with history" error and the prompt-cache trim bug).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from mlx_console.core.errors import ConsoleError

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>",
                  "<|end|>", "<tool_call>", "</tool_call>"]

# Enough varied text for a byte-level BPE to learn a few hundred merges.
_CORPUS = """\
The quick brown fox jumps over the lazy dog. A tiny model talks gibberish, and that is fine.
Local language models on Apple Silicon share one pool of unified memory between CPU and GPU.
def add(a, b):\n    return a + b\nprint(add(2, 3))\nclass Counter:\n    def __init__(self):\n        self.n = 0
import json\nresult = json.loads('{"name": "get_weather", "arguments": {"city": "Paris"}}')
What is the capital of France? Paris is the capital of France. Berlin is the capital of Germany.
The server streams tokens as server-sent events; each chunk carries a delta with content.
Memory pressure, wired limit, working set, prompt cache, key value cache, batching, decode, prefill.
One two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen.
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June.
Hello! How can I help you today? Please write a function that reverses a string in Python.
"""

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if tools %}<|system|>You may call tools. Reply with <tool_call>{\"name\": ..., \"arguments\": ...}"
    "</tool_call>. Tools: {{ tools | tojson }}<|end|>{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'tool' %}<|user|>tool result: {{ message['content'] }}<|end|>"
    "{% elif message.get('tool_calls') %}<|assistant|>{% for tool_call in message['tool_calls'] %}"
    "<tool_call>{\"name\": \"{{ tool_call.name if tool_call.name is defined else tool_call['function']['name'] }}\"}"
    "</tool_call>{% endfor %}<|end|>"
    "{% else %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _train_tokenizer(vocab_size: int) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    return tok


def _config(arch: str, vocab: int) -> dict:
    common = {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "rms_norm_eps": 1e-5,
        "vocab_size": vocab,
        "max_position_embeddings": 4096,
        "rope_theta": 10000.0,
        "bos_token_id": SPECIAL_TOKENS.index("<s>"),
        "eos_token_id": SPECIAL_TOKENS.index("</s>"),
    }
    if arch == "llama":
        return {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "tie_word_embeddings": True,
                "torch_dtype": "float32", **common}
    text = {
        **common,
        # llama4 makes a global (non-chunked) layer every 4th layer: it needs at least 4.
        "num_hidden_layers": 4,
        "model_type": "llama4_text",
        "attention_bias": False,
        # Small chunks so a short prompt already spans several attention chunks.
        "attention_chunk_size": 32,
        "interleave_moe_layer_step": 2,
        "intermediate_size_mlp": 128,
        "num_experts_per_tok": 1,
        "num_local_experts": 2,
        "rope_scaling": None,
        "use_qk_norm": True,
        "tie_word_embeddings": False,
    }
    return {"model_type": "llama4", "architectures": ["Llama4ForConditionalGeneration"],
            "torch_dtype": "float32", "text_config": text,
            "bos_token_id": common["bos_token_id"], "eos_token_id": common["eos_token_id"]}


def _prefer_printable(weights: dict, tok: object, vocab: int) -> None:
    """Zero the output rows of tokens that do not decode to printable text (lone UTF-8 bytes,
    specials), so that the random model babbles in visible words rather than U+FFFD."""
    import mlx.core as mx

    keep = []
    for i in range(vocab):
        text = tok.decode([i], skip_special_tokens=False)  # type: ignore[attr-defined]
        keep.append(1.0 if text and text.isprintable() and "\ufffd" not in text and not text.startswith("<") else 0.0)
    mask = mx.array(keep)[:, None]
    for name in ("model.embed_tokens.weight", "lm_head.weight", "language_model.lm_head.weight"):
        if name in weights and weights[name].shape[0] == vocab:
            weights[name] = weights[name] * mask
            break


def build(out_dir: str | os.PathLike[str], arch: str = "llama", seed: int = 0, force: bool = False,
          vocab_size: int = 512) -> Path:
    """Write the model into out_dir (atomically: built in a temp dir, then renamed)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    out = Path(out_dir).expanduser().resolve()
    if out.exists() and any(out.iterdir()) and not force:
        raise ConsoleError(f"{out} is not empty (use --force to overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".demo-model-", dir=out.parent))
    try:
        tok = _train_tokenizer(vocab_size)
        vocab = tok.get_vocab_size()
        tok.save(str(tmp / "tokenizer.json"))
        cfg = _config(arch, vocab)
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")

        mx.random.seed(seed)
        if arch == "llama":
            from mlx_lm.models import llama as module
        else:
            from mlx_lm.models import llama4 as module
        model = module.Model(module.ModelArgs.from_dict(cfg))
        weights = dict(tree_flatten(model.parameters()))
        _prefer_printable(weights, tok, vocab)
        mx.save_safetensors(str(tmp / "model.safetensors"), weights, metadata={"format": "mlx"})

        tok_cfg = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "add_bos_token": False,
            "model_max_length": 4096,
            "chat_template": CHAT_TEMPLATE,
        }
        (tmp / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2) + "\n")
        special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
        (tmp / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
        gen = {"bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"]}
        (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")

        os.chmod(tmp, 0o755)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
