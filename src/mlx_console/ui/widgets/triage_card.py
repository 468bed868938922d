"""The triage card: what the selected log event is, why it happens, the first move, the upstream link."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from mlx_console.ui.widgets.log_view import LogEvent


class TriageCard(Static):

    def show_event(self, event: LogEvent | None) -> None:
        self.remove_class("-error", "-warning")
        if event is None or not (event.title or event.cause or event.first_move):
            self.remove_class("-shown")
            return
        self.add_class("-shown", f"-{event.severity}" if event.severity in ("error", "warning") else "-info")
        t = Text()
        head = event.title or "(unrecognised event)"
        t.append(f"{event.severity.upper()} ", style="bold")
        t.append(head, style="bold")
        if event.categories:
            t.append(f"  [{', '.join(event.categories)}]", style="dim")
        t.append(f"  lines {event.start + 1}-{event.end + 1}", style="dim")
        if event.cause:
            t.append("\nCause: ", style="bold")
            t.append(event.cause)
        if event.first_move:
            t.append("\nFirst move: ", style="bold")
            t.append(event.first_move)
        for ref in event.references[:2]:
            t.append("\n")
            t.append(ref, style=f"underline link {ref}")
        self.update(t)
