"""Settings editor (`s`): oMLX model settings as a form grouped by feature, validated as you type,
a diff before saving, a conflict dialog, the apply result (live / needs reload), and `$EDITOR` for raw edits.

Keys, types, validation, routing and saving all come from core/settings; this screen only shows them.
"""

from __future__ import annotations

import copy
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from mlx_console.core import api
from mlx_console.core.api import Config
from mlx_console.ui.actions import bindings


def settings_path(config: Config, backend: str | None) -> Path:
    """The model_settings.json of the selected oMLX backend, else the first oMLX profile's, else ~/.omlx."""
    return api.settings_path(config, backend)


def shown_value(value: Any) -> str:
    import json

    return "" if value is None else json.dumps(value, ensure_ascii=False)


class FormRow(Vertical):
    """One field of a form: name, input, help (what is allowed, how it takes effect) and an inline error."""

    label = ""
    placeholder = ""
    input_id: str | None = None

    @property
    def help_text(self) -> str:
        return ""

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static(self.label, classes="key")
            field = Input(placeholder=self.placeholder, compact=True, id=self.input_id)
            field.cursor_blink = False  # a blinking cursor repaints twice a second
            yield field
        yield Static(self.help_text, classes="help")
        yield Static("", classes="error")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    def set_error(self, message: str | None) -> None:
        err = self.query_one(".error", Static)
        err.update(message or "")
        err.set_class(bool(message), "-shown")
        self.input.set_class(bool(message), "-invalid")


