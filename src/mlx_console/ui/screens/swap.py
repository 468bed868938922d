"""Model swap (`m`): a fuzzy list of discovered models with size and a fit mark; Enter swaps.

mlx-lm backends restart on the chosen model; oMLX loads it through its API (the supervisor decides).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from mlx_console.core import api
from mlx_console.core.api import Config, ConsoleError
from mlx_console.ui.actions import bindings
from mlx_console.ui.backends_source import Backends
from mlx_console.ui.widgets.backends_table import human_bytes

FIT_MARK = {"ok": ("✓", "success"), "warn": ("!", "warning"), "fail": ("✗", "error")}


def fuzzy_filter(query: str, models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The models whose id matches `query` (Textual's fuzzy matcher, the command palette's), best first;
    all of them, in order, for an empty query."""
    if not query.strip():
        return list(models)
    matcher = Matcher(query)
    scored = [(score, i, m) for i, m in enumerate(models) if (score := matcher.match(m["id"])) > 0]
    return [m for _, _, m in sorted(scored, key=lambda x: (-x[0], x[1]))]


def model_ids(config: Config) -> list[str]:
    """Worker side: the ids of the models discovery finds (what `:swap` completes and the picker lists)."""
    return [c.id for c in api.model_choices(config)]


class SwapScreen(ModalScreen[None]):
    BINDINGS = bindings("swap")

    def __init__(self, config: Config, backends: Backends, backend: str, model: str | None = None,
                 models: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.config, self.backends, self.backend, self.model = config, backends, backend, model
        self.models: list[dict[str, Any]] = models or []
        self.swap_error: str | None = None
        self.fixed = models is not None  # a given list (tests) is shown instead of discovering
        self.swapping = False

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = f"Swap the model of {self.backend} — type to filter · Enter swaps · Esc closes"
            field = Input(placeholder="filter models", id="swap-filter", compact=True)
            field.cursor_blink = False
            yield field
            yield Static("discovering models…", id="swap-status")
            yield OptionList(id="swap-list")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        if self.fixed:
            self.show_models(self.models)
        else:
            self.discover()  # a typed `:swap MODEL` waits for it: a ✗ model must ask with its reason

    def take_pending(self) -> None:
        """`:swap MODEL` swaps once the models (and their fit) are known, or discovery failed."""
        model, self.model = self.model, None
        if model:
            self.start_swap(model)

    @work(thread=True, exclusive=True, group="swap-discover")
    def discover(self) -> None:
        """The models of the backend's machine (a [[host]]'s backend: that host's, over ssh) with fit and advice."""
        try:
            found = [c.to_json() for c in self.backends.swap_choices(self.backend)]
        except Exception as e:
            self.app.call_from_thread(self.set_status, f"model discovery failed: {type(e).__name__}: {e}")
            self.app.call_from_thread(self.take_pending)
        else:
            self.app.call_from_thread(self.show_models, found)

    def set_status(self, text: str | Text) -> None:
        self.query_one("#swap-status", Static).update(text)

    def show_models(self, models: list[dict[str, Any]]) -> None:
        self.models = models
        self.app.known_models = [m["id"] for m in models]  # type: ignore[attr-defined]
        if not self.swapping and not self.swap_error:
            self.set_status(f"{len(models)} models found · ✓ fits · ! tight · ✗ does not fit in free memory")
        self.refilter(self.query_one(Input).value)
        self.take_pending()

    @on(Input.Changed, "#swap-filter")
    def _changed(self, event: Input.Changed) -> None:
        self.refilter(event.value)

    def refilter(self, query: str) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        matched = fuzzy_filter(query, self.models)
        theme = self.app.current_theme
        for m in matched:
            mark, colour_name = FIT_MARK.get(m["fit"], ("?", ""))
            colour = getattr(theme, colour_name, None) or ""
            t = Text.assemble((f"{mark} ", f"bold {colour}"), (m["id"], "bold"),
                              f"  {human_bytes(m['size'])}  ", (m["source"], "dim"),
                              (f"  {m['fit_reason']}" if m["fit"] != "ok" and m["fit_reason"] else "", "italic"),
                              *((f"\n    ⚠ {a}", "italic") for a in m.get("advice") or []))
            ol.add_option(Option(t, id=m["id"]))
        if ol.option_count:
            ol.highlighted = 0

    @on(Input.Submitted, "#swap-filter")
    def _submitted(self) -> None:
        ol = self.query_one(OptionList)
        if ol.highlighted is not None and ol.option_count:
            self.start_swap(str(ol.get_option_at_index(ol.highlighted).id))

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.start_swap(str(event.option.id))

    def key_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def key_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    def start_swap(self, model: str, confirmed: bool = False) -> None:
        """Swap to `model` (an id from the list, or what `:swap` was given). A model marked ✗ or ! and a
        ready backend (unless `confirm = false`) ask first; ✗ and ! repeat their reason in the question."""
        if self.swapping:
            return
        chosen = next((m for m in self.models if m["id"] == model), None)
        detail = ""
        if chosen and chosen["fit"] == "fail":
            detail = f"✗ {model} does not fit: {chosen['fit_reason'] or 'not enough free memory'}"
        elif chosen and chosen["fit"] == "warn":
            detail = f"! {model} is tight: {chosen['fit_reason'] or 'little headroom'}"
        ready = self.app.backend_state(self.backend) == "ready"  # type: ignore[attr-defined]
        if not confirmed and (detail or (ready and self.config.confirm)):
            from mlx_console.ui.screens.confirm import ConfirmScreen

            what = "loads it" if self.kind == "omlx" else "restarts on it"
            self.app.push_screen(
                ConfirmScreen(f"Swap {self.backend} to {model}? ({self.backend} is {'ready' if ready else 'not ready'}"
                              f"; it {what})", detail),
                lambda yes: self.start_swap(model, True) if yes else self.set_status("swap cancelled"))
            return
        self.swapping = True
        self.set_status(Text(f"swapping {self.backend} to {model}… (the backend restarts or loads it)",
                             style="bold"))
        # oMLX loads by the model's id (its /v1/models name); mlx_lm.server takes the path or hub id.
        self.swap(model if self.kind == "omlx" or not chosen or not chosen["path"] else chosen["path"])

    @property
    def kind(self) -> str:
        rows = self.app.backends_table.rows_data  # type: ignore[attr-defined]
        row = next((r for r in rows if r.get("name") == self.backend), {})
        return next((p.kind for p in self.config.backends if p.name == self.backend), str(row.get("kind") or ""))

    @work(thread=True, exclusive=True, group="swap")
    def swap(self, model: str) -> None:
        try:
            status = self.backends.swap_model(self.backend, model)
        except (ConsoleError, OSError) as e:
            self.app.call_from_thread(self.swap_done, model, None, str(e))
        else:
            self.app.call_from_thread(self.swap_done, model, status, None)

    def swap_done(self, model: str, status: Any, error: str | None) -> None:
        self.swapping = False
        self.swap_error = error
        if error:
            self.set_status(Text(f"swap failed: {error}", style="bold"))
            self.app.notify(f"{self.backend}: swap to {model} failed: {error}", severity="error", timeout=12)
            return
        state = status.to_json().get("status") if hasattr(status, "to_json") else ""
        self.app.notify(f"{self.backend}: now on {model} ({state})", timeout=6)
        self.dismiss()
