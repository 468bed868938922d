"""The advisor on real model folders (the demo-model builds and edited copies) and real config files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlx_console.core import advisor
from mlx_console.core import config as config_mod

GB = 10**9


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlx_console", *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def edited(src: Path, dest: Path, **changes: object) -> Path:
    shutil.copytree(src, dest)
    cfg = json.loads((dest / "config.json").read_text())
    cfg.update(changes)
    (dest / "config.json").write_text(json.dumps(cfg))
    return dest


def write_config(tmp_path: Path, text: str) -> config_mod.Config:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return config_mod.load(path)


def ids(advice: advisor.Advice) -> dict[str, str]:
    return {w.id: w.severity for w in advice.warnings}


def test_json_contract_and_a_clean_model(tiny_model: Path) -> None:
    r = cli("advise", str(tiny_model), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"model": str(tiny_model), "arch": "llama", "warnings": []}
    r = cli("advise")
    assert r.returncode == 1 and "advise needs MODEL or --backend NAME" in r.stderr


def test_chunked_attention_with_batching_per_backend(tiny_llama4_model: Path, tmp_path: Path) -> None:
    base = tmp_path / "omlx"
    shutil.copytree(tiny_llama4_model, base / "models" / "l4")
    cfg = write_config(tmp_path, f'''
[[backend]]
name = "o"
kind = "omlx"
base_path = "{base}"
model = "l4"

[[backend]]
name = "o1"
kind = "omlx"
base_path = "{base}"
model = "l4"
args = ["--max-concurrent-requests", "1"]

[[backend]]
name = "m"
kind = "mlx-lm"
model = "{tiny_llama4_model}"
''')
    a = advisor.advise_profile(cfg, "o", memory_bytes=64 * GB)
    assert a.arch == "llama4" and ids(a) == {"chunked-attention-batching": "error"}
    assert "--max-concurrent-requests 1" in a.warnings[0].fix and "concurrency 8" in a.warnings[0].message
    assert ids(advisor.advise_profile(cfg, "o1", memory_bytes=64 * GB)) == {}
    assert ids(advisor.advise_profile(cfg, "m", memory_bytes=64 * GB)) == {"chunked-attention-batching": "warning"}
    r = cli("--config", str(cfg.path), "advise", "--backend", "o", "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and set(doc) == {"model", "arch", "warnings"} and doc["model"] == "l4"
    assert set(doc["warnings"][0]) == {"id", "severity", "message", "fix"}
    r = cli("--config", str(cfg.path), "advise", "nope", "--backend", "o")
    assert r.returncode == 1 and "not in oMLX's model directories" in r.stderr


def test_sliding_window_quantization_and_memory(tiny_model: Path, tmp_path: Path) -> None:
    gemma = edited(tiny_model, tmp_path / "gemma", model_type="gemma3_text", sliding_window=512,
                   layer_types=["sliding_attention", "full_attention"])
    cfg = write_config(tmp_path, f'[[backend]]\nname = "m"\nkind = "mlx-lm"\nmodel = "{gemma}"\n')
    assert ids(advisor.advise_profile(cfg, "m", memory_bytes=64 * GB)) == {"sliding-window-batching": "warning"}
    odd = edited(tiny_model, tmp_path / "odd", quantization={"bits": 7, "group_size": 64})
    assert ids(advisor.advise_model(None, str(odd), memory_bytes=64 * GB)) == {"quant-bits-unsupported": "error"}
    new = edited(tiny_model, tmp_path / "new", quantization={"bits": 4, "group_size": 32, "mode": "fp3"})
    assert ids(advisor.advise_model(None, str(new), memory_bytes=64 * GB)) == {"quant-mode-unknown": "warning"}
    # 32 decode streams × 4096 tokens × 2 layers × 2 KV heads × 16 dims × 2 (K, V) × 2 bytes = 33.5 MB of KV.
    a = advisor.advise_profile(cfg := write_config(tmp_path, f'[[backend]]\nname = "m"\nkind = "mlx-lm"\n'
                                                            f'model = "{tiny_model}"\n'), "m", memory_bytes=30 * 10**6)
    assert ids(a) == {"kv-memory": "warning"} and "4096 tokens x 32 streams" in a.warnings[0].message
    assert ids(advisor.advise_profile(cfg, "m", memory_bytes=GB)) == {}


def test_omlx_model_settings_mtp_drafts_and_kv_bits(tiny_model: Path, tmp_path: Path) -> None:
    base = tmp_path / "omlx"
    shutil.copytree(tiny_model, base / "models" / "tiny")
    edited(tiny_model, base / "models" / "draft-other-vocab", vocab_size=1024)
    shutil.copytree(tiny_model, base / "models" / "draft-same")
    cfg = write_config(tmp_path, f'[[backend]]\nname = "o"\nkind = "omlx"\nbase_path = "{base}"\nmodel = "tiny"\n'
                                 'args = ["--max-concurrent-requests", "1"]\n')

    def with_settings(**s: object) -> dict[str, str]:
        (base / "model_settings.json").write_text(json.dumps({"version": 1, "models": {"tiny": s}}))
        return ids(advisor.advise_profile(cfg, "o", memory_bytes=64 * GB))

    assert with_settings() == {}
    assert with_settings(mtp_enabled=True) == {"mtp-without-heads": "error"}
    assert with_settings(dflash_enabled=True, dflash_draft_model="missing") == {"draft-missing": "error"}
    assert with_settings(specprefill_enabled=True, specprefill_draft_model="draft-other-vocab") == {
        "draft-vocab-differs": "error"}
    assert with_settings(specprefill_enabled=True, specprefill_draft_model="draft-same") == {}
    assert with_settings(turboquant_kv_enabled=True, turboquant_kv_bits=2.5) == {"low-kv-bits": "warning"}
    assert with_settings(turboquant_kv_enabled=True, turboquant_kv_bits=4) == {}


def test_a_broken_rules_file_names_the_rule(tmp_path: Path) -> None:
    from mlx_console.core.errors import ConsoleError

    bad = tmp_path / "rules.toml"
    bad.write_text('[[rule]]\nid = "x"\nseverity = "loud"\nwhen = {}\nmessage = "m"\nfix = "f"\n')
    with pytest.raises(ConsoleError, match=r"rules.toml: \[\[rule\]\] #1 \(x\): severity 'loud' is not one of"):
        advisor.load_rules(bad)
