"""Prompts of a given token length from bundled text, each opened by a random nonce (cache busting)."""

from __future__ import annotations

import json
import os
import uuid
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def _words() -> tuple[str, ...]:
    text = resources.files("mlx_console.core.bench").joinpath("data", "filler.txt").read_text(encoding="utf-8")
    return tuple(text.split())


def nonce() -> str:
    return uuid.uuid4().hex[:12]


def filler(n_words: int, offset: int = 0) -> str:
    """n_words of bundled prose, starting offset words in (wrapping around)."""
    words = _words()
    return " ".join(words[(offset + i) % len(words)] for i in range(max(1, n_words)))


def busted_prompt(n_words: int, tag: str | None = None) -> str:
    """A prompt whose first tokens are unique, so no prefix cache can hold any of it."""
    return f"[{tag or nonce()}] Read this text, then continue it.\n\n{filler(n_words)}"


class TokenSizer:
    """Maps a wanted prompt_tokens to a word count, fitted from the server's own `usage` counts
    (the console never loads the model's tokenizer). tokens ≈ overhead + per_word × words."""

    def __init__(self) -> None:
        self.overhead: float | None = None
        self.per_word: float | None = None

    @property
    def calibrated(self) -> bool:
        return self.per_word is not None

    def fit(self, words_a: int, tokens_a: int, words_b: int, tokens_b: int) -> None:
        self.per_word = max(0.2, (tokens_b - tokens_a) / max(1, words_b - words_a))
        self.overhead = tokens_a - self.per_word * words_a

    def words_for(self, tokens: int) -> int:
        if self.per_word is None or self.overhead is None:
            return max(1, int(tokens / 1.4))
        return max(1, round((tokens - self.overhead) / self.per_word))


def model_window(model: str | None, model_path: str | None = None) -> tuple[int | None, str]:
    """attention_chunk_size / sliding_window from the model's config.json (local path or HF cache).
    Returns (window or None, where it came from)."""
    cfg, where = _model_config(model, model_path)
    if cfg is None:
        return None, where
    found: list[tuple[str, int]] = []
    for scope in (cfg, cfg.get("text_config") or {}):
        for key in ("attention_chunk_size", "sliding_window"):
            v = scope.get(key) if isinstance(scope, dict) else None
            if isinstance(v, int) and v > 0:
                found.append((key, v))
    if not found:
        return None, f"{where} (no attention_chunk_size / sliding_window: full attention)"
    key, v = max(found, key=lambda kv: kv[1])
    return v, f"{key}={v} from {where}"


def _model_config(model: str | None, model_path: str | None) -> tuple[dict[str, Any] | None, str]:
    candidates: list[Path] = []
    for m in (model_path, model):
        if m:
            p = Path(m).expanduser()
            if p.is_dir():
                candidates.append(p / "config.json")
    if model and "/" in model and not Path(model).expanduser().exists():
        hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
            os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")
        snaps = Path(hub) / ("models--" + model.replace("/", "--")) / "snapshots"
        if snaps.is_dir():
            candidates += sorted(snaps.glob("*/config.json"))
    for c in candidates:
        try:
            return json.loads(c.read_text(encoding="utf-8")), str(c)
        except (OSError, ValueError):
            continue
    return None, "model config not found locally"
