"""Models on disk (HF cache, oMLX model dirs, dirs named in the config) and whether one fits in memory.

Discovery reads config.json and stats files; it never opens weight files, so it stays fast on big caches.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlx_console.core.config import Config, Profile
from mlx_console.core.machine.system import MemoryInfo, fmt_bytes

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".npz")
DEFAULT_CONTEXT = 8192  # tokens of KV cache assumed by the fit check unless the caller says otherwise
MIN_MARGIN = 1024**3  # the fit margin is max(1 GiB, 10 % of the weights): runtime buffers, activations


@dataclass
class ModelInfo:
    """A model directory. `kind` is llm | vlm | embedding | unknown (from config.json), `source` is
    hf-cache | omlx:<profile> | model_dirs | profile:<name>; `used_by` lists profiles that serve it."""

    id: str
    path: Path
    size_bytes: int
    source: str
    kind: str = "unknown"
    weights_bytes: int = 0
    mlx_weights: bool = False  # has model*.safetensors, which mlx_lm.server needs ("No safetensors found")
    model_type: str | None = None
    bits: int | None = None
    group_size: int | None = None
    revision: str | None = None
    layers: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    max_context: int | None = None
    used_by: list[str] = field(default_factory=list)
    error: str | None = None  # config.json unreadable

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def quantization(self) -> str | None:
        if self.bits is None:
            return None
        return f"{self.bits}-bit" + (f" g{self.group_size}" if self.group_size else "")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["name"] = self.name
        return d


# --- reading one model directory ----------------------------------------------------------------------

def _disk_usage(root: Path) -> tuple[int, int, bool]:
    """(all bytes, weight bytes, has model*.safetensors) under root, following symlinks (HF snapshots link
    into ../../blobs) and counting each underlying file once."""
    seen: set[tuple[int, int]] = set()
    total = weights = 0
    mlx = False
    for dirpath, _dirs, files in os.walk(root, followlinks=True):
        for name in files:
            try:
                st = os.stat(os.path.join(dirpath, name))  # follows the symlink to the blob
            except OSError:
                continue  # dangling link: blob not downloaded (or removed)
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += st.st_size
            if name.endswith(WEIGHT_SUFFIXES):
                weights += st.st_size
                if name.startswith("model") and name.endswith(".safetensors"):
                    mlx = True
    return total, weights, mlx


def _kind(cfg: dict[str, Any]) -> str:
    archs = " ".join(str(a) for a in cfg.get("architectures") or [])
    if "vision_config" in cfg or "ForConditionalGeneration" in archs:
        return "vlm"
    if any(w in archs for w in ("ForCausalLM", "LMHeadModel")) or "model_type" in cfg:
        if any(w in archs for w in ("BertModel", "RobertaModel", "ForMaskedLM")) or "sentence" in archs.lower():
            return "embedding"
        return "llm"
    return "unknown"


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def read_model_dir(path: Path, model_id: str, source: str, revision: str | None = None) -> ModelInfo | None:
    """A ModelInfo for a directory holding config.json, or None when it is not a model directory."""
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        return None
    total, weights, mlx = _disk_usage(path)
    info = ModelInfo(id=model_id, path=path, size_bytes=total, source=source, weights_bytes=weights,
                     mlx_weights=mlx, revision=revision)
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        if not isinstance(cfg, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        info.error = f"{cfg_path}: {e}"
        return info
    info.kind = _kind(cfg)
    info.model_type = cfg.get("model_type") if isinstance(cfg.get("model_type"), str) else None
    q = cfg.get("quantization") or cfg.get("quantization_config") or {}
    if isinstance(q, dict):
        info.bits, info.group_size = _int(q.get("bits")), _int(q.get("group_size"))
    text = cfg.get("text_config")
    if not isinstance(text, dict):
        text = cfg
    heads = _int(text.get("num_attention_heads"))
    hidden = _int(text.get("hidden_size"))
    info.layers = _int(text.get("num_hidden_layers"))
    info.kv_heads = _int(text.get("num_key_value_heads")) or heads
    info.head_dim = _int(text.get("head_dim")) or (hidden // heads if hidden and heads else None)
    info.max_context = _int(text.get("max_position_embeddings"))
    return info


# --- where models live ---------------------------------------------------------------------------------

def hf_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """$HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub (huggingface_hub's own order).
    env: variables that override ours (a profile's `env`, which its server sees)."""
    environ = {**os.environ, **(env or {})}
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if environ.get(var):
            return Path(environ[var]).expanduser()
    if environ.get("HF_HOME"):
        return Path(environ["HF_HOME"]).expanduser() / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def hf_snapshot(repo_dir: Path) -> tuple[Path, str] | None:
    """The active snapshot of `models--org--name`: the one refs/main (or master) names, else the newest."""
    snaps = repo_dir / "snapshots"
    for ref in ("main", "master"):
        try:
            rev = (repo_dir / "refs" / ref).read_text().strip()
        except OSError:
            continue
        if (snaps / rev).is_dir():
            return snaps / rev, rev
    try:
        dirs = [p for p in snaps.iterdir() if p.is_dir()]
    except OSError:
        return None
    if not dirs:
        return None
    newest = max(dirs, key=lambda p: p.stat().st_mtime)
    return newest, newest.name


def hf_repo_id(dirname: str) -> str | None:
    if not dirname.startswith("models--"):
        return None
    org, _, name = dirname[len("models--"):].partition("--")
    return f"{org}/{name}" if name else org or None


def read_hf_repo(repo_dir: Path, source: str = "hf-cache") -> ModelInfo | None:
    repo_id = hf_repo_id(repo_dir.name)
    snap = hf_snapshot(repo_dir) if repo_id else None
    if repo_id is None or snap is None:
        return None
    return read_model_dir(snap[0], repo_id, source, revision=snap[1])


def _entries(d: Path) -> list[Path]:
    try:
        return sorted(p for p in d.iterdir() if not p.name.startswith(".") and p.is_dir())
    except OSError:
        return []


def _read(fn: Callable[..., ModelInfo | None], *args: Any) -> ModelInfo | None:
    """One unreadable entry (permissions, a vanished snapshot) must not hide all the others."""
    try:
        return fn(*args)
    except OSError:
        return None


def scan_hf_cache(hub: Path | None = None) -> list[ModelInfo]:
    hub = hub or hf_cache_dir()
    return [m for p in _entries(hub) if (m := _read(read_hf_repo, p)) is not None]


def scan_model_dir(root: Path, source: str, *, omlx_ids: bool = False) -> list[ModelInfo]:
    """Models under a directory the way oMLX discovers them: `root/<id>/config.json`, organisation folders
    `root/<org>/<id>/config.json`, HF cache entries `root/models--org--name`, or root itself a model.
    omlx_ids: name HF cache entries as oMLX's API does (`org--name`) rather than by repo id."""
    found: list[ModelInfo] = []
    for sub in _entries(root):
        if (sub / "adapter_config.json").exists():
            continue  # LoRA adapters are not models
        if (m := _read(read_model_dir, sub, sub.name, source)) is not None:
            found.append(m)
        elif sub.name.startswith("models--"):
            if (m := _read(read_hf_repo, sub, source)) is not None:
                if omlx_ids:
                    m.id = sub.name.removeprefix("models--")
                found.append(m)
        else:
            found += [m for c in _entries(sub) if (m := _read(read_model_dir, c, c.name, source)) is not None]
    if not found and (m := _read(read_model_dir, root, root.name, source)) is not None:
        found.append(m)
    return found


def _flag_value(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def omlx_model_dirs(profile: Profile) -> list[Path]:
    """oMLX's model dirs for a profile, in its precedence: --model-dir > OMLX_MODEL_DIR >
    settings.json model.model_dirs / model.model_dir > {base_path}/models."""
    raw = _flag_value(profile.args, "--model-dir") or profile.env.get("OMLX_MODEL_DIR")
    if raw:
        return [Path(d.strip()).expanduser() for d in raw.split(",") if d.strip()]
    base = Path(_flag_value(profile.args, "--base-path") or profile.base_path).expanduser()
    try:
        settings = json.loads((base / "settings.json").read_text(encoding="utf-8"))
        model = settings.get("model", {}) if isinstance(settings, dict) else {}
        dirs = model.get("model_dirs") or ([model["model_dir"]] if model.get("model_dir") else [])
        if dirs and all(isinstance(d, str) for d in dirs):
            return [Path(d).expanduser() for d in dirs]
    except (OSError, ValueError, AttributeError):
        pass
    return [base / "models"]


def resolve(model: str, source: str = "profile", hub: Path | None = None) -> ModelInfo | None:
    """A model reference as a profile names it: an existing directory, or a hub id looked up in the HF cache
    (`hub`, default hf_cache_dir())."""
    path = Path(model).expanduser()
    if path.is_dir():
        found = read_model_dir(path, model, source)
        if found is None:  # a dir without config.json: still report its size for the fit check
            total, weights, mlx = _disk_usage(path)
            found = ModelInfo(id=model, path=path, size_bytes=total, source=source, weights_bytes=weights,
                              mlx_weights=mlx, error=f"{path}: no config.json")
        return found
    if "/" in model and not model.startswith(("/", ".", "~")):
        return read_hf_repo((hub or hf_cache_dir()) / ("models--" + model.replace("/", "--")))
    return None


def resolve_profile(profile: Profile, hub: Path | None = None) -> ModelInfo | None:
    """The model an mlx-lm profile serves (its `env` may move the HF cache), or None when not on disk."""
    if not profile.model:
        return None
    return _read(resolve, profile.model, f"profile:{profile.name}", hub or hf_cache_dir(profile.env))


def discover(config: Config, hub: Path | None = None) -> list[ModelInfo]:
    """All models the console can see, each directory once (first source wins), sorted by id."""
    by_path: dict[str, ModelInfo] = {}

    def add(models: Iterable[ModelInfo]) -> None:
        for m in models:
            by_path.setdefault(os.path.realpath(m.path), m)

    add(scan_hf_cache(hub))
    for prof in config.backends:
        if prof.kind == "omlx":
            for d in omlx_model_dirs(prof):
                add(scan_model_dir(d, f"omlx:{prof.name}", omlx_ids=True))
    for d in config.model_dirs:
        add(scan_model_dir(d, "model_dirs"))
    for prof in config.backends:
        if prof.kind == "mlx-lm" and prof.model:
            m = resolve_profile(prof, hub)
            if m is not None:
                m = by_path.setdefault(os.path.realpath(m.path), m)
                m.used_by.append(prof.name)
    return sorted(by_path.values(), key=lambda m: (m.id.lower(), str(m.path)))


# --- fit check -----------------------------------------------------------------------------------------

@dataclass
class Fit:
    status: str  # ok | warn | fail
    reason: str  # one line
    weights_bytes: int
    kv_bytes: int
    margin_bytes: int
    available_bytes: int
    working_set_bytes: int | None

    @property
    def need_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.margin_bytes

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["need_bytes"] = self.need_bytes
        return d


def kv_cache_bytes(model: ModelInfo, context_tokens: int = DEFAULT_CONTEXT, bytes_per_value: int = 2) -> int:
    """K and V for every layer at `context_tokens` (fp16). Without the shape in config.json: 10 % of the
    weights, a rough stand-in."""
    if model.layers and model.kv_heads and model.head_dim:
        ctx = min(context_tokens, model.max_context) if model.max_context else context_tokens
        return 2 * model.layers * model.kv_heads * model.head_dim * ctx * bytes_per_value
    return model.weights_bytes // 10


def fit(model: ModelInfo, memory: MemoryInfo, *, context_tokens: int = DEFAULT_CONTEXT) -> Fit:
    """Will loading this model fit? weights + KV cache + margin against available memory and, on macOS,
    Metal's recommended working set. fail: the weights alone do not fit; warn: the headroom does not."""
    weights = model.weights_bytes or model.size_bytes
    kv = kv_cache_bytes(model, context_tokens)
    margin = max(MIN_MARGIN, weights // 10)
    avail, ws = memory.available, memory.working_set
    need = weights + kv + margin
    res = Fit("ok", "", weights, kv, margin, avail, ws)
    w, n = fmt_bytes(weights), fmt_bytes(need)
    if weights == 0:
        res.status, res.reason = "warn", f"no weight files found in {model.path}"
    elif weights > memory.total:
        res.status, res.reason = "fail", f"weights {w} exceed total memory {fmt_bytes(memory.total)}: use a smaller quantization"
    elif ws is not None and weights > ws:
        res.status, res.reason = "fail", (f"weights {w} exceed the Metal working set {fmt_bytes(ws)}: "
                                          "raise `sudo sysctl iogpu.wired_limit_mb` or use a smaller quantization")
    elif weights > avail:
        res.status, res.reason = "fail", f"weights {w} exceed available memory {fmt_bytes(avail)}: the load would swap or OOM; free memory or unload a model"
    elif need > avail:
        res.status, res.reason = "warn", (f"weights+KV({context_tokens} tok)+margin {n} exceed available "
                                          f"{fmt_bytes(avail)}: risk of OOM under load; free memory or shorten the context")
    elif ws is not None and weights + kv > ws:
        res.status, res.reason = "warn", f"weights+KV {fmt_bytes(weights + kv)} exceed the Metal working set {fmt_bytes(ws)}: long prompts may fail"
    elif memory.pressure == "critical":
        res.status, res.reason = "warn", f"needs {n} of {fmt_bytes(avail)} available, but memory pressure is critical"
    else:
        res.reason = f"needs ~{n} (weights {w} + KV {fmt_bytes(kv)} + margin {fmt_bytes(margin)}) of {fmt_bytes(avail)} available"
    return res


@dataclass
class SwapChoice:
    """A model the swap picker offers for one backend: where it is, whether it fits in free memory now, and the
    advisor's warnings for loading it there. `backends models NAME --discover --json` prints these (also over
    SSH, for a [[host]]'s backend: its models are the ones on that host)."""

    id: str
    path: str
    size: int
    source: str
    fit: str  # ok | warn | fail
    fit_reason: str
    advice: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def swap_choices(config: Config, backend: str | None = None) -> list[SwapChoice]:
    """The models on this machine (discover()) with their fit now and, for `backend`, the advisor's warnings."""
    from mlx_console.core.machine.system import memory

    mem = memory()
    out = []
    for m in discover(config):
        f = fit(m, mem)
        warnings: list[str] = []
        if backend is not None:
            from mlx_console.core.describe import advice

            warnings = advice(config, backend, m.id)
        out.append(SwapChoice(m.id, str(m.path), m.size_bytes, m.source, f.status, f.reason, warnings))
    return out


def swap_choice_from_json(d: dict[str, Any]) -> SwapChoice:
    """One object of `backends models NAME --discover --json` (another host's), checked field by field."""
    return SwapChoice(str(d.get("id") or d.get("path") or "?"), str(d.get("path") or ""), int(d.get("size") or 0),
                      str(d.get("source") or ""), str(d.get("fit") or "?"), str(d.get("fit_reason") or ""),
                      [str(a) for a in d.get("advice") or []])
