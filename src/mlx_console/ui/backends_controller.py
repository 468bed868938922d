"""The backends controller: the console's side of the supervisor (start/stop/restart in workers, busy
state, the demo autostart). A mixin of the app: it shares the app's notify, workers and widgets."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work

from mlx_console.core.api import ConsoleError

if TYPE_CHECKING:
    from mlx_console.ui.app import ConsoleApp

BUSY = {"start": "starting", "stop": "stopping", "restart": "restarting"}
EXPLAINED = ("dead", "degraded")  # states whose reason is shown under the table


@dataclass(frozen=True)
class Message:
    """A notice that stays (`:messages`): a crash, a restart, a give-up, a failed action."""

    at: float
    backend: str
    kind: str       # crash | restart | gave-up | degraded | recovered | failed | warning
    text: str

    @property
    def severity(self) -> str:
        return {"crash": "error", "gave-up": "error", "failed": "error", "degraded": "warning",
                "restart": "warning", "warning": "warning"}.get(self.kind, "information")


def transitions(before: dict[str, Any] | None, row: dict[str, Any], at: float) -> list[Message]:
    """What changed between two polls of one backend that an operator must be told about."""
    if before is None:
        return []
    name, state, reason = str(row.get("name")), str(row.get("status")), str(row.get("reason") or "")
    was = str(before.get("status"))
    out: list[Message] = []
    restarts, old_restarts = row.get("restarts") or 0, before.get("restarts") or 0
    if isinstance(restarts, int) and isinstance(old_restarts, int) and restarts > old_restarts:
        out.append(Message(at, name, "restart", f"{name}: restarted (restart #{restarts})"))
    if state != was:
        if state == "dead" and "gave up" in reason:
            out.append(Message(at, name, "gave-up", f"{name}: {reason}"))
        elif state == "dead":
            out.append(Message(at, name, "crash", f"{name}: died: {reason or 'no reason recorded'}"))
        elif state == "degraded":
            out.append(Message(at, name, "degraded", f"{name}: degraded: {reason or 'no reason recorded'}"))
        elif state == "ready" and was in EXPLAINED:
            out.append(Message(at, name, "recovered", f"{name}: ready again"))
    return out


def reason_lines(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(state, "name: state: reason") for every backend whose state needs explaining (and every unreachable
    [[host]], whose ssh error does not fit its row at 80 columns)."""
    return [(str(r.get("status")), f"{r.get('name')}: {r.get('status')}: {r.get('reason') or 'no reason recorded'}")
            for r in rows if r.get("status") in (*EXPLAINED, "unreachable")]


