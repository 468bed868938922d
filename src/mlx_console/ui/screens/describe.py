"""Read-only screens over the backends: describe one backend (`i`, Enter, `:describe NAME`) and the message
history (`:messages`: crashes, restarts, give-ups seen this session)."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from mlx_console.ui.actions import bindings
from mlx_console.ui.backends_controller import Message
from mlx_console.ui.backends_source import Backends
from mlx_console.ui.widgets.backends_table import human_bytes


def _when(t: Any) -> str:
    if not isinstance(t, int | float) or t <= 0:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def describe_text(info: dict[str, Any]) -> Text:
    """The describe view of one backend (`info` as Backends.describe returns it)."""
    t = Text()

    def field(label: str, value: Any, style: str = "") -> None:
        t.append(f"{label:<16}", style="bold")
        t.append(f"{value}\n", style=style)

    state = str(info.get("status") or "-")
    field("name", f"{info.get('name')} ({info.get('kind')})")
    field("state", state, "bold")
    if info.get("reason"):
        field("reason", info["reason"])
    field("model served", info.get("model") or "-")
    if info.get("swapped"):
        field("", "(swapped in: not the profile's model)", "dim")
    loaded = info.get("loaded_models") or []
    if len(loaded) > 1:
        field("models loaded", ", ".join(loaded))
    if info.get("fleet_host") not in (None, "", "local"):
        field("on host", f"{info['fleet_host']} (read over ssh: pids, paths and logs are that host's)")
    field("address", f"{info.get('host') or '127.0.0.1'}:{info.get('port') or '-'}"
          + (f"  {info['base_url']}" if info.get("base_url") else ""))
    field("server pid", f"{info.get('pid') or '-'}  started {_when(info.get('create_time') or info.get('started_at'))}")
    field("supervisor pid", f"{info.get('supervisor_pid') or '-'}  started {_when(info.get('supervisor_create_time'))}")
    field("restart policy", f"{info.get('restart_policy') or '-'}  restarts so far: {info.get('restarts', 0)}")
    if info.get("exit_code") is not None:
        field("last exit code", info["exit_code"])
    cmd = info.get("cmdline") or []
    field("command", " ".join(cmd) if cmd else "- (not running, or started before this console knew)")
    logs = info.get("logs") or ([info["log"]] if info.get("log") else [])
    for i, path in enumerate(logs):
        field("logs" if i == 0 else "", path)
    for w in info.get("warnings") or []:
        field("warning", w, "bold")
    for a in info.get("advice") or []:  # the advisor's warnings for the model served (mlx-console advise)
        field("advice", a, "bold")
    ranks = info.get("ranks") or []
    if ranks:  # a distributed backend (mlx.launch): one line per rank, rank 0 serves HTTP
        t.append(f"\nRanks ({len(ranks)}; rank 0 serves HTTP)\n", style="bold underline")
        for r in ranks:
            cpu = r.get("cpu_percent")
            t.append(f"  {r.get('rank', '?'):>3}  {str(r.get('host') or '-'):<16} ")
            t.append(f"{str(r.get('status') or '-'):<8}", style="bold")
            t.append(f" pid {r.get('pid') or '-':<8} cpu {f'{cpu:.0f}%' if isinstance(cpu, int | float) else '-':>5}"
                     f"  rss {human_bytes(r.get('rss_bytes')):>6}\n")
            t.append(f"       log {r.get('log') or '-'}\n", style="dim")
    events = info.get("events") or []
    t.append("\nState history (newest last)\n", style="bold underline")
    if not events:
        t.append("  (none recorded)\n", style="dim")
    for ev in events:
        t.append(f"  {_when(ev.get('t'))}  ")
        t.append(f"{ev.get('status', '?'):<9}", style="bold")
        t.append(f" {ev.get('reason') or ''}\n")
    t.append("\nLast triage events\n", style="bold underline")
    triage = info.get("triage") or []
    if not triage:
        t.append("  (no errors or warnings in the log's last 2,000 lines)\n", style="dim")
    for ev in triage:
        where = f"lines {ev['first_line']}-{ev['last_line']}" if ev.get("exact") else "near the end"
        t.append(f"  {ev['severity'].upper():<8}", style="bold")
        t.append(f"{ev['title']}  ")
        t.append(f"{where}\n", style="dim")
    return t


class TextScreen(ModalScreen[None]):
    """A scrolling text over the dashboard; Esc/q closes."""

    BINDINGS = bindings("describe")

    def __init__(self, title: str, body: Text | str) -> None:
        super().__init__()
        self.title_text, self.body = title, body

    def compose(self) -> ComposeResult:
        with VerticalScroll() as v:
            v.border_title = self.title_text
            yield Static(self.body, id="text-body")

    def set_body(self, body: Text | str) -> None:
        self.query_one("#text-body", Static).update(body)


class DescribeScreen(TextScreen):
    def __init__(self, backends: Backends, name: str, row: dict[str, Any] | None) -> None:
        super().__init__(f"describe {name} — Esc closes", Text("reading state…", style="dim"))
        self.backends, self.backend, self.row = backends, name, row

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        try:
            info = self.backends.describe(self.backend, self.row)
        except Exception as e:  # shown, never fatal
            self.app.call_from_thread(self.set_body, f"{self.backend}: cannot describe: {type(e).__name__}: {e}")
            return
        self.app.call_from_thread(self.set_body, describe_text(info))


def messages_text(messages: list[Message]) -> Text:
    t = Text()
    if not messages:
        t.append("No crashes, restarts or give-ups since the console started.", style="dim")
    style = {"error": "bold", "warning": "", "information": "dim"}
    for m in messages:
        t.append(f"{_when(m.at)}  ", style="dim")
        t.append(f"{m.kind:<9} ", style="bold" if m.severity == "error" else "")
        t.append(f"{m.text}\n", style=style[m.severity])
    return t


class MessagesScreen(TextScreen):
    def __init__(self, messages: list[Message]) -> None:
        super().__init__(f"messages ({len(messages)}) — Esc closes", messages_text(messages))

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).scroll_end(animate=False)
