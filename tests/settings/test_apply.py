"""Applying to a running oMLX (the stand-in of oMLX 0.5.0): admin PUT, file-only keys, reload, drift, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlx_console.cli import main
from mlx_console.core import config as config_mod
from mlx_console.core.backends.omlx_admin import AdminError, OmlxAdmin
from mlx_console.core.settings.apply import apply, find_target
from mlx_console.core.settings.errors import SettingsError
from mlx_console.core.settings.store import SettingsStore

pytestmark = pytest.mark.slow


def _store(omlx) -> SettingsStore:  # noqa: ANN001
    return SettingsStore.load(omlx.settings_file)


def test_target_found_from_profile(omlx) -> None:  # noqa: ANN001
    cfg = config_mod.load(omlx.config_path)
    t = find_target(omlx.settings_file, cfg)
    assert t.running and t.profile == "omlx" and t.version == "0.5.0"


def test_admin_client_login_and_errors(omlx) -> None:  # noqa: ANN001
    with OmlxAdmin(omlx.url, "wrong") as bad, pytest.raises(AdminError) as e:
        bad.models()
    assert e.value.status == 401 and "Invalid API key" in str(e.value)
    with OmlxAdmin(omlx.url, omlx.api_key) as admin:
        assert [m["id"] for m in admin.models()] == ["tiny-llama"]
        with pytest.raises(AdminError) as e:
            admin.put_settings("nope", {"temperature": 1.0})
        assert e.value.status == 404


def test_live_key_goes_through_the_admin_put(omlx) -> None:  # noqa: ANN001
    cfg = config_mod.load(omlx.config_path)
    store = _store(omlx)
    store.set_text("tiny-llama", "temperature", "0.6")
    result = apply(store, cfg)
    assert [s.route for s in result.steps] == ["put"]
    assert result.replies["tiny-llama"]["success"] is True
    assert not result.pending_reload and not result.reloaded
    assert omlx.server_settings()["temperature"] == 0.6
    on_disk = json.loads(omlx.settings_file.read_text())["models"]["tiny-llama"]
    assert on_disk["temperature"] == 0.6  # the server rewrote the file from memory
    assert result.hash and '"temperature": 0.6' in result.diff


def test_unload_key_reports_what_the_server_did(omlx) -> None:  # noqa: ANN001
    cfg = config_mod.load(omlx.config_path)
    omlx.load()
    store = _store(omlx)
    store.set("tiny-llama", "dflash_max_ctx", 4096)
    result = apply(store, cfg)
    reply = result.replies["tiny-llama"]
    assert reply["requires_reload"] is True and reply["auto_unloaded"] is True and reply["auto_reloaded"] is False
    assert any("auto_unloaded" in m for m in result.messages)
    assert result.to_json()["server"]["tiny-llama"]["auto_unloaded"] is True


def test_file_only_key_is_written_and_reported_pending(omlx) -> None:  # noqa: ANN001
    cfg = config_mod.load(omlx.config_path)
    store = _store(omlx)
    store.set("tiny-llama", "temperature", 0.5)
    store.set("tiny-llama", "preserve_thinking", True)  # the 0.5.0 PUT ignores this key
    result = apply(store, cfg)
    routes = {s.change.key: s.route for s in result.steps}
    assert routes == {"temperature": "put", "preserve_thinking": "file"}
    assert result.pending_reload and any("POST /admin/api/reload" in m for m in result.messages)
    on_disk = json.loads(omlx.settings_file.read_text())["models"]["tiny-llama"]
    assert on_disk["preserve_thinking"] is True and on_disk["temperature"] == 0.5
    assert omlx.server_settings().get("preserve_thinking") is None  # not read yet: said so, not silent


def test_file_only_key_with_reload_reaches_the_server(omlx) -> None:  # noqa: ANN001
    cfg = config_mod.load(omlx.config_path)
    store = _store(omlx)
    store.set("tiny-llama", "display_name", "Tiny ✓")
    result = apply(store, cfg, reload=True)
    assert result.reloaded and not result.pending_reload
    assert omlx.server_settings()["display_name"] == "Tiny ✓"


def test_unreloaded_external_edit_is_not_silently_lost(omlx) -> None:  # noqa: ANN001
    cfg = config_mod.load(omlx.config_path)
    first = _store(omlx)
    first.set("tiny-llama", "top_k", 7)
    apply(first, cfg)
    # someone edits the file by hand and never reloads
    hand = _store(omlx)
    hand.set("tiny-llama", "max_tokens", 99)
    hand.save()
    store = _store(omlx)
    store.set("tiny-llama", "temperature", 0.3)
    before = omlx.settings_file.read_bytes()
    with pytest.raises(SettingsError, match="max_tokens.*--reload"):
        apply(store, cfg)
    assert omlx.settings_file.read_bytes() == before
    result = apply(_store_with(omlx, temperature=0.3), cfg, reload=True)
    assert result.reloaded
    server = omlx.server_settings()
    assert server["max_tokens"] == 99 and server["temperature"] == 0.3 and server["top_k"] == 7


def _store_with(omlx, **values) -> SettingsStore:  # noqa: ANN001, ANN003
    store = _store(omlx)
    for k, v in values.items():
        store.set("tiny-llama", k, v)
    return store


def test_server_refusal_is_reported_and_file_left_as_server_wrote_it(omlx) -> None:  # noqa: ANN001
    cfg = config_mod.load(omlx.config_path)
    store = _store(omlx)
    store.set("tiny-llama", "mtp_enabled", True)  # valid in the file, but the model has no MTP heads
    before = omlx.settings_file.read_bytes() if omlx.settings_file.exists() else None
    from mlx_console.core.common import atomic

    backups = atomic.list_backups(omlx.settings_file)
    with pytest.raises(SettingsError, match="not MTP-compatible"):
        apply(store, cfg)
    after = omlx.settings_file.read_bytes() if omlx.settings_file.exists() else None
    assert after == before
    assert atomic.list_backups(omlx.settings_file) == backups  # a refused change takes no backup slot


def test_not_running_backend_writes_the_file(omlx, tmp_path: Path) -> None:  # noqa: ANN001
    omlx.stop()
    cfg = config_mod.load(omlx.config_path)
    store = _store(omlx)
    store.set("tiny-llama", "temperature", 0.2)
    result = apply(store, cfg)
    assert not result.target.running and result.wrote_file
    assert any("not running" in m for m in result.messages)
    assert json.loads(omlx.settings_file.read_text())["models"]["tiny-llama"]["temperature"] == 0.2


def test_cli_set_against_running_server(omlx, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    code = main(["--config", str(omlx.config_path), "settings", "set", "--json", "tiny-llama", "ttl=120",
                 "turboquant_kv=true", "turboquant_kv_bits=3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert {s["key"]: s["route"] for s in data["steps"]} == {
        "ttl_seconds": "put", "turboquant_kv_enabled": "put", "turboquant_kv_bits": "put"}
    assert data["backend"]["running"] is True and data["pending_reload"] is False
    server = omlx.server_settings()
    assert server["ttl_seconds"] == 120 and server["turboquant_kv_enabled"] is True
    assert server["turboquant_kv_bits"] == 3.0
    # refusal: invalid value → exit 1, nothing sent, file identical
    before = omlx.settings_file.read_bytes()
    code = main(["--config", str(omlx.config_path), "settings", "set", "tiny-llama", "turboquant_kv_bits=5"])
    assert code == 1 and omlx.settings_file.read_bytes() == before
    # unset of a non-nullable key resets it on the server too (the PUT ignores null for is_pinned)
    main(["--config", str(omlx.config_path), "settings", "set", "tiny-llama", "pinned=true"])
    assert omlx.server_settings()["is_pinned"] is True
    code = main(["--config", str(omlx.config_path), "settings", "unset", "tiny-llama", "is_pinned"])
    capsys.readouterr()
    assert code == 0 and omlx.server_settings()["is_pinned"] is False


def test_admin_422_detail_is_readable(omlx) -> None:  # noqa: ANN001
    with OmlxAdmin(omlx.url, omlx.api_key) as admin, pytest.raises(AdminError) as e:
        admin.put_settings("tiny-llama", {"is_pinned": "maybe"})
    assert e.value.status == 422 and e.value.detail.startswith("is_pinned: Input should be a valid boolean")


def test_stale_file_with_reload_routes_everything_through_the_file(omlx) -> None:  # noqa: ANN001
    cfg = config_mod.load(omlx.config_path)
    apply(_store_with(omlx, top_k=3), cfg)
    hand = _store(omlx)
    hand.set("tiny-llama", "min_p", 0.05)
    hand.save()
    result = apply(_store_with(omlx, temperature=0.4), cfg, reload=True)
    assert [s.route for s in result.steps] == ["file"] and result.reloaded and not result.replies
    server = omlx.server_settings()
    assert server["min_p"] == 0.05 and server["temperature"] == 0.4


def test_apply_values_and_exact_restore(omlx) -> None:  # noqa: ANN001
    from mlx_console.core.settings.apply import apply_values

    cfg = config_mod.load(omlx.config_path)
    apply_values(cfg, "tiny-llama", {"temperature": 0.9, "top_k": 4})
    baseline = dict(json.loads(omlx.settings_file.read_text())["models"]["tiny-llama"])
    result = apply_values(cfg, "tiny-llama", {"turboquant_kv_enabled": True, "top_k": None})
    assert {s.change.key for s in result.steps} == {"turboquant_kv_enabled", "top_k"}
    assert omlx.server_settings()["top_k"] is None
    apply_values(cfg, "tiny-llama", baseline, exact=True)
    server = omlx.server_settings()
    assert server["top_k"] == 4 and server["turboquant_kv_enabled"] is False and server["temperature"] == 0.9


def test_unknown_keys_survive_the_servers_save(omlx) -> None:  # noqa: ANN001
    cfg = config_mod.load(omlx.config_path)
    store = _store(omlx)
    store.set("tiny-llama", "my_note", "keep me", force=True)
    result = apply(store, cfg)
    assert not result.pending_reload  # oMLX ignores an unknown key: nothing to reload
    store = _store(omlx)
    assert store.get("tiny-llama")["my_note"] == "keep me"
    store.set("tiny-llama", "temperature", 0.8)  # a PUT: oMLX rewrites the file from memory without my_note
    result = apply(store, cfg)
    assert any("dropped my_note" in m for m in result.messages)
    block = json.loads(omlx.settings_file.read_text())["models"]["tiny-llama"]
    assert block["my_note"] == "keep me" and block["temperature"] == 0.8


def test_explicit_url_and_offline(omlx, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    f = str(omlx.settings_file)
    code = main(["settings", "set", "--file", f, "--url", omlx.url, "--api-key", omlx.api_key, "tiny-llama",
                 "top_k=11"])
    _, err = capsys.readouterr()
    assert code == 0 and "via admin PUT" in err and omlx.server_settings()["top_k"] == 11
    code = main(["settings", "set", "--file", f, "--offline", "tiny-llama", "top_k=12"])
    _, err = capsys.readouterr()
    assert code == 0 and "offline" in err and "overwrites the file" in err
    assert omlx.server_settings()["top_k"] == 11  # said so: the server was not told
    # and the next live apply notices the difference instead of letting oMLX overwrite it
    code = main(["settings", "set", "--file", f, "--url", omlx.url, "--api-key", omlx.api_key, "tiny-llama",
                 "temperature=0.1"])
    _, err = capsys.readouterr()
    assert code == 1 and "top_k" in err and "--reload" in err
