"""The console's hooks into Textual's private internals (ui/textual_private.py) still fit this Textual: when an
upgrade changes the shape they rely on, this fails naming what changed (instead of a silent slowdown)."""

from __future__ import annotations

from mlx_console.ui import textual_private


def test_textual_private_shape_is_what_the_hooks_expect() -> None:
    assert textual_private.shape_problems() == []


def test_the_checks_can_fail(monkeypatch) -> None:
    from textual._compositor import Compositor

    monkeypatch.setattr(Compositor, "visible_widgets", None)
    assert any("visible_widgets" in p for p in textual_private.shape_problems())
