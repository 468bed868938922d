"""The console app: dashboard (backends, live log, bench pane), `:` commands, palette, themes, polls.

It renders what the core reports and calls the core to act. Blocking calls run in thread workers
that hand results back with call_from_thread; handlers on the event loop own all state.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static

from mlx_console.core.api import Config, ConsoleError
from mlx_console.ui import actions as registry
from mlx_console.ui import textual_private as compositor
from mlx_console.ui.backends_source import Backends
from mlx_console.ui.commands import CommandError, Parsed, parse
from mlx_console.ui.log_follow import Batch, follow
from mlx_console.ui.polling import Poller
from mlx_console.ui.themes import FALLBACK, ThemeSet, load_themes
from mlx_console.ui.widgets.backends_table import BackendsTable
from mlx_console.ui.widgets.backends_table import shown as shown_rows
from mlx_console.ui.widgets.bench_pane import BenchPane
from mlx_console.ui.widgets.command_line import CommandLine
from mlx_console.ui.widgets.key_bar import KeyBar
from mlx_console.ui.widgets.log_view import LogView
from mlx_console.ui.widgets.triage_card import TriageCard

NARROW_WIDTH = 110       # below this the bench pane becomes a tab over the log
BACKENDS_INTERVAL = 1.0  # s between supervisor polls
MEMORY_INTERVAL = 10.0   # s between memory pressure reads


class ConsoleApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "mlx-console"
    BINDINGS = registry.bindings(("console", "backend", "bench"))

    def __init__(self, config: Config, *, theme_dirs: list[Path] | None = None, autostart: bool | None = None,
                 backends: Backends | None = None, polls: bool = True,
                 memory_reader: Callable[[], str | None] | None = None) -> None:
        super().__init__()
        self.config = config
        self.backends = backends or Backends(config)
        self.keymap_config: dict[str, str] = dict(config.keymap)
        self.theme_set: ThemeSet = load_themes(theme_dirs)
        # Demo by default when nothing is configured: the person sees a real backend come up at once.
        self.autostart = (not config.exists) if autostart is None else autostart
        self.polls_enabled = polls
        self.memory_reader = memory_reader or read_memory
        self.startup_notices: list[str] = list(self.theme_set.notices)
        self.startup_notices += registry.validate_keymap(self.keymap_config)
        self.log_backend: str | None = None
        self._log_stop: threading.Event | None = None
        self.log_path: Path | None = None
        self.log_file_choice: dict[str, int] = {}  # backend → index into Backends.log_paths(name)
        self.log_note = ""
        self._busy: dict[str, str] = {}   # backend → what is being done to it (starting/stopping/…)
        self._progress: dict[str, str] = {}  # backend → the last progress line of that action
        self.backend_poll: Poller | None = None
        self.memory_poll: Poller | None = None
        self.hung_up = False
        self._memory_line = ""
        self._log_status_text: str | None = None
        self._log_title_text: str | None = None
        self._topbar_text: str | None = None

    # ---- layout ------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # Kept as attributes: app.query_one() searches the *active* screen, which may be a modal.
        self.topbar = Static(id="topbar")
        self.backends_table = BackendsTable(id="backends")
        self.log_title = Static(id="log-title")
        self.log_view = LogView(id="log")
        self.log_status = Static(id="log-status")
        self.triage_card = TriageCard(id="triage")
        self.log_pane = Vertical(self.log_title, self.log_view, self.log_status, self.triage_card, id="log-pane")
        self.bench_pane = BenchPane(id="bench")
        self.body = Horizontal(self.log_pane, self.bench_pane, id="body")
        self.command_line = CommandLine(self.completion_candidates, id="cmdline",
                                        history_path=_state_file("console_history"))
        self.key_bar = KeyBar(id="keys")
        yield self.topbar
        yield self.backends_table
        yield self.body
        yield self.command_line
        yield self.key_bar

    def on_mount(self) -> None:
        compositor.install(self.screen)
        for theme in self.theme_set.themes.values():
            self.register_theme(theme)
        self.register_theme(FALLBACK)
        self.set_theme(self.config.theme, at_start=True)
        if self.keymap_config:
            self.set_keymap(self.keymap_config)
        for notice in self.startup_notices:
            self.notify(notice, severity="warning", timeout=10)
        self.apply_width(self.size.width)
        self.bench_pane.display = False
        self.update_topbar()
        self.update_log_title()
        self.log_view.focus()
        self.backends_table.show(self.backends.placeholder_rows(), narrow=self.narrow)
        self.backend_poll = Poller(self, "backends", BACKENDS_INTERVAL, self.backends.rows, self.show_backends,
                                   active=self.dashboard_visible, on_error=self.poll_failed,
                                   shown=shown_rows)
        self.memory_poll = Poller(self, "memory", MEMORY_INTERVAL, self.memory_reader, self.update_topbar,
                                  active=self.dashboard_visible, on_error=lambda e: None, shown=lambda m: m)
        if self.polls_enabled:
            self.backend_poll.start()
            self.memory_poll.start()
        if self.autostart:
            self.call_after_refresh(self.autostart_demo)
        if self.is_headless:
            return
        # SSH drop: SIGHUP when it arrives, and a watchdog for when it is ignored (nohup, some shells).
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.hangup)
        self.set_interval(1.0, self.check_tty, name="tty-watchdog")

    @property
    def narrow(self) -> bool:
        return self.size.width < NARROW_WIDTH

    def on_resize(self, event: Any) -> None:
        self.apply_width(event.size.width)

    def apply_width(self, width: int) -> None:
        body = self.body
        body.set_class(width < NARROW_WIDTH, "-narrow")
        table = self.backends_table
        if table.narrow != (width < NARROW_WIDTH) and table.rows_data:
            table.show(table.rows_data, narrow=width < NARROW_WIDTH)
        table.narrow = width < NARROW_WIDTH
        self.update_log_title()

    def dashboard_visible(self) -> bool:
        """Polls pause while a modal screen covers the dashboard."""
        return len(self.screen_stack) <= 1 and not self.hung_up

    def on_descendant_focus(self, event: Any) -> None:
        scopes: tuple[str, ...] = ("console", "backend")
        if isinstance(self.focused, LogView):
            scopes = ("log", "console", "backend")
        elif isinstance(self.focused, BenchPane) or self.bench_pane.has_focus_within:
            scopes = ("bench", "console", "backend")
        self.key_bar.set_scopes(scopes)

    # ---- top bar, memory -------------------------------------------------------------------------------

    def update_topbar(self, memory: str | None = None) -> None:
        if memory is not None:
            self._memory_line = memory
        memory = self._memory_line
        where = _home(self.config.path) if self.config.exists else "no config: demo backend"
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" mlx-console ", style="bold reverse")
        if memory:  # before the path: pressure matters more than where the config lives
            style = {"warn": "bold yellow", "critical": "bold reverse red"}.get(memory.rsplit(" ", 1)[-1], "")
            t.append(f" {memory} ", style=style)
        t.append(f" {where}", style="dim")
        if t.plain != self._topbar_text:
            self._topbar_text = t.plain
            self.topbar.update(t)

    # ---- backends --------------------------------------------------------------------------------------

    def show_backends(self, rows: list[dict[str, Any]]) -> None:
        rows = [dict(r, status=self._busy[str(r.get("name"))])
                if str(r.get("name")) in self._busy and r.get("status") in ("n/a", "stopped", "dead") else r
                for r in rows]
        self.backends_table.show(rows, narrow=self.narrow)
        if self.log_backend is None and rows:
            self.select_log(str(rows[0].get("name")))
        self.update_log_title()

    def poll_failed(self, error: BaseException) -> None:
        self.notify(f"{type(error).__name__}: {error}", severity="error", timeout=6)

    def selected_backend(self) -> str | None:
        return self.backends_table.selected_name or (self.config.backends[0].name if self.config.backends else None)

    @on(DataTable.RowHighlighted, "#backends")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = self.backends_table.selected_name
        if name and name != self.log_backend:
            self.select_log(name)

    def backend_names(self) -> list[str]:
        return [p.name for p in self.config.backends]

    def check_backend(self, name: str) -> bool:
        if name not in self.backend_names():
            self.notify(f"no backend named {name!r}; configured: {', '.join(self.backend_names())}",
                        severity="error")
            return False
        return True

    def act_on_backend(self, verb: str, name: str | None) -> None:
        if name is None:
            self.notify("no backend selected", severity="warning")
            return
        if not self.check_backend(name):
            return
        if name in self._busy:
            self.notify(f"{name}: already {self._busy[name]}", severity="warning")
            return
        self._busy[name] = {"start": "starting", "stop": "stopping", "restart": "restarting"}[verb]
        self.notify(f"{name}: {self._busy[name]}…", timeout=3)
        self.backend_worker(verb, name)

    @work(thread=True, group="backend-actions")
    def backend_worker(self, verb: str, name: str) -> None:
        def progress(msg: str) -> None:
            self.call_from_thread(self.backend_progress, name, msg)

        try:
            if verb == "start":
                status = self.backends.start(name, progress=progress)
            elif verb == "stop":
                status = self.backends.stop(name)
            else:
                status = self.backends.restart(name, progress=progress)
        except (ConsoleError, OSError) as e:
            self.call_from_thread(self.backend_done, name, verb, None, str(e))
        else:
            self.call_from_thread(self.backend_done, name, verb, status, None)

    def backend_progress(self, name: str, message: str) -> None:
        self._progress[name] = message
        self.update_log_status()
        if self.backend_poll:
            self.backend_poll.poke()

    def backend_done(self, name: str, verb: str, status: Any, error: str | None) -> None:
        self._busy.pop(name, None)
        self._progress.pop(name, None)
        if error:
            self.notify(f"{name}: {verb} failed: {error}", severity="error", timeout=15)
        else:
            state = status.to_json().get("status") if hasattr(status, "to_json") else None
            self.notify(f"{name}: {verb} done" + (f" ({state})" if state else ""), timeout=4)
        self.update_log_status()
        if self.backend_poll:
            self.backend_poll.poke()

    def autostart_demo(self) -> None:
        demo = next((p for p in self.config.backends if p.demo), None)
        if demo is None:
            return
        self.autostart_worker(demo.name)

    @work(thread=True, group="autostart")
    def autostart_worker(self, name: str) -> None:
        try:
            rows = {str(r.get("name")): r for r in self.backends.rows()}
        except Exception as e:  # shown, never fatal
            self.call_from_thread(self.notify, f"demo: {e}", severity="error")
            return
        if rows.get(name, {}).get("status") in ("ready", "starting", "loading", "degraded"):
            return
        self.call_from_thread(self.notify, f"No config file ({self.config.path}): starting the built-in demo "
                              "backend, a tiny random model (it talks gibberish). Add your backends to that file.",
                              timeout=12)
        self.call_from_thread(self.act_on_backend, "start", name)

    def action_start(self) -> None:
        self.act_on_backend("start", self.selected_backend())

    def action_stop(self) -> None:
        self.act_on_backend("stop", self.selected_backend())

    def action_restart(self) -> None:
        self.act_on_backend("restart", self.selected_backend())

    def action_logs(self) -> None:
        name = self.selected_backend()
        if name:
            self.select_log(name, force=True)
            self.log_view.focus()

    # ---- log -------------------------------------------------------------------------------------------

    def select_log(self, name: str, force: bool = False) -> None:
        """Show `name`'s log in the centre (force: re-open it, e.g. after a restart made a new file)."""
        if name == self.log_backend and not force:
            return
        self.log_backend = name
        self.backends_table.select_name(name)
        if self.polls_enabled:
            self.open_log(name)
        self.update_log_title()
        self.update_log_status()

    def open_log(self, name: str) -> None:
        if self._log_stop is not None:
            self._log_stop.set()
        self._log_stop = threading.Event()
        self.log_view.clear()
        self.log_path = None
        self.log_note = ""
        self.log_worker(name, self._log_stop)

    def action_next_log_file(self) -> None:
        name = self.log_backend or self.selected_backend()
        if name is None:
            self.notify("no backend selected", severity="warning")
            return
        self.log_file_choice[name] = self.log_file_choice.get(name, 0) + 1
        self.select_log(name, force=True)

    def _log_file(self, name: str) -> Path | None:
        """Worker side: the log chosen for `name` (the captured log unless L switched to another)."""
        choice = self.log_file_choice.get(name, 0)
        if not choice:
            return self.backends.log_path(name)
        paths = self.backends.log_paths(name)
        if len(paths) < 2:
            self.call_from_thread(self.log_file_choice.__setitem__, name, 0)  # app state: on the loop
            self.call_from_thread(self.notify, f"{name}: only one log (the captured output)", timeout=4)
            return paths[0] if paths else self.backends.log_path(name)
        path = paths[choice % len(paths)]
        self.call_from_thread(self.notify, f"{name}: showing {path}", timeout=4)
        return path

    @work(thread=True, group="log-follow")
    def log_worker(self, name: str, stop: threading.Event) -> None:
        try:
            path = self._log_file(name)
        except Exception as e:  # reported, never fatal
            self.call_from_thread(self.set_log_note, f"log: {type(e).__name__}: {e}")
            return
        if path is None:
            self.call_from_thread(self.set_log_note, "log: not available yet (the supervisor is not in this build)")
            return
        self.call_from_thread(self.set_log_path, name, path)

        def deliver(batch: Batch) -> None:
            if not stop.is_set():
                self.call_from_thread(self.show_log_batch, name, batch)

        try:
            # is_running goes False as Textual shuts down, even when exit() was not called (a crash).
            follow(path, deliver, lambda: stop.is_set() or not self.is_running,
                   lambda: not self.dashboard_visible(), self.config.catalogs)
        except Exception as e:  # a broken catalogue or unreadable file is shown, the console goes on
            self.call_from_thread(self.set_log_note, f"log: {type(e).__name__}: {e}")

    def set_log_path(self, name: str, path: Path) -> None:
        if name == self.log_backend:
            self.log_path = path
            self.update_log_title()

    def set_log_note(self, note: str) -> None:
        self.log_note = note
        self.update_log_status()

    def show_log_batch(self, name: str, batch: Batch) -> None:
        if name != self.log_backend:
            return
        if batch.note != self.log_note:
            self.log_note = batch.note
            self.update_log_status()
        if batch.reset and self.log_view.line_count:
            self.log_view.clear()
        self.log_view.append(batch.lines)
        if batch.events:
            self.log_view.add_events(batch.events)

    def update_log_title(self) -> None:
        if not self.is_mounted:
            return
        title = Text(no_wrap=True, overflow="ellipsis")
        bench_visible = self.bench_pane.display
        if self.narrow:
            title.append(" Log ", style="reverse bold" if not bench_visible else "dim")
            title.append(" Bench ", style="reverse bold" if bench_visible else "dim")
            title.append(" (b switches) ", style="dim")
        else:
            title.append(" Log ", style="reverse bold")
        title.append(f" {self.log_backend or '(no backend)'}")
        path = self.log_path
        if path is not None and not self.narrow:
            title.append(f"  {path}", style="dim")
        if title.plain != self._log_title_text:  # an equal update still re-lays out the screen
            self._log_title_text = title.plain
            self.log_title.update(title)

    def update_log_status(self, status: LogView.Status | None = None) -> None:
        log = self.log_view
        t = Text(no_wrap=True, overflow="ellipsis")
        if self.log_note:
            t.append(f" {self.log_note}", style="dim")
        elif log.follow:
            t.append(" ● following", style="bold")
        else:
            t.append(" ❚❚ paused", style="bold")
            if log.new_lines:
                t.append(f"  ▼ {log.new_lines} new lines", style="bold reverse")
            t.append("  End resumes", style="dim")
        if log.filter_text:
            shown = status.shown if status else len(log.shown_lines())
            t.append(f"  filter: {log.filter_text!r} ({shown} lines)  Esc clears", style="bold")
        busy = self._progress.get(self.log_backend or "") or self._busy.get(self.log_backend or "")
        if busy:
            t.append(f"  {busy}", style="italic")
        if t.plain != self._log_status_text:  # Static.update repaints (and re-lays out) even when equal
            self._log_status_text = t.plain
            self.log_status.update(t)

    @on(LogView.Status)
    def _log_status(self, event: LogView.Status) -> None:
        self.update_log_status(event)

    @on(LogView.EventSelected)
    def _event_selected(self, event: LogView.EventSelected) -> None:
        self.triage_card.show_event(event.event)

    # ---- bench pane ------------------------------------------------------------------------------------

    def action_toggle_bench(self) -> None:
        pane = self.bench_pane
        pane.display = not pane.display
        self.log_pane.display = not (self.narrow and pane.display)
        if pane.display:
            pane.refresh_state(self.selected_backend())
        elif not self.log_view.has_focus:
            self.log_view.focus()
        self.update_log_title()

    def action_run_bench(self, suite: str | None = None) -> None:
        pane = self.bench_pane
        if not pane.display:
            self.action_toggle_bench()
        pane.run(self.selected_backend(), suite)

    # ---- screens ---------------------------------------------------------------------------------------

    def action_help(self) -> None:
        from mlx_console.ui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_doctor(self) -> None:
        from mlx_console.ui.screens.doctor import DoctorScreen

        self.push_screen(DoctorScreen(self.config))

    def action_swap(self, model: str | None = None) -> None:
        from mlx_console.ui.screens.swap import SwapScreen

        name = self.selected_backend()
        if name is None:
            self.notify("no backend selected", severity="warning")
            return
        self.push_screen(SwapScreen(self.config, self.backends, name, model))

    def action_settings(self, model: str | None = None) -> None:
        from mlx_console.ui.screens.settings import SettingsScreen

        self.push_screen(SettingsScreen(self.config, self.selected_backend(), model))

    # ---- command line ----------------------------------------------------------------------------------

    def action_command_line(self, mode: str = ":") -> None:
        text = self.log_view.filter_text if mode == "/" else ""
        self.command_line.open(mode, text)

    def completion_candidates(self, kind: str) -> list[str]:
        if kind == "backend":
            return self.backend_names()
        if kind == "theme":
            return sorted(self.theme_set.themes)
        if kind == "model":
            return list(getattr(self, "known_models", []))
        if kind == "suite":
            return self.bench_pane.suite_names()
        return []

    @on(CommandLine.Submitted)
    def _command_submitted(self, event: CommandLine.Submitted) -> None:
        if event.mode == "/":
            self.log_view.filter_text = event.text
            return
        if not event.text.strip():
            return
        try:
            parsed = parse(event.text)
        except CommandError as e:
            self.notify(str(e), severity="error")
            return
        self.run_command(parsed)

    def run_command(self, p: Parsed) -> None:
        name, arg = p.name, p.arg
        if name in ("start", "stop", "restart"):
            self.act_on_backend(name, arg)
        elif name == "logs":
            if self.check_backend(arg):
                self.select_log(arg, force=True)
                self.log_view.focus()
        elif name == "swap":
            self.action_swap(arg)
        elif name == "settings":
            self.action_settings(arg or None)
        elif name == "bench":
            if arg:
                self.action_run_bench(arg)
            else:
                pane = self.bench_pane
                if not pane.display:
                    self.action_toggle_bench()
        elif name == "doctor":
            self.action_doctor()
        elif name == "filter":
            self.log_view.filter_text = arg
        elif name == "theme":
            self.set_theme(arg)
        elif name == "q":
            self.exit(0)

    def set_theme(self, name: str, at_start: bool = False) -> None:
        """Switch theme. At start an unusable theme falls back with a notice; `:theme` keeps the current one."""
        theme, notice = self.theme_set.resolve(name)
        if notice and not at_start:
            known = ", ".join(sorted(self.theme_set.themes))
            self.notify(f"theme {name!r} is not available (known: {known}); keeping {self.theme}",
                        severity="warning", timeout=8)
            return
        if notice:
            self.notify(notice, severity="warning", timeout=10)
        self.theme = theme.name
        if self.is_mounted:
            self.backends_table.show(self.backends_table.rows_data, force=True)
            self.key_bar.refresh()

    # ---- palette ---------------------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        on_dashboard = screen is self.screen_stack[0]
        for a in registry.ACTIONS:
            if not a.palette or not a.action:
                continue
            if a.scope in ("log", "bench", "backend") and not on_dashboard:
                continue
            if a.scope == "backend":
                continue  # offered per backend below
            key = registry.display_key(a, self.keymap_config)
            target = self.log_view if a.scope == "log" else self
            yield SystemCommand(a.help, f"{a.id} · key {key}" if key else a.id,
                                lambda t=target, act=a.action: self.call_later(t.run_action, act))
        if on_dashboard:
            for name in self.backend_names():
                for verb in ("start", "stop", "restart", "logs"):
                    yield SystemCommand(f"{verb.capitalize()} {name}", f":{verb} {name}",
                                        lambda v=verb, n=name: self.run_command(parse(f"{v} {n}")),
                                        discover=name == self.selected_backend())
        for theme in sorted(self.theme_set.themes):
            yield SystemCommand(f"Theme: {theme}", f":theme {theme}",
                                lambda t=theme: self.set_theme(t), discover=False)
        yield SystemCommand("Quit", "Quit the console (backends keep running)", lambda: self.exit(0))

    # ---- terminal going away ---------------------------------------------------------------------------

    def check_tty(self) -> None:
        """Exit when the controlling terminal is gone (SSH drop): never spin on a dead TTY."""
        if not _tty_alive():
            self.hangup()

    def hangup(self) -> None:
        if self.hung_up:
            return
        self.hung_up = True
        for poll in (self.backend_poll, self.memory_poll):
            if poll:
                poll.stop()
        if self._log_stop is not None:
            self._log_stop.set()
        # Writing to a hung-up terminal can block or fail: give a clean exit a moment, then leave anyway.
        timer = threading.Timer(3.0, os._exit, args=(129,))
        timer.daemon = True
        timer.start()
        self.exit(129)


def _state_file(name: str) -> Path | None:
    from mlx_console import paths

    try:
        return paths.state_dir() / name
    except OSError:
        return None


def _home(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home):] if text.startswith(home + os.sep) else text


def read_memory() -> str | None:
    """Worker side: one line on machine memory for the top bar (None when the core cannot tell)."""
    from mlx_console.core import api

    m = api.memory()
    return f"mem {api.fmt_bytes(m.available, compact=True)} free/{api.fmt_bytes(m.total, compact=True)} {m.pressure}"


def _tty_alive() -> bool:
    import termios

    for stream in (sys.__stdin__, sys.__stdout__):
        try:
            if stream is None:
                return False
            termios.tcgetattr(stream.fileno())
        except (termios.error, OSError, ValueError):
            return False
    return True


def run_console(args: argparse.Namespace) -> int:
    from mlx_console.core import api

    config = api.load_config(getattr(args, "config", None))
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConsoleError("the console needs a terminal; for scripts use the subcommands (see --help)")
    app = ConsoleApp(config)
    code = app.run()
    return int(code or 0)
