"""The bench side pane: run a suite on the selected backend with live progress, the results with reasons,
the verdict against the previous run of the same model, and a sparkline of decode tok/s history.

Running, scoring, storing and comparing are core/bench's; the pane shows its progress events and records.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Sparkline, Static

from mlx_console.ui.core_api import NotAvailable, core

STATUS_STYLE = {"pass": "success", "ok": "success", "fail": "error", "error": "error"}
VERDICT_STYLE = {"worse": "error", "regression": "error", "flip": "error", "error": "error",
                 "better": "success", "improvement": "success", "same": "", "within_noise": "",
                 "inconclusive": "warning"}


def decode_median(record: dict[str, Any]) -> float | None:
    """The run's decode tok/s: the median of its first cell that measured it."""
    for cell in (record.get("cells") or {}).values():
        tps = cell.get("decode_tps") if isinstance(cell, dict) else None
        if isinstance(tps, dict) and isinstance(tps.get("median"), int | float):
            return float(tps["median"])
    return None


class BenchPane(Vertical, can_focus=True):

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.running = False
        self.last_record: dict[str, Any] | None = None
        self.cancel = threading.Event()
        self.events: list[Any] = []   # progress events of the current run (tests read them)

    def compose(self) -> ComposeResult:
        yield Static("Bench", id="bench-title")
        yield Static(id="bench-status")
        yield DataTable(id="bench-results", cursor_type="row", show_cursor=False)
        yield Static(id="bench-verdict")
        yield Static("decode tok/s history", id="bench-spark-label")
        yield Sparkline([], id="bench-spark")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in ("cell", "status", "tok/s", "vs prev", "reason"):
            table.add_column(col, key=col)

    def suite_names(self) -> list[str]:
        try:
            return [str(n) for n in core("bench.suites", "available")()]
        except (NotAvailable, OSError):
            return []

    def set_status(self, text: str | Text) -> None:
        self.query_one("#bench-status", Static).update(text)

    def colour(self, name: str) -> str:
        return getattr(self.app.current_theme, name, None) or "" if name else ""

    # ---- state when shown ---------------------------------------------------------------------------

    def refresh_state(self, backend: str | None) -> None:
        if self.running:
            return
        try:
            core("bench.runner", "run_suite")
        except NotAvailable as e:
            self.set_status(Text(f"{e}.", style="dim"))
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
            runs = core("bench.store", "history")(model)
        except Exception:
            return  # no history is not an error
        self.app.call_from_thread(self.show_history, model, runs)

    def show_history(self, model: str, runs: list[dict[str, Any]]) -> None:
        values = [v for v in (decode_median(r) for r in runs) if v is not None]
        spark = self.query_one(Sparkline)
        spark.data = values
        label = f"decode tok/s, {len(values)} runs of {model.rsplit('/', 1)[-1]}"
        if values:
            label += f": last {values[-1]:.0f}, best {max(values):.0f}"
        self.query_one("#bench-spark-label", Static).update(label)

    # ---- running ------------------------------------------------------------------------------------

    def _running_model(self, backend: str) -> str | None:
        """The model the backend runs now (after a swap it differs from the profile's); on an oMLX backend with
        several models loaded, the one the person chose for this run."""
        if self.chosen_model:
            return self.chosen_model
        rows = {str(r.get("name")): r for r in self.app.backends_table.rows_data}  # type: ignore[attr-defined]
        model = rows.get(backend, {}).get("model")
        return str(model) if model else None

    def _target(self, backend: str) -> Any:
        """core.bench.target's Target for the profile (URL, model, server flags or oMLX model settings)."""
        config = self.app.config  # type: ignore[attr-defined]
        return core("bench.target", "for_profile")(config, backend, self._running_model(backend))

    chosen_model: str | None = None

    def run(self, backend: str | None, suite: str | None, model: str | None = None) -> None:
        if self.running:
            self.app.notify("a bench run is already going", severity="warning")
            return
        if backend is None:
            self.app.notify("no backend selected", severity="warning")
            return
        try:
            core("bench.runner", "run_suite")
        except NotAvailable as e:
            self.set_status(Text(str(e), style="dim"))
            self.app.notify(str(e), severity="warning")
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
            load_suite = core("bench.suites", "load")
            run_profile = core("bench.target", "run_profile")
            history = core("bench.store", "history")
            config = self.app.config  # type: ignore[attr-defined]
            target = self._target(backend)
            previous = history(target.model)
            extra: dict[str, Any] = {}
            if target.backend_kind == "mlx-lm" and self._running_model(backend):
                extra["model_path"] = target.model  # swapped: read the running model's config.json
            record = run_profile(config, backend, load_suite(suite_name), model=target.model,
                                 label=f"console:{backend}", cancel=self.cancel, **extra,
                                 progress=lambda ev: self.app.call_from_thread(self.progress, ev))
            data = record.to_json()
            comparison = None
            if previous:
                try:
                    comparison = core("bench.compare", "compare_runs")(previous[-1], data)
                except Exception as e:  # not comparable: say why instead of a verdict
                    comparison = {"error": str(e)}
            runs = history(target.model)
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
