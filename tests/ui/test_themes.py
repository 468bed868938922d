"""Theme files: the shipped ones validate; a broken one falls back with a notice naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx_console.ui.themes import FALLBACK, ThemeError, load_themes, parse_theme

from .conftest import THEMES


def test_shipped_themes_validate() -> None:
    ts = load_themes([THEMES])
    assert {"dark", "light", "high-contrast"} <= set(ts.themes)
    assert ts.notices == []


@pytest.mark.parametrize("body,message", [
    ('name = "x"\nprimary = "#zzzzzz"\n', "primary = '#zzzzzz' is not a colour"),
    ('name = "x"\nprimary = "#fff"\nsparkle = true\n', "unknown key 'sparkle'"),
    ('name = "x"\n', "missing required colour 'primary'"),
    ('name = "x"\nprimary = "#fff"\ntext_alpha = 3\n', "text_alpha must be a number from 0 to 1"),
    ('name = "x"\nprimary = \n', "invalid TOML"),
])
def test_broken_theme_is_a_clear_error(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(body)
    with pytest.raises(ThemeError, match=message) as info:
        parse_theme(path)
    assert str(path) in str(info.value)


def test_broken_file_is_skipped_with_a_notice_and_fallback_resolves(tmp_path: Path) -> None:
    (tmp_path / "dark.toml").write_text('name = "dark"\nprimary = "not-a-colour"\n')
    ts = load_themes([tmp_path])
    assert "dark" not in ts.themes
    assert len(ts.notices) == 1 and "dark.toml" in ts.notices[0]
    theme, notice = ts.resolve("dark")
    assert theme is FALLBACK and notice and "fallback" in notice
