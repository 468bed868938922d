"""model_settings.json semantics of the stand-in beyond the recorded run: MTP/DFlash models, aliases, defaults,
pinned reloads, and what a start does with a broken file."""

from __future__ import annotations

import json
import threading
import time

import pytest
from omlx_harness import TINY_LLAMA_CONFIG, make_model
from omlx_harness import StandinFactory as StartStandin

pytestmark = pytest.mark.slow

QWEN_MTP = {"model_type": "qwen3_5", "mtp_num_hidden_layers": 1, "max_position_embeddings": 8192}


def put(a, model: str, **body: object):
    return a.put(f"/admin/api/models/{model}/settings", json=body)


def test_mtp_and_dflash_on_a_compatible_model(start_standin: StartStandin, tmp_path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "qwen-mtp", QWEN_MTP, keys=["model.embed.weight", "mtp.layers.0.weight"])
    make_model(base / "models", "qwen-stripped", QWEN_MTP)  # config has heads, weights do not
    s = start_standin(base=base)
    a = s.admin()
    models = {m["id"]: m for m in a.get("/admin/api/models").json()["models"]}
    assert models["qwen-mtp"]["mtp_compatible"] and models["qwen-mtp"]["dflash_compatible"]
    assert not models["qwen-stripped"]["mtp_compatible"]
    assert put(a, "qwen-mtp", mtp_enabled=True).status_code == 200
    r = put(a, "qwen-stripped", mtp_enabled=True)
    assert r.status_code == 400 and "missing mtp.* tensors" in r.json()["detail"]
    before = (base / "model_settings.json").read_text()
    # Turning DFlash on next to MTP slips past the PUT's checks and fails in ModelSettings: an unhandled 500.
    r = put(a, "qwen-mtp", dflash_enabled=True)
    assert (r.status_code, r.json()) == (500, {"detail": "Internal server error"})
    assert (base / "model_settings.json").read_text() == before
    assert ("PUT /admin/api/models/qwen-mtp/settings → 500 (unhandled): mtp_enabled and dflash_enabled cannot both "
            "be True") in s.log_text()
    # The PUT that names both gets the clear 400.
    r = put(a, "qwen-mtp", mtp_enabled=True, dflash_enabled=True)
    assert r.json()["detail"] == "MTP and DFlash cannot both be enabled; choose one speculative-decoding path."


def test_alias_rules_and_exclusive_default(start_standin: StartStandin, tmp_path) -> None:
    base = tmp_path / "b"
    for name in ("alpha", "beta"):
        make_model(base / "models", name)
    s = start_standin(base=base)
    a = s.admin()
    assert put(a, "alpha", model_alias="fast").status_code == 200
    r = put(a, "beta", model_alias="fast")
    assert (r.status_code, r.json()["detail"]) == (400, "Alias 'fast' is already used by model 'alpha'")
    r = put(a, "beta", model_alias="alpha")
    assert r.json()["detail"] == "Alias 'alpha' conflicts with model directory name 'alpha'"
    assert put(a, "alpha", is_default=True).status_code == 200
    assert put(a, "beta", is_default=True).status_code == 200
    saved = json.loads((base / "model_settings.json").read_text())["models"]
    assert (saved["alpha"]["is_default"], saved["beta"]["is_default"]) == (False, True)
    assert "Cleared is_default from model 'alpha' (new default: 'beta')" in s.log_text()
    assert a.get("/health").json()["default_model"] == "beta"


def test_unload_key_on_pinned_model_reloads_it(start_standin: StartStandin) -> None:
    s = start_standin()
    a = s.admin()
    put(a, "tiny-llama", is_pinned=True)
    a.post("/v1/models/tiny-llama/load")
    r = put(a, "tiny-llama", trust_remote_code=True).json()
    assert (r["requires_reload"], r["auto_unloaded"], r["auto_reloaded"]) == (True, True, True)
    assert "Auto-reloaded pinned model tiny-llama with new settings." in s.log_text()


def test_variant_change_while_busy_is_409(start_standin: StartStandin) -> None:
    s = start_standin("--standin-tokens-per-second", "10")
    a = s.admin()
    body = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}
    a.post("/v1/chat/completions", json={**body, "max_tokens": 1})
    t = threading.Thread(target=lambda: s.client().post("/v1/chat/completions", json=body))
    t.start()
    time.sleep(0.3)
    put(a, "tiny-llama", turboquant_kv_enabled=True, turboquant_kv_bits=3.5)
    r = a.post("/v1/chat/completions", json={**body, "max_tokens": 1})
    assert r.status_code == 409 and "is busy; cannot reload runtime settings variant" in r.json()["error"]["message"]
    t.join()
    assert a.post("/v1/chat/completions", json={**body, "max_tokens": 1}).status_code == 200
    assert "Runtime settings variant changed for tiny-llama; unloading before reload." in s.log_text()


def test_start_with_broken_blocks_and_unknown_keys(start_standin: StartStandin, tmp_path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "tiny-llama")
    make_model(base / "models", "other", TINY_LLAMA_CONFIG)
    (base / "model_settings.json").write_text(json.dumps({"version": 1, "models": {
        "tiny-llama": {"temperature": 0.3, "tool_parser": "llama3"},
        "other": {"vlm_mtp_enabled": True, "turboquant_kv_enabled": True}}}))
    s = start_standin(base=base)
    log = s.log_text()
    assert ("Failed to load settings for model 'other': vlm_mtp_enabled and turboquant_kv_enabled cannot both be "
            "True; choose one speculative path per model") in log
    assert "Loaded settings for 1 models" in log
    a = s.admin()
    put(a, "tiny-llama", top_p=0.9)
    saved = json.loads((base / "model_settings.json").read_text())["models"]
    assert list(saved) == ["tiny-llama"]  # the dropped block is gone for good
    assert "tool_parser" not in saved["tiny-llama"] and saved["tiny-llama"]["temperature"] == 0.3


def test_start_with_bad_json_then_save_replaces_it(start_standin: StartStandin, tmp_path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "tiny-llama")
    (base / "model_settings.json").write_text('{"version": 1, "models": {')
    s = start_standin(base=base)
    assert "omlx.model_settings - ERROR - [-] - Invalid JSON in settings file: Expecting" in s.log_text()
    put(s.admin(), "tiny-llama", max_tokens=128)
    assert json.loads((base / "model_settings.json").read_text())["models"]["tiny-llama"]["max_tokens"] == 128


def test_dflash_ssd_cache_needs_the_paged_ssd_cache(start_standin: StartStandin, tmp_path) -> None:
    base = tmp_path / "b"
    make_model(base / "models", "qwen", {"model_type": "qwen3"})
    s = start_standin("--no-cache", base=base)
    r = put(s.admin(), "qwen", dflash_ssd_cache=True)
    assert r.status_code == 400 and "requires oMLX paged SSD cache to be enabled" in r.json()["detail"]
