"""The advisor: before a load, read the model's config.json (and oMLX's model settings, the backend's flags) and
warn, each with a one-line fix, about shapes and settings known to break (rules in advisor.toml).

`advise_profile(config, name, model=None)` is what start/swap/load, doctor and the console's swap picker call;
`Advice.to_json()` is the `mlx-console advise --json` contract: {"model", "arch", "warnings": [{"id", "severity",
"message", "fix"}]}.
"""

from __future__ import annotations

import json
import re
import string
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from mlx_console.core.config import Config, Profile
from mlx_console.core.errors import ConsoleError
from mlx_console.core.machine.models import _flag_value as _flag

RULES_FILE = Path(__file__).with_name("advisor.toml")
SEVERITIES = ("error", "warning", "info")
# Model types whose attention is chunked (ChunkedKVCache) or has sliding-window layers (RotatingKVCache).
CHUNKED_TYPES = ("llama4",)
SLIDING_TYPES = ("gemma2", "gemma3", "gemma3_text", "gemma3n", "gemma3n_text", "cohere2")


@dataclass
class Warning_:
    id: str
    severity: str
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "severity": self.severity, "message": self.message, "fix": self.fix}


@dataclass
class Advice:
    model: str
    arch: str | None
    warnings: list[Warning_] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "arch": self.arch, "warnings": [w.to_json() for w in self.warnings]}

    def lines(self) -> list[str]:
        return [f"{w.severity}: {w.message} — fix: {w.fix}" for w in self.warnings]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    when: dict[str, Any]
    message: str
    fix: dict[str, str]  # kind ("" = any) → fix

    def applies(self, facts: dict[str, Any]) -> bool:
        for key, want in self.when.items():
            name, _, op = key.rpartition("_") if key.endswith(("_gt", "_ge", "_lt", "_le")) else (key, "", "")
            have = facts.get(name)
            if op:
                if not isinstance(have, int | float) or isinstance(have, bool):
                    return False
                if not {"gt": have > want, "ge": have >= want, "lt": have < want, "le": have <= want}[op]:
                    return False
            elif have not in (want if isinstance(want, list) else [want]):
                return False
        return True


