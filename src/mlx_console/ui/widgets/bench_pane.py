"""The bench side pane: run a suite on the selected backend with live progress, results, history sparkline.

It calls core/bench (run_suite, compare, store); until that core exists it says so and shows nothing else.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Sparkline, Static

from mlx_console.ui.core_api import NotAvailable, core


class BenchPane(Vertical, can_focus=True):
    DEFAULT_CSS = """
    BenchPane { width: 46; border-left: solid $primary; padding: 0 1; }
    BenchPane > #bench-title { height: 1; text-style: bold; }
    BenchPane > #bench-status { height: auto; }
    BenchPane > DataTable { height: 1fr; }
    BenchPane > Sparkline { height: 2; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.running = False
        self.last_record: Any = None

    def compose(self) -> ComposeResult:
        yield Static("Bench", id="bench-title")
        yield Static(id="bench-status")
        yield DataTable(id="bench-results", cursor_type="row", show_cursor=False)
        yield Static("decode tok/s history", id="bench-spark-label")
        yield Sparkline([], id="bench-spark")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in ("cell", "status", "decode tok/s", "reason"):
            table.add_column(col, key=col)

    def suite_names(self) -> list[str]:
        try:
            suites = core("bench.suites")
        except NotAvailable:
            return []
        for attr in ("names", "list_suites", "available"):
            fn = getattr(suites, attr, None)
            if callable(fn):
                try:
                    return [str(n) for n in fn()]
                except Exception:
                    return []
        return ["quick"]

    def set_status(self, text: str | Text) -> None:
        self.query_one("#bench-status", Static).update(text)

    def refresh_state(self, backend: str | None) -> None:
        if self.running:
            return
        try:
            core("bench.runner", "run_suite")
        except NotAvailable as e:
            self.set_status(Text(f"{e}.\nThe pane will run suites once the bench core lands.", style="dim"))
            return
        suites = ", ".join(self.suite_names()) or "quick"
        self.set_status(Text.assemble(("B", "bold"), f" runs a suite on {backend or '(no backend)'}; "
                                      f":bench SUITE picks one ({suites})."))

    def run(self, backend: str | None, suite: str | None) -> None:
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
        self.set_status(f"running {suite or 'quick'} on {backend}…")
        self.run_worker_thread(backend, suite or "quick")

    @work(thread=True, group="bench")
    def run_worker_thread(self, backend: str, suite: str) -> None:
        try:
            record = self._run(backend, suite)
        except Exception as e:  # shown in the pane; a failed run must not take the console down
            self.app.call_from_thread(self._finished, None, f"{type(e).__name__}: {e}")
        else:
            self.app.call_from_thread(self._finished, record, None)

    def _run(self, backend: str, suite: str) -> Any:
        run_suite = core("bench.runner", "run_suite")
        load_suite = core("bench.suites", "load")
        config = self.app.config  # type: ignore[attr-defined]
        profile = config.backend(backend)

        def progress(*args: Any, **kwargs: Any) -> None:
            text = " ".join(str(a) for a in args) or str(kwargs)
            self.app.call_from_thread(self.set_status, f"{backend} · {suite}: {text[:200]}")

        return run_suite(profile.base_url, profile.model, load_suite(suite), progress=progress)

    def _finished(self, record: Any, error: str | None) -> None:
        self.running = False
        if error:
            self.set_status(Text(f"bench failed: {error}", style="bold"))
            return
        self.last_record = record
        data = record.to_json() if hasattr(record, "to_json") else record
        table = self.query_one(DataTable)
        table.clear()
        for cell_id, cell in (data.get("cells") or {}).items():
            tps = (cell.get("decode_tps") or {}).get("median")
            table.add_row(cell_id, cell.get("status", "?"), f"{tps:.0f}" if isinstance(tps, int | float) else "-",
                          str(cell.get("reason") or "")[:60])
        self.set_status(f"done: {data.get('suite')} · run {data.get('run_id')}")