class FieldRow(FormRow):
    """One oMLX model-settings key."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(id=f"field-{spec['key']}")
        self.spec = spec
        self.label = spec["key"]
        self.placeholder = f"default: {spec['none_means'] or shown_value(spec['default']) or 'unset'}"
        self.input_id = f"input-{spec['key']}"

    @property
    def help_text(self) -> str:
        s = self.spec
        note = f" · {s['note']}" if s.get("note") else ""
        newer = " · newer than oMLX 0.5.0" if s.get("newer") else ""
        return f"{s['meaning']} · {s['allowed']} · {s['effect_text']}{note}{newer}"


class SettingsScreen(ModalScreen[None]):
    BINDINGS = bindings(("settings.save", "settings.editor", "settings.reload", "settings.close"))

    def __init__(self, config: Config, backend: str | None, model: str | None = None,
                 path: Path | None = None, remote: api.RemoteSettings | None = None) -> None:
        super().__init__()
        self.config, self.backend, self.wanted_model = config, backend, model
        self.path = path
        # A [[host]]'s backend: core.settings.remote.RemoteSettings reads and writes the file on that host.
        self.remote = remote
        self.store: Any = None
        self.model: str | None = None
        self.fields: list[dict[str, Any]] = []
        self._filling = False   # inputs are being set from the store: not an edit
        self._watcher: Any = None
        self.changed_on_disk = False
        self.last_result: Any = None
        self._close_armed = False
        self.raw_error: str | None = None
        self.invalid: dict[str, str] = {}  # key → the error its field shows (the store keeps its last valid value)

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = "oMLX model settings"
            yield Static("loading…", id="settings-status")
            with Horizontal(id="settings-body"):
                yield OptionList(id="settings-models")
                yield VerticalScroll(id="settings-form")
            yield Static("", id="settings-help")
            yield Static(" ctrl+s diff & save  ctrl+e $EDITOR  ctrl+r reload  Esc close", id="settings-keys")

    async def on_mount(self) -> None:
        self.fields = api.settings_form_fields()
        if self.path is None and self.remote is None:
            self.path = settings_path(self.config, self.backend)
        form = self.query_one("#settings-form", VerticalScroll)
        group = None
        widgets: list[Any] = []
        for spec in self.fields:
            if spec["group"] != group:
                group = spec["group"]
                widgets.append(Static(group, classes="group"))
            widgets.append(FieldRow(spec))
        await form.mount_all(widgets)
        self.load_store()
        if self.remote is None:  # a remote file is not watched: its save is refused there if it changed
            self.start_watch()

    # ---- loading ------------------------------------------------------------------------------------

    def load_store(self) -> None:
        if self.remote is not None:
            self.status(Text(f"reading the settings of {self.backend} on its host…", style="italic"))
            self.load_remote()
            return
        try:
            store = api.load_settings(self.path)
        except Exception as e:  # a bad file is named with line and column by the core
            self.store = None
            self.status(Text(f"{e}", style="bold"))
            return
        self.show_store(store)

    @work(thread=True, exclusive=True, group="settings-remote")
    def load_remote(self) -> None:
        try:
            store = self.remote.load()
        except Exception as e:  # ssh or the remote refused: said, never fatal
            self.app.call_from_thread(self.remote_failed, str(e))
        else:
            self.app.call_from_thread(self.show_store, store)

    def remote_failed(self, message: str) -> None:
        self.store = None
        self.status(Text(f"cannot read the settings of {self.backend}: {message}", style="bold"))

    def show_store(self, store: Any) -> None:
        self.store = store
        if self.remote is not None:
            self.path = Path(f"{self.remote.host.name}:{self.remote.path}")
        self.changed_on_disk = False
        models = list(self.store.models())
        if self.wanted_model and self.wanted_model not in models:
            models.append(self.wanted_model)
        ol = self.query_one(OptionList)
        ol.clear_options()
        for m in models:
            ol.add_option(Option(m, id=m))
        if not models:
            self.status(Text(f"{self.path}: no models yet; open it with a model name (:settings MODEL)"))
            return
        pick = self.model if self.model in models else (self.wanted_model or models[0])
        ol.highlighted = models.index(pick)
        self.show_model(pick)

    def show_model(self, model: str) -> None:
        self.model = model
        block = self.store.get(model) if self.store is not None else {}
        self._filling = True
        try:
            for spec in self.fields:
                row = self.query_one(f"#field-{spec['key']}", FieldRow)
                row.input.value = shown_value(block.get(spec["key"])) if spec["key"] in block else ""
                row.set_error(None)
            self.invalid.clear()
        finally:
            self._filling = False
        self.refresh_status()

    @on(OptionList.OptionHighlighted, "#settings-models")
    def _model_chosen(self, event: OptionList.OptionHighlighted) -> None:
        model = str(event.option.id)
        if model != self.model and self.store is not None:
            self.show_model(model)

    # ---- editing ------------------------------------------------------------------------------------

    def on_descendant_focus(self, event: Any) -> None:
        row = next((a for a in event.widget.ancestors if isinstance(a, FieldRow)), None)
        if row is not None:
            self.query_one("#settings-help", Static).update(Text.assemble((row.spec["key"], "bold"), ": ",
                                                                          row.help_text))

    @on(Input.Changed)
    def _edited(self, event: Input.Changed) -> None:
        if self._filling or self.store is None or self.model is None or not event.input.id:
            return
        key = event.input.id.removeprefix("input-")
        row = self.query_one(f"#field-{key}", FieldRow)
        text = event.value.strip()
        try:
            if text == "":
                self.store.unset(self.model, key)
            else:
                self.store.set_text(self.model, key, text)
        except Exception as e:  # BadValue: refused inline, the store is unchanged
            message = str(e).split(": ", 2)[-1] if "key" in str(e) else str(e)
            row.set_error(message)
            self.invalid[key] = message
        else:
            row.set_error(None)
            self.invalid.pop(key, None)
        self.refresh_status()

    def refresh_status(self) -> None:
        if self.store is None:
            return
        t = Text()
        t.append(f"{self.path}", style="bold")
        t.append(f"  hash {self.store.base_hash[:12]}", style="dim")
        changes = self.store.changes()
        changed_keys = {(c.model, c.key) for c in changes}
        for spec in self.fields:
            self.query_one(f"#field-{spec['key']}", FieldRow).set_class(
                (self.model, spec["key"]) in changed_keys, "-changed")
        t.append(f"  · {len(changes)} unsaved change{'s' if len(changes) != 1 else ''}" if changes
                 else "  · no unsaved changes")
        if self.changed_on_disk:
            t.append("\nthe file changed on disk since it was loaded: ctrl+r reloads it (a save will ask)",
                     style="bold")
        warning = self.one_flag_warning()
        if warning:
            t.append(f"\n{warning}", style="bold")
        if self.last_result is not None:
            t.append(f"\n{self.last_result}")
        self.status(t)

    def one_flag_warning(self) -> str | None:
        """More than one key differs from the last bench run's settings: results cannot be pinned on one."""
        try:
            diff = api.settings_baseline_diff(self.store.models(), self.model)
        except Exception:
            return None  # no bench run yet: nothing to compare with
        return f"one flag at a time: {diff.summary()}" if not diff.one_flag else None

    def status(self, text: str | Text) -> None:
        self.query_one("#settings-status", Static).update(text)

    # ---- saving -------------------------------------------------------------------------------------

    def action_preview(self) -> None:
        if self.store is None:
            return
        if self.invalid:
            # Never save a value the form does not show: the store still holds the last valid one.
            key, error = next(iter(self.invalid.items()))
            self.app.notify(f"not saved: {key}: {error} (fix the field or clear it)", severity="error",
                            timeout=10)
            self.query_one(f"#field-{key}", FieldRow).input.focus()
            return
        if not self.store.dirty:
            self.app.notify("nothing to save", timeout=3)
            return
        bad = self.store.new_errors()
        if bad:
            self.app.notify("not saved: " + "; ".join(str(i) for i in bad), severity="error", timeout=10)
            return
        self.app.push_screen(DiffScreen(self.store.diff(), self.one_flag_warning()), self._confirmed)

    def _confirmed(self, save: bool | None) -> None:
        if save:
            self.status(Text("applying…", style="bold"))
            self.apply_worker(copy.deepcopy(self.store))  # the worker saves its own copy: self.store is the loop's

    @work(thread=True, exclusive=True, group="settings-apply")
    def apply_worker(self, store: api.SettingsStore) -> None:
        def say(msg: str) -> None:
            self.app.call_from_thread(self.status, Text(msg, style="italic"))

        if self.remote is not None:
            try:
                saved = self.remote.save(store)
            except Exception as e:  # refused there (a conflict, a bad value) or ssh: nothing more written
                self.app.call_from_thread(self.apply_failed, f"{e} (ctrl+r reloads the file as it is there)")
            else:
                self.app.call_from_thread(self.applied_remote, saved)
            return
        try:
            result = api.apply_settings(store, self.config, progress=say)
        except api.ConflictError as e:
            self.app.call_from_thread(self.conflict, e)
        except Exception as e:  # refused before writing: the file is untouched
            self.app.call_from_thread(self.apply_failed, str(e))
        else:
            self.app.call_from_thread(self.applied, result)

    def apply_failed(self, message: str) -> None:
        self.last_result = Text(f"not saved: {message}", style="bold")
        self.app.notify(f"settings not saved: {message}", severity="error", timeout=12)
        self.refresh_status()

    def applied(self, result: Any) -> None:
        parts = []
        if result.target.running:
            live = [s.change.key for s in result.steps if s.effect == "live"]
            later = [f"{s.change.key} ({s.effect})" for s in result.steps if s.effect != "live"]
            if live:
                parts.append("applied live: " + ", ".join(live))
            if later:
                parts.append("needs reload/unload: " + ", ".join(later))
        elif result.wrote_file:
            parts.append("file written: " + ", ".join(s.change.key for s in result.steps))
        if result.pending_reload:
            parts.append("oMLX reads some keys only after POST /admin/api/reload or a restart")
        parts += result.messages
        self.last_result = Text("saved. " + " · ".join(parts))
        self.app.notify("settings saved: " + (" · ".join(parts) or "file written"), timeout=10)
        self.load_store()  # the store is stale after apply

    def applied_remote(self, saved: Any) -> None:
        text = f"saved on {self.remote.host.name}. {saved.summary()}"
        self.last_result = Text(text)
        self.app.notify(f"settings {text}", timeout=10)
        self.load_store()

    def conflict(self, error: Any) -> None:
        self.app.push_screen(ConflictScreen(str(error), error.conflict), self._conflict_choice)

    def _conflict_choice(self, choice: str | None) -> None:
        if choice == "rebase":
            fresh, clashes = self.store.rebased()
            self.store = fresh
            self.show_model(self.model or "")
            note = f" (both sides changed: {', '.join(c.key for c in clashes)}; yours kept)" if clashes else ""
            self.app.notify(f"your edit was replayed on the file as it is now{note}; review and save again",
                            timeout=10)
        elif choice == "discard":
            self.load_store()
            self.app.notify("your edit was dropped; the form shows the file as it is now", timeout=6)

    def action_reload(self) -> None:
        self.last_result = None
        self.load_store()

    # ---- $EDITOR ------------------------------------------------------------------------------------

    def action_edit_raw(self) -> None:
        """Raw edit of the whole file in $EDITOR (under app.suspend), validated on return."""
        if self.store is None:
            return
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        with tempfile.NamedTemporaryFile("wb", suffix=".json", prefix="model_settings.", delete=False) as fh:
            fh.write(self.store.rendered())
            tmp = Path(fh.name)
        try:
            with self.app.suspend():
                subprocess.run([*shlex.split(editor), str(tmp)], check=False)
            data = tmp.read_bytes()
        except Exception as e:
            self.app.notify(f"$EDITOR failed: {e}", severity="error")
            return
        finally:
            tmp.unlink(missing_ok=True)
        self.take_raw(data)

    def take_raw(self, data: bytes) -> None:
        try:
            doc, bad = api.check_raw_settings(self.path, data, self.store.omlx_version)
        except Exception as e:  # bad JSON: named with line and column; nothing changes
            self.raw_error = f"raw edit not taken: {e}"
            self.app.notify(self.raw_error, severity="error", timeout=12)
            return
        if bad:
            self.raw_error = "raw edit not taken: " + "; ".join(str(i) for i in bad[:5])
            self.app.notify(self.raw_error, severity="error", timeout=12)
            return
        self.raw_error = None
        self.store.doc = doc
        self.show_model(self.model if self.model in self.store.models() else next(iter(self.store.models()), ""))
        self.app.notify("raw edit taken: review the changes and ctrl+s to save", timeout=6)

    # ---- file watch ---------------------------------------------------------------------------------

    def start_watch(self) -> None:
        try:
            self._watcher = api.watch_settings(self.path,
                                               lambda h: self.app.call_from_thread(self.on_disk_change, h))
        except Exception:
            self._watcher = None  # no watch: a save still detects the conflict

    def on_disk_change(self, new_hash: str) -> None:
        if self.store is not None and new_hash != self.store.base_hash:
            self.changed_on_disk = True
            self.refresh_status()

    def on_unmount(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()

    def action_close(self) -> None:
        if self.store is not None and self.store.dirty and not self._close_armed:
            self._close_armed = True
            self.app.notify("unsaved changes: Esc again discards them, ctrl+s saves", severity="warning")
            return
        self.dismiss()


class DiffScreen(ModalScreen[bool]):
    """The diff a save would write; Enter saves and applies, Esc goes back."""

    BINDINGS = bindings(("settings.confirm", "settings.back"))

    def __init__(self, diff: str, warning: str | None) -> None:
        super().__init__()
        self.diff, self.warning = diff, warning

    def compose(self) -> ComposeResult:
        t = Text()
        for line in self.diff.splitlines():
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
            t.append(line + "\n", style=style)
        if self.warning:
            t.append(f"\n{self.warning}\n", style="bold")
        with VerticalScroll() as v:
            v.border_title = "Save these changes? Enter saves and applies · Esc goes back"
            yield Static(t)

    def action_save(self) -> None:
        self.dismiss(True)

    def action_back(self) -> None:
        self.dismiss(False)


class ConflictScreen(ModalScreen[str]):
    """The file changed under the editor: show both sides' keys, let the person choose."""

    BINDINGS = bindings(("settings.rebase", "settings.discard", "settings.cancel"))

    def __init__(self, message: str, conflict: Any) -> None:
        super().__init__()
        self.message, self.conflict = message, conflict

    def compose(self) -> ComposeResult:
        t = Text(self.message + "\n\n", style="bold")
        mine = ", ".join(f"{m}:{k}" for m, k in self.conflict.changed_keys) or "(none)"
        t.append(f"Your changes: {mine}\n\nWhat changed on disk since you loaded it:\n")
        t.append(api.unified_diff(self.conflict.base, self.conflict.theirs, str(self.conflict.path)) or "(nothing)\n")
        t.append("\nr: replay your changes on the file as it is now · d: drop yours · Esc: cancel")
        with VerticalScroll() as v:
            v.border_title = "Conflict: model_settings.json changed underneath"
            yield Static(t)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
