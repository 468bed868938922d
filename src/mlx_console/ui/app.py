"""The console app: dashboard (backends, log pane, bench pane), `:` commands, palette, themes, polls.

It renders what the core reports and calls the core to act. Blocking calls run in thread workers
that hand results back with call_from_thread; handlers on the event loop own all state. The log pane
(widgets/log_pane.py) follows the shown log; the backends controller (backends_controller.py) acts on backends.
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
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from mlx_console.core.api import Config, ConsoleError
from mlx_console.ui import actions as registry
from mlx_console.ui import textual_private as compositor
from mlx_console.ui.backends_controller import BackendsController
from mlx_console.ui.backends_source import Backends
from mlx_console.ui.commands import CommandCall, CommandError, parse
from mlx_console.ui.polling import Poller
from mlx_console.ui.themes import FALLBACK, ThemeSet, load_themes
from mlx_console.ui.widgets.backends_table import BackendsTable
from mlx_console.ui.widgets.backends_table import shown as shown_rows
from mlx_console.ui.widgets.bench_pane import BenchPane
from mlx_console.ui.widgets.command_line import CommandLine
from mlx_console.ui.widgets.key_bar import KeyBar
from mlx_console.ui.widgets.log_pane import LogPane
from mlx_console.ui.widgets.log_view import LogView

UI = Path(__file__).parent
# The console's CSS: its layout, then each widget's and screen's own file (widgets/*.tcss, screens/*.tcss).
CSS_FILES = [UI / "app.tcss", *sorted((UI / "widgets").glob("*.tcss")), *sorted((UI / "screens").glob("*.tcss"))]
NARROW_WIDTH = 110       # below this the bench pane becomes a tab over the log
BACKENDS_INTERVAL = 1.0  # s between supervisor polls
MEMORY_INTERVAL = 10.0   # s between memory pressure reads


class ConsoleApp(BackendsController, App[int]):
    CSS_PATH = CSS_FILES
    TITLE = "mlx-console"
    BINDINGS = registry.bindings(("console", "backend", "bench")) + registry.line_openers()

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
        # The theme is chosen before the app runs: set in on_mount, Textual re-parsed every stylesheet and re-applied
        # it to all mounted widgets before the first frame (App.refresh_css); set here, nothing is mounted yet.
        for theme in self.theme_set.themes.values():
            self.register_theme(theme)
        self.register_theme(FALLBACK)
        start, notice = self.theme_set.resolve(
            remembered_theme(config.theme, _state_file("console.json")) or config.theme)
        self.startup_notices += [notice] if notice else []
        self.theme = start.name
        self.init_backends()
        self.backend_poll: Poller | None = None
        self.memory_poll: Poller | None = None
        self.hung_up = False
        self._memory_line = ""
        self._topbar_text: str | None = None
        self.known_models: list[str] = []  # what `:swap`/`:settings` complete: discovered once at start

    # ---- layout ------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # Kept as attributes: app.query_one() searches the *active* screen, which may be a modal.
        self.topbar = Static(id="topbar")
        self.backends_table = BackendsTable(id="backends")
        self.reasons = Static(id="reasons")
        self.log_pane = LogPane(id="log-pane")
        self.log_view = self.log_pane.view
        self.triage_card = self.log_pane.card
        self.bench_pane = BenchPane(id="bench")
        self.body = Horizontal(self.log_pane, self.bench_pane, id="body")
        self.command_line = CommandLine(self.completion_candidates, id="cmdline",
                                        history_path=_state_file("console_history"))
        self.key_bar = KeyBar(id="keys")
        yield self.topbar
        yield self.backends_table
        yield self.reasons
        yield self.body
        yield self.command_line
        yield self.key_bar

    def on_mount(self) -> None:
        compositor.install(self.screen)
        if self.keymap_config:
            self.set_keymap(self.keymap_config)
        for notice in self.startup_notices:
            self.notify(notice, severity="warning", timeout=10)
        self.apply_width(self.size.width)
        self.bench_pane.display = False
        self.update_topbar()
        self.log_pane.update_title()
        self.log_view.focus()
        self.backends_table.show(self.backends.placeholder_rows(), narrow=self.narrow)
        self.backend_poll = Poller(self, "backends", BACKENDS_INTERVAL, self.backends.rows, self.show_backends,
                                   active=self.dashboard_visible, on_error=self.poll_failed,
                                   shown=shown_rows)
        self.memory_poll = Poller(self, "memory", MEMORY_INTERVAL, self.memory_reader, self.update_topbar,
                                  active=self.dashboard_visible, on_error=lambda e: None, shown=lambda m: m)
        if self.polls_enabled:  # after the first frame: the first paint does not wait for psutil and /proc
            self.call_after_refresh(self.start_polls)
        if self.autostart:
            self.call_after_refresh(self.autostart_demo)
        if self.polls_enabled:
            self.call_after_refresh(self.discover_models)
        if self.is_headless:
            return
        # SSH drop: SIGHUP when it arrives, and a watchdog for when it is ignored (nohup, some shells).
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.hangup)
        self.set_interval(1.0, self.check_tty, name="tty-watchdog")

    def start_polls(self) -> None:
        if self.backend_poll is not None and self.memory_poll is not None:
            self.backend_poll.start()
            self.memory_poll.start()

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
        self.log_pane.update_title()

    def dashboard_visible(self) -> bool:
        """Polls pause while a modal screen covers the dashboard."""
        return len(self.screen_stack) <= 1 and not self.hung_up

    def on_descendant_focus(self, event: Any) -> None:
        self.update_key_scopes()

    def update_key_scopes(self) -> None:
        """The footer's keys follow the dashboard's focus. Backend keys first (they stay at 80 columns, after
        the name of the backend they act on)."""
        if len(self.screen_stack) > 1:
            return  # a modal's focus says nothing about the dashboard's footer
        scopes: tuple[str, ...] = ("backend", "console")
        if isinstance(self.focused, LogView):
            scopes = ("backend", "log", "console")
        elif isinstance(self.focused, BenchPane) or self.bench_pane.has_focus_within:
            scopes = ("backend", "bench", "console")
        self.key_bar.set_scopes(scopes)

    def pop_screen(self) -> Any:
        """Back on the dashboard the focus is restored without a focus event: the footer follows it here."""
        done = super().pop_screen()
        self.call_later(self.update_key_scopes)
        return done

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

    # ---- backends and the shown log ---------------------------------------------------------------------

    @property
    def log_backend(self) -> str | None:
        return self.log_pane.backend

    @property
    def log_path(self) -> Path | None:
        return self.log_pane.path

    def select_log(self, name: str, force: bool = False) -> None:
        """Show `name`'s log in the centre (force: re-open it, e.g. after a restart made a new file)."""
        self.backends_table.select_name(name)
        self.log_pane.select(name, force)

    @on(DataTable.RowHighlighted, "#backends")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = self.backends_table.selected_name
        if name and name != self.log_backend:
            self.select_log(name)
        self.key_bar.refresh()

    def backend_names(self) -> list[str]:
        remote = [str(r.get("name")) for r in self.backends_table.rows_data  # [[host]]s' backends: NAME@HOST
                  if r.get("fleet_host") not in (None, "local") and r.get("status") != "unreachable"]
        return [p.name for p in self.config.backends] + remote

    def action_describe(self, name: str | None = None) -> None:
        from mlx_console.ui.screens.describe import DescribeScreen

        name = name or self.selected_backend()
        if name is None or not self.check_backend(name):
            return
        row = next((r for r in self.backends_table.rows_data if r.get("name") == name), None)
        self.push_screen(DescribeScreen(self.backends, name, row))

    def action_messages(self) -> None:
        from mlx_console.ui.screens.describe import MessagesScreen

        self.push_screen(MessagesScreen(list(self.messages)))

    def action_next_log_file(self) -> None:
        name = self.log_backend or self.selected_backend()
        if name is None:
            self.notify("no backend selected", severity="warning")
            return
        self.log_pane.next_file(name)

    # ---- bench pane ------------------------------------------------------------------------------------

    def action_toggle_bench(self) -> None:
        pane = self.bench_pane
        pane.display = not pane.display
        self.log_pane.display = not (self.narrow and pane.display)
        if pane.display:
            pane.refresh_state(self.selected_backend())
        elif not self.log_view.has_focus:
            self.log_view.focus()
        self.log_pane.update_title()

    def action_bench(self, suite: str | None = None) -> None:
        """`:bench [SUITE]`: show the pane; with a suite, run it."""
        if suite:
            self.action_run_bench(suite)
        elif not self.bench_pane.display:
            self.action_toggle_bench()

    def action_run_bench(self, suite: str | None = None) -> None:
        """`B`/`:bench SUITE`. An oMLX backend serving several models asks which one first (a bench request
        names one model), then a ready backend asks before the run."""
        name = self.selected_backend()
        if self.bench_pane.remote_note(name):  # nothing to confirm: the pane says where to run it
            self.run_bench_now(suite)
            return
        row = next((r for r in self.backends_table.rows_data if r.get("name") == name), {})
        loaded = [str(m) for m in row.get("loaded_models") or []]
        if row.get("kind") == "omlx" and len(loaded) > 1:
            from mlx_console.ui.screens.confirm import ChoiceScreen

            self.push_screen(ChoiceScreen(f"{name} has {len(loaded)} models loaded: bench which one?", loaded),
                             lambda model: self.confirm_bench(name, suite, model) if model
                             else self.notify("cancelled", timeout=2))
            return
        self.confirm_bench(name, suite, None)

    def confirm_bench(self, name: str | None, suite: str | None, model: str | None) -> None:
        on = f"{name} ({model})" if model else name
        self.confirm_then(name, f"Run the bench on {on}? It sends requests to a ready backend.",
                          lambda: self.run_bench_now(suite, model))

    def action_bench_next_cell(self) -> None:
        self.bench_pane.action_next_cell()

    def run_bench_now(self, suite: str | None = None, model: str | None = None) -> None:
        pane = self.bench_pane
        if not pane.display:
            self.action_toggle_bench()
        pane.run(self.selected_backend(), suite, model)

    @work(thread=True, exclusive=True, group="discover-models")
    def discover_models(self) -> None:
        """The models `:swap` completes, without opening the picker first (the picker refreshes them)."""
        from mlx_console.ui.screens.swap import model_ids

        try:
            ids = model_ids(self.config)
        except Exception:  # noqa: BLE001 - completion is a convenience: the picker reports discovery errors
            return
        self.call_from_thread(self._got_models, ids)

    def _got_models(self, ids: list[str]) -> None:
        # (a method, not `setattr`: Textual reads a callback's signature, and a builtin's costs a tokenizer regex
        # compile, ~10 ms on the event loop at start)
        self.known_models = ids

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
        """oMLX backend: its model settings. mlx-lm backend: its server flags (`args`); no oMLX form there."""
        from mlx_console.ui.screens.settings import SettingsScreen

        name = self.selected_backend()
        profile = next((p for p in self.config.backends if p.name == name), None)
        if profile is not None and profile.kind == "mlx-lm":
            from mlx_console.ui.screens.server_flags import FlagsScreen

            if model:
                self.notify(f"{name} is an mlx-lm backend: its settings are server flags, not per model "
                            f"({model!r} ignored)", severity="warning", timeout=6)
            self.push_screen(FlagsScreen(self.config, profile.name))
            return
        remote = self.backends.remote_settings(name) if name else None
        self.push_screen(SettingsScreen(self.config, name, model, remote=remote))

    def action_metrics(self, name: str | None = None) -> None:
        from mlx_console.ui.screens.metrics import MetricsScreen

        self.push_screen(MetricsScreen(self.backend_names(), name or self.selected_backend(),
                                       loader=self.backends.metrics_plot))

    # ---- command line ----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The line openers (priority bindings) only act on the dashboard and never while an input is typed
        into: there `:`, `/` and `&` are text."""
        if action == "command_line":
            return len(self.screen_stack) <= 1 and not isinstance(self.focused, Input)
        return True

    def action_command_line(self, mode: str = ":") -> None:
        text = {"/": self.log_view.search_text, "&": self.log_view.filter_text}.get(mode, "")
        self.command_line.open(mode, text)

    def on_paste(self, event: events.Paste) -> None:
        """A paste outside an input on the dashboard (`:start tiny⏎`): each whole line runs as a command,
        a last line without its newline waits on the command line."""
        if len(self.screen_stack) > 1 or isinstance(self.focused, Input):
            return
        lines = event.text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        for i, line in enumerate(lines):
            whole = i < len(lines) - 1
            mode = line[:1] if line[:1] in (":", "/", "&") else ":"
            text = line[1:] if line[:1] in (":", "/", "&") else line
            if whole and text.strip():
                self.command_line.submit(mode, text)
            elif not whole and line:
                self.command_line.open(mode, text)

    def completion_candidates(self, kind: str) -> list[str]:
        if kind == "backend":
            return self.backend_names()
        if kind == "theme":
            return sorted(self.theme_set.themes)
        if kind == "model":
            return list(self.known_models)
        if kind == "suite":
            return self.bench_pane.suite_names()
        return []

    @on(CommandLine.Submitted)
    def _command_submitted(self, event: CommandLine.Submitted) -> None:
        if event.mode in ("/", "&"):
            self.log_view.set_pattern("search_text" if event.mode == "/" else "filter_text", event.text)
            return
        if not event.text.strip():
            return
        try:
            parsed = parse(event.text)
        except CommandError as e:
            self.notify(str(e), severity="error")
            return
        self.run_command(parsed)

    def run_command(self, p: CommandCall) -> None:
        """Run a `:` command: the registry names the action and its target (log commands act on the log)."""
        target = self.log_view if p.action.scope == "log" else self
        self.call_later(target.run_action, p.action.call(p.arg))

    def action_theme(self, name: str) -> None:
        self.set_theme(name)

    def set_theme(self, name: str) -> None:
        """Switch theme (`:theme`): an unusable one is refused and the current one kept. (At start, __init__ picks
        the theme: an unusable one falls back with a notice.)"""
        theme, notice = self.theme_set.resolve(name)
        if notice:
            known = ", ".join(sorted(self.theme_set.themes))
            self.notify(f"theme {name!r} is not available (known: {known}); keeping {self.theme}",
                        severity="warning", timeout=8)
            return
        self.theme = theme.name
        remember_theme(theme.name, self.config.theme, _state_file("console.json"))
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
        self.log_pane.stop()
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


def remembered_theme(config_theme: str, path: Path | None) -> str | None:
    """The theme last chosen with `:theme` (state/console.json), unless the config's `theme` changed since:
    then the file the person edited wins."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("config_theme") != config_theme:
        return None
    theme = data.get("theme")
    return theme if isinstance(theme, str) and theme else None


def remember_theme(theme: str, config_theme: str, path: Path | None) -> None:
    import json

    from mlx_console.core.api import write_atomic

    if path is None:
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = {}
    data = dict(old if isinstance(old, dict) else {}, theme=theme, config_theme=config_theme)
    try:
        write_atomic(path, (json.dumps(data, indent=2) + "\n").encode(), mode=0o600)
    except OSError:
        pass  # a preference: never an error on screen


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
