"""A Textual compositor that, for a partial update, renders only the widgets overlapping the changed area.

Textual's partial update asks every visible widget for all its lines (cached, but styled, filtered and cut
each time): with the log growing, the top bar, backends table, key bar and scrollbars cost more per frame
than the new log rows. Widgets wholly outside the update's crop contribute nothing to it, so they are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual._compositor import Compositor
from textual.geometry import Region
from textual.screen import Screen


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
