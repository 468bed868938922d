"""The keys of oMLX's per-model settings (`ModelSettings` in omlx/model_settings.py, 0.5.0 `d5fcb22a`).

Each `KeySpec` says type, default, what is allowed, how a change takes effect and one line of meaning;
the UI form and every validation message are generated from this table.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

# How a change reaches a running oMLX 0.5.0 (see backends.md §2.3):
#   live      read per request; the admin PUT applies it at once
#   variant   load-time variant: the next request to a loaded model unloads and reloads it
#   unload    the admin PUT unloads a loaded model at once (reloads it if pinned)
#   file-only the 0.5.0 PUT silently ignores the key: write the file, then reload or restart
#   unknown   not a key of the installed oMLX: it ignores it and drops it on its next save
Effect = Literal["live", "variant", "unload", "file-only", "unknown"]
ValueType = Literal["bool", "int", "float", "str", "dict", "list"]

EFFECT_TEXT: dict[str, str] = {
    "live": "applies at once (read per request)",
    "variant": "next request reloads the model with it",
    "unload": "the server unloads the model to apply it (reloads it if pinned)",
    "file-only": "not accepted by the 0.5.0 admin PUT: file + reload/restart",
    "unknown": "unknown to the installed oMLX: ignored and dropped on its next save",
}

GIB = 1024 * 1024 * 1024
OMLX_VERSION = "0.5.0"  # the version this table was read from

# `introduced` markers: keys every supported release has, keys new in 0.5.0, keys newer than 0.5.0.
OLD = (0, 0, 0)
V050 = (0, 5, 0)
NEWER = (0, 5, 1)  # "after 0.5.0": releases up to 0.6.4 / 0.7.0.dev1 exist; exact version unknown


@dataclass(frozen=True)
class KeySpec:
    name: str
    type: ValueType
    nullable: bool
    default: Any  # the dataclass default (what an absent key means)
    meaning: str
    effect: Effect
    group: str
    none_means: str = ""  # what null/absent stands for, e.g. "32768" or "auto"
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False
    unit: str = ""  # "tokens", "bytes", "seconds" …
    introduced: tuple[int, int, int] = OLD
    put: bool = True  # accepted by the 0.5.0 `PUT /admin/api/models/{id}/settings`
    note: str = ""  # constraint or caveat shown next to the field

    @property
    def newer(self) -> bool:
        return self.introduced > V050

    def allowed_text(self) -> str:
        """What is allowed, in words, for error messages and the form."""
        if self.choices is not None:
            text = "one of " + ", ".join(_show(c) for c in self.choices)
        elif self.type == "bool":
            text = "true or false"
        elif self.type in ("int", "float"):
            kind = "an integer" if self.type == "int" else "a number"
            lo = hi = ""
            if self.minimum is not None:
                lo = f"{'>' if self.exclusive_min else '>='} {_show(self.minimum)}"
            if self.maximum is not None:
                hi = f"<= {_show(self.maximum)}"
            bounds = " and ".join(b for b in (lo, hi) if b)
            text = f"{kind} {bounds}".strip()
            if self.unit:
                text += f" ({self.unit})"
        elif self.type == "str":
            text = "a string"
        elif self.type == "dict":
            text = "a JSON object"
        else:
            text = "a JSON list of strings"
        if self.nullable:
            text += " or null" + (f" (= {self.none_means})" if self.none_means else "")
        return text

    def check(self, value: Any) -> str | None:
        """None when `value` is allowed for this key, else why not (without naming the key)."""
        if value is None:
            return None if self.nullable else f"null is not allowed (default {_show(self.default)}; use unset)"
        t = self.type
        if t == "bool":
            if not isinstance(value, bool):
                return f"{_show(value)} is not allowed: expected {self.allowed_text()}"
            return None
        if t == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return f"{_show(value)} is not allowed: expected {self.allowed_text()}"
        elif t == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"{_show(value)} is not allowed: expected {self.allowed_text()}"
            if isinstance(value, float) and not math.isfinite(value):
                return f"{_show(value)} is not allowed: expected a finite number"
        elif t == "str":
            if not isinstance(value, str):
                return f"{_show(value)} is not allowed: expected {self.allowed_text()}"
        elif t == "dict":
            if not isinstance(value, dict):
                return f"{_show(value)} is not allowed: expected {self.allowed_text()}"
            return None
        elif t == "list":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return f"{_show(value)} is not allowed: expected {self.allowed_text()}"
            return None
        if self.choices is not None:
            if value not in self.choices:
                return f"{_show(value)} is not allowed: expected {self.allowed_text()}"
            return None
        if t in ("int", "float"):
            lo, hi = self.minimum, self.maximum
            if lo is not None and (value <= lo if self.exclusive_min else value < lo):
                return f"{_show(value)} is not allowed: expected {self.allowed_text()}"
            if hi is not None and value > hi:
                return f"{_show(value)} is not allowed: expected {self.allowed_text()}"
        return None


def _show(v: Any) -> str:
    try:
        return json.dumps(v, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        return repr(v)


def _k(name: str, type_: ValueType, nullable: bool, default: Any, group: str, effect: Effect, meaning: str,
       **kw: Any) -> KeySpec:
    if effect == "file-only":
        kw.setdefault("put", False)
    return KeySpec(name=name, type=type_, nullable=nullable, default=default, group=group, effect=effect,
                   meaning=meaning, **kw)


# Groups, in the order a form shows them.
GROUPS: tuple[str, ...] = (
    "identity", "sampling", "limits", "thinking", "grammar", "template", "memory", "turboquant",
    "specprefill", "dflash", "mtp", "vlm-mtp", "engine", "metadata", "newer",
)

# In oMLX's dataclass field order: that is the key order oMLX writes, so new keys are inserted there.
_SPECS: tuple[KeySpec, ...] = (
    _k("max_context_window", "int", True, None, "limits", "live", "longest prompt accepted before rejection",
       none_means="global default (32768)", minimum=0, exclusive_min=True, unit="tokens"),
    _k("max_tokens", "int", True, None, "limits", "live", "generation cap (a request's own value wins)",
       none_means="global default (32768)", minimum=0, exclusive_min=True, unit="tokens"),
    _k("temperature", "float", True, None, "sampling", "live", "default sampling temperature",
       none_means="global default (1.0)", minimum=0),
    _k("top_p", "float", True, None, "sampling", "live", "default nucleus sampling mass",
       none_means="global default (0.95)", minimum=0, maximum=1),
    _k("top_k", "int", True, None, "sampling", "live", "default top-k (0 = off)",
       none_means="global default (0)", minimum=0),
    _k("repetition_penalty", "float", True, None, "sampling", "live", "default repetition penalty (1.0 = off)",
       none_means="1.0 (off)", minimum=0, exclusive_min=True),
    _k("min_p", "float", True, None, "sampling", "live", "default min-p threshold",
       none_means="global default", minimum=0, maximum=1),
    _k("presence_penalty", "float", True, None, "sampling", "live", "default presence penalty",
       none_means="global default", minimum=-2, maximum=2),
    _k("force_sampling", "bool", False, False, "sampling", "live", "sample even at temperature 0"),
    _k("max_tool_result_tokens", "int", True, None, "limits", "live", "truncate tool results to this many tokens",
       none_means="no limit", minimum=0, exclusive_min=True, unit="tokens",
       note="the PUT turns 0 into null"),
    _k("chat_template_kwargs", "dict", True, None, "template", "live", "extra chat-template keyword arguments"),
    _k("forced_ct_kwargs", "list", True, None, "template", "live",
       "chat_template_kwargs keys a request cannot override", note="each must be a key of chat_template_kwargs"),
    _k("ttl_seconds", "int", True, None, "memory", "live", "unload after this many idle seconds",
       none_means="global idle timeout", minimum=0, exclusive_min=True, unit="seconds",
       note="ignored while is_pinned"),
    _k("model_type_override", "str", True, None, "engine", "unload", "force the engine type instead of detecting it",
       none_means="auto-detect", choices=("llm", "vlm", "embedding", "reranker", "audio_stt", "audio_tts", "audio_sts"),
       note="unloads only when the engine type changes"),
    _k("model_alias", "str", True, None, "identity", "live", "API-visible id used instead of the directory name",
       none_means="directory name", note="unique; not another model's directory name (the PUT answers 400)"),
    _k("index_cache_freq", "int", True, None, "engine", "unload",
       "DeepSeek DSA IndexCache: every Nth layer keeps its indexer", none_means="off", minimum=2,
       note="the PUT turns values below 2 into null"),
    _k("enable_thinking", "bool", True, None, "thinking", "live", "thinking/reasoning mode on or off",
       none_means="auto"),
    _k("preserve_thinking", "bool", True, None, "thinking", "file-only", "keep <think> blocks of earlier turns",
       none_means="auto (on when the template supports it)"),
    _k("thinking_budget_enabled", "bool", False, False, "thinking", "live", "cap reasoning tokens",
       note="needs thinking_budget_tokens"),
    _k("thinking_budget_tokens", "int", True, None, "thinking", "live", "reasoning token budget",
       none_means="none", minimum=0, exclusive_min=True, unit="tokens", note="used when thinking_budget_enabled"),
    _k("reasoning_parser", "str", True, None, "thinking", "live",
       "xgrammar builtin reasoning parser (qwen, harmony, llama, …)", none_means="auto-detected"),
    _k("guided_grammar_enabled", "bool", False, False, "grammar", "live", "constrain decoding to guided_grammar",
       note="needs guided_grammar and omlx[grammar]"),
    _k("guided_grammar", "str", True, None, "grammar", "live", "default EBNF grammar for constrained decoding"),
    _k("turboquant_kv_enabled", "bool", False, False, "turboquant", "variant", "TurboQuant KV-cache compression",
       note="excludes vlm_mtp_enabled"),
    _k("turboquant_kv_bits", "float", False, 4, "turboquant", "variant", "TurboQuant KV bits",
       choices=(2, 2.5, 3, 3.5, 4, 6, 8), note="the 0.5.0 PUT accepts any number (only 0 → 4)"),
    _k("turboquant_skip_last", "bool", False, True, "turboquant", "file-only",
       "keep the last KV layer unquantized (avoids corruption)"),
    _k("specprefill_enabled", "bool", False, False, "specprefill", "variant",
       "draft-scored sparse prefill (experimental, MoE)", note="needs specprefill_draft_model; excludes vlm_mtp"),
    _k("specprefill_draft_model", "str", True, None, "specprefill", "variant",
       "draft model path for SpecPrefill (same tokenizer)"),
    _k("specprefill_keep_pct", "float", True, None, "specprefill", "variant", "share of prompt tokens kept",
       none_means="0.2", minimum=0.1, maximum=0.5),
    _k("specprefill_threshold", "int", True, None, "specprefill", "variant", "prompt length that triggers SpecPrefill",
       none_means="8192", minimum=0, exclusive_min=True, unit="tokens"),
    _k("dflash_enabled", "bool", False, False, "dflash", "unload", "DFlash block-diffusion speculative decoding",
       introduced=V050, note="needs dflash_draft_model; excludes mtp_enabled and vlm_mtp; the PUT checks the model"),
    _k("dflash_draft_model", "str", True, None, "dflash", "unload", "DFlash draft checkpoint (path or repo)",
       introduced=V050),
    _k("dflash_draft_quant_enabled", "bool", True, None, "dflash", "unload", "quantize the draft model",
       none_means="off", introduced=V050),
    _k("dflash_draft_quant_weight_bits", "int", True, None, "dflash", "unload", "draft weight bits",
       none_means="4", choices=(2, 4, 8), introduced=V050),
    _k("dflash_draft_quant_activation_bits", "int", True, None, "dflash", "unload", "draft activation bits",
       none_means="16", choices=(16, 32), introduced=V050),
    _k("dflash_draft_quant_group_size", "int", True, None, "dflash", "unload", "draft quantization group size",
       none_means="64", choices=(32, 64, 128), introduced=V050),
    _k("dflash_max_ctx", "int", True, None, "dflash", "unload", "fall back to the batched engine from this prompt length",
       none_means="unlimited", minimum=0, exclusive_min=True, unit="tokens", introduced=V050),
    _k("dflash_in_memory_cache", "bool", False, True, "dflash", "unload", "DFlash RAM prefix cache",
       introduced=V050),
    _k("dflash_in_memory_cache_max_entries", "int", False, 4, "dflash", "unload", "DFlash RAM cache entries",
       minimum=0, exclusive_min=True, introduced=V050),
    _k("dflash_in_memory_cache_max_bytes", "int", False, 8 * GIB, "dflash", "unload", "DFlash RAM cache budget",
       minimum=0, exclusive_min=True, unit="bytes", introduced=V050),
    _k("dflash_ssd_cache", "bool", False, False, "dflash", "unload", "spill the DFlash cache to SSD",
       introduced=V050, note="needs dflash_in_memory_cache and oMLX's paged SSD cache dir"),
    _k("dflash_ssd_cache_max_bytes", "int", False, 20 * GIB, "dflash", "unload", "DFlash SSD cache budget",
       minimum=0, exclusive_min=True, unit="bytes", introduced=V050),
    _k("dflash_draft_window_size", "int", True, None, "dflash", "variant", "draft sliding-attention window",
       none_means="1024", minimum=0, exclusive_min=True, unit="tokens", introduced=V050),
    _k("dflash_draft_sink_size", "int", True, None, "dflash", "variant", "attention-sink tokens always kept",
       none_means="64", minimum=0, unit="tokens", introduced=V050),
    _k("dflash_verify_mode", "str", True, None, "dflash", "variant", "DFlash verifier",
       none_means="adaptive", choices=("dflash", "adaptive", "ddtree", "off"), introduced=V050),
    _k("mtp_enabled", "bool", False, False, "mtp", "variant", "native multi-token prediction (qwen3_5/3_6, deepseek_v4)",
       introduced=V050, note="excludes dflash_enabled; the PUT checks the model has mtp.* weights"),
    _k("mtp_num_draft_tokens", "int", True, None, "mtp", "file-only", "MTP draft depth",
       none_means="3", minimum=1, introduced=V050, note="unused by 0.5.0"),
    _k("vlm_mtp_enabled", "bool", False, False, "vlm-mtp", "variant", "mlx-vlm assistant-drafter speculative decoding",
       introduced=V050, note="needs vlm_mtp_draft_model; excludes dflash, specprefill, mtp, turboquant_kv"),
    _k("vlm_mtp_draft_model", "str", True, None, "vlm-mtp", "variant", "assistant drafter (path or model id)",
       introduced=V050),
    _k("vlm_mtp_draft_block_size", "int", True, None, "vlm-mtp", "variant", "tokens drafted per round",
       none_means="mlx-vlm default", minimum=0, exclusive_min=True, introduced=V050),
    _k("is_pinned", "bool", False, False, "memory", "live", "keep loaded; preloaded at start"),
    _k("is_default", "bool", False, False, "identity", "live", "model used when a request names none",
       note="one model only: setting it clears the others"),
    _k("is_hidden", "bool", False, False, "identity", "live", "hidden from /v1/models"),
    _k("is_favorite", "bool", False, False, "identity", "live", "listed first in /v1/models"),
    _k("trust_remote_code", "bool", False, False, "engine", "unload", "let the loader run the repo's Python code",
       introduced=V050),
    _k("display_name", "str", True, None, "metadata", "file-only", "name shown in oMLX's admin UI"),
    _k("description", "str", True, None, "metadata", "file-only", "free-text description"),
    _k("active_profile_name", "str", True, None, "metadata", "file-only", "oMLX profile last applied"),
    # Keys of releases newer than 0.5.0 (`[newer]`): known so they are flagged, not called typos.
    _k("mtp_fixed_draft_depth", "int", True, None, "newer", "unknown", "always draft this many MTP tokens",
       minimum=1, maximum=8, introduced=NEWER),
    _k("dflash_block_size", "int", True, None, "newer", "unknown", "DFlash block size", introduced=NEWER),
    _k("cache_reasoning_output", "bool", True, None, "newer", "unknown", "cache <think> output for the next turn",
       none_means="auto", introduced=NEWER),
    _k("qwen4_ple_ssd_offload", "bool", False, False, "newer", "unknown", "Qwen4 PLE table read from SSD",
       introduced=NEWER),
    _k("deepseek_v41_engram_ssd_offload", "bool", False, False, "newer", "unknown", "DeepSeek V4.1 engram on SSD",
       introduced=NEWER),
    _k("deepseek_v41_ced_prefill_enabled", "bool", False, False, "newer", "unknown", "DeepSeek V4.1 CED prefill",
       introduced=NEWER),
    _k("qwen35_ane_prefill_enabled", "bool", False, False, "newer", "unknown", "ANE/GPU shared prefill (Qwen3.5)",
       introduced=NEWER, note="excludes qwen35_oq_a8_enabled"),
    _k("qwen35_ane_prefill_sequence_length", "int", False, 2048, "newer", "unknown", "ANE prefill chunk length",
       minimum=1, introduced=NEWER),
    _k("qwen35_ane_prefill_tail_padding_min_tokens", "int", False, 0, "newer", "unknown", "ANE tail padding minimum",
       minimum=0, introduced=NEWER),
    _k("qwen35_ane_prefill_fraction", "float", True, None, "newer", "unknown", "share of prefill on the ANE",
       none_means="backend default", minimum=0, maximum=1, introduced=NEWER),
    _k("qwen35_ane_prefill_shared_fraction", "float", False, 1.0, "newer", "unknown", "ANE shared fraction",
       minimum=0, maximum=1, introduced=NEWER),
    _k("qwen35_ane_prefill_fused_down", "bool", False, False, "newer", "unknown", "ANE fused down projection",
       introduced=NEWER),
    _k("qwen35_ane_prefill_max_layers", "int", False, 64, "newer", "unknown", "ANE prefill layers", minimum=0,
       introduced=NEWER),
    _k("qwen35_ane_prefill_dual_ane", "bool", False, True, "newer", "unknown", "use both ANEs", introduced=NEWER),
    _k("qwen35_ane_prefill_gdn", "bool", False, True, "newer", "unknown", "ANE prefill for GDN layers",
       introduced=NEWER),
    _k("qwen35_ane_prefill_gdn_fraction", "float", False, 0.5, "newer", "unknown", "GDN share on the ANE",
       minimum=0, maximum=1, introduced=NEWER),
    _k("qwen35_ane_prefill_gdn_max_layers", "int", False, 48, "newer", "unknown", "GDN layers on the ANE",
       minimum=0, introduced=NEWER),
    _k("qwen35_ane_prefill_cpu_enabled", "bool", False, False, "newer", "unknown", "CPU share of prefill",
       introduced=NEWER),
    _k("qwen35_ane_prefill_cpu_fraction", "float", False, 0.135, "newer", "unknown", "CPU prefill fraction",
       minimum=0, maximum=1, introduced=NEWER),
    _k("qwen35_ane_prefill_cpu_down_fraction", "float", False, 0.0, "newer", "unknown", "CPU down-proj fraction",
       minimum=0, maximum=1, introduced=NEWER),
    _k("qwen35_ane_prefill_cpu_gdn_fraction", "float", False, 0.0, "newer", "unknown", "CPU GDN fraction",
       minimum=0, maximum=1, introduced=NEWER),
    _k("qwen35_ane_prefill_cpu_threads", "int", False, 8, "newer", "unknown", "CPU prefill threads", minimum=1,
       introduced=NEWER),
    _k("qwen35_ane_prefill_cpu_shared_resource", "bool", False, True, "newer", "unknown", "CPU shares resources",
       introduced=NEWER),
    _k("qwen35_oq_a8_enabled", "bool", False, False, "newer", "unknown", "oQ INT8-activation prefill kernels",
       introduced=NEWER, note="excludes qwen35_ane_prefill_enabled"),
    _k("qwen35_oq_a8_min_tokens", "int", False, 128, "newer", "unknown", "prompt length for oQ A8 kernels",
       minimum=1, introduced=NEWER),
    _k("moe_expert_offload_enabled", "bool", False, False, "newer", "unknown", "stream non-resident MoE experts",
       introduced=NEWER, note="excludes mtp, vlm_mtp, dflash"),
    _k("moe_expert_offload_resident_fraction", "float", False, 0.25, "newer", "unknown", "resident expert share",
       minimum=0, maximum=1, exclusive_min=True, introduced=NEWER),
)

KEYS: dict[str, KeySpec] = {s.name: s for s in _SPECS}
ORDER: dict[str, int] = {s.name: i for i, s in enumerate(_SPECS)}

# The seed's shorthand names → (real key, the related keys worth knowing about).
ALIASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "turboquant_kv": ("turboquant_kv_enabled", ("turboquant_kv_bits", "turboquant_skip_last")),
    "turboquant": ("turboquant_kv_enabled", ("turboquant_kv_bits", "turboquant_skip_last")),
    "thinking_budget": ("thinking_budget_tokens", ("thinking_budget_enabled",)),
    "thinking": ("enable_thinking", ("preserve_thinking", "thinking_budget_enabled")),
    "mtp": ("mtp_enabled", ("mtp_num_draft_tokens",)),
    "specprefill": ("specprefill_enabled", ("specprefill_draft_model", "specprefill_keep_pct",
                                            "specprefill_threshold")),
    "dflash": ("dflash_enabled", ("dflash_draft_model", "dflash_verify_mode", "dflash_max_ctx")),
    "vlm_mtp": ("vlm_mtp_enabled", ("vlm_mtp_draft_model",)),
    "pinned": ("is_pinned", ()),
    "pin": ("is_pinned", ()),
    "default": ("is_default", ()),
    "hidden": ("is_hidden", ()),
    "favorite": ("is_favorite", ()),
    "ttl": ("ttl_seconds", ("is_pinned",)),
    "alias": ("model_alias", ()),
    "aliases": ("model_alias", ()),
    "context": ("max_context_window", ()),
    "max_context": ("max_context_window", ()),
    "tool_parser": ("reasoning_parser", ()),
}

ALIAS_NOTES: dict[str, str] = {
    "thinking_budget": "it takes effect only with thinking_budget_enabled=true",
    "aliases": "oMLX has one alias per model",
    "tool_parser": "oMLX 0.5.0 has no tool-parser key (it auto-detects); reasoning_parser is the nearest",
    "ttl": "ignored while is_pinned",
}


def version_tuple(text: str) -> tuple[int, int, int]:
    """'0.5.0' / '0.6.4' / '0.7.0.dev1' → (0, 5, 0) …; unparsable parts count as 0."""
    parts: list[int] = []
    for piece in text.strip().lstrip("v").split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


def known_to(spec: KeySpec, omlx_version: str) -> bool:
    """Whether the installed oMLX `omlx_version` has this key."""
    return version_tuple(omlx_version) >= spec.introduced


def resolve_alias(name: str) -> tuple[str, str] | None:
    """(real key, hint) when `name` is a seed shorthand, else None."""
    hit = ALIASES.get(name) or ALIASES.get(name.replace("-", "_"))
    if hit is None:
        return None
    real, related = hit
    hint = f"{name!r} is shorthand for {real!r}"
    if related:
        hint += " (related: " + ", ".join(related) + ")"
    extra = ALIAS_NOTES.get(name)
    if extra:
        hint += f"; {extra}"
    return real, hint


def suggest(name: str) -> str | None:
    """A close real key for a typo, or the alias target."""

    alias = resolve_alias(name)
    if alias:
        return alias[0]
    close = difflib.get_close_matches(name, list(KEYS), n=1, cutoff=0.75)
    return close[0] if close else None


def effective(block: dict[str, Any], key: str) -> Any:
    """The value oMLX uses for `key` in a model's block: the block's value, else (absent or null) the default."""
    value = block.get(key)
    if value is None:
        spec = KEYS.get(key)
        return spec.default if spec is not None else None
    return value


def effect_of(name: str, omlx_version: str = OMLX_VERSION) -> Effect:
    spec = KEYS.get(name)
    if spec is None or not known_to(spec, omlx_version):
        return "unknown"
    return spec.effect


def form_fields() -> list[dict[str, Any]]:
    """The schema as plain data for a generated form (one dict per key, in GROUPS order)."""
    out = []
    for group in GROUPS:
        for s in _SPECS:
            if s.group != group:
                continue
            out.append({
                "key": s.name, "group": s.group, "type": s.type, "nullable": s.nullable, "default": s.default,
                "none_means": s.none_means, "choices": list(s.choices) if s.choices else None,
                "minimum": s.minimum, "maximum": s.maximum, "unit": s.unit, "effect": s.effect,
                "effect_text": EFFECT_TEXT[s.effect], "meaning": s.meaning, "allowed": s.allowed_text(),
                "note": s.note, "newer": s.newer, "put": s.put,
            })
    return out
