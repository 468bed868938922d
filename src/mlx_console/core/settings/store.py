"""Load, edit and save oMLX's model_settings.json exactly as oMLX writes it, refusing to overwrite others' edits.

oMLX writes `json.dump(data, indent=2, ensure_ascii=False)` with no trailing newline, keys in dataclass
field order: a file it wrote is byte-identical after load + save, and one changed value is a one-line diff.
"""

from __future__ import annotations

import builtins
import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlx_console.core.common import atomic
from mlx_console.core.settings import baseline as baseline_mod
from mlx_console.core.settings.errors import BadFile, BadValue, Conflict, ConflictError, SettingsError
from mlx_console.core.settings.schema import KEYS, OMLX_VERSION, ORDER, known_to, resolve_alias, suggest
from mlx_console.core.settings.textdiff import unified
from mlx_console.core.settings.validate import SETTINGS_VERSION, Issue, check_document, errors

_MISSING: Any = object()


@dataclass(frozen=True)
class Change:
    """One key of one model that differs from the loaded file (`old`/`new` are MISSING when absent)."""

    model: str
    key: str
    old: Any
    new: Any

    @property
    def removed(self) -> bool:
        return self.new is _MISSING

    @property
    def added(self) -> bool:
        return self.old is _MISSING

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "key": self.key}
        if self.old is not _MISSING:
            out["old"] = self.old
        if self.new is not _MISSING:
            out["new"] = self.new
        return out

    def __str__(self) -> str:
        old = "(unset)" if self.old is _MISSING else json.dumps(self.old, ensure_ascii=False)
        new = "(unset)" if self.new is _MISSING else json.dumps(self.new, ensure_ascii=False)
        return f"{self.model}: {self.key} {old} → {new}"


@dataclass
class SaveResult:
    path: Path
    wrote: bool
    hash: str
    diff: str
    backup: Path | None = None
    changes: list[Change] = field(default_factory=list)


def render(doc: Any, trailing_newline: bool = False) -> bytes:
    """The bytes oMLX 0.5.0 writes for `doc` (`ModelSettingsManager._save`)."""
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    return (text + ("\n" if trailing_newline else "")).encode("utf-8")


