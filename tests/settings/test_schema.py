"""The key table matches oMLX 0.5.0's ModelSettings and its admin PUT (lists read from d5fcb22a)."""

from __future__ import annotations

import pytest

from mlx_console.core.settings.schema import (
    KEYS,
    ORDER,
    form_fields,
    known_to,
    resolve_alias,
    suggest,
    version_tuple,
)

# `ModelSettings` fields of oMLX 0.5.0, in declaration order (= the order oMLX writes keys).
OMLX_050_FIELDS = [
    "max_context_window", "max_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "min_p",
    "presence_penalty", "force_sampling", "max_tool_result_tokens", "chat_template_kwargs", "forced_ct_kwargs",
    "ttl_seconds", "model_type_override", "model_alias", "index_cache_freq", "enable_thinking",
    "preserve_thinking", "thinking_budget_enabled", "thinking_budget_tokens", "reasoning_parser",
    "guided_grammar_enabled", "guided_grammar", "turboquant_kv_enabled", "turboquant_kv_bits",
    "turboquant_skip_last", "specprefill_enabled", "specprefill_draft_model", "specprefill_keep_pct",
    "specprefill_threshold", "dflash_enabled", "dflash_draft_model", "dflash_draft_quant_enabled",
    "dflash_draft_quant_weight_bits", "dflash_draft_quant_activation_bits", "dflash_draft_quant_group_size",
    "dflash_max_ctx", "dflash_in_memory_cache", "dflash_in_memory_cache_max_entries",
    "dflash_in_memory_cache_max_bytes", "dflash_ssd_cache", "dflash_ssd_cache_max_bytes",
    "dflash_draft_window_size", "dflash_draft_sink_size", "dflash_verify_mode", "mtp_enabled",
    "mtp_num_draft_tokens", "vlm_mtp_enabled", "vlm_mtp_draft_model", "vlm_mtp_draft_block_size", "is_pinned",
    "is_default", "is_hidden", "is_favorite", "trust_remote_code", "display_name", "description",
    "active_profile_name",
]
# Fields the 0.5.0 `ModelSettingsRequest` lacks: the PUT silently ignores them.
NOT_IN_PUT = {"preserve_thinking", "turboquant_skip_last", "mtp_num_draft_tokens", "display_name", "description",
              "active_profile_name"}
# Keys the PUT answers with requires_reload (auto-unload) when sent for a loaded model.
UNLOADING = {"index_cache_freq", "dflash_enabled", "dflash_draft_model", "dflash_draft_quant_enabled",
             "dflash_draft_quant_weight_bits", "dflash_draft_quant_activation_bits", "dflash_draft_quant_group_size",
             "dflash_max_ctx", "dflash_in_memory_cache", "dflash_in_memory_cache_max_entries",
             "dflash_in_memory_cache_max_bytes", "dflash_ssd_cache", "dflash_ssd_cache_max_bytes",
             "trust_remote_code", "model_type_override"}
# Non-None dataclass defaults (what oMLX writes for a model on its first save).
DEFAULTS = {"force_sampling": False, "thinking_budget_enabled": False, "guided_grammar_enabled": False,
            "turboquant_kv_enabled": False, "turboquant_kv_bits": 4, "turboquant_skip_last": True,
            "specprefill_enabled": False, "dflash_enabled": False, "dflash_in_memory_cache": True,
            "dflash_in_memory_cache_max_entries": 4, "dflash_in_memory_cache_max_bytes": 8589934592,
            "dflash_ssd_cache": False, "dflash_ssd_cache_max_bytes": 21474836480, "mtp_enabled": False,
            "vlm_mtp_enabled": False, "is_pinned": False, "is_default": False, "is_hidden": False,
            "is_favorite": False, "trust_remote_code": False}


def test_every_050_field_is_known_in_order() -> None:
    known = [k for k, s in KEYS.items() if known_to(s, "0.5.0")]
    assert known == OMLX_050_FIELDS
    assert [ORDER[k] for k in OMLX_050_FIELDS] == sorted(ORDER[k] for k in OMLX_050_FIELDS)


