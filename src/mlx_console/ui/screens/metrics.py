"""The metrics screen (`p`, `:metrics [NAME]`): per backend, plots over 5 m / 1 h / 24 h of throughput, TTFT,
requests and memory (RSS, models, available, swap), with restarts, memory-pressure transitions and triage
hits drawn as markers on the same time axis. Data: core/metrics (the samplers' database), read in a thread.

Lines differ by their marker character as well as by colour, so the plots read under NO_COLOR too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import Static
from textual_plotext import PlotextPlot

from mlx_console.core import api
from mlx_console.core.api import METRICS_WINDOWS as WINDOWS
from mlx_console.ui.actions import bindings

if TYPE_CHECKING:
    from mlx_console.core.api import Marker, Panel, PlotData

LINE_MARKERS = ("•", "+", "x", "o")
LINE_COLORS = ("cyan", "orange", "green", "magenta")
MARKER_COLOR = {"status": "red", "pressure": "yellow", "triage": "magenta"}
REFRESH = 5.0


def axis(window: int) -> tuple[float, str]:
    """Seconds per x unit and its name: the x axis is time before now."""
    return (1.0, "s ago") if window <= 300 else (60.0, "min ago") if window <= 3600 else (3600.0, "h ago")


class MetricsScreen(Screen[None]):
    BINDINGS = bindings("metrics")

    def __init__(self, backends: list[str], backend: str | None = None, window: str = "1h",
                 loader: Callable[[str, str], PlotData] | None = None) -> None:
        super().__init__()
        self.loader = loader or api.metrics_plot
        self.load_error: str | None = None  # why the last load failed (shown in the head line)
        self.backends = backends or ([backend] if backend else [])
        self.backend = backend if backend in self.backends else (self.backends[0] if self.backends else None)
        self.window = window
        self.data: PlotData | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="metrics-head")
        with Grid():
            for i in range(4):
                yield PlotextPlot(id=f"metrics-plot-{i}")
        yield Static(id="metrics-markers")

    def on_mount(self) -> None:
        self.load()
        self.set_interval(REFRESH, self.load)

    # -- actions -------------------------------------------------------------------------------------
    def action_close(self) -> None:
        self.app.pop_screen()

    def action_window(self, window: str) -> None:
        self.window = window
        self.load()

    def action_backend(self, step: int) -> None:
        if self.backends and self.backend in self.backends:
            self.backend = self.backends[(self.backends.index(self.backend) + step) % len(self.backends)]
            self.load()

    # -- data ----------------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="metrics")
    def load(self) -> None:
        if self.backend is None:
            self.app.call_from_thread(self.show, None)
            return
        backend, window = self.backend, self.window
        try:
            data = self.loader(backend, window)
        except Exception as e:  # a database being created, a host gone: said on screen, never fatal
            self.app.call_from_thread(self.show_error, backend, window, f"{type(e).__name__}: {e}")
            return
        self.app.call_from_thread(self.show, data)

    def show_error(self, backend: str, window: str, error: str) -> None:
        self.load_error = error
        self.query_one("#metrics-head", Static).update(
            Text.assemble((backend, "bold"), f"  window {window}: cannot read metrics: {error}"))

    def show(self, data: PlotData | None) -> None:
        self.data = data
        self.load_error = None
        windows = "  ".join(f"[{k}]" if k == self.window else k for k in WINDOWS)
        head = self.query_one("#metrics-head", Static)
        if data is None:
            head.update("metrics: no backend configured")
            return
        others = f"  (tab: next of {len(self.backends)})" if len(self.backends) > 1 else ""
        head.update(Text.assemble((data.backend, "bold"), f"  window {windows}  (1/2/3){others}  esc closes"))
        for i, panel in enumerate(data.panels):
            self._draw(self.query_one(f"#metrics-plot-{i}", PlotextPlot), panel, data)
        self.query_one("#metrics-markers", Static).update(self._marker_text(data.markers, data))

    def _draw(self, widget: PlotextPlot, panel: Panel, data: PlotData) -> None:
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        unit, name = axis(data.window)
        plt.title(f"{panel.title} ({panel.unit})" + ("  — no data" if panel.empty else ""))
        plt.xlim(-data.window / unit, 0)
        for i, line in enumerate(panel.lines):
            xs = [(t - data.now) / unit for t, _ in line.points]
            ys = [v for _, v in line.points]
            plt.plot(xs, ys, marker=LINE_MARKERS[i % 4], color=LINE_COLORS[i % 4],
                     label=f"{LINE_MARKERS[i % 4]} {line.label}")
        for m in data.markers:
            plt.vline((m.ts - data.now) / unit, MARKER_COLOR.get(m.kind, "red"))
        plt.xlabel(name)
        widget.refresh()

    def _marker_text(self, markers: list[Marker], data: PlotData) -> Text:
        if not markers:
            return Text("markers: none in this window (restarts, memory-pressure changes, triage hits)", style="dim")
        shown = markers[-8:]
        parts = [f"{time.strftime('%H:%M:%S', time.localtime(m.ts))} {m.short}" for m in shown]
        more = f" (+{len(markers) - len(shown)} earlier)" if len(markers) > len(shown) else ""
        return Text("markers │ " + " · ".join(parts) + more)
