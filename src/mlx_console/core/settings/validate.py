"""Check a parsed model_settings.json: each value against its key, cross-key and cross-model rules.

Errors are what oMLX refuses (its admin PUT answers 400, or its loader drops the whole model block);
warnings are what it silently ignores or drops (unknown, alias or newer keys, settings with no effect).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mlx_console.core.settings.schema import KEYS, OMLX_VERSION, effective, known_to, resolve_alias, suggest

Level = Literal["error", "warning"]
SETTINGS_VERSION = 1  # oMLX's file format version


@dataclass(frozen=True)
class Issue:
    model: str | None
    key: str | None
    message: str
    level: Level = "error"

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "key": self.key, "message": self.message, "level": self.level}

    def __str__(self) -> str:
        where = " ".join(p for p in (f"model {self.model!r}" if self.model is not None else "",
                                     f"key {self.key!r}" if self.key is not None else "") if p)
        return f"{self.level}: {where + ': ' if where else ''}{self.message}"


# (flag, [keys it excludes]) — ModelSettings.__post_init__ raises on these, so oMLX drops the whole block.
_EXCLUSIVE: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("mtp_enabled", ("dflash_enabled",), "choose one speculative-decoding path per model"),
    ("vlm_mtp_enabled", ("dflash_enabled", "specprefill_enabled", "mtp_enabled", "turboquant_kv_enabled"),
     "choose one speculative path per model"),
    ("qwen35_oq_a8_enabled", ("qwen35_ane_prefill_enabled",), "choose one Qwen3.5 prefill accelerator"),
    ("moe_expert_offload_enabled", ("mtp_enabled", "vlm_mtp_enabled", "dflash_enabled"),
     "disable speculative decoding first"),
)


def check_key(model: str, key: str, value: Any, omlx_version: str = OMLX_VERSION) -> list[Issue]:
    """Issues of one key/value on its own (type, range, unknown, alias, newer)."""
    spec = KEYS.get(key)
    if spec is None:
        alias = resolve_alias(key)
        if alias:
            return [Issue(model, key, f"not an oMLX key: {alias[1]}; oMLX will drop this key on its next save",
                          "warning")]
        hint = suggest(key)
        tail = f" (did you mean {hint!r}?)" if hint else ""
        return [Issue(model, key, f"unknown key{tail}: oMLX will drop this key on its next save", "warning")]
    issues: list[Issue] = []
    if not known_to(spec, omlx_version):
        issues.append(Issue(model, key, f"newer than the installed oMLX {omlx_version}: it ignores this key and "
                                        "drops it on its next save", "warning"))
    if value is None and not spec.nullable:
        issues.append(Issue(model, key, f"null is not a value of this key; oMLX uses the default "
                                        f"({spec.allowed_text()}, default {spec.default!r})", "warning"))
        return issues
    problem = spec.check(value)
    if problem:
        issues.append(Issue(model, key, problem))
    return issues


def check_block(model: str, block: dict[str, Any], omlx_version: str = OMLX_VERSION) -> list[Issue]:
    """All issues of one model's settings block."""
    issues: list[Issue] = []
    for key, value in block.items():
        issues.extend(check_key(model, key, value, omlx_version))

    def on(key: str) -> bool:
        return bool(effective(block, key))

    for flag, excluded, why in _EXCLUSIVE:
        if on(flag):
            for other in excluded:
                if on(other):
                    issues.append(Issue(model, flag, f"{flag} and {other} cannot both be true ({why}); "
                                                     "oMLX drops this model's whole settings block at load"))
    if on("vlm_mtp_enabled") and not effective(block, "vlm_mtp_draft_model"):
        issues.append(Issue(model, "vlm_mtp_enabled", "needs vlm_mtp_draft_model (the admin PUT refuses it)"))
    if on("dflash_ssd_cache") and not on("dflash_in_memory_cache"):
        issues.append(Issue(model, "dflash_ssd_cache", "needs dflash_in_memory_cache=true (the admin PUT refuses it)"))
    # Settings that oMLX accepts but that do nothing in this combination.
    if on("specprefill_enabled") and not effective(block, "specprefill_draft_model"):
        issues.append(Issue(model, "specprefill_enabled", "has no effect without specprefill_draft_model", "warning"))
    if on("dflash_enabled") and not effective(block, "dflash_draft_model"):
        issues.append(Issue(model, "dflash_enabled", "has no effect without dflash_draft_model", "warning"))
    if on("thinking_budget_enabled") and not effective(block, "thinking_budget_tokens"):
        issues.append(Issue(model, "thinking_budget_enabled", "has no effect without thinking_budget_tokens",
                            "warning"))
    if block.get("thinking_budget_tokens") is not None and not on("thinking_budget_enabled"):
        issues.append(Issue(model, "thinking_budget_tokens", "not used while thinking_budget_enabled is false",
                            "warning"))
    if on("guided_grammar_enabled") and not effective(block, "guided_grammar"):
        issues.append(Issue(model, "guided_grammar_enabled", "has no effect without guided_grammar", "warning"))
    if block.get("ttl_seconds") is not None and on("is_pinned"):
        issues.append(Issue(model, "ttl_seconds", "ignored while is_pinned is true", "warning"))
    forced = block.get("forced_ct_kwargs")
    kwargs = block.get("chat_template_kwargs")
    if isinstance(forced, list) and forced:
        missing = [k for k in forced if isinstance(k, str) and (not isinstance(kwargs, dict) or k not in kwargs)]
        if missing:
            issues.append(Issue(model, "forced_ct_kwargs", "names keys that chat_template_kwargs does not set: "
                                + ", ".join(map(str, missing)), "warning"))
    return issues