def test_defaults_types_and_routes_match_050() -> None:
    for name in OMLX_050_FIELDS:
        spec = KEYS[name]
        assert spec.default == DEFAULTS.get(name), name
        assert spec.nullable == (name not in DEFAULTS), name
        assert spec.put == (name not in NOT_IN_PUT), name
        assert (spec.effect == "file-only") == (name in NOT_IN_PUT), name
        assert (spec.effect == "unload") == (name in UNLOADING), name


def test_newer_keys_are_flagged_not_dropped() -> None:
    newer = [k for k, s in KEYS.items() if s.newer]
    assert {"mtp_fixed_draft_depth", "dflash_block_size", "moe_expert_offload_enabled",
            "qwen35_ane_prefill_enabled"} <= set(newer)
    assert not known_to(KEYS["dflash_block_size"], "0.5.0")
    assert known_to(KEYS["dflash_block_size"], "0.6.4")
    assert not known_to(KEYS["dflash_enabled"], "0.4.2")  # pre-0.5 lacks dflash_*
    assert version_tuple("0.7.0.dev1") == (0, 7, 0)


@pytest.mark.parametrize(("key", "value", "ok"), [
    ("turboquant_kv_bits", 3.5, True), ("turboquant_kv_bits", 5, False), ("turboquant_kv_bits", 8, True),
    ("turboquant_kv_bits", True, False), ("top_p", 1.0, True), ("top_p", 1.5, False),
    ("max_tokens", 0, False), ("max_tokens", 1, True), ("max_tokens", 2.0, False), ("is_pinned", 1, False),
    ("dflash_verify_mode", "ddtree", True), ("dflash_verify_mode", "fast", False),
    ("dflash_draft_quant_group_size", 48, False), ("specprefill_keep_pct", 0.05, False),
    ("index_cache_freq", 1, False), ("forced_ct_kwargs", ["a"], True), ("forced_ct_kwargs", [1], False),
    ("chat_template_kwargs", {"enable_thinking": False}, True), ("temperature", float("nan"), False),
    ("model_type_override", "vlm", True), ("model_type_override", "gpu", False),
])
def test_value_checks(key: str, value: object, ok: bool) -> None:
    problem = KEYS[key].check(value)
    assert (problem is None) == ok, problem
    if not ok:
        assert "expected" in problem or "null" in problem


def test_seed_aliases_resolve_with_a_hint() -> None:
    for seed, real in [("turboquant_kv", "turboquant_kv_enabled"), ("thinking_budget", "thinking_budget_tokens"),
                       ("mtp", "mtp_enabled"), ("specprefill", "specprefill_enabled"), ("dflash", "dflash_enabled"),
                       ("pinned", "is_pinned"), ("ttl", "ttl_seconds"), ("alias", "model_alias")]:
        hit = resolve_alias(seed)
        assert hit is not None and hit[0] == real and real in hit[1]
    assert suggest("temprature") == "temperature"
    assert suggest("completely_else") is None


def test_form_fields_cover_every_key_with_meaning() -> None:
    fields = form_fields()
    assert {f["key"] for f in fields} == set(KEYS)
    assert all(f["meaning"] and f["allowed"] and f["effect_text"] for f in fields)


def test_model_form_has_values_defaults_and_issues(tmp_path) -> None:  # noqa: ANN001
    import json

    from mlx_console.core.settings.form import model_form
    from mlx_console.core.settings.store import SettingsStore

    p = tmp_path / "model_settings.json"
    p.write_text(json.dumps({"version": 1, "models": {"m": {"top_p": 3, "mystery": 1}}}))
    fields = {f["key"]: f for f in model_form(SettingsStore.load(p), "m")}
    assert fields["top_p"]["in_file"] and fields["top_p"]["value"] == 3 and fields["top_p"]["issues"]
    assert fields["is_pinned"]["effective"] is False and not fields["is_pinned"]["in_file"]
    assert fields["mystery"]["group"] == "unknown" and "drop" in fields["mystery"]["issues"][0]