@lru_cache(maxsize=4)
def load_rules(path: Path = RULES_FILE) -> tuple[tuple[Rule, ...], dict[str, Any]]:
    """(rules, [quantization] table). A bad rules file is a ConsoleError naming the file, rule and key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConsoleError(f"{path}: cannot read the advisor rules: {e}") from e
    rules = []
    for i, r in enumerate(data.get("rule", [])):
        where = f"{path}: [[rule]] #{i + 1} ({r.get('id', '?')})"
        for key in ("id", "severity", "when", "message"):
            if key not in r:
                raise ConsoleError(f"{where}: missing key {key!r}")
        if r["severity"] not in SEVERITIES:
            raise ConsoleError(f"{where}: severity {r['severity']!r} is not one of {', '.join(SEVERITIES)}")
        fixes = {k.removeprefix("fix").lstrip("_").replace("_", "-"): v for k, v in r.items() if k.startswith("fix")}
        if not fixes:
            raise ConsoleError(f"{where}: needs `fix` (or fix_omlx / fix_mlx_lm)")
        rules.append(Rule(r["id"], r["severity"], dict(r["when"]), r["message"], fixes))
    return tuple(rules), dict(data.get("quantization", {}))


class _Facts(string.Formatter):
    def get_value(self, key: Any, args: Any, kwargs: Any) -> Any:
        return kwargs.get(key, "?")


def _render(template: str, facts: dict[str, Any]) -> str:
    try:
        return _Facts().format(template, **facts)
    except (ValueError, TypeError):
        return template


# ---- reading what the load will meet --------------------------------------------------------------------------

def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    tc = cfg.get("text_config")
    return {**cfg, **tc} if isinstance(tc, dict) else cfg


def _arch(cfg: dict[str, Any]) -> str | None:
    mt = cfg.get("model_type")
    tc = cfg.get("text_config")
    if isinstance(tc, dict) and isinstance(tc.get("model_type"), str) and not isinstance(mt, str):
        mt = tc["model_type"]
    return mt if isinstance(mt, str) else None


def attention_kind(cfg: dict[str, Any]) -> str:
    t = _text_config(cfg)
    types = {str(x) for x in (_arch(cfg), t.get("model_type")) if x}
    if t.get("attention_chunk_size") or any(x.startswith(CHUNKED_TYPES) for x in types):
        return "chunked"
    layers = t.get("layer_types")
    if isinstance(layers, list) and any("sliding" in str(x) for x in layers):
        return "sliding"
    if t.get("sliding_window_pattern") or (t.get("sliding_window") and types & set(SLIDING_TYPES)):
        return "sliding"
    return "full"


def _weight_keys(path: Path) -> list[str]:
    index = _read_json(path / "model.safetensors.index.json")
    if index.get("weight_map"):
        return list(index["weight_map"])
    keys: list[str] = []
    for st in sorted(path.glob("*.safetensors"))[:4]:
        try:
            with st.open("rb") as f:
                n = int.from_bytes(f.read(8), "little")
                if 0 < n < 100_000_000:
                    keys.extend(json.loads(f.read(n)))
        except (OSError, ValueError):
            continue
    return keys


def has_mtp_heads(path: Path, cfg: dict[str, Any]) -> bool:
    t = _text_config(cfg)
    if any(isinstance(t.get(k), int) and t[k] > 0 for k in ("num_nextn_predict_layers", "mtp_num_hidden_layers")):
        return True
    return any(k.startswith(("mtp.", "model.mtp.")) or ".mtp." in k for k in _weight_keys(path))


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def _mlx_lm_version() -> str:
    try:
        return metadata.version("mlx-lm")
    except metadata.PackageNotFoundError:
        return ""


def facts_for(path: Path, model_id: str, profile: Profile | None, settings: dict[str, Any],
              memory_bytes: int | None, resolve_draft: Any = None) -> dict[str, Any]:
    """Everything the rules look at, for `model_id` at `path` on `profile` (None: no backend)."""
    cfg = _read_json(path / "config.json")
    t = _text_config(cfg)
    _rules, quant = load_rules()
    kind = profile.kind if profile else "none"
    args = list(profile.args) if profile else []
    f: dict[str, Any] = {"kind": kind, "model": model_id, "arch": _arch(cfg) or "unknown",
                         "attention": attention_kind(cfg), "vocab": t.get("vocab_size"), "kv_note": "",
                         "mlx_lm": _mlx_lm_version() or "(not installed)"}
    # How many decode streams the server batches.
    if kind == "omlx":
        from mlx_console.core.backends.omlx_settings import in_force

        mcr = _flag(args, "--max-concurrent-requests")
        f["concurrency"] = int(mcr) if mcr and mcr.isdigit() else int(in_force(profile)["max_concurrent_requests"])  # type: ignore[arg-type]
    elif kind == "mlx-lm":
        serial = _flag(args, "--draft-model") or _flag(args, "--kv-bits")
        dc = _flag(args, "--decode-concurrency")
        f["concurrency"] = 1 if serial else (int(dc) if dc and dc.isdigit() else 32)
    else:
        f["concurrency"] = 1
    f["batching"] = f["concurrency"] > 1
    # Speculative decoding and its draft model.
    f["mtp_enabled"] = bool(settings.get("mtp_enabled"))
    f["mtp_heads"] = has_mtp_heads(path, cfg) if f["mtp_enabled"] else True
    feature, draft = "", None
    if settings.get("dflash_enabled"):
        feature, draft = "dflash", settings.get("dflash_draft_model")
    elif settings.get("specprefill_enabled"):
        feature, draft = "specprefill", settings.get("specprefill_draft_model")
    elif kind == "mlx-lm" and _flag(args, "--draft-model"):
        feature, draft = "mlx-draft", _flag(args, "--draft-model")
    f["draft_feature"], f["draft_model"] = feature, draft or "(none)"
    draft_path = resolve_draft(draft) if (draft and resolve_draft) else None
    f["draft_found"] = draft_path is not None
    f["draft_vocab"] = _text_config(_read_json(draft_path / "config.json")).get("vocab_size") if draft_path else None
    f["draft_vocab_same"] = f["draft_vocab"] is None or f["vocab"] is None or f["draft_vocab"] == f["vocab"]
    # KV cache bits.
    kv_bits = 0.0
    if settings.get("turboquant_kv_enabled"):
        kv_bits = float(settings.get("turboquant_kv_bits") or 4)
    elif kind == "mlx-lm" and _flag(args, "--kv-bits"):
        try:
            kv_bits = float(_flag(args, "--kv-bits") or 0)
        except ValueError:
            kv_bits = 0.0
    f["kv_bits"] = kv_bits
    # Memory: weights + the KV cache of `concurrency` full contexts.
    layers, heads = t.get("num_hidden_layers"), t.get("num_key_value_heads") or t.get("num_attention_heads")
    head_dim = t.get("head_dim") or (t["hidden_size"] // t["num_attention_heads"]
                                     if t.get("hidden_size") and t.get("num_attention_heads") else None)
    max_pos = t.get("max_position_embeddings")
    context = settings.get("max_context_window") or (32768 if kind == "omlx" else max_pos)
    if isinstance(max_pos, int) and isinstance(context, int):
        context = min(context, max_pos)
    f["context"] = context
    weights = sum(p.stat().st_size for p in path.glob("*.safetensors"))
    f["weights_gb"] = weights / 1e9
    if all(isinstance(x, int) for x in (layers, heads, head_dim, context)) and memory_bytes:
        per_elem = kv_bits / 8 if kv_bits else 2.0
        kv = 2 * layers * heads * head_dim * context * per_elem * f["concurrency"]  # type: ignore[operator]
        f["kv_gb"], f["memory_gb"] = kv / 1e9, memory_bytes / 1e9
        f["mem_share"] = (weights + kv) / memory_bytes
        if kv_bits:
            f["kv_note"] = f", KV at {kv_bits:g} bits"
    # Quantization the installed mlx-lm can load.
    q = cfg.get("quantization") or cfg.get("quantization_config") or {}
    known_bits = list(quant.get("bits", []))
    f["known_bits"] = ", ".join(str(b) for b in known_bits)
    if isinstance(q, dict) and q.get("bits") is not None:
        f["quant_bits"] = q.get("bits")
        f["quant_bits_ok"] = q.get("bits") in known_bits
        mode = str(q.get("mode") or "affine")
        f["quant_mode"] = mode
        need = quant.get("modes", {}).get(mode)
        f["quant_mode_min"] = need or "(unknown)"
        installed = _mlx_lm_version()
        f["quant_mode_ok"] = need is not None and (not installed or need == "0"
                                                   or _version_tuple(installed) >= _version_tuple(need))
    return f


def advise_path(path: Path, model_id: str | None = None, profile: Profile | None = None,
                settings: dict[str, Any] | None = None, memory_bytes: int | None = None,
                resolve_draft: Any = None) -> Advice:
    """Advice for the model directory `path` (served by `profile` with oMLX model `settings`, when given)."""
    model_id = model_id or path.name
    if not (path / "config.json").is_file():
        return Advice(model_id, None, [Warning_("no-config", "error", f"{path} has no config.json: not a model "
                                                "directory", "point at a model folder (config.json + weights)")])
    facts = facts_for(path, model_id, profile, settings or {}, memory_bytes, resolve_draft)
    rules, _quant = load_rules()
    kind = facts["kind"]
    out = []
    for rule in rules:
        if rule.applies(facts):
            fix = rule.fix.get(kind) or rule.fix.get("") or next(iter(rule.fix.values()))
            out.append(Warning_(rule.id, rule.severity, _render(rule.message, facts), _render(fix, facts)))
    return Advice(model_id, None if facts["arch"] == "unknown" else facts["arch"], out)


def _memory_bytes() -> int | None:
    from mlx_console.core.machine import system

    try:
        mem = system.memory()
    except Exception:  # noqa: BLE001 - memory unknown: the KV check is skipped
        return None
    return mem.working_set or mem.total or None


def _omlx_lookup(profile: Profile, model: str) -> Path | None:
    from mlx_console.core.machine import models as models_mod

    p = Path(model).expanduser()
    if p.is_dir():
        return p
    for d in models_mod.omlx_model_dirs(profile):
        if (d / model / "config.json").is_file():
            return d / model
    return None


def advise_profile(config: Config, name: str, model: str | None = None,
                   memory_bytes: int | None = None) -> Advice:
    """Advice for loading `model` (default: the profile's) on backend `name`: the function start, swap, load,
    doctor and the console's swap picker / describe view use. Raises ConsoleError when the model is not found."""
    from mlx_console.core.bench.target import omlx_settings

    profile = config.backend(name)
    model = model or profile.model
    if not model:
        raise ConsoleError(f"backend {name!r} has no model configured: name one (mlx-console advise MODEL "
                           f"--backend {name})")
    mem = memory_bytes if memory_bytes is not None else _memory_bytes()
    if profile.kind == "omlx":
        path = _omlx_lookup(profile, model)
        if path is None:
            from mlx_console.core.machine import models as models_mod

            dirs = ", ".join(str(d) for d in models_mod.omlx_model_dirs(profile))
            raise ConsoleError(f"model {model!r} is not in oMLX's model directories ({dirs}) of backend {name!r}")
        settings = omlx_settings(profile, path.name) or {}
        return advise_path(path, path.name, profile, settings, mem, lambda d: _omlx_lookup(profile, d))
    path = resolve_model(config, model)
    return advise_path(path, model, profile, {}, mem, lambda d: _maybe(lambda: resolve_model(config, d)))


def _maybe(fn: Any) -> Any:
    try:
        return fn()
    except ConsoleError:
        return None


def resolve_model(config: Config | None, model: str) -> Path:
    """A model directory from a path or an id (HF cache, model_dirs, oMLX model dirs)."""
    p = Path(model).expanduser()
    if p.is_dir():
        return p
    from mlx_console.core.machine import models as models_mod

    if config is not None:
        for m in models_mod.discover(config):
            if model in (m.id, m.name, str(m.path)):
                return m.path
    raise ConsoleError(f"model {model!r} not found: give its directory, or an id the console can see "
                       "(`mlx-console doctor` lists them)")


def advise_model(config: Config | None, model: str, memory_bytes: int | None = None) -> Advice:
    """Advice for a model without a backend (no batching or settings known): its shape and quantization."""
    path = resolve_model(config, model)
    mem = memory_bytes if memory_bytes is not None else _memory_bytes()
    return advise_path(path, model, None, {}, mem, lambda d: _maybe(lambda: resolve_model(config, d)))