def _canon(doc: Any) -> str:
    # Type-sensitive identity: 4 and 4.0 differ, as they do in the file.
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _position(offset: int, text: str) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def parse_bytes(path: Path, data: bytes) -> tuple[Any, list[Issue]]:
    """Parse the file's bytes; bad UTF-8 or JSON is a BadFile with line and column. Also reports duplicate keys."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        prefix = data[: e.start].decode("utf-8", "replace")
        line, col = _position(len(prefix), prefix)
        raise BadFile(path, f"not valid UTF-8 (byte {e.start}); oMLX cannot read it", line, col) from None
    duplicates: list[Issue] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                duplicates.append(Issue(None, k, f"duplicate key {k!r}: oMLX keeps the last value "
                                                 f"({json.dumps(v, ensure_ascii=False)})", "warning"))
            out[k] = v
        return out

    try:
        doc = json.loads(text, object_pairs_hook=pairs)
        json.dumps(doc, ensure_ascii=False).encode("utf-8")  # what a save writes must be writable
    except json.JSONDecodeError as e:
        lines = text.splitlines()
        shown = lines[e.lineno - 1] if 0 < e.lineno <= len(lines) else ""
        caret = f"\n    {shown[:200]}\n    {' ' * min(e.colno - 1, 200)}^" if shown else ""
        hint = " (a UTF-8 BOM: save without it)" if text.startswith("\ufeff") else ""
        raise BadFile(path, f"invalid JSON: {e.msg}{hint}{caret}", e.lineno, e.colno) from None
    except RecursionError:
        raise BadFile(path, "invalid JSON: arrays or objects nested too deeply") from None
    except UnicodeEncodeError as e:
        raise BadFile(path, f"a string holds a lone surrogate ({e.object[e.start]!r}): not valid "
                            "Unicode, oMLX cannot save it") from None
    except ValueError as e:  # an integer of more than 4,300 digits
        raise BadFile(path, f"invalid JSON: {str(e).split(';')[0]}") from None
    return doc, duplicates


class SettingsStore:
    """One model_settings.json: the bytes loaded, the document being edited, and a conflict-safe save."""

    def __init__(self, path: Path, base: bytes | None, doc: Any, parse_issues: list[Issue],
                 omlx_version: str = OMLX_VERSION) -> None:
        self.path = path
        self.base = base
        self.base_hash = atomic.content_hash(base)
        self.omlx_version = omlx_version
        self.doc = doc
        self._base_doc = copy.deepcopy(doc)
        self._parse_issues = parse_issues
        # Keep the file's own trailing-newline convention; oMLX writes none.
        self.trailing_newline = base is not None and base.endswith(b"\n")
        self.hints: list[str] = []

    # ---- loading ------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, omlx_version: str = OMLX_VERSION) -> SettingsStore:
        """Read the file (a missing file is an empty document); never writes anything."""
        p = Path(path).expanduser()
        if p.is_symlink():  # edits go to the file the link names; the link stays a link
            target = Path(os.path.realpath(p))
            if not target.exists():
                raise BadFile(p, f"is a symlink to {target}, which does not exist")
            p = target
        try:
            data = atomic.read_current(p)
        except IsADirectoryError:
            raise BadFile(p, "is a directory, expected model_settings.json") from None
        except OSError as e:
            raise BadFile(p, f"cannot read: {e.strerror or e}") from None
        if data is None:
            return cls(p, None, {"version": SETTINGS_VERSION, "models": {}}, [], omlx_version)
        doc, dup = parse_bytes(p, data)
        return cls(p, data, doc, dup, omlx_version)

    @property
    def exists(self) -> bool:
        return self.base is not None

    @property
    def is_canonical(self) -> bool:
        """True when the loaded file is laid out exactly as oMLX writes it (a save changes only what changed)."""
        return self.base is None or render(self._base_doc, self.trailing_newline) == self.base

    def models(self) -> dict[str, Any]:
        models = self.doc.get("models") if isinstance(self.doc, dict) else None
        return models if isinstance(models, dict) else {}

    def loaded_models(self) -> dict[str, Any]:
        """The models as they were loaded (before any edit)."""
        return _models_of(self._base_doc)

    def get(self, model: str) -> dict[str, Any]:
        block = self.models().get(model)
        return block if isinstance(block, dict) else {}

    def issues(self, model_dirs: builtins.set[str] | None = None) -> list[Issue]:
        return [*self._parse_issues, *check_document(self.doc, self.omlx_version, model_dirs)]

    # ---- editing ------------------------------------------------------------------------------------

    def _models_for_edit(self) -> dict[str, Any]:
        if not isinstance(self.doc, dict):
            raise SettingsError(f"{self.path}: the file does not hold a JSON object; fix it by hand first")
        models = self.doc.setdefault("models", {})
        if not isinstance(models, dict):
            raise SettingsError(f"{self.path}: \"models\" is not a JSON object; fix it by hand first")
        return models

    def resolve_key(self, key: str) -> str:
        """A seed shorthand (turboquant_kv, mtp, ttl, pinned …) → the real key, remembering the hint."""
        if key in KEYS:
            return key
        alias = resolve_alias(key)
        if alias:
            self.hints.append(alias[1])
            return alias[0]
        return key

    def set(self, model: str, key: str, value: Any, *, force: bool = False) -> str:
        """Set one key (a null value on a nullable key removes it, as oMLX omits nulls). Returns the real key.

        Raises BadValue naming model, key, value and what is allowed; nothing changes then.
        """
        key = self.resolve_key(key)
        spec = KEYS.get(key)
        if spec is None and not force:
            hint = suggest(key)
            tail = f" (did you mean {hint!r}?)" if hint else ""
            raise BadValue(f"model {model!r}: unknown key {key!r}{tail}; --force writes it anyway, but oMLX "
                           "will drop it on its next save", model=model, key=key)
        if spec is not None and not known_to(spec, self.omlx_version) and not force:
            raise BadValue(f"model {model!r}: key {key!r} is newer than the installed oMLX {self.omlx_version}, "
                           "which ignores it and drops it on its next save; --force writes it anyway",
                           model=model, key=key)
        if value is None:
            if spec is not None and not spec.nullable:
                raise BadValue(f"model {model!r}: key {key!r}: null is not allowed: expected "
                               f"{spec.allowed_text()} (use unset to return to the default "
                               f"{json.dumps(spec.default)})", model=model, key=key)
            self.unset(model, key)
            return key
        if spec is not None:
            problem = spec.check(value)
            if problem:
                raise BadValue(f"model {model!r}: key {key!r}: {problem}", model=model, key=key)
            if spec.type == "float" and isinstance(value, int):
                value = float(value)  # the admin PUT's pydantic model stores floats: 4 is written 4.0
        models = self._models_for_edit()
        block = models.get(model)
        if block is None:
            block = models[model] = {}
        elif not isinstance(block, dict):
            raise BadValue(f"model {model!r}: its settings are not a JSON object; fix the file by hand first",
                           model=model)
        if key in block:
            old = block[key]
            same_number = (isinstance(old, (int, float)) and not isinstance(old, bool) and not isinstance(value, bool)
                           and isinstance(value, (int, float)) and old == value)
            if not same_number:  # 4 → 4.0 is no change: keep the file's spelling
                block[key] = value
        else:
            models[model] = _insert_in_order(block, key, value)
        if key == "is_default" and value is True:
            # oMLX keeps a single default: setting one clears the others (ModelSettingsManager.set_settings).
            for other, other_block in models.items():
                if other != model and isinstance(other_block, dict) and other_block.get("is_default") is True:
                    other_block["is_default"] = False
                    self.hints.append(f"cleared is_default of {other!r} (oMLX keeps one default model)")
        return key

    def set_text(self, model: str, key: str, text: str, *, force: bool = False) -> str:
        """Set from command-line text, parsed by the key's type."""
        from mlx_console.core.settings.values import parse_text

        real = self.resolve_key(key)
        try:
            value = parse_text(KEYS.get(real), text)
        except BadValue as e:
            raise BadValue(f"model {model!r}: key {real!r}: {e}", model=model, key=real) from None
        return self.set(model, real, value, force=force)

    def unset(self, model: str, key: str) -> str:
        """Remove a key (oMLX then uses the default). Unsetting an absent key does nothing. Returns the real key."""
        key = self.resolve_key(key)
        block = self.models().get(model)
        if isinstance(block, dict) and key in block:
            del block[key]
        return key

    def replace_doc(self, doc: Any) -> None:
        """Make the whole document `doc` (e.g. a backup being restored); saving then writes it as oMLX would."""
        if not isinstance(doc, dict):
            raise SettingsError(f"{self.path}: a settings document must be a JSON object")
        self.doc = copy.deepcopy(doc)

    # ---- what changed -------------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return _canon(self.doc) != _canon(self._base_doc)

    def changes(self) -> list[Change]:
        return compare_models(_models_of(self._base_doc), _models_of(self.doc))

    def rendered(self) -> bytes:
        """The bytes a save would write now (the loaded bytes when nothing changed)."""
        if not self.dirty and self.base is not None:
            return self.base
        return render(self.doc, self.trailing_newline)

    def diff(self) -> str:
        """Unified diff of the file on load → the file a save would write."""
        return unified(self.base, self.rendered(), str(self.path))

    def diff_against(self, baseline: str, model: str | None = None) -> baseline_mod.BaselineDiff:
        """One flag at a time: these settings against a named baseline (a file, `last` bench run or a run id);
        `.one_flag` is False when more than one key differs."""
        return baseline_mod.compare(self.models(), baseline_mod.load(baseline, model), model)

    def new_errors(self, model_dirs: builtins.set[str] | None = None) -> list[Issue]:
        """Errors the edit introduces (errors already in the loaded file are not the edit's fault)."""
        before = {(i.model, i.key, i.message) for i in errors(check_document(self._base_doc, self.omlx_version,
                                                                              model_dirs))}
        return [i for i in errors(check_document(self.doc, self.omlx_version, model_dirs))
                if (i.model, i.key, i.message) not in before]

    # ---- saving -------------------------------------------------------------------------------------

    def on_disk_changed(self) -> bool:
        return atomic.read_current(self.path) != self.base

    def save(self, if_hash: str | None = None, *, backup: bool = True,
             model_dirs: builtins.set[str] | None = None) -> SaveResult:
        """Write the edit atomically if the file is still what was loaded (and matches `if_hash`).

        Raises SettingsError on new errors, ConflictError (carrying base, ours and theirs) on a changed
        file; the file is byte-identical then.
        """
        bad = self.new_errors(model_dirs)
        if bad:
            raise SettingsError(f"{self.path}: not saved:\n" + "\n".join(f"  {i}" for i in bad))
        ours = self.rendered()
        diff = self.diff()
        changes = self.changes()
        if self.dirty:
            self._check_writable()
        try:
            return self._save(ours, diff, changes, if_hash, backup)
        except OSError as e:  # disk full, read-only, no permission: the file is as it was (atomic write)
            what = e.filename or self.path
            raise SettingsError(f"{self.path}: not saved: cannot write {what}: {e.strerror or e}; "
                                "the file is unchanged") from None

    def _check_writable(self) -> None:
        """A file without write permission (0444) is not replaced behind its owner's back; a symlink is
        written through (self.path is its target), a dangling one was refused at load."""
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return
        if not mode & 0o200:
            raise SettingsError(f"{self.path}: not saved: the file is read-only (mode {mode & 0o777:04o}); "
                                f"`chmod u+w {self.path}` first if it should change")

    def _save(self, ours: bytes, diff: str, changes: list[Change], if_hash: str | None,
              backup: bool) -> SaveResult:
        with atomic.locked(self.path):
            theirs = atomic.read_current(self.path)
            self._check_unchanged(theirs, ours, if_hash)
            if not self.dirty or theirs == ours:
                return SaveResult(self.path, False, self.base_hash, "", None, [])
            atomic.remove_stale_temps(self.path)
            backup_path = atomic.write_backup(self.path, theirs) if backup and theirs is not None else None

            def still_unchanged() -> None:
                self._check_unchanged(atomic.read_current(self.path), ours, None)

            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                atomic.write_atomic(self.path, ours, before_replace=still_unchanged, expected=self.base)
            except atomic.ReplacedChanged as e:
                self._check_unchanged(e.theirs, ours, None)  # raises the ConflictError with their bytes
                raise
        self.base = ours
        self.base_hash = atomic.content_hash(ours)
        self._base_doc = copy.deepcopy(self.doc)
        self._parse_issues = [i for i in self._parse_issues if "duplicate key" not in i.message]
        return SaveResult(self.path, True, self.base_hash, diff, backup_path, changes)

    def check_unchanged(self, if_hash: str | None = None) -> None:
        """Raise ConflictError unless the file on disk is still what was loaded (and matches `if_hash`)."""
        self._check_unchanged(atomic.read_current(self.path), self.rendered(), if_hash)

    def _check_unchanged(self, theirs: bytes | None, ours: bytes, if_hash: str | None) -> None:
        current = atomic.content_hash(theirs)
        if if_hash is not None and not atomic.hash_matches(if_hash, current):
            raise ConflictError(
                f"{self.path}: not saved: its hash is {current}, not {if_hash} (--if-hash)",
                Conflict(self.path, self.base, ours, theirs, self.base_hash, current, _keys(self.changes())))
        if theirs != self.base:
            raise ConflictError(
                f"{self.path}: not saved: the file changed since it was loaded (hash {self.base_hash[:12]} → "
                f"{current[:12]}); nothing was overwritten — reload and re-apply the edit",
                Conflict(self.path, self.base, ours, theirs, self.base_hash, current, _keys(self.changes())))

    def rebased(self) -> tuple[SettingsStore, list[Change]]:
        """This edit replayed on the file as it is on disk now: (new store, keys both sides changed differently).

        The new store is not saved; the caller decides (the clashing keys take our value).
        """
        fresh = SettingsStore.load(self.path, self.omlx_version)
        theirs = {(c.model, c.key): c for c in compare_models(_models_of(self._base_doc), fresh.models())}
        clashes: list[Change] = []
        for change in self.changes():
            other = theirs.get((change.model, change.key))
            if other is not None and _canon(other.new if other.new is not _MISSING else None) != _canon(
                    change.new if change.new is not _MISSING else None):
                clashes.append(other)
            if change.removed:
                fresh.unset(change.model, change.key)
            else:
                fresh.set(change.model, change.key, change.new, force=True)
        return fresh, clashes


