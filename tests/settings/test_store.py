"""The store: exact round trip, one-line diffs, atomic conflict-safe saves, backups, clear errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from mlx_console.core.common import atomic
from mlx_console.core.settings.errors import BadFile, BadValue, ConflictError, SettingsError
from mlx_console.core.settings.store import SettingsStore

FIXTURES = Path(__file__).parent / "fixtures"
OMLX_FILE = FIXTURES / "omlx_0.5.0_written.json"  # written by a real oMLX 0.5.0 after admin PUTs


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    p = tmp_path / "model_settings.json"
    p.write_bytes(OMLX_FILE.read_bytes())
    return p


def omlx_dump(doc: object) -> bytes:
    """What oMLX's ModelSettingsManager._save writes."""
    return json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8")


def diff_body(diff: str) -> list[str]:
    return [ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


def test_omlx_written_file_round_trips_byte_identical(settings_file: Path) -> None:
    before = settings_file.read_bytes()
    assert not before.endswith(b"\n")  # oMLX writes no trailing newline
    store = SettingsStore.load(settings_file)
    assert store.is_canonical and not store.dirty
    assert store.rendered() == before
    result = store.save()
    assert not result.wrote
    assert settings_file.read_bytes() == before
    # a set to the same value is no change either (4 and 4.0 are the same number)
    store.set("tiny-llama", "max_tokens", 64)
    store.set_text("tiny-llama", "turboquant_kv_bits", "4.0")
    assert not store.dirty


def test_non_ascii_and_unknown_keys_round_trip(tmp_path: Path) -> None:
    doc = {"version": 1, "models": {"m-ü": {"display_name": "Modèle ✓ \u2028", "zz_future": {"a": [1, 2.5]},
                                            "temperature": 0.1, "chat_template_kwargs": {"x": None}}}}
    p = tmp_path / "model_settings.json"
    p.write_bytes(omlx_dump(doc))
    store = SettingsStore.load(p)
    assert store.rendered() == p.read_bytes()
    issues = store.issues()
    assert any(i.key == "zz_future" and "oMLX will drop this key on its next save" in i.message for i in issues)
    store.set("m-ü", "top_k", 5)
    store.save()
    data = json.loads(p.read_text(encoding="utf-8"))
    assert data["models"]["m-ü"]["zz_future"] == {"a": [1, 2.5]}  # kept exactly


def test_one_changed_value_is_a_one_line_diff(settings_file: Path) -> None:
    store = SettingsStore.load(settings_file)
    store.set_text("tiny-llama", "turboquant_kv_bits", "3.5")
    body = diff_body(store.diff())
    assert body == ['-      "turboquant_kv_bits": 4,', '+      "turboquant_kv_bits": 3.5,']
    store.save()
    after = settings_file.read_bytes()
    assert after == omlx_dump(json.loads(after))  # still exactly oMLX's layout


def test_new_key_lands_where_omlx_would_write_it(settings_file: Path) -> None:
    store = SettingsStore.load(settings_file)
    store.set("tiny-llama", "temperature", 0.7)
    body = diff_body(store.diff())
    assert body == ['+      "temperature": 0.7,']
    keys = list(store.get("tiny-llama"))
    assert keys.index("temperature") == keys.index("max_tokens") + 1
    # floats are written as oMLX's PUT stores them
    store.set("tiny-llama", "top_p", 1)
    assert store.get("tiny-llama")["top_p"] == 1.0 and isinstance(store.get("tiny-llama")["top_p"], float)


def test_trailing_newline_convention_is_kept(tmp_path: Path) -> None:
    p = tmp_path / "model_settings.json"
    p.write_bytes(omlx_dump({"version": 1, "models": {"a": {"top_k": 1}}}) + b"\n")
    store = SettingsStore.load(p)
    store.set("a", "top_k", 2)
    store.save()
    assert p.read_bytes().endswith(b"}\n") and p.read_bytes().count(b"\n}\n") == 1


def test_missing_file_is_created_like_omlx(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "model_settings.json"
    store = SettingsStore.load(p)
    assert not store.exists and store.base_hash == "absent"
    assert not store.save().wrote and not p.exists()  # nothing to write
    store.set("m", "is_pinned", True)
    result = store.save()
    assert result.wrote and result.backup is None
    assert p.read_bytes() == omlx_dump({"version": 1, "models": {"m": {"is_pinned": True}}})


def test_bad_json_names_line_and_column_and_touches_nothing(tmp_path: Path) -> None:
    p = tmp_path / "model_settings.json"
    text = '{\n  "version": 1,\n  "models": {\n    "a": {"top_k": 1,}\n  }\n}'
    p.write_text(text)
    mtime = p.stat().st_mtime_ns
    with pytest.raises(BadFile) as e:
        SettingsStore.load(p)
    assert e.value.line == 4 and e.value.column == 22
    assert f"{p}:4:22" in str(e.value)
    assert p.read_text() == text and p.stat().st_mtime_ns == mtime


def test_bad_utf8_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "model_settings.json"
    p.write_bytes(b'{\n  "models": {"\xff": {}}}')
    with pytest.raises(BadFile, match="not valid UTF-8") as e:
        SettingsStore.load(p)
    assert e.value.line == 2


def test_errors_name_model_key_value_and_what_is_allowed(settings_file: Path) -> None:
    before = settings_file.read_bytes()
    store = SettingsStore.load(settings_file)
    cases = [("turboquant_kv_bits", "5", "one of 2, 2.5, 3, 3.5, 4, 6, 8"),
             ("is_pinned", "maybe", "true or false"),
             ("max_tokens", "12.5", "an integer > 0"),
             ("chat_template_kwargs", "{bad", "not valid JSON"),
             ("force_sampling", "null", "null is not allowed"),
             ("dflash_verify_mode", "fast", '"adaptive"')]
    for key, text, allowed in cases:
        with pytest.raises(BadValue) as e:
            store.set_text("tiny-llama", key, text)
        msg = str(e.value)
        assert "'tiny-llama'" in msg and key in msg and allowed in msg, msg
    with pytest.raises(BadValue, match="unknown key 'temprature' \\(did you mean 'temperature'\\?\\)"):
        store.set_text("tiny-llama", "temprature", "1")
    with pytest.raises(BadValue, match="newer than the installed oMLX 0.5.0"):
        store.set_text("tiny-llama", "dflash_block_size", "16")
    assert not store.dirty
    store.set_text("tiny-llama", "my_key", "x", force=True)
    assert store.get("tiny-llama")["my_key"] == "x"
    assert settings_file.read_bytes() == before


def test_constraint_violation_refuses_save(settings_file: Path) -> None:
    before = settings_file.read_bytes()
    store = SettingsStore.load(settings_file)
    store.set_text("tiny-llama", "mtp_enabled", "true")
    store.set_text("tiny-llama", "dflash_enabled", "true")
    with pytest.raises(SettingsError, match="mtp_enabled and dflash_enabled cannot both be true"):
        store.save()
    store2 = SettingsStore.load(settings_file)
    store2.set_text("tiny-llama", "vlm_mtp_enabled", "true")
    store2.set_text("tiny-llama", "vlm_mtp_draft_model", "drafter")
    with pytest.raises(SettingsError, match="vlm_mtp_enabled and turboquant_kv_enabled"):
        store2.save()
    assert settings_file.read_bytes() == before


def test_aliases_set_the_real_key_with_a_hint(settings_file: Path) -> None:
    store = SettingsStore.load(settings_file)
    assert store.set_text("tiny-llama", "thinking_budget", "2048") == "thinking_budget_tokens"
    assert store.set_text("tiny-llama", "pinned", "false") == "is_pinned"
    assert any("thinking_budget_enabled" in h for h in store.hints)
    assert store.get("tiny-llama")["thinking_budget_tokens"] == 2048


def test_is_default_is_exclusive_like_omlx(tmp_path: Path) -> None:
    p = tmp_path / "model_settings.json"
    p.write_bytes(omlx_dump({"version": 1, "models": {"a": {"is_default": True}, "b": {"is_default": False}}}))
    store = SettingsStore.load(p)
    store.set("b", "is_default", True)
    assert store.get("a")["is_default"] is False
    assert any("cleared is_default of 'a'" in h for h in store.hints)


def test_external_change_is_never_overwritten(settings_file: Path) -> None:
    store = SettingsStore.load(settings_file)
    store.set("tiny-llama", "top_k", 20)
    theirs = settings_file.read_bytes().replace(b'"max_tokens": 64', b'"max_tokens": 128')
    settings_file.write_bytes(theirs)
    with pytest.raises(ConflictError) as e:
        store.save()
    c = e.value.conflict
    assert c.theirs == theirs and c.base == OMLX_FILE.read_bytes() and b'"top_k": 20' in c.ours
    assert c.changed_keys == [("tiny-llama", "top_k")]
    assert settings_file.read_bytes() == theirs
    merged, clashes = store.rebased()
    assert not clashes
    merged.save()
    final = json.loads(settings_file.read_text())["models"]["tiny-llama"]
    assert final["max_tokens"] == 128 and final["top_k"] == 20


def test_write_landing_during_save_is_detected(settings_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that lands after the first check but before the rename: the second check catches it."""
    store = SettingsStore.load(settings_file)
    store.set("tiny-llama", "top_k", 3)
    real = atomic.write_atomic
    theirs = b'{"version": 1, "models": {}}'

    def racing(path, data, mode=None, before_replace=None, expected=atomic.ANY):  # noqa: ANN001, ANN202
        if before_replace is None:  # the backup write
            return real(path, data, mode)

        def hook() -> None:
            path.write_bytes(theirs)
            before_replace()
        return real(path, data, mode, hook, expected)

    monkeypatch.setattr(atomic, "write_atomic", racing)
    with pytest.raises(ConflictError):
        store.save()
    assert settings_file.read_bytes() == theirs
    assert not [p for p in settings_file.parent.iterdir() if p.name.endswith("mlx-console-tmp")]


def test_if_hash(settings_file: Path) -> None:
    store = SettingsStore.load(settings_file)
    store.set("tiny-llama", "top_k", 3)
    with pytest.raises(ConflictError, match="--if-hash"):
        store.save(if_hash="0" * 64)
    assert settings_file.read_bytes() == OMLX_FILE.read_bytes()
    result = store.save(if_hash=store.base_hash[:12])
    assert result.wrote and result.hash == atomic.content_hash(settings_file.read_bytes())


def test_mode_kept_and_backups_rotate(settings_file: Path) -> None:
    os.chmod(settings_file, 0o640)
    store = SettingsStore.load(settings_file)
    versions = [settings_file.read_bytes()]
    for i in range(1, 9):
        store.set("tiny-llama", "top_k", i)
        result = store.save()
        assert result.backup is not None and result.backup.read_bytes() == versions[-1]
        versions.append(settings_file.read_bytes())
    assert stat.S_IMODE(settings_file.stat().st_mode) == 0o640
    backups = atomic.list_backups(settings_file)
    assert len(backups) == atomic.BACKUP_GENERATIONS
    assert [b.read_bytes() for b in backups] == versions[-2:-7:-1]


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    p = tmp_path / "model_settings.json"
    p.write_text('{"version": 1, "models": {"a": {"top_k": 1, "top_k": 2}}}')
    store = SettingsStore.load(p)
    assert store.get("a")["top_k"] == 2
    assert any("duplicate key 'top_k'" in i.message for i in store.issues())


def test_structural_problems_are_errors_not_crashes(tmp_path: Path) -> None:
    p = tmp_path / "model_settings.json"
    for text, needle in [("[]", "JSON object"), ('{"models": []}', '"models" must be'),
                         ('{"models": {"a": 3}}', "drops this model's block")]:
        p.write_text(text)
        store = SettingsStore.load(p)
        assert any(needle in i.message for i in store.issues()), text
        with pytest.raises(SettingsError):
            store.set("a", "top_k", 1)


def test_write_landing_after_the_last_check_is_swapped_back(settings_file: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The narrowest race: a replace lands between our last check and our rename. The exchange-rename shows
    what it displaced; it was not what we loaded, so theirs is put back and nothing is lost."""
    if atomic._exchange_impl is None:
        pytest.skip("no atomic exchange-rename on this platform")
    store = SettingsStore.load(settings_file)
    store.set("tiny-llama", "top_k", 3)
    theirs = b'{"version": 1, "models": {"x": {}}}'
    real = atomic._exchange
    calls: list[int] = []

    def late_writer(a: Path, b: Path) -> bool:
        if not calls:
            atomic.write_atomic(b, theirs)  # an oMLX save, landing at the worst moment
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(atomic, "_exchange", late_writer)
    with pytest.raises(ConflictError) as e:
        store.save()
    assert e.value.conflict.theirs == theirs
    assert settings_file.read_bytes() == theirs and len(calls) == 2  # swapped, then swapped back
    assert not [p for p in settings_file.parent.iterdir() if p.name.endswith("mlx-console-tmp")]


def test_file_created_at_the_last_moment_is_not_overwritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "model_settings.json"
    store = SettingsStore.load(p)  # absent
    store.set("m", "top_k", 1)
    theirs = b'{"version": 1, "models": {}}'
    real_link = os.link

    def late_create(src, dst):  # noqa: ANN001, ANN202
        Path(dst).write_bytes(theirs)
        return real_link(src, dst)

    monkeypatch.setattr(atomic.os, "link", late_create)
    with pytest.raises(ConflictError):
        store.save()
    assert p.read_bytes() == theirs


def test_whole_file_diff_hunks_name_their_models() -> None:
    import json

    from mlx_console.core.settings.textdiff import unified

    old = {"version": 1, "models": {"a": {"x": 1, "y": 2, "z": 3, "w": 4, "v": 5},
                                    "bb": {"x": 1, "y": 2, "z": 3, "w": 4}, "c": {"x": 1}}}
    new = json.loads(json.dumps(old))
    new["models"]["a"]["x"], new["models"]["bb"]["w"], new["models"]["c"]["q"] = 0, 9, 1
    heads = [ln for ln in unified(json.dumps(old, indent=2).encode(), json.dumps(new, indent=2).encode(),
                                  "f").splitlines() if ln.startswith("@@")]
    assert heads == ['@@ -2,7 +2,7 @@ "a"', '@@ -12,10 +12,11 @@ "bb", "c"']
