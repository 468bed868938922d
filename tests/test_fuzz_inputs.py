"""Fuzz (hypothesis) over config, settings and log input: an error is one line naming the file, never a
traceback (issue 13)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlx_console.cli import main
from mlx_console.core import config
from mlx_console.core.errors import ConsoleError

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

toml_values = st.recursive(
    st.one_of(st.integers(), st.booleans(), st.text(max_size=20), st.floats(allow_nan=False)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
backend = st.fixed_dictionaries({}, optional={
    "name": st.text(max_size=70), "kind": st.sampled_from(["mlx-lm", "omlx", "vllm", ""]),
    "model": st.text(max_size=30), "port": st.integers(-5, 70000), "host": st.text(max_size=20),
    "args": st.lists(st.text(max_size=10), max_size=3), "env": st.dictionaries(st.text(max_size=8), toml_values,
                                                                               max_size=2),
    "restart": st.text(max_size=10), "api_key": toml_values, "base_path": st.text(max_size=20)})


def _toml(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if not isinstance(v, float) or v == v and abs(v) != float("inf") else "0"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    assert isinstance(v, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(x)}" for k, x in v.items()) + "}"


def _one_line(err: str, path: Path) -> None:
    assert "Traceback" not in err
    first = err.strip().split("\n")[0]
    assert first.startswith("mlx-console") and str(path.name) in first, err


@FUZZ
@given(tables=st.lists(backend, max_size=3), top=st.dictionaries(
    st.sampled_from(["theme", "catalog", "model_dirs", "keymap", "colour"]), toml_values, max_size=3))
def test_config_is_loaded_or_refused_in_one_line(tmp_path: Path, tables: list[dict], top: dict) -> None:
    p = tmp_path / "config.toml"
    text = "".join(f"{json.dumps(k)} = {_toml(v)}\n" for k, v in top.items())
    text += "".join("[[backend]]\n" + "".join(f"{json.dumps(k)} = {_toml(v)}\n" for k, v in t.items())
                    for t in tables)
    p.write_text(text)
    try:
        cfg = config.load(p)
    except ConsoleError as e:
        assert "\n" not in str(e).strip() and str(e).startswith(str(p)), str(e)
        return
    for b in cfg.backends:
        assert config.NAME_RE.fullmatch(b.name)


@FUZZ
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_config_bytes_are_loaded_or_refused_in_one_line(tmp_path: Path, raw: bytes) -> None:
    p = tmp_path / "config.toml"
    p.write_bytes(raw)
    try:
        config.load(p)
    except ConsoleError as e:
        assert "\n" not in str(e).strip() and str(e).startswith(str(p)), str(e)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)
settings_docs = st.one_of(
    json_values,
    st.fixed_dictionaries({"version": json_values, "models": st.dictionaries(
        st.text(max_size=10), json_values | st.dictionaries(st.sampled_from(
            ["top_k", "temperature", "max_tokens", "is_pinned", "ttl_seconds", "turboquant_kv_bits",
             "chat_template_kwargs", "dflash_enabled", "mtp_enabled", "x"]), json_values, max_size=4),
        max_size=3)}))


@FUZZ
@given(doc=settings_docs, cmd=st.sampled_from([["show"], ["validate"], ["show", "--json"],
                                               ["set", "--offline", "m", "top_k=5"], ["unset", "--offline", "m",
                                                                                      "top_k"],
                                               ["diff", "--against", "BASE", "--json"]]))
def test_settings_files_never_give_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: object,
                                               cmd: list[str]) -> None:
    f = tmp_path / "model_settings.json"
    f.write_text(json.dumps(doc, allow_nan=True))
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"version": 1, "models": {"m": {"top_k": 1}}}))
    argv = [c.replace("BASE", str(base)) for c in cmd]
    try:
        code = main(["settings", argv[0], "--file", str(f), *argv[1:]])
    except SystemExit as e:  # argparse
        code = int(e.code or 0)
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    if code != 0 and argv[0] != "validate":
        _one_line(err, f)


@FUZZ
@given(raw=st.binary(max_size=400))
def test_settings_bytes_never_give_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               raw: bytes) -> None:
    f = tmp_path / "model_settings.json"
    f.write_bytes(raw)
    code = main(["settings", "show", "--file", str(f)])
    _, err = capsys.readouterr()
    if code != 0:
        _one_line(err, f)


log_lines = st.lists(st.one_of(
    st.text(max_size=80),
    st.sampled_from(["Traceback (most recent call last):", '  File "x.py", line 1, in <module>',
                     "ValueError: [metal::malloc] Attempting to allocate 1 bytes", "ERROR: boom",
                     "INFO:     127.0.0.1 - \"POST /v1/chat/completions HTTP/1.1\" 200",
                     "\x1b]52;c;aGk=\x07", "generation thread died"])), max_size=30)


@FUZZ
@given(lines=log_lines, crlf=st.booleans())
def test_triage_never_gives_a_traceback_and_never_passes_escapes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[str], crlf: bool) -> None:
    f = tmp_path / "server.log"
    f.write_bytes(("\r\n" if crlf else "\n").join(lines).encode("utf-8", "surrogatepass"))
    for extra in ([], ["--json"]):
        code = main(["triage", str(f), "--all", *extra])
        out, err = capsys.readouterr()
        assert code == 0 and "Traceback" not in err, err
        assert not any(c in out for c in "\x1b\x07\x9b"), out


def test_the_fuzzers_see_real_files(tmp_path: Path) -> None:
    """Not vacuous: a good config loads, a bad one is refused."""
    p = tmp_path / "config.toml"
    p.write_text('[[backend]]\nname = "a"\nkind = "mlx-lm"\nmodel = "/m"\n')
    assert config.load(p).backends[0].name == "a"
    p.write_text('[[backend]]\nname = "a/b"\nkind = "mlx-lm"\nmodel = "/m"\n')
    with pytest.raises(ConsoleError):
        config.load(p)
    assert os.path.exists(p)