def check_document(doc: Any, omlx_version: str = OMLX_VERSION,
                   model_dirs: set[str] | None = None) -> list[Issue]:
    """All issues of a whole parsed file; `model_dirs` are the directory names oMLX discovers (aliases
    must not collide with them)."""
    if not isinstance(doc, dict):
        return [Issue(None, None, "the file must hold a JSON object {\"version\": 1, \"models\": {…}}")]
    issues: list[Issue] = []
    version = doc.get("version", SETTINGS_VERSION)
    if version != SETTINGS_VERSION:
        issues.append(Issue(None, "version", f"version {version!r} differs from oMLX's {SETTINGS_VERSION}", "warning"))
    for key in doc:
        if key not in ("version", "models"):
            issues.append(Issue(None, key, "unknown top-level key: oMLX will drop this key on its next save",
                                "warning"))
    models = doc.get("models", {})
    if not isinstance(models, dict):
        return [*issues, Issue(None, "models", "\"models\" must be a JSON object of model id → settings")]
    defaults: list[str] = []
    aliases: dict[str, str] = {}
    ids = set(models) | (model_dirs or set())
    for model, block in models.items():
        if not isinstance(block, dict):
            issues.append(Issue(model, None, "settings must be a JSON object; oMLX drops this model's block"))
            continue
        issues.extend(check_block(model, block, omlx_version))
        if model_dirs is not None and model not in model_dirs:
            issues.append(Issue(model, None, "oMLX has no model with this id (no folder of that name with weights "
                                "in its model directories): these settings are never used", "warning"))
        if block.get("is_default") is True:
            defaults.append(model)
        alias = block.get("model_alias")
        if isinstance(alias, str) and alias.strip():
            alias = alias.strip()
            if alias in aliases:
                issues.append(Issue(model, "model_alias", f"alias {alias!r} is already used by model "
                                                          f"{aliases[alias]!r}"))
            elif alias != model and alias in ids:
                issues.append(Issue(model, "model_alias", f"alias {alias!r} conflicts with model directory name "
                                                          f"{alias!r}"))
            aliases.setdefault(alias, model)
    if len(defaults) > 1:
        issues.append(Issue(defaults[-1], "is_default", "is_default is true for more than one model: "
                            + ", ".join(defaults) + " (oMLX uses only the first)"))
    return issues


def errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.level == "error"]
