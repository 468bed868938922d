"""Odd config files and names (issue 13): refused with one line naming file, line and what is allowed."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from mlx_console.core import config, doctor
from mlx_console.core.errors import ConfigError

BACKEND = '[[backend]]\nname = "{name}"\nkind = "mlx-lm"\nmodel = "/m"\n'


def load_text(tmp_path: Path, text: str | bytes) -> config.Config:
    p = tmp_path / "config.toml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return config.load(p)


@pytest.mark.parametrize("name", ["/abs/dir", "../../x", ".", "..", "a\nb", "a/b", ".hidden", "x" * 65,
                                  "sp ace", "é"])
def test_backend_names_that_would_be_paths_are_refused(tmp_path: Path, name: str) -> None:
    import json

    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, BACKEND.format(name=json.dumps(name)[1:-1]))
    msg = str(e.value)
    assert "\n" not in msg.replace(repr(name), "") and ":2: " in msg and "letters, digits" in msg


@pytest.mark.parametrize("name", ["qwen", "Qwen3-8B_4bit.v2", "a" * 64, "-x", "_"])
def test_plain_names_are_accepted(tmp_path: Path, name: str) -> None:
    assert load_text(tmp_path, BACKEND.format(name=name)).backends[0].name == name


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    box: list[BaseException | config.Config] = []
    t = threading.Thread(target=lambda: box.append(_catch(lambda: config.load(fifo))), daemon=True)
    t.start()
    t.join(timeout=5)
    if not box:  # unblock the reader so the thread ends, then fail
        with open(fifo, "w"):
            pass
        pytest.fail("loading a FIFO config hangs")
    assert isinstance(box[0], ConfigError) and "not a regular file" in str(box[0])


def _catch(fn):  # type: ignore[no-untyped-def]
    try:
        return fn()
    except BaseException as e:  # noqa: BLE001 - handed to the test
        return e


def test_deep_nesting_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_text(tmp_path, "x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_text(tmp_path, "x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n")


def test_env_errors_point_at_their_line(tmp_path: Path) -> None:
    inline = BACKEND.format(name="a") + 'restart = "never"\nenv = { A = "1", B = 2 }\n'
    with pytest.raises(ConfigError, match=r"config.toml:6: \[\[backend\]\] #1: env.B must be a string"):
        load_text(tmp_path, inline)
    table = BACKEND.format(name="a") + '\n[backend.env]\nA = "1"\nB = 2\n'
    with pytest.raises(ConfigError, match=r"config.toml:8: .*env.B must be a string"):
        load_text(tmp_path, table)


def test_encoding_hints_and_a_bom(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.toml:3: the file is not UTF-8 \(byte 0xe9\).*save it as UTF-8"):
        load_text(tmp_path, b'theme = "dark"\n\n# caf\xe9\n')
    with pytest.raises(ConfigError, match="UTF-16"):
        load_text(tmp_path, '\ufefftheme = "dark"\n'.encode("utf-16"))
    assert load_text(tmp_path, '\ufefftheme = "light"\n'.encode()).theme == "light"


def test_relative_paths_resolve_against_the_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "conf"
    (d / "models" / "m").mkdir(parents=True)
    (d / "cat.toml").write_text("")
    monkeypatch.chdir(tmp_path)  # elsewhere: the result must not depend on it
    p = d / "config.toml"
    p.write_text('catalog = "cat.toml"\nmodel_dirs = ["models"]\n[[backend]]\nname = "a"\nkind = "mlx-lm"\n'
                 'model = "models/m"\n[[backend]]\nname = "b"\nkind = "mlx-lm"\nmodel = "mlx-community/Qwen3-4B"\n'
                 '[[backend]]\nname = "o"\nkind = "omlx"\nbase_path = "./omlx"\n')
    cfg = config.load(p)
    assert cfg.catalogs == [d / "cat.toml"] and cfg.model_dirs == [d / "models"]
    a, b, o = cfg.backends
    assert a.model == str(d / "models" / "m")
    assert b.model == "mlx-community/Qwen3-4B"  # a hub id stays one
    assert o.base_path == str(d / "omlx")


def test_doctor_fails_a_config_whose_catalogue_is_missing(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, 'catalog = "missing.toml"\n')
    check = doctor._config_check(cfg, None)
    assert check.status == doctor.FAIL and "missing.toml" in check.detail and "catalog" in check.detail
    (tmp_path / "missing.toml").write_text("")
    assert doctor._config_check(cfg, None).status == doctor.PASS


def test_big_file_is_refused_quickly(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="larger than"):
        load_text(tmp_path, b"#" * (5 * 1024 * 1024))
    assert time.monotonic() - t0 < 5
