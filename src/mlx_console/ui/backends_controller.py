"""The backends controller: the console's side of the supervisor (start/stop/restart in workers, busy
state, the demo autostart). A mixin of the app: it shares the app's notify, workers and widgets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work

from mlx_console.core.errors import ConsoleError
from mlx_console.ui.core_api import NotAvailable

if TYPE_CHECKING:
    from mlx_console.ui.app import ConsoleApp

BUSY = {"start": "starting", "stop": "stopping", "restart": "restarting"}


class BackendsController:
    _busy: dict[str, str]       # backend → what is being done to it (starting/stopping/…)
    _progress: dict[str, str]   # backend → the last progress line of that action

    def init_backends(self) -> None:
        self._busy = {}
        self._progress = {}

    def busy_text(self: ConsoleApp, name: str | None) -> str:
        return self._progress.get(name or "") or self._busy.get(name or "") or ""

    def show_backends(self: ConsoleApp, rows: list[dict[str, Any]]) -> None:
        rows = [dict(r, status=self._busy[str(r.get("name"))])
                if str(r.get("name")) in self._busy and r.get("status") in ("n/a", "stopped", "dead") else r
                for r in rows]
        self.backends_table.show(rows, narrow=self.narrow)
        if self.backends.unavailable:
            self.topbar.tooltip = self.backends.unavailable
        if self.log_backend is None and rows:
            self.select_log(str(rows[0].get("name")))
        self.log_pane.update_title()

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
        except (ConsoleError, NotAvailable, OSError) as e:
            self.call_from_thread(self.backend_done, name, verb, None, str(e))
        else:
            self.call_from_thread(self.backend_done, name, verb, status, None)

    def backend_progress(self: ConsoleApp, name: str, message: str) -> None:
        self._progress[name] = message
        self.log_pane.update_status()
        if self.backend_poll:
            self.backend_poll.poke()

    def backend_done(self: ConsoleApp, name: str, verb: str, status: Any, error: str | None) -> None:
        self._busy.pop(name, None)
        self._progress.pop(name, None)
        if error:
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
        if self.backends.unavailable or not _supervisor_present():
            self.notify("No config file: the built-in demo backend would start here, but the supervisor is "
                        "not available yet in this build.", severity="warning", timeout=10)
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

    def action_stop(self: ConsoleApp, name: str | None = None) -> None:
        self.act_on_backend("stop", name or self.selected_backend())

    def action_restart(self: ConsoleApp, name: str | None = None) -> None:
        self.act_on_backend("restart", name or self.selected_backend())

    def action_logs(self: ConsoleApp, name: str | None = None) -> None:
        name = name or self.selected_backend()
        if name and self.check_backend(name):
            self.select_log(name, force=True)
            self.log_view.focus()


def _supervisor_present() -> bool:
    from mlx_console.ui.core_api import has

    return has("lifecycle.control", "Supervisor")
