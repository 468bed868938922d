"""The doctor screen (`d`): pre-flight checks with their one-line fixes, from core/doctor.run."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from mlx_console.core import api
from mlx_console.core.api import Config
from mlx_console.ui.actions import bindings

STATUS_STYLE = {"pass": "success", "ok": "success", "warn": "warning", "fail": "error"}


class DoctorScreen(ModalScreen[None]):
    BINDINGS = bindings("doctor")

    def __init__(self, config: Config, report: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.report: dict[str, Any] | None = report
        self.fixed = report is not None  # a given report (tests) is shown instead of running the checks

    def compose(self) -> ComposeResult:
        with VerticalScroll() as v:
            v.border_title = "Doctor — r re-runs · Esc closes"
            yield Static("running checks…", id="doctor-status")
            yield Static(id="doctor-checks")

    def on_mount(self) -> None:
        if self.fixed and self.report is not None:
            self.show_report(self.report)
        else:
            self.action_rerun()

    def action_rerun(self) -> None:
        self.query_one("#doctor-status", Static).update("running checks…")
        self.run_checks()

    @work(thread=True, exclusive=True, group="doctor")
    def run_checks(self) -> None:
        try:
            data = api.doctor(self.config).to_json()
        except Exception as e:  # the screen says what failed instead of crashing the console
            self.app.call_from_thread(self.show_unavailable, f"doctor failed: {type(e).__name__}: {e}")
        else:
            self.app.call_from_thread(self.show_report, data)

    def show_unavailable(self, message: str) -> None:
        self.query_one("#doctor-status", Static).update(Text(message, style="bold"))

    def show_report(self, data: dict[str, Any]) -> None:
        self.report = data
        theme = self.app.current_theme
        counts: dict[str, int] = {}
        body = Text()
        order = {"fail": 0, "warn": 1}  # problems first: they are what a person opens the doctor for
        for check in sorted(data.get("checks", []), key=lambda c: order.get(str(c.get("status")), 2)):
            status = str(check.get("status", "?"))
            counts[status] = counts.get(status, 0) + 1
            colour = getattr(theme, STATUS_STYLE.get(status, ""), None) or ""
            body.append(f"{status.upper():<5}", style=f"bold {colour}")
            body.append(f" {check.get('id', '')}", style="bold")
            body.append(f"  {check.get('detail', '')}\n")
            if check.get("fix") and status != "pass":
                body.append("      fix: ", style="bold")
                body.append(f"{check['fix']}\n", style="italic")
        self.query_one("#doctor-checks", Static).update(body)
        versions = " · ".join(f"{k} {v}" for k, v in (data.get("versions") or {}).items() if v)
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        listening = data.get("listening") or []
        ports = ", ".join(f"{x.get('port')}→{x.get('process')}" for x in listening[:6]) or "none"
        self.query_one("#doctor-status", Static).update(
            Text(f"{summary}\n{versions}\nlistening: {ports}\n"))
