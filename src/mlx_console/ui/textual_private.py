"""The console's only hooks into Textual's private internals, kept here so that a Textual upgrade breaks in one
place, loudly: tests/ui/test_textual_private.py checks the shape each hook relies on (`shape_problems()`).

1. CropCompositor (textual._compositor.Compositor): for a partial update, render only the widgets
   overlapping the changed area. Textual's partial update asks every visible widget for all its lines (cached, but styled, filtered and cut
each time): with the log growing, the top bar, backends table, key bar and scrollbars cost more per frame
than the new log rows. Widgets wholly outside the update's crop contribute nothing to it, so they are skipped.

2. RowStylesCache (textual._styles_cache.StylesCache): the log view's styled rows reused while following
   (every row moves up one line per append). Gains: bench/ui_idle_cpu.py (CPU while a log grows).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual._compositor import Compositor
from textual._styles_cache import StylesCache
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget


class CropCompositor(Compositor):
    _crop: Region | None = None

    @property
    def visible_widgets(self) -> Any:
        widgets = super().visible_widgets
        crop = self._crop
        if crop is None:
            return widgets
        overlaps = crop.overlaps
        return {w: rc for w, rc in widgets.items() if overlaps(rc[0])}

    def _get_renders(self, crop: Region | None = None) -> Iterable[tuple[Region, Region, Any]]:
        self._crop = crop
        try:
            yield from super()._get_renders(crop)
        finally:
            self._crop = None


def install(screen: Screen) -> bool:
    """Make the screen's compositor a CropCompositor (False when this Textual's compositor is not the one
    this was written against: the screen then keeps the stock behaviour)."""
    compositor = getattr(screen, "_compositor", None)
    if type(compositor) is not Compositor or not isinstance(Compositor.__dict__.get("visible_widgets"), property):
        return False
    compositor.__class__ = CropCompositor
    return True


class RowStylesCache(StylesCache):
    """Textual's per-widget line styling, remembered per content row: when following, every row moves up
    one line per append, so the styled row is reused instead of rebuilt (and its filter/divide caches with it).
    Only for widgets without border, padding or outline (the log view has none)."""

    def __init__(self) -> None:
        super().__init__()
        self._styled: dict[int, tuple[Strip, Strip]] = {}
        self._context: tuple[Any, ...] | None = None

    # clear() (every refresh) keeps _styled: a content row is a new Strip whenever its look can change
    # (theme, cursor, filter), and the widget-wide context is checked below.

    def render_line(self, styles: Any, y: int, size: Any, content_size: Any, padding: Any, base_background: Any,
                    background: Any, render_content_line: Any, *rest: Any) -> Strip:
        if styles.gutter or any(edge for edge, _ in styles.outline):
            return super().render_line(styles, y, size, content_size, padding, base_background, background,
                                       render_content_line, *rest)
        context = (size.width, base_background, background, *rest)
        if context != self._context:
            self._context = context
            self._styled.clear()
        content = render_content_line(y)
        hit = self._styled.get(id(content))
        if hit is not None and hit[0] is content:
            return hit[1]
        styled = super().render_line(styles, y, size, content_size, padding, base_background, background,
                                     lambda _y: content, *rest)
        if len(self._styled) > 4096:
            self._styled.clear()
        self._styled[id(content)] = (content, styled)
        return styled


def shape_problems() -> list[str]:
    """What of Textual's private shape these hooks rely on is gone (empty: all there)."""
    import inspect

    out = []
    if not isinstance(Compositor.__dict__.get("visible_widgets"), property):
        out.append("textual._compositor.Compositor.visible_widgets is no longer a property")
    if "crop" not in inspect.signature(Compositor._get_renders).parameters:
        out.append("textual._compositor.Compositor._get_renders(crop) changed its signature")
    params = list(inspect.signature(StylesCache.render_line).parameters)
    if params[:9] != ["self", "styles", "y", "size", "content_size", "padding", "base_background", "background",
                      "render_content_line"]:
        out.append(f"textual._styles_cache.StylesCache.render_line's parameters changed: {params}")
    if "_styles_cache" not in inspect.getsource(Widget.__init__):
        out.append("textual.widget.Widget no longer keeps its StylesCache in _styles_cache")
    return out
