"""`mlx-console settings …` as a user runs it: contracts, exit codes, file untouched on refusal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlx_console.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "omlx_0.5.0_written.json"


@pytest.fixture
def sfile(tmp_path: Path) -> Path:
    p = tmp_path / "model_settings.json"
    p.write_bytes(FIXTURE.read_bytes())
    return p


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["settings", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_show_json_contract(sfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "--file", str(sfile), "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"path", "hash", "models", "issues"}
    assert data["path"] == str(sfile)
    assert data["models"]["tiny-llama"]["turboquant_kv_enabled"] is True
    # the real oMLX file pins the model and sets a TTL: worth a warning, not an error
    assert data["issues"] == [{"model": "tiny-llama", "key": "ttl_seconds", "level": "warning",
                               "message": "ignored while is_pinned is true"}]
    code, out, _ = run(capsys, "show", "--file", str(sfile), "tiny-llama", "--json")
    assert list(json.loads(out)["models"]) == ["tiny-llama"]


def test_show_text_and_issues(sfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(sfile.read_text())
    doc["models"]["tiny-llama"]["turboquant_kv"] = True
    doc["models"]["tiny-llama"]["top_p"] = 7
    sfile.write_text(json.dumps(doc, indent=2))
    code, out, _ = run(capsys, "show", "--file", str(sfile))
    assert code == 0 and "tiny-llama" in out and "[variant]" in out
    assert "shorthand for 'turboquant_kv_enabled'" in out and "oMLX will drop this key" in out
    code, out, _ = run(capsys, "show", "--file", str(sfile), "--json")
    issues = json.loads(out)["issues"]
    assert any(i["key"] == "top_p" and i["level"] == "error" and "<= 1" in i["message"] for i in issues)
    assert all(set(i) >= {"model", "key", "message"} for i in issues)


def test_set_prints_a_unified_diff_and_writes(sfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "set", "--file", str(sfile), "tiny-llama", "temperature=0.6", "mtp=false")
    assert code == 0, err
    assert out.startswith("--- ") and '+      "temperature": 0.6,' in out
    assert "shorthand for 'mtp_enabled'" in err
    assert json.loads(sfile.read_text())["models"]["tiny-llama"]["temperature"] == 0.6


@pytest.mark.parametrize("assignment", ["turboquant_kv_bits=5", "mtp_enabled=true dflash_enabled=true",
                                        "nonsense_key=1", "is_pinned=perhaps", "max_tokens"])
def test_set_refuses_and_leaves_the_file_byte_identical(sfile: Path, capsys: pytest.CaptureFixture[str],
                                                        assignment: str) -> None:
    before = sfile.read_bytes()
    code, out, err = run(capsys, "set", "--file", str(sfile), "tiny-llama", *assignment.split())
    assert code == 1 and out == ""
    assert err.strip()
    assert sfile.read_bytes() == before


def test_force_allows_an_unknown_key(sfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "set", "--file", str(sfile), "--force", "tiny-llama", "my_extension=3")
    assert code == 0
    assert json.loads(sfile.read_text())["models"]["tiny-llama"]["my_extension"] == 3
    assert "oMLX will drop this key" in err


def test_if_hash_and_dry_run(sfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sfile.read_bytes()
    code, out, _ = run(capsys, "show", "--file", str(sfile), "--json")
    good = json.loads(out)["hash"]
    code, out, err = run(capsys, "set", "--file", str(sfile), "--if-hash", "ab" * 32, "tiny-llama", "top_k=4")
    assert code == 1 and "--if-hash" in err and sfile.read_bytes() == before
    code, out, err = run(capsys, "set", "--file", str(sfile), "--dry-run", "tiny-llama", "top_k=4")
    assert code == 0 and '+      "top_k": 4,' in out and "dry run" in err and sfile.read_bytes() == before
    code, out, err = run(capsys, "set", "--file", str(sfile), "--if-hash", good, "--json", "tiny-llama", "top_k=4")
    assert code == 0
    data = json.loads(out)
    assert data["wrote_file"] and data["steps"][0]["key"] == "top_k" and data["steps"][0]["route"] == "file"


def test_unset_and_validate(sfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "unset", "--file", str(sfile), "tiny-llama", "ttl")
    assert code == 0 and '-      "ttl_seconds": 600,' in out
    assert "ttl_seconds" not in json.loads(sfile.read_text())["models"]["tiny-llama"]
    code, out, _ = run(capsys, "validate", "--file", str(sfile))
    assert code == 0 and "valid" in out
    doc = json.loads(sfile.read_text())
    doc["models"]["tiny-llama"].update({"mtp_enabled": True, "dflash_enabled": True, "turboquant_kv_bits": 5})
    sfile.write_text(json.dumps(doc, indent=2))
    code, out, err = run(capsys, "validate", "--file", str(sfile))
    assert code == 1
    assert "mtp_enabled and dflash_enabled" in out and "turboquant_kv_bits" in out and "2 problem" in err
    code, out, _ = run(capsys, "validate", "--file", str(sfile), "--json")
    assert code == 1 and json.loads(out)["valid"] is False


def test_bad_json_exit_1_with_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "model_settings.json"
    p.write_text('{"version": 1,\n "models": {,}}')
    code, out, err = run(capsys, "show", "--file", str(p), "--json")
    assert code == 1 and out == "" and f"{p}:2:13" in err


def test_diff_against_a_bench_record(sfile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    block = dict(json.loads(sfile.read_text())["models"]["tiny-llama"])
    record = {"schema": 1, "run_id": "r1", "model": "tiny-llama",
              "config": {"server_flags": [], "model_settings": {k: v for k, v in block.items()
                                                                 if k not in ("force_sampling",)}}}
    rec = tmp_path / "run.json"
    rec.write_text(json.dumps(record))
    code, out, _ = run(capsys, "diff", "--file", str(sfile), "--against", str(rec))
    assert code == 0 and "same settings" in out  # an absent default equals an explicit default
    record["config"]["model_settings"]["turboquant_kv_bits"] = 3.0
    record["config"]["model_settings"]["ttl_seconds"] = 60
    rec.write_text(json.dumps(record))
    code, out, _ = run(capsys, "diff", "--file", str(sfile), "--against", str(rec), "--json")
    data = json.loads(out)
    assert data["count"] == 2 and data["one_flag"] is False
    assert {d["key"] for d in data["differences"]} == {"turboquant_kv_bits", "ttl_seconds"}
    code, out, _ = run(capsys, "diff", "--file", str(sfile), "--against", str(rec))
    assert "more than one flag" in out and '-    "turboquant_kv_bits": 3.0,' in out


def test_default_path_is_the_omlx_profile_base_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "omlx-base"
    base.mkdir()
    (base / "model_settings.json").write_bytes(FIXTURE.read_bytes())
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[[backend]]\nname = "o"\nkind = "omlx"\nport = 1\nbase_path = "{base}"\n')
    code = main(["--config", str(cfg), "settings", "show", "--json"])
    out, _ = capsys.readouterr()
    assert code == 0 and json.loads(out)["path"] == str(base / "model_settings.json")


def test_keys_lists_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "keys", "--json")
    fields = json.loads(out)
    assert code == 0 and any(f["key"] == "turboquant_kv_bits" and f["choices"] == [2, 2.5, 3, 3.5, 4, 6, 8]
                             for f in fields)


def test_console_script_runs(sfile: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mlx_console", "settings", "validate", "--file", str(sfile)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_diff_against_last_bench_run(sfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlx_console.core.bench.store import bench_dir

    block = json.loads(sfile.read_text())["models"]["tiny-llama"]
    for i, ttl in enumerate((600, 30)):
        record = {"schema": 1, "run_id": f"run{i}", "ts": f"2026-11-25T10:0{i}:00Z", "model": "tiny-llama", "cells": {},
               "config": {"server_flags": None, "model_settings": {**block, "ttl_seconds": ttl}}}
        (bench_dir() / f"run{i}.json").write_text(json.dumps(record))
    code, out, _ = run(capsys, "diff", "--file", str(sfile), "--against", "last", "tiny-llama", "--json")
    data = json.loads(out)
    assert code == 0 and data["baseline"] == "last run run1" and data["one_flag"] is True
    assert data["differences"] == [{"model": "tiny-llama", "key": "ttl_seconds", "baseline": 30, "current": 600}]
    code, out, _ = run(capsys, "diff", "--file", str(sfile), "--against", "run0")
    assert code == 0 and "same settings as run run0" in out
    code, _, err = run(capsys, "diff", "--file", str(sfile), "--against", "nope")
    assert code == 1 and "no such file" in err


def test_hand_formatted_file_is_rewritten_in_omlx_layout_with_a_note(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "model_settings.json"
    p.write_text('{"version": 1, "models": {"a": {"top_k": 1}}}\n')
    code, out, err = run(capsys, "set", "--file", str(p), "a", "top_k=2")
    assert code == 0 and "not laid out the way oMLX writes it" in err
    assert p.read_text() == '{\n  "version": 1,\n  "models": {\n    "a": {\n      "top_k": 2\n    }\n  }\n}\n'


def test_unknown_model_id_gets_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "models" / "tiny-llama").mkdir(parents=True)
    (tmp_path / "models" / "tiny-llama" / "config.json").write_text("{}")
    (tmp_path / "models" / "tiny-llama" / "model.safetensors").write_bytes(b"x")
    (tmp_path / "models" / "no-weights").mkdir()
    (tmp_path / "models" / "no-weights" / "config.json").write_text("{}")
    p = tmp_path / "model_settings.json"
    code, _, err = run(capsys, "set", "--file", str(p), "tiny-lama", "top_k=2")
    assert code == 0 and "'tiny-lama' is neither in the file nor a directory" in err and "tiny-llama" in err
    code, _, err = run(capsys, "set", "--file", str(p), "tiny-llama", "top_k=2")
    assert code == 0 and "neither" not in err and "file hash now" in err
    # validate flags a model id oMLX does not know (a folder without weights is not a model to oMLX).
    p.write_text(json.dumps({"version": 1, "models": {"tiny-llama": {"top_k": 2}, "no-weights": {"top_k": 1},
                                                      "tiny-lama": {"top_k": 1}}}, indent=2) + "\n")
    code, out, err = run(capsys, "validate", "--file", str(p))
    assert code == 0, err
    assert out.count("oMLX has no model with this id") == 2 and "no-weights" in out and "tiny-lama" in out


def test_backups_and_restore(sfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = sfile.read_bytes()
    run(capsys, "set", "--file", str(sfile), "tiny-llama", "top_k=1")
    run(capsys, "set", "--file", str(sfile), "tiny-llama", "top_k=2")
    code, out, _ = run(capsys, "backups", "--file", str(sfile), "--json")
    rows = json.loads(out)["backups"]
    assert code == 0 and len(rows) == 2 and Path(rows[1]["path"]).read_bytes() == original
    code, out, err = run(capsys, "restore", "--file", str(sfile), "2")
    assert code == 0, err
    assert '-      "top_k": 2,' in out
    assert sfile.read_bytes() == original  # byte-identical: the backup was oMLX's layout
    code, _, err = run(capsys, "restore", "--file", str(sfile), "9")
    assert code == 1 and "no backup 9" in err


def test_version_awareness(sfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--file", str(sfile), "--omlx-version", "0.4.2", "--json")
    issues = json.loads(out)["issues"]
    flagged = {i["key"] for i in issues if "newer than the installed oMLX 0.4.2" in i["message"]}
    assert {"dflash_enabled", "mtp_enabled", "trust_remote_code"} <= flagged and code == 0  # flagged, not dropped
    assert "dflash_enabled" in json.loads(sfile.read_text())["models"]["tiny-llama"]
    code, _, err = run(capsys, "set", "--file", str(sfile), "tiny-llama", "dflash_block_size=16")
    assert code == 1 and "newer than the installed oMLX 0.5.0" in err
    code, _, err = run(capsys, "set", "--file", str(sfile), "--omlx-version", "0.6.4", "tiny-llama",
                       "dflash_block_size=16")
    assert code == 0, err
    code, out, _ = run(capsys, "show", "--file", str(sfile), "--json")
    assert any(i["key"] == "dflash_block_size" and "newer" in i["message"] for i in json.loads(out)["issues"])


def test_an_old_error_in_the_model_being_changed_must_be_fixed_too(sfile: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(sfile.read_text())
    doc["models"]["tiny-llama"]["top_p"] = 9
    doc["models"]["other"] = {"top_k": -1}
    sfile.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    before = sfile.read_bytes()
    code, _, err = run(capsys, "set", "--file", str(sfile), "tiny-llama", "top_k=3")
    assert code == 1 and "top_p" in err and sfile.read_bytes() == before
    code, _, err = run(capsys, "set", "--file", str(sfile), "tiny-llama", "top_k=3", "top_p=0.9")
    assert code == 0, err  # the other model's old error is not this edit's business


def test_backend_names_the_profiles_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`--backend NAME`: that oMLX profile's model_settings.json (how a [[host]]'s backend is edited over ssh)."""
    base = tmp_path / "om"
    base.mkdir()
    (base / "model_settings.json").write_text(json.dumps({"version": 1, "models": {"m": {"temperature": 0.5}}}))
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[[backend]]\nname = "lm"\nkind = "mlx-lm"\nmodel = "/m"\n\n'
                   f'[[backend]]\nname = "om"\nkind = "omlx"\nport = 8123\nbase_path = "{base}"\n')
    monkeypatch.setenv("MLX_CONSOLE_CONFIG", str(cfg))
    code, out, _ = run(capsys, "show", "--backend", "om", "--json")
    assert code == 0 and json.loads(out)["path"] == str(base / "model_settings.json")
    assert json.loads(out)["models"] == {"m": {"temperature": 0.5}}
    code, _, err = run(capsys, "show", "--backend", "lm")
    assert code == 1 and "backend 'lm' is mlx-lm: only oMLX backends have a model_settings.json" in err
