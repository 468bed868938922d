"""Model discovery on real directory layouts built in tmp (HF cache with symlinked blobs, oMLX dirs) and
the fit check's numbers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlx_console.core import config as config_mod
from mlx_console.core.config import Config, Profile
from mlx_console.core.machine import models
from mlx_console.core.machine.parse import GIB, MIB
from mlx_console.core.machine.system import MemoryInfo

LLAMA_CFG = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
             "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32,
             "max_position_embeddings": 131072, "quantization": {"group_size": 64, "bits": 4}}


def write_model(d: Path, cfg: dict | None = None, weights: dict[str, int] | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg if cfg is not None else LLAMA_CFG))
    for name, size in (weights if weights is not None else {"model.safetensors": 1000}).items():
        with open(d / name, "wb") as f:
            f.truncate(size)  # sparse: the size is real, the disk use is not
    return d


def hf_repo(hub: Path, repo_id: str, files: dict[str, bytes | int], rev: str = "a" * 40,
            ref: bool = True) -> Path:
    """A real HF hub cache entry: blobs/<hash>, snapshots/<rev>/<file> → ../../blobs/<hash>, refs/main."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / rev
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        blob = repo / "blobs" / f"blob-{name}-{len(content) if isinstance(content, bytes) else content}"
        if not blob.exists():
            if isinstance(content, bytes):
                blob.write_bytes(content)
            else:
                with open(blob, "wb") as f:
                    f.truncate(content)
        link = snap / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(rev)
    return snap


def test_hf_cache_dir_env_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "a"))
    assert models.hf_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert models.hf_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.delenv("HF_HOME")
    assert models.hf_cache_dir() == Path("~/.cache/huggingface/hub").expanduser()


