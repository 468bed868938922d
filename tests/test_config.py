"""Config loading: profiles, defaults, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_console.core import config
from mlx_console.core.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_no_config_gives_demo_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLX_CONSOLE_CONFIG", str(tmp_path / "absent.toml"))
    cfg = config.load()
    assert not cfg.exists
    assert [b.name for b in cfg.backends] == ["demo"]
    assert cfg.backends[0].demo and cfg.backends[0].port == 8080


def test_profiles_and_defaults(tmp_path: Path) -> None:
    p = write(tmp_path, """
theme = "light"
[[backend]]
name = "qwen"
kind = "mlx-lm"
model = "/models/qwen"
args = ["--decode-concurrency", "4"]

[[backend]]
name = "omlx"
kind = "omlx"
api_key = "k"
""")
    cfg = config.load(p)
    q, o = cfg.backends
    assert (q.port, q.host, q.restart) == (8080, "127.0.0.1", "on-failure")
    assert (o.port, o.command, o.base_path) == (8000, ["omlx"], "~/.omlx")
    assert cfg.theme == "light"
    assert cfg.backend("omlx") is o
    with pytest.raises(ConfigError, match="no backend named 'x'"):
        cfg.backend("x")


@pytest.mark.parametrize(
    "text, line, needle",
    [
        ('[[backend]]\nname = "a"\nkind = "mlx-lm"\nmodel = "m"\nprot = 1\n', 5, "unknown key 'prot'"),
        ('[[backend]]\nname = "a"\nkind = "vllm"\n', 3, "kind 'vllm' is not allowed"),
        ('[[backend]]\nname = "a"\nkind = "mlx-lm"\nmodel = "m"\nport = "80"\n', 5, "must be an integer"),
        ('[[backend]]\nname = "a"\nkind = "mlx-lm"\nmodel = "m"\nbase_path = "/x"\n', 5, "applies only to kind omlx"),
        ('[[backend]]\nname = "a"\nkind = "mlx-lm"\nmodel = "m"\nrestart = "sometimes"\n', 5, "restart 'sometimes'"),
        ('colour = "red"\n', 1, "unknown key 'colour'"),
        ('[[backend]]\nname = "a"\nkind = "mlx-lm"\n', 2, "needs 'model'"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, line: int, needle: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        config.load(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}:{line}:"), msg
    assert needle in msg


def test_invalid_toml_names_line(tmp_path: Path) -> None:
    p = write(tmp_path, 'theme = "dark"\n[[backend]\n')
    with pytest.raises(ConfigError, match=r"invalid TOML.*line 2"):
        config.load(p)


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.toml")


@pytest.mark.parametrize("text,key", [("catalog = [1]\n", "catalog"), ('model_dirs = ["/m", 2]\n', "model_dirs")])
def test_list_items_of_wrong_type_are_a_config_error(tmp_path: Path, text: str, key: str) -> None:
    p = write(tmp_path, "theme = 'dark'\n" + text)
    with pytest.raises(ConfigError) as e:
        config.load(p)
    assert f"{p}:2:" in str(e.value) and repr(key) in str(e.value)


def test_with_profile_copies_and_leaves_the_config_alone(tmp_path: Path) -> None:
    """What bisect's applier does: run a profile with other args without changing the caller's Config."""
    from dataclasses import replace

    p = tmp_path / "c.toml"
    p.write_text('[[backend]]\nname = "a"\nkind = "mlx-lm"\nmodel = "m"\nargs = ["--x", "1"]\n'
                 '[[backend]]\nname = "b"\nkind = "mlx-lm"\nmodel = "m"\nport = 8081\n')
    cfg = config.load(p)
    changed = cfg.with_profile(replace(cfg.backend("a"), args=["--y", "2"]))
    assert changed.backend("a").args == ["--y", "2"] and changed.backend("b") is cfg.backend("b")
    assert cfg.backend("a").args == ["--x", "1"]
    with pytest.raises(ConfigError, match="no backend named 'z'"):
        cfg.with_profile(replace(cfg.backend("a"), name="z"))
