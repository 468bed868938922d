"""Server flags editor (`s` on an mlx-lm backend): every flag the installed mlx_lm.server accepts, with its
type, default and help, validated as you type; a diff of config.toml before saving (comments kept); then
an offer to restart the backend so the server takes them.

What the flags are, how they are checked and how the file is written all come from
core/settings/server_flags.py; this screen only shows them.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from mlx_console.core import api
from mlx_console.core.api import Config
from mlx_console.ui.actions import bindings
from mlx_console.ui.screens.settings import DiffScreen, FormRow


class FlagRow(FormRow):
    """One mlx_lm.server flag: its type, default and help as the server's own parser gives them."""

    def __init__(self, spec: api.FlagSpec) -> None:
        super().__init__(id=f"flag{spec.flag.replace('-', '_')}")
        self.spec = spec
        self.label = spec.flag
        default = "off" if spec.kind == "bool" else ("unset" if spec.default in (None, "") else str(spec.default))
        self.placeholder = f"default: {default}"

    @property
    def help_text(self) -> str:
        return f"{self.spec.help} · {self.spec.allowed}"


class FlagsScreen(ModalScreen[None]):
    BINDINGS = bindings(("settings.save", "settings.reload", "settings.close"))

    def __init__(self, config: Config, backend: str, specs: list[api.FlagSpec] | None = None) -> None:
        super().__init__()
        self.config, self.backend = config, backend
        self.specs: list[api.FlagSpec] = specs or []
        self.problems: list[str] = []     # flags in the file the installed server does not accept
        self.invalid: dict[str, str] = {}  # flag → the error its field shows
        self._filling = False
        self._close_armed = False
        self.saved: list[str] | None = None
        self.loaded = False  # the form shows the profile's flags

    @property
    def profile(self) -> Any:
        return self.config.backend(self.backend)

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = f"mlx_lm.server flags of {self.backend} — saved as `args` in {self.config.path.name}"
            yield Static("reading the flags of the installed mlx_lm.server…", id="flags-status")
            yield VerticalScroll(id="flags-form")
            yield Static("", id="flags-help")
            yield Static(" ctrl+s diff & save  ctrl+r reload  Esc close", id="flags-keys")

    def on_mount(self) -> None:
        if self.specs:
            self.call_later(self.show_specs, self.specs)
        else:
            self.read_flags()

    @work(thread=True, exclusive=True, group="flags-read")
    def read_flags(self) -> None:
        try:
            specs = api.mlx_lm_flags()
        except Exception as e:  # shown, never fatal
            if self.is_attached:
                self.app.call_from_thread(self.status, Text(f"{e}", style="bold"))
            return
        self.app.call_from_thread(self.show_specs, specs)

    async def show_specs(self, specs: list[api.FlagSpec]) -> None:
        if not self.is_attached:
            return  # closed while the flags were being read
        self.specs = specs
        form = self.query_one("#flags-form", VerticalScroll)
        await form.remove_children()
        await form.mount_all([FlagRow(s) for s in specs if not s.managed])
        self.fill()
        rows = list(self.query(FlagRow))
        if rows:
            rows[0].input.focus()
        self.loaded = True

    def fill(self) -> None:
        """The form from the profile's `args` as the config holds them."""
        values, self.problems = api.split_server_args(list(self.profile.args), self.specs)
        self._filling = True
        try:
            for row in self.query(FlagRow):
                row.input.value = values.get(row.spec.flag, "")
                row.set_error(None)
        finally:
            self._filling = False
        self.invalid.clear()
        self.refresh_status()

    def values(self) -> dict[str, str]:
        return {row.spec.flag: row.input.value for row in self.query(FlagRow)}

    def new_args(self) -> list[str]:
        return api.join_server_args(self.values(), self.specs)

    # ---- editing ------------------------------------------------------------------------------------

    def on_descendant_focus(self, event: Any) -> None:
        row = next((a for a in event.widget.ancestors if isinstance(a, FlagRow)), None)
        if row is not None:
            self.query_one("#flags-help", Static).update(
                Text.assemble((row.spec.flag, "bold"), f" ({row.spec.kind}): ", row.help_text))

    @on(Input.Changed)
    def _edited(self, event: Input.Changed) -> None:
        if self._filling:
            return
        row = next((a for a in event.input.ancestors if isinstance(a, FlagRow)), None)
        if row is None:
            return
        error = api.check_server_flag(row.spec, event.value)
        row.set_error(error)
        if error:
            self.invalid[row.spec.flag] = error
        else:
            self.invalid.pop(row.spec.flag, None)
        self.refresh_status()

    def refresh_status(self) -> None:
        t = Text()
        t.append(str(self.config.path), style="bold")
        t.append(f"  [[backend]] {self.backend}", style="dim")
        args = self.new_args()
        changed = args != list(self.profile.args)
        t.append("  · unsaved changes" if changed else "  · no unsaved changes")
        t.append(f"\nargs = {args!r}" if args else "\nargs: none (every flag at its default)", style="dim")
        if self.invalid:
            t.append(f"\ninvalid: {', '.join(self.invalid)} (ctrl+s refuses until fixed or cleared)", style="bold")
        for problem in self.problems:
            t.append(f"\n{problem} (saving drops it)", style="bold")
        self.status(t)

    def status(self, text: str | Text) -> None:
        self.query_one("#flags-status", Static).update(text)

    # ---- saving -------------------------------------------------------------------------------------

    def action_preview(self) -> None:
        if not self.specs:
            return
        if self.invalid:
            flag, error = next(iter(self.invalid.items()))
            self.app.notify(f"not saved: {flag}: {error} (fix the field or clear it)", severity="error", timeout=10)
            self.query_one(f"#flag{flag.replace('-', '_')}", FlagRow).input.focus()
            return
        args = self.new_args()
        if args == list(self.profile.args) and not self.problems:
            self.app.notify("nothing to save", timeout=3)
            return
        path = self.config.path
        try:
            old, new = api.server_args_change(path, self.backend, args)
        except Exception as e:  # no file, no such [[backend]], a config the loader refuses: named
            self.app.notify(f"not saved: {e}", severity="error", timeout=12)
            return
        self.app.push_screen(DiffScreen(api.unified_diff(old.encode(), new.encode(), str(path)), None),
                             lambda yes: self.save(args) if yes else None)

    def save(self, args: list[str]) -> None:
        try:
            api.save_server_args(self.config.path, self.backend, args)
        except Exception as e:
            self.app.notify(f"not saved: {e}", severity="error", timeout=12)
            return
        self.profile.args = list(args)  # the supervisor starts from this Config: a restart takes them
        self.saved = list(args)
        self.problems = []
        self.refresh_status()
        state = getattr(self.app, "backend_state", lambda n: None)(self.backend)
        if state in ("ready", "degraded", "loading", "starting"):
            from mlx_console.ui.screens.confirm import ConfirmScreen

            self.app.push_screen(
                ConfirmScreen(f"Saved. Restart {self.backend} now so mlx_lm.server takes the new flags?",
                              f"args = {args!r}"),
                self._restart_answer)
        else:
            self.app.notify(f"{self.backend}: flags saved; it starts with them next time", timeout=6)

    def _restart_answer(self, yes: bool | None) -> None:
        if yes:
            self.app.act_on_backend("restart", self.backend)  # type: ignore[attr-defined]
            self.dismiss()
        else:
            self.app.notify(f"{self.backend}: flags saved; they apply at the next restart (r)", timeout=6)

    def action_reload(self) -> None:
        """Read config.toml again (edited by hand meanwhile) and show its args."""
        try:
            fresh = api.load_config(self.config.path)
            self.profile.args = list(fresh.backend(self.backend).args)
        except Exception as e:
            self.app.notify(f"reload: {e}", severity="error", timeout=10)
            return
        self.fill()

    def action_close(self) -> None:
        if self.specs and self.new_args() != list(self.profile.args) and not self._close_armed:
            self._close_armed = True
            self.app.notify("unsaved changes: Esc again discards them, ctrl+s saves", severity="warning")
            return
        self.dismiss()
