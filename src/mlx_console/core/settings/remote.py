"""oMLX model settings of a [[host]]'s backend, read and written on that host by its own mlx-console over SSH:
`settings show --backend NAME --json` to read, then `settings set|unset --file PATH MODEL … --if-hash HASH
--json` per model to write, each refused there if the file changed since (the same conflict-safe save as a
local edit; the backups are kept on that host). Editing and validating happen here, on a local copy."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlx_console.core.config import Host
from mlx_console.core.errors import ConsoleError
from mlx_console.core.settings.store import SettingsStore, render


@dataclass
class RemoteSaved:
    """What the host said after the last write: the file's hash now, each applied step, its messages."""

    hash: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    running: bool = False

    def summary(self) -> str:
        live = [s["key"] for s in self.steps if s.get("effect") == "live"]
        later = [f"{s['key']} ({s.get('effect')})" for s in self.steps if s.get("effect") != "live"]
        parts = []
        if self.running and live:
            parts.append("applied live: " + ", ".join(live))
        if self.running and later:
            parts.append("needs reload/unload: " + ", ".join(later))
        if not self.running:
            parts.append("file written: " + ", ".join(str(s["key"]) for s in self.steps))
        return " · ".join(parts + self.messages)


class RemoteSettings:
    """The model_settings.json of backend `backend` on `host`."""

    def __init__(self, host: Host, backend: str) -> None:
        self.host, self.backend = host, backend
        self.path: str = ""      # the file's path on that host
        self.hash: str = ""      # its hash when last read or written there

    def _run(self, args: list[str]) -> Any:
        from mlx_console.core.fleet import run_json

        return run_json(self.host, args, timeout=120)

    def load(self) -> SettingsStore:
        """A local copy of the remote file to edit (its path is the remote one; saving goes through save())."""
        shown = self._run(["settings", "show", "--backend", self.backend])
        if not isinstance(shown, dict) or not isinstance(shown.get("models"), dict):
            raise ConsoleError(f"host {self.host.name!r}: `settings show --json` did not print the settings")
        self.path, self.hash = str(shown["path"]), str(shown["hash"])
        doc = {"version": 1, "models": shown["models"]}
        return SettingsStore(Path(self.path), render(doc), doc, [])

    def save(self, store: SettingsStore) -> RemoteSaved:
        """Write the store's changes on the host, one command per model and kind (set, unset), each guarded
        by the hash the previous one left. A change there since load() refuses (ConsoleError says so)."""
        saved = RemoteSaved(self.hash)
        by_model: dict[str, tuple[list[str], list[str]]] = {}
        for c in store.changes():
            sets, unsets = by_model.setdefault(c.model, ([], []))
            if c.removed:
                unsets.append(c.key)
            else:
                sets.append(f"{c.key}={json.dumps(c.new, ensure_ascii=False)}")
        for model, (sets, unsets) in by_model.items():
            for verb, items in (("set", sets), ("unset", unsets)):
                if not items:
                    continue
                try:
                    out = self._run(["settings", verb, "--file", self.path, "--if-hash", self.hash, model, *items])
                except ConsoleError as e:
                    if "(--if-hash)" not in str(e):
                        raise
                    raise ConsoleError(f"{self.path} changed on host {self.host.name} since it was read: "
                                       f"your edit of {model} was not written") from None
                if not isinstance(out, dict):
                    raise ConsoleError(f"host {self.host.name!r}: `settings {verb} --json` printed no result")
                self.hash = saved.hash = str(out.get("hash") or self.hash)
                saved.steps += [{"model": s.get("model"), "key": s.get("key"), "effect": s.get("effect"),
                                 "route": s.get("route")} for s in out.get("steps") or []]
                saved.messages += [str(m) for m in out.get("messages") or []]
                saved.running = saved.running or bool((out.get("backend") or {}).get("running"))
        return saved