def test_hf_cache_blobs_counted_once_and_ref_snapshot_chosen(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    cfg = json.dumps(LLAMA_CFG).encode()
    files: dict[str, bytes | int] = {"config.json": cfg, "model-00001-of-00002.safetensors": 3000,
                                     "model-00002-of-00002.safetensors": 2000, "tokenizer.json": b"{}"}
    old = hf_repo(hub, "mlx-community/Llama-3-8B-4bit", files, rev="1" * 40, ref=False)
    new = hf_repo(hub, "mlx-community/Llama-3-8B-4bit", files, rev="2" * 40)  # same blobs, refs/main → new
    # a second name for the same blob inside the snapshot must not count twice
    (new / "sub").mkdir()
    (new / "sub" / "again.safetensors").symlink_to(os.readlink(new / "model-00001-of-00002.safetensors")
                                                   .replace("../../", "../../../"))
    assert (new / "sub" / "again.safetensors").stat().st_size == 3000
    hf_repo(hub, "someone/tokenizer-only", {"tokenizer.json": b"{}"})  # no config.json: not a model
    (hub / "datasets--x--y").mkdir()
    found = models.scan_hf_cache(hub)
    assert [m.id for m in found] == ["mlx-community/Llama-3-8B-4bit"]
    m = found[0]
    assert m.path == new and m.revision == "2" * 40 and old.exists()
    assert m.size_bytes == len(cfg) + 3000 + 2000 + 2
    assert m.weights_bytes == 5000 and m.mlx_weights
    assert (m.model_type, m.kind, m.bits, m.group_size, m.quantization) == ("llama", "llm", 4, 64, "4-bit g64")
    assert (m.layers, m.kv_heads, m.head_dim, m.max_context) == (32, 8, 128, 131072)
    assert m.name == "Llama-3-8B-4bit" and m.source == "hf-cache"


def test_hf_cache_dangling_blob_and_missing_ref(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    snap = hf_repo(hub, "org/partial", {"config.json": b'{"model_type": "qwen3"}', "model.safetensors": 10},
                   ref=False)
    os.unlink(os.path.realpath(snap / "model.safetensors"))  # an interrupted download
    [m] = models.scan_hf_cache(hub)
    assert m.revision == "a" * 40  # no refs/main: the newest snapshot
    assert m.weights_bytes == 0 and not m.mlx_weights


@pytest.mark.timeout(20)
def test_discovery_never_opens_weight_files(tmp_path: Path) -> None:
    """A FIFO named like a weight file blocks any reader forever: discovery must only stat it."""
    d = write_model(tmp_path / "models" / "m", weights={})
    os.mkfifo(d / "model.safetensors")
    [m] = models.scan_model_dir(tmp_path / "models", "model_dirs")
    assert m.mlx_weights


def test_omlx_layouts_and_profile_dirs(tmp_path: Path) -> None:
    base = tmp_path / "omlx"
    root = base / "models"
    write_model(root / "flat-model")
    write_model(root / "mlx-community" / "org-model")  # organisation folder: two levels
    write_model(root / "adapter-only", {"model_type": "llama"}).joinpath("adapter_config.json").write_text("{}")
    hf_repo(root, "Qwen/Qwen3-0.6B", {"config.json": b'{"model_type":"qwen3"}', "model.safetensors": 7})
    (root / ".hidden").mkdir()
    prof = Profile(name="om", kind="omlx", base_path=str(base))
    assert models.omlx_model_dirs(prof) == [root]
    ids = sorted(m.id for m in models.scan_model_dir(root, "omlx:om", omlx_ids=True))
    assert ids == ["Qwen--Qwen3-0.6B", "flat-model", "org-model"]  # the ids oMLX's API uses
    assert "Qwen/Qwen3-0.6B" in {m.id for m in models.scan_model_dir(root, "model_dirs")}
    # precedence: --model-dir > OMLX_MODEL_DIR > settings.json > base/models
    (base / "settings.json").write_text(json.dumps({"model": {"model_dirs": [str(tmp_path / "s")]}}))
    assert models.omlx_model_dirs(prof) == [tmp_path / "s"]
    prof.env = {"OMLX_MODEL_DIR": f"{tmp_path}/e1,{tmp_path}/e2"}
    assert models.omlx_model_dirs(prof) == [tmp_path / "e1", tmp_path / "e2"]
    prof.args = ["--model-dir", str(tmp_path / "cli")]
    assert models.omlx_model_dirs(prof) == [tmp_path / "cli"]
    # a model dir that is itself a model
    assert [m.id for m in models.scan_model_dir(root / "flat-model", "x")] == ["flat-model"]


def test_discover_all_sources_each_dir_once(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    snap = hf_repo(hub, "org/hub-model", {"config.json": json.dumps(LLAMA_CFG).encode(), "model.safetensors": 50})
    base = tmp_path / "omlx"
    write_model(base / "models" / "om-model")
    extra = tmp_path / "extra"
    write_model(extra / "mine", {"model_type": "gemma3", "vision_config": {}})
    direct = write_model(tmp_path / "direct", weights={"weights.npz": 10})
    cfg = Config(path=tmp_path / "c.toml", exists=True, model_dirs=[extra], backends=[
        Profile(name="a", kind="mlx-lm", model="org/hub-model"),
        Profile(name="b", kind="mlx-lm", model=str(direct)),
        Profile(name="c", kind="mlx-lm", model=str(extra / "mine")),
        Profile(name="om", kind="omlx", base_path=str(base)),
    ])
    found = {m.id: m for m in models.discover(cfg, hub)}
    assert set(found) == {"org/hub-model", "om-model", "mine", str(direct)}
    assert found["org/hub-model"].path == snap and found["org/hub-model"].used_by == ["a"]
    assert found["mine"].source == "model_dirs" and found["mine"].used_by == ["c"] and found["mine"].kind == "vlm"
    assert found["om-model"].source == "omlx:om"
    assert found[str(direct)].source == "profile:b" and not found[str(direct)].mlx_weights
    assert json.loads(json.dumps(found["mine"].to_json()))["path"] == str(extra / "mine")


def test_discover_default_config_and_missing_dirs(tmp_path: Path) -> None:
    cfg = config_mod.load()  # no config file: the demo profile, whose model is not built yet
    assert models.discover(cfg, tmp_path / "no-hub") == []


def test_resolve(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    m = models.resolve(str(empty))
    assert m is not None and m.error and "no config.json" in m.error and not m.mlx_weights
    assert models.resolve(str(tmp_path / "missing")) is None
    assert models.resolve("org/not-cached", hub=tmp_path) is None


def test_resolve_bad_config_json(tmp_path: Path) -> None:
    d = write_model(tmp_path / "bad")
    (d / "config.json").write_text("{not json")
    m = models.resolve(str(d))
    assert m is not None and m.error and str(d / "config.json") in m.error and m.weights_bytes == 1000


def mem(available: int, total: int = 128 * GIB, working_set: int | None = None, pressure: str = "normal") -> MemoryInfo:
    return MemoryInfo(total=total, available=available, pressure=pressure, detail="", working_set=working_set)


def model(weights: int, **kw: object) -> models.ModelInfo:
    base = dict(id="m", path=Path("/m"), size_bytes=weights, source="x", weights_bytes=weights,
                layers=32, kv_heads=8, head_dim=128, max_context=131072)
    base.update(kw)
    return models.ModelInfo(**base)  # type: ignore[arg-type]


def test_kv_cache_estimate() -> None:
    # 2 (K,V) x 32 layers x 8 kv heads x 128 dims x 8192 tokens x 2 bytes = 1 GiB
    assert models.kv_cache_bytes(model(GIB)) == GIB
    assert models.kv_cache_bytes(model(GIB), context_tokens=4096) == GIB // 2
    assert models.kv_cache_bytes(model(GIB, max_context=2048)) == GIB // 4  # capped by the model's context
    assert models.kv_cache_bytes(model(10 * GIB, layers=None)) == GIB  # unknown shape: 10 % of weights


def test_fit_numbers() -> None:
    m = model(40 * GIB)  # margin 4 GiB (10 %), KV 1 GiB → needs 45 GiB
    f = models.fit(m, mem(100 * GIB))
    assert f.status == "ok" and f.need_bytes == 45 * GIB and (f.kv_bytes, f.margin_bytes) == (GIB, 4 * GIB)
    assert "needs ~45.0 GiB" in f.reason and "100.0 GiB available" in f.reason
    f = models.fit(m, mem(44 * GIB))
    assert f.status == "warn" and "exceed available 44.0 GiB" in f.reason
    assert models.fit(m, mem(39 * GIB)).status == "fail"
    assert "exceed total memory" in models.fit(m, mem(GIB, total=32 * GIB)).reason
    # macOS: Metal's recommended working set is a ceiling of its own
    f = models.fit(m, mem(100 * GIB, working_set=36 * GIB))
    assert f.status == "fail" and "iogpu.wired_limit_mb" in f.reason
    assert models.fit(m, mem(100 * GIB, working_set=int(40.5 * GIB))).status == "warn"  # weights fit, KV not
    assert models.fit(m, mem(100 * GIB, pressure="critical")).status == "warn"
    small = model(100 * MIB)  # minimum margin 1 GiB
    assert models.fit(small, mem(8 * GIB)).margin_bytes == GIB
    assert models.fit(model(0), mem(8 * GIB)).status == "warn"
