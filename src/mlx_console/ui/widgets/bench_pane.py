"""The bench side pane: run a suite on the selected backend with live progress, the results with reasons,
the verdict against the previous run of the same model, and the history of a cell across runs: its decode
tok/s median with the p25–p75 band per run, runs labelled on the x axis, configuration changes marked (`c`
shows the next cell).

Running, scoring, storing and comparing are core/bench's; the pane shows its progress events and records.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from mlx_console.core import api

if TYPE_CHECKING:
    from textual_plotext import PlotextPlot

STATUS_STYLE = {"pass": "success", "ok": "success", "fail": "error", "error": "error"}
VERDICT_STYLE = {"worse": "error", "regression": "error", "flip": "error", "error": "error",
                 "better": "success", "improvement": "success", "same": "", "within_noise": "",
                 "inconclusive": "warning"}


class BenchPane(Vertical, can_focus=True):

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.running = False
        self.last_record: dict[str, Any] | None = None
        self.cancel = threading.Event()
        self.events: list[Any] = []   # progress events of the current run (tests read them)
        self.history: list[dict[str, Any]] = []  # the model's stored runs, oldest first
        self.history_model = ""
        self.trend: api.Trend | None = None  # the shown cell across runs

    def compose(self) -> ComposeResult:
        yield Static("Bench", id="bench-title")
        yield Static(id="bench-status")
        yield DataTable(id="bench-results", cursor_type="row", show_cursor=False)
        yield Static(id="bench-verdict")
        yield Static("decode tok/s history", id="bench-trend-label")
        # The history plot (#bench-trend) is mounted by _trend_plot when the pane is first shown.

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in ("cell", "status", "tok/s", "vs prev", "reason"):
            table.add_column(col, key=col)

    def suite_names(self) -> list[str]:
        try:
            return api.bench_suites()
        except OSError:
            return []

    def set_status(self, text: str | Text) -> None:
        self.query_one("#bench-status", Static).update(text)

    def colour(self, name: str) -> str:
        return getattr(self.app.current_theme, name, None) or "" if name else ""

    # ---- state when shown ---------------------------------------------------------------------------

    def remote_note(self, backend: str | None) -> str | None:
        """A [[host]]'s backend is benched on its host, by its CLI (the run record and history live there)."""
        if not backend or "@" not in backend or not self.app.backends.remote(backend):  # type: ignore[attr-defined]
            return None
        base, _, host = backend.rpartition("@")
        return (f"bench from the console is not available for {backend} (a backend of host {host}): run it there "
                f"with `mlx-console --host {host} bench run --backend {base}`; its history is kept on {host}.")

    def refresh_state(self, backend: str | None) -> None:
        self._trend_plot()
        if self.running:
            return
        note = self.remote_note(backend)
        if note:
            self.set_status(Text(note, style="dim"))
            return
        suites = ", ".join(self.suite_names()) or "quick"
        self.set_status(Text.assemble(("B", "bold"), f" runs quick on {backend or '(no backend)'}; ",
                                      (":bench SUITE", "bold"), f" another ({suites})."))
        if backend:
            self.load_history(backend)

    @work(thread=True, exclusive=True, group="bench-history")
    def load_history(self, backend: str) -> None:
        try:
            model = self._target(backend).model
            runs = api.bench_history(model)
        except Exception:
            return  # no history is not an error
        self.app.call_from_thread(self.show_history, model, runs)

    def show_history(self, model: str, runs: list[dict[str, Any]], cell: str | None = None) -> None:
        self.history, self.history_model = runs, model
        trend = api.bench_trend(runs, cell or (self.trend.cell if self.trend else None))
        self.trend = trend
        pts = trend.points
        name = model.rsplit('/', 1)[-1]
        label = Text(f"{trend.cell}: decode tok/s, {len(pts)} runs of {name}" if pts
                     else f"no bench runs of {name} yet: B runs one, the history is plotted here")
        if pts:
            last = pts[-1]
            label.append(f"\nlast {last.median:.0f} (p25–p75 {last.p25:.0f}–{last.p75:.0f}), best "
                         f"{max(p.median for p in pts):.0f}")
        if len(trend.cells) > 1:
            label.append(f"  · c: next cell ({trend.cells.index(trend.cell) + 1}/{len(trend.cells)})", style="dim")
        self.query_one("#bench-trend-label", Static).update(label)
        self.draw_trend(trend)

    def on_show(self) -> None:
        self._trend_plot()

    def _trend_plot(self) -> PlotextPlot:
        """The history plot, the pane's last child, mounted the first time the pane is shown or draws: the pane
        starts hidden, and textual_plotext (plotext parses dates when imported) would delay the first frame."""
        found = self.query("#bench-trend")
        if found:
            return found.first()  # type: ignore[return-value]
        from textual_plotext import PlotextPlot

        widget = PlotextPlot(id="bench-trend")
        self.mount(widget)
        return widget

    def draw_trend(self, trend: api.Trend) -> None:
        """Median (•) with p25 and p75 (·) per run; │ where the configuration changed; x ticks: run dates."""
        widget = self._trend_plot()
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        pts = trend.points
        widget.display = bool(pts)
        if not pts:
            return
        xs = list(range(1, len(pts) + 1))
        plt.xlim(0.5, len(pts) + 0.5)
        plt.plot(xs, [p.p75 for p in pts], marker="·", color="gray")
        plt.plot(xs, [p.median for p in pts], marker="•", color="cyan")
        plt.plot(xs, [p.p25 for p in pts], marker="·", color="gray")
        for i in trend.changes:
            plt.vline(i + 0.5, "orange")  # between the last run of one config and the first of the next
        # Dates of the first run, of each first run after a config change, and of the last run.
        ticks = sorted({1, len(pts), *(i + 1 for i in trend.changes)})
        plt.xticks(ticks, [pts[x - 1].short for x in ticks])
        plt.title("• median  · p25/p75" + ("  │ config changed" if trend.changes else ""))
        widget.refresh()

    def action_next_cell(self) -> None:
        if self.trend and len(self.trend.cells) > 1:
            cells = self.trend.cells
            self.show_history(self.history_model, self.history, cells[(cells.index(self.trend.cell) + 1) % len(cells)])

    # ---- running ------------------------------------------------------------------------------------

    def _running_model(self, backend: str) -> str | None:
        """The model the backend runs now (after a swap it differs from the profile's); on an oMLX backend with
        several models loaded, the one the person chose for this run."""
        if self.chosen_model:
            return self.chosen_model
        rows = {str(r.get("name")): r for r in self.app.backends_table.rows_data}  # type: ignore[attr-defined]
        model = rows.get(backend, {}).get("model")
        return str(model) if model else None

    def _target(self, backend: str) -> api.Target:
        """The bench target of the profile (URL, model, server flags or oMLX model settings)."""
        config = self.app.config  # type: ignore[attr-defined]
        return api.bench_target(config, backend, self._running_model(backend))

    chosen_model: str | None = None

    def run(self, backend: str | None, suite: str | None, model: str | None = None) -> None:
        if self.running:
            self.app.notify("a bench run is already going", severity="warning")
            return
        if backend is None:
            self.app.notify("no backend selected", severity="warning")
            return
        note = self.remote_note(backend)
        if note:
            self.set_status(Text(note, style="bold"))
            self.app.notify(note, severity="warning", timeout=10)
            return
        self.running = True
        self.chosen_model = model
        self.cancel = threading.Event()
        self.events = []
        self.query_one(DataTable).clear()
        self.query_one("#bench-verdict", Static).update("")
        self.set_status(f"starting {suite or 'quick'} on {backend}…")
        self.run_worker_thread(backend, suite or "quick")

    @work(thread=True, group="bench")
    def run_worker_thread(self, backend: str, suite_name: str) -> None:
        try:
            config = self.app.config  # type: ignore[attr-defined]
            outcome = api.bench_run(config, backend, suite_name, running_model=self._running_model(backend),
                                    cancel=self.cancel,
                                    progress=lambda ev: self.app.call_from_thread(self.progress, ev))
            data, runs = outcome.record, outcome.history
            comparison = outcome.comparison
            if comparison is None and outcome.previous_run_id:
                comparison = {"error": outcome.not_compared}
        except Exception as e:  # shown in the pane; a failed run must not take the console down
            self.app.call_from_thread(self.finished, None, None, [], f"{type(e).__name__}: {e}")
        else:
            self.app.call_from_thread(self.finished, data, comparison, runs, None)

    def progress(self, ev: Any) -> None:
        self.events.append(ev)
        where = f"cell {ev.index}/{ev.total} {ev.cell or ''}".strip() if ev.total else ""
        sample = f" · {ev.phase or 'sample'} {ev.sample}/{ev.samples}" if ev.samples else ""
        self.set_status(Text(f"{ev.event.replace('_', ' ')}: {where}{sample} {ev.message}".strip()[:200]))
        if ev.event == "cell_finished" and ev.result is not None:
            self.add_result(ev.cell or "?", ev.result, None)

    def add_result(self, cell_id: str, cell: dict[str, Any], verdict: str | None) -> None:
        status = str(cell.get("status", "?"))
        tps = (cell.get("decode_tps") or {}).get("median") if isinstance(cell.get("decode_tps"), dict) else None
        table = self.query_one(DataTable)
        row = (cell_id, Text(status, style=f"bold {self.colour(STATUS_STYLE.get(status, ''))}"),
               f"{tps:.0f}" if isinstance(tps, int | float) else "-",
               Text(verdict or "", style=self.colour(VERDICT_STYLE.get(verdict or "", ""))),
               str(cell.get("reason") or "")[:80])
        if cell_id in [str(k.value) for k in table.rows]:
            table.remove_row(cell_id)
        table.add_row(*row, key=cell_id)

    def finished(self, data: dict[str, Any] | None, comparison: dict[str, Any] | None,
                 runs: list[dict[str, Any]], error: str | None) -> None:
        self.running = False
        if error or data is None:
            self.set_status(Text(f"bench failed: {error}", style="bold"))
            return
        self.last_record = data
        verdicts = {cid: c.get("verdict") for cid, c in ((comparison or {}).get("cells") or {}).items()}
        self.query_one(DataTable).clear()
        for cid, cell in (data.get("cells") or {}).items():
            self.add_result(cid, cell, verdicts.get(cid))
        passed = sum(1 for c in (data.get("cells") or {}).values() if c.get("status") in ("pass", "ok"))
        self.set_status(f"done: {data.get('suite')} · {passed}/{len(data.get('cells') or {})} pass/ok · "
                        f"run {data.get('run_id')}")
        verdict = self.query_one("#bench-verdict", Static)
        if comparison and "overall" in comparison:
            o = comparison["overall"]
            verdict.update(Text.assemble(("vs previous run: ", "bold"),
                                         (str(o.get("verdict")), f"bold {self.colour(VERDICT_STYLE.get(str(o.get('verdict')), ''))}"),
                                         f"  {o.get('reason', '')}"))
        elif comparison and "error" in comparison:
            verdict.update(Text(f"not compared: {comparison['error']}", style="dim"))
        else:
            verdict.update(Text("first run of this model: the next run is compared with it", style="dim"))
        if runs:
            self.show_history(str(data.get("model")), runs)