class BackendsController:
    _busy: dict[str, str]       # backend → what is being done to it (starting/stopping/…)
    _progress: dict[str, str]   # backend → the last progress line of that action

    messages: list[Message]     # what `:messages` lists, oldest first
    _last_rows: dict[str, dict[str, Any]]

    def init_backends(self) -> None:
        self._busy = {}
        self._progress = {}
        self.messages = []
        self._last_rows = {}

    def add_message(self: ConsoleApp, message: Message, toast: bool = True) -> None:
        self.messages.append(message)
        del self.messages[:-500]
        if toast:
            self.notify(message.text + "  (:messages keeps it)", severity=message.severity,  # type: ignore[arg-type]
                        timeout=8)

    def busy_text(self: ConsoleApp, name: str | None) -> str:
        return self._progress.get(name or "") or self._busy.get(name or "") or ""

    def show_backends(self: ConsoleApp, rows: list[dict[str, Any]]) -> None:
        rows = [dict(r, status=self._busy[str(r.get("name"))])
                if str(r.get("name")) in self._busy and r.get("status") in ("n/a", "stopped", "dead") else r
                for r in rows]
        now = time.time()
        for r in rows:
            name = str(r.get("name"))
            for m in transitions(self._last_rows.get(name), r, now):
                self.add_message(m)
            self._last_rows[name] = r
        self.backends_table.show(rows, narrow=self.narrow)
        self.show_reasons(rows)
        if self.log_backend is None and rows:
            self.select_log(str(rows[0].get("name")))
        self.log_pane.update_title()

    def show_reasons(self: ConsoleApp, rows: list[dict[str, Any]]) -> None:
        """The reason line(s) under the table: why each dead/degraded backend is so (as `backends status`)."""
        lines = reason_lines(rows)
        t = Text(no_wrap=True, overflow="ellipsis")
        for i, (state, line) in enumerate(lines[:3]):
            if i:
                t.append("\n")
            t.append(" ⚠ " if state == "degraded" else " ✗ ", style="bold")
            t.append(line)
        if len(lines) > 3:
            t.append(f"  (+{len(lines) - 3} more: i describes)", style="dim")
        self.reasons.display = bool(lines)
        if t.plain != getattr(self, "_reasons_text", None):
            self._reasons_text = t.plain
            self.reasons.update(t)

    def poll_failed(self: ConsoleApp, error: BaseException) -> None:
        self.notify(f"{type(error).__name__}: {error}", severity="error", timeout=6)

    def selected_backend(self: ConsoleApp) -> str | None:
        return self.backends_table.selected_name or (self.config.backends[0].name if self.config.backends else None)

    def backend_names(self: ConsoleApp) -> list[str]:
        return [p.name for p in self.config.backends]

    def check_backend(self: ConsoleApp, name: str) -> bool:
        if name not in self.backend_names():
            self.notify(f"no backend named {name!r}; configured: {', '.join(self.backend_names())}",
                        severity="error")
            return False
        return True

    def act_on_backend(self: ConsoleApp, verb: str, name: str | None) -> None:
        if name is None:
            self.notify("no backend selected", severity="warning")
            return
        if not self.check_backend(name):
            return
        if name in self._busy:
            self.notify(f"{name}: already {self._busy[name]}", severity="warning")
            return
        self._busy[name] = BUSY[verb]
        self.notify(f"{name}: {self._busy[name]}…", timeout=3)
        self.backend_worker(verb, name)

    @work(thread=True, group="backend-actions")
    def backend_worker(self: ConsoleApp, verb: str, name: str) -> None:
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

    def backend_progress(self: ConsoleApp, name: str, message: str) -> None:
        if message.startswith("warning: "):  # a start's warnings (port moved, exposure, advice) stay
            self.add_message(Message(time.time(), name, "warning", f"{name}: {message.removeprefix('warning: ')}"))
        self._progress[name] = message
        self.log_pane.update_status()
        if self.backend_poll:
            self.backend_poll.poke()

    def backend_done(self: ConsoleApp, name: str, verb: str, status: Any, error: str | None) -> None:
        self._busy.pop(name, None)
        self._progress.pop(name, None)
        if error:
            self.add_message(Message(time.time(), name, "failed", f"{name}: {verb} failed: {error}"), toast=False)
            self.notify(f"{name}: {verb} failed: {error}", severity="error", timeout=15)
        else:
            state = status.to_json().get("status") if hasattr(status, "to_json") else None
            self.notify(f"{name}: {verb} done" + (f" ({state})" if state else ""), timeout=4)
        self.log_pane.update_status()
        if self.backend_poll:
            self.backend_poll.poke()

    def autostart_demo(self: ConsoleApp) -> None:
        demo = next((p for p in self.config.backends if p.demo), None)
        if demo is None:
            return
        self.autostart_worker(demo.name)

    @work(thread=True, group="autostart")
    def autostart_worker(self: ConsoleApp, name: str) -> None:
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

    # ---- key and `:` command actions (NAME given by a command, else the selected backend) -------------

    def action_start(self: ConsoleApp, name: str | None = None) -> None:
        self.act_on_backend("start", name or self.selected_backend())

    # A key acts on the selected backend and asks first; a typed `:stop NAME` names it and does not ask.

    def action_stop(self: ConsoleApp, name: str | None = None) -> None:
        target = name or self.selected_backend()
        self.confirm_then(None if name else target, f"Stop {target}? It is ready and serving.",
                          lambda: self.act_on_backend("stop", target))

    def action_restart(self: ConsoleApp, name: str | None = None) -> None:
        target = name or self.selected_backend()
        self.confirm_then(None if name else target, f"Restart {target}? It is ready and serving; requests in "
                          "flight fail.", lambda: self.act_on_backend("restart", target))

    def backend_state(self: ConsoleApp, name: str | None) -> str | None:
        """The state the table shows for `name` (the last poll)."""
        row = next((r for r in self.backends_table.rows_data if r.get("name") == name), None)
        return str(row.get("status")) if row else None

    def confirm_then(self: ConsoleApp, name: str | None, question: str, act: Callable[[], None]) -> None:
        """Run `act` at once, or after a `y` when `name` is ready and the config asks for confirmations."""
        if name is None or not self.config.confirm or self.backend_state(name) != "ready":
            act()
            return
        from mlx_console.ui.screens.confirm import ConfirmScreen

        self.push_screen(ConfirmScreen(question), lambda yes: act() if yes else self.notify("cancelled", timeout=2))

    def action_logs(self: ConsoleApp, name: str | None = None) -> None:
        name = name or self.selected_backend()
        if name and self.check_backend(name):
            self.select_log(name, force=True)
            self.log_view.focus()