def _keys(changes: list[Change]) -> list[tuple[str, str]]:
    return [(c.model, c.key) for c in changes]


def _models_of(doc: Any) -> dict[str, Any]:
    models = doc.get("models") if isinstance(doc, dict) else None
    return models if isinstance(models, dict) else {}


def compare_models(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Key-level changes between two `models` mappings (type-sensitive: 4 → 4.0 is a change)."""
    out: list[Change] = []
    for model in list(old) + [m for m in new if m not in old]:
        a = old.get(model)
        b = new.get(model)
        a = a if isinstance(a, dict) else {}
        b = b if isinstance(b, dict) else {}
        for key in list(a) + [k for k in b if k not in a]:
            va = a.get(key, _MISSING)
            vb = b.get(key, _MISSING)
            if va is _MISSING or vb is _MISSING:
                if va is not vb:
                    out.append(Change(model, key, va, vb))
            elif _canon(va) != _canon(vb):
                out.append(Change(model, key, va, vb))
    return out


def _insert_in_order(block: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A new key goes where oMLX's next save would put it (dataclass field order), so it does not move later."""
    rank = ORDER.get(key)
    if rank is None:
        block[key] = value
        return block
    items = list(block.items())
    at = 0
    for i, (k, _) in enumerate(items):
        r = ORDER.get(k)
        if r is not None and r < rank:
            at = i + 1
    items.insert(at, (key, value))
    block.clear()
    block.update(items)
    return block


MISSING = _MISSING
