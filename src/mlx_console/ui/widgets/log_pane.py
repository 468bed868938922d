"""The log pane: title, the log view, its status line and the triage card, and the worker that follows the
shown backend's log file through core/logs (ui/log_follow.py)."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from mlx_console.ui.log_follow import Batch, follow
from mlx_console.ui.widgets.log_view import LogView
from mlx_console.ui.widgets.triage_card import TriageCard

if TYPE_CHECKING:
    from mlx_console.ui.app import ConsoleApp


class LogPane(Vertical):
    """Shows one backend's log (`select`); the app tells it which and asks it for nothing else."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = Static(id="log-title")
        self.view = LogView(id="log")
        self.status = Static(id="log-status")
        self.card = TriageCard(id="triage")
        self.backend: str | None = None
        self.path: Path | None = None
        self.note = ""
        self.file_choice: dict[str, int] = {}  # backend → index into Backends.log_paths(name)
        self._stop: threading.Event | None = None
        self._status_text: str | None = None
        self._title_text: str | None = None

    @property
    def owner(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield self.title
        yield self.view
        yield self.status
        yield self.card

    # ---- which log ------------------------------------------------------------------------------------

    def select(self, name: str, force: bool = False) -> None:
        """Show `name`'s log (force: re-open it, e.g. after a restart made a new file)."""
        if name == self.backend and not force:
            return
        self.backend = name
        if self.owner.polls_enabled:
            self.open(name)
        self.update_title()
        self.update_status()

    def open(self, name: str) -> None:
        self.stop()
        self._stop = threading.Event()
        self.view.clear()
        self.path = None
        self.note = ""
        self.follow_worker(name, self._stop)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def next_file(self, name: str) -> None:
        self.file_choice[name] = self.file_choice.get(name, 0) + 1
        self.select(name, force=True)

    def _file(self, name: str) -> Path | None:
        """Worker side: the log chosen for `name` (the captured log unless L switched to another)."""
        backends = self.owner.backends
        choice = self.file_choice.get(name, 0)
        if not choice:
            return backends.log_path(name)
        paths = backends.log_paths(name)
        if len(paths) < 2:
            self.app.call_from_thread(self.file_choice.__setitem__, name, 0)  # pane state: on the loop
            self.app.call_from_thread(self.app.notify, f"{name}: only one log (the captured output)", timeout=4)
            return paths[0] if paths else backends.log_path(name)
        path = paths[choice % len(paths)]
        self.app.call_from_thread(self.app.notify, f"{name}: showing {path}", timeout=4)
        return path

    @work(thread=True, group="log-follow")
    def follow_worker(self, name: str, stop: threading.Event) -> None:
        app = self.owner
        try:
            path = self._file(name)
        except Exception as e:  # reported, never fatal
            app.call_from_thread(self.set_note, f"log: {type(e).__name__}: {e}")
            return
        if path is None:
            app.call_from_thread(self.set_note, "log: not available yet")
            return
        app.call_from_thread(self.set_path, name, path)

        def deliver(batch: Batch) -> None:
            if not stop.is_set():
                app.call_from_thread(self.show_batch, name, batch)

        try:
            # is_running goes False as Textual shuts down, even when exit() was not called (a crash).
            follow(path, deliver, lambda: stop.is_set() or not app.is_running,
                   lambda: not app.dashboard_visible(), app.config.catalogs)
        except Exception as e:  # a broken catalogue or unreadable file is shown, the console goes on
            if not stop.is_set():  # (a log switched away from: its document is closed under the worker)
                app.call_from_thread(self.set_note, f"log: {type(e).__name__}: {e}")

    def set_path(self, name: str, path: Path) -> None:
        if name == self.backend:
            self.path = path
            self.update_title()

    def set_note(self, note: str) -> None:
        self.note = note
        self.update_status()

    def show_batch(self, name: str, batch: Batch) -> None:
        if name != self.backend:
            return
        if batch.note != self.note:
            self.note = batch.note
            self.update_status()
        view = self.view
        if batch.doc is not None:
            view.open_document(batch.doc)
        elif batch.reset and view.line_count:
            view.clear()
        if batch.head is not None:
            view.grow_head(*batch.head)
        view.append(batch.lines)
        if batch.events:  # numbered as the document's tail lines: placed after the head shown so far
            base = view.tail_base if view.document is not None else 0
            view.add_events([replace(e, start=e.start + base, end=e.end + base) for e in batch.events]
                            if base else batch.events)

    # ---- title and status -----------------------------------------------------------------------------

    def update_title(self) -> None:
        if not self.is_mounted:
            return
        app = self.owner
        title = Text(no_wrap=True, overflow="ellipsis")
        bench_visible = app.bench_pane.display
        if app.narrow:
            title.append(" Log ", style="reverse bold" if not bench_visible else "dim")
            title.append(" Bench ", style="reverse bold" if bench_visible else "dim")
            title.append(" (b switches) ", style="dim")
        else:
            title.append(" Log ", style="reverse bold")
        title.append(f" {self.backend or '(no backend)'}")
        if self.path is not None and not app.narrow:
            title.append(f"  {self.path}", style="dim")
        if title.plain != self._title_text:  # an equal update still re-lays out the screen
            self._title_text = title.plain
            self.title.update(title)

    def update_status(self, status: LogView.Status | None = None) -> None:
        log = self.view
        t = Text(no_wrap=True, overflow="ellipsis")
        if self.note:
            t.append(f" {self.note}", style="dim")
        elif log.follow:
            t.append(" ● following", style="bold")
        else:
            t.append(" ❚❚ paused", style="bold")
            if log.new_lines:
                t.append(f"  ▼ {log.new_lines} new lines", style="bold reverse")
            t.append("  End resumes", style="dim")
        if log.search_text:
            n = log.match_count()
            t.append(f"  search /{log.search_text} ({f'{n} matches, n/N' if n >= 0 else 'whole file'})",
                     style="bold")
        if log.filter_text:
            shown = status.shown if status else len(log.shown_lines())
            kind = "hiding" if log.filter_text.startswith("!") else "filter"
            counted = "whole file" if log.scan_note.startswith("filtering") else f"{shown} lines"
            t.append(f"  {kind} &{log.filter_text} ({counted})", style="bold")
        if log.wrap:
            t.append("  wrap", style="bold")
        if log.scan_note:
            t.append(f"  {log.scan_note}", style="italic")
        if log.search_text or log.filter_text:
            t.append("  Esc clears", style="dim")
        busy = self.owner.busy_text(self.backend)
        if busy:
            t.append(f"  {busy}", style="italic")
        if t.plain != self._status_text:  # Static.update repaints (and re-lays out) even when equal
            self._status_text = t.plain
            self.status.update(t)

    @on(LogView.Status)
    def _log_status(self, event: LogView.Status) -> None:
        self.update_status(event)

    @on(LogView.ReportRequested)
    def _report_requested(self, event: LogView.ReportRequested) -> None:
        self.notify("report: drafting (probing the environment)…", timeout=3)
        self.report_worker(event.lines, event.first_line, self.backend, self.path)

    @work(thread=True, exclusive=True, group="report")
    def report_worker(self, lines: list[str], first_line: int, backend: str | None, path: Path | None) -> None:
        """Draft the issue (the environment probe can take seconds), save it 0600 under <state>/reports/,
        then copy it to the clipboard (OSC 52) from the UI thread."""
        app = self.owner
        try:
            from mlx_console.core import api

            catalog = api.load_catalog(app.config.catalogs)
            d = api.draft_report(lines, first_line=first_line, log=path or "log", backend=backend,
                                 config=app.config, catalog=catalog)
            saved = api.save_report(d)
        except Exception as e:  # noqa: BLE001 - any failure is a one-line notice, never a crash
            app.call_from_thread(app.notify, f"report: {e}", severity="error", timeout=8)
            return
        app.call_from_thread(self._report_done, d.markdown, saved)

    def _report_done(self, markdown: str, saved: Path) -> None:
        self.app.copy_to_clipboard(markdown)
        self.notify(f"Report drafted: {saved} (copied via OSC 52)", timeout=8)

    @on(LogView.EventSelected)
    def _event_selected(self, event: LogView.EventSelected) -> None:
        self.card.show_event(event.event)
