"""Theme files (TOML in themes/ and the user's themes dir): loaded, validated, turned into Textual themes.

A broken file never stops the console: it is skipped with a notice naming the file and the problem, and
the built-in fallback stands in for a missing or broken default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
from textual.color import Color, ColorParseError
from textual.theme import Theme

COLOR_KEYS = ("primary", "secondary", "warning", "error", "success", "accent",
              "foreground", "background", "surface", "panel", "boost")
FLOAT_KEYS = ("luminosity_spread", "text_alpha")
ALLOWED_KEYS = ("name", "dark", "variables", *COLOR_KEYS, *FLOAT_KEYS)

# Stands in when themes/dark.toml is missing or broken, so the console always has a usable look.
FALLBACK = Theme(
    name="fallback", dark=True, primary="#4f9ee8", secondary="#3b6ea5", accent="#e0a030",
    warning="#e0a030", error="#e05561", success="#5cb85c", foreground="#d8dee9",
    background="#1b1f27", surface="#232833", panel="#2b3140",
)


class ThemeError(ValueError):
    """A theme file that cannot be used; the message names the file and the key."""


def theme_dirs() -> list[Path]:
    """Shipped themes, then the user's own (they win on a name clash). The shipped ones' source is the repository's
    top-level themes/; a wheel carries them as package data at mlx_console/themes/ (pyproject's force-include)."""
    package_data = Path(__file__).resolve().parents[1] / "themes"  # installed from a wheel
    shipped = package_data if package_data.is_dir() else Path(__file__).resolve().parents[3] / "themes"
    user = platformdirs.user_config_path("mlx-console") / "themes"
    return [shipped, user]


def parse_theme(path: Path) -> Theme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ThemeError(f"{path}: cannot read: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ThemeError(f"{path}: invalid TOML: {e}") from e
    for key in data:
        if key not in ALLOWED_KEYS:
            raise ThemeError(f"{path}: unknown key {key!r}; allowed: {', '.join(ALLOWED_KEYS)}")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise ThemeError(f"{path}: 'name' must be a non-empty string")
    if "primary" not in data:
        raise ThemeError(f"{path}: missing required colour 'primary'")
    kwargs: dict[str, object] = {"name": name}
    for key in COLOR_KEYS:
        if key in data:
            value = data[key]
            try:
                if not isinstance(value, str):
                    raise ColorParseError(f"not a string: {value!r}")
                Color.parse(value)
            except ColorParseError as e:
                raise ThemeError(f"{path}: {key} = {value!r} is not a colour (use #rrggbb or a CSS name): {e}") from e
            kwargs[key] = value
    for key in FLOAT_KEYS:
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ThemeError(f"{path}: {key} must be a number from 0 to 1, got {value!r}")
            kwargs[key] = float(value)
    if "dark" in data:
        if not isinstance(data["dark"], bool):
            raise ThemeError(f"{path}: dark must be true or false, got {data['dark']!r}")
        kwargs["dark"] = data["dark"]
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise ThemeError(f"{path}: [variables] must be a table of strings")
    kwargs["variables"] = dict(variables)
    return Theme(**kwargs)  # type: ignore[arg-type]


@dataclass
class ThemeSet:
    themes: dict[str, Theme] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def resolve(self, name: str) -> tuple[Theme, str | None]:
        """The theme called `name`, else the fallback with a notice saying why."""
        if name in self.themes:
            return self.themes[name], None
        known = ", ".join(sorted(self.themes)) or "(none)"
        return FALLBACK, f"theme {name!r} is not available (known: {known}); using the built-in fallback"


def load_themes(dirs: list[Path] | None = None) -> ThemeSet:
    out = ThemeSet()
    for d in theme_dirs() if dirs is None else dirs:
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.toml")):
            try:
                theme = parse_theme(path)
            except ThemeError as e:
                out.notices.append(f"{e} — theme skipped")
                continue
            out.themes[theme.name] = theme
    return out
