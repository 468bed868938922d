"""Property tests: any text for any key, any JSON document, any bytes — clear errors, never a crash."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlx_console.core.settings.errors import BadFile, BadValue, SettingsError
from mlx_console.core.settings.schema import KEYS
from mlx_console.core.settings.store import SettingsStore

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
key_names = st.sampled_from(sorted(KEYS)) | st.sampled_from(["mtp", "ttl", "turboquant_kv", "pinned"]) | st.text(
    max_size=20)
texts = st.text(max_size=30) | st.sampled_from(["true", "false", "null", "4", "3.5", "-1", "0", "8GiB", "1e400",
                                                  "NaN", '"adaptive"', "{}", "[]", '["a"]', "2.5", " 7 "])
slow = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _file(data: bytes) -> Path:
    d = Path(tempfile.mkdtemp(dir=os.environ["MLX_CONSOLE_STATE_DIR"]))
    p = d / "model_settings.json"
    p.write_bytes(data)
    return p


@slow
@given(key=key_names, text=texts, force=st.booleans())
def test_any_text_for_any_key_is_a_value_or_a_clear_error(key: str, text: str, force: bool) -> None:
    store = SettingsStore.load(_file(b'{"version": 1, "models": {"m": {}}}'))
    try:
        real = store.set_text("m", key, text, force=force)
    except BadValue as e:
        assert "'m'" in str(e)
        return
    block = store.get("m")
    spec = KEYS.get(real)
    if real in block and spec is not None:
        assert spec.check(block[real]) is None
    try:
        store.save()
    except SettingsError as e:  # a cross-key rule; the message names the model
        assert "'m'" in str(e)


@slow
@given(doc=json_values)
def test_any_json_document_loads_checks_and_saves(doc: object) -> None:
    raw = json.dumps(doc, indent=2, ensure_ascii=False).encode()
    p = _file(raw)
    store = SettingsStore.load(p)
    store.issues()
    assert store.rendered() == raw  # byte-identical round trip of anything oMLX-formatted
    try:
        store.set("m", "max_tokens", 5)
    except SettingsError:
        assert p.read_bytes() == raw
        return
    try:
        store.save()
    except SettingsError:
        assert p.read_bytes() == raw


@slow
@given(models=st.dictionaries(st.text(max_size=8), st.dictionaries(key_names, json_values, max_size=6), max_size=3))
def test_any_models_block_gets_issues_not_exceptions(models: dict) -> None:
    p = _file(json.dumps({"version": 1, "models": models}).encode())
    store = SettingsStore.load(p)
    for issue in store.issues():
        assert issue.message and issue.level in ("error", "warning")
        json.dumps(issue.to_json())


@slow
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode()))
def test_any_bytes_load_or_bad_file(data: bytes) -> None:
    p = _file(data)
    try:
        store = SettingsStore.load(p)
    except BadFile as e:
        assert str(p) in str(e)
        return
    store.issues()


def _valid(spec) -> st.SearchStrategy:  # noqa: ANN001
    if spec.choices is not None:
        return st.sampled_from(spec.choices)
    if spec.type == "bool":
        return st.booleans()
    if spec.type == "int":
        lo = int(spec.minimum) + (1 if spec.exclusive_min else 0) if spec.minimum is not None else -1000
        hi = int(spec.maximum) if spec.maximum is not None else 10**12
        return st.integers(lo, hi)
    if spec.type == "float":
        lo = spec.minimum if spec.minimum is not None else -1e6
        hi = spec.maximum if spec.maximum is not None else 1e6
        return st.floats(lo, hi, exclude_min=spec.exclusive_min, allow_nan=False)
    if spec.type == "str":
        return st.text(max_size=12)
    if spec.type == "dict":
        return st.dictionaries(st.text(max_size=5), st.integers() | st.booleans(), max_size=3)
    return st.lists(st.text(max_size=5), max_size=3)


ops = st.lists(st.sampled_from([k for k, s in KEYS.items() if not s.newer]).flatmap(
    lambda k: st.tuples(st.just(k), st.none() | _valid(KEYS[k]))), min_size=1, max_size=12)


@slow
@given(ops=ops)
def test_edits_save_in_omlx_layout_and_order(ops: list) -> None:
    from mlx_console.core.settings.schema import ORDER

    p = _file(b'{\n  "version": 1,\n  "models": {\n    "m": {\n      "is_pinned": true\n    }\n  }\n}')
    store = SettingsStore.load(p)
    for key, value in ops:
        if value is None:
            store.unset("m", key)
        else:
            store.set("m", key, value)
    try:
        store.save()
    except SettingsError:
        return  # a cross-key rule refused it: the file is untouched
    data = p.read_bytes()
    assert data == json.dumps(json.loads(data), indent=2, ensure_ascii=False).encode()
    again = SettingsStore.load(p)
    assert again.get("m") == store.get("m")
    keys = list(again.get("m"))
    assert keys == sorted(keys, key=ORDER.__getitem__)  # where oMLX itself would write them


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(key_names, texts), min_size=1, max_size=4), force=st.booleans())
def test_cli_set_exits_0_or_1_and_never_half_writes(pairs: list, force: bool) -> None:
    import contextlib
    import io

    from mlx_console.cli import main

    p = _file(b'{\n  "version": 1,\n  "models": {\n    "m": {\n      "top_k": 1\n    }\n  }\n}')
    before = p.read_bytes()
    argv = ["settings", "set", "--file", str(p), *(["--force"] if force else []), "--", "m",
            *[f"{k}={v}" for k, v in pairs]]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(argv)
    assert code in (0, 1), err.getvalue()
    if code == 1:
        assert p.read_bytes() == before and err.getvalue().strip()
    else:
        json.loads(p.read_bytes())
