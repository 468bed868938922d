"""Apply an edited model_settings.json to the oMLX that serves it, the way each key really takes effect.

Running oMLX 0.5.0: keys its admin PUT accepts go through `PUT /admin/api/models/{id}/settings` (it validates,
rewrites the whole file from memory and applies); file-only keys (the PUT ignores them) are then written to
the file atomically and picked up by `POST /admin/api/reload` (which unloads all models) or a restart.
oMLX has no file watcher and rewrites the file from memory on every in-app save, so an edit on disk that
the server does not know about is never left silently: it is either reloaded or reported as pending.
Not running: the file is written; oMLX reads it when it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlx_console.core.backends.omlx_admin import AdminError, OmlxAdmin
from mlx_console.core.common import atomic
from mlx_console.core.config import Config, Profile
from mlx_console.core.settings.errors import SettingsError
from mlx_console.core.settings.locate import profile_for
from mlx_console.core.settings.schema import EFFECT_TEXT, KEYS, effect_of, effective, known_to
from mlx_console.core.settings.store import MISSING, Change, SettingsStore
from mlx_console.core.settings.textdiff import unified
from mlx_console.core.settings.validate import errors

Route = Literal["put", "file"]


@dataclass
class Step:
    """How one changed key reaches oMLX."""

    change: Change
    route: Route
    effect: str  # live / variant / unload / file-only / unknown
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**self.change.to_json(), "route": self.route, "effect": self.effect, "why": self.why}


@dataclass
class ApplyTarget:
    """The oMLX serving the file, as far as we can tell."""

    url: str | None = None
    api_key: str | None = None
    profile: str | None = None
    running: bool = False
    version: str | None = None


@dataclass
class ApplyResult:
    path: Path
    target: ApplyTarget
    steps: list[Step] = field(default_factory=list)
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)  # model → PUT reply
    wrote_file: bool = False
    reloaded: bool = False
    pending_reload: bool = False  # file holds keys the running server has not read
    dry_run: bool = False
    messages: list[str] = field(default_factory=list)
    diff: str = ""
    hash: str = ""
    backup: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "hash": self.hash, "dry_run": self.dry_run,
            "backend": {"profile": self.target.profile, "url": self.target.url, "running": self.target.running,
                        "version": self.target.version},
            "steps": [s.to_json() for s in self.steps],
            "server": {m: {k: r.get(k) for k in ("requires_reload", "auto_unloaded", "auto_reloaded")}
                       for m, r in self.replies.items()},
            "wrote_file": self.wrote_file, "reloaded": self.reloaded, "pending_reload": self.pending_reload,
            "backup": str(self.backup) if self.backup else None,
            "messages": self.messages, "diff": self.diff,
        }


def find_target(path: Path, config: Config | None, url: str | None = None, api_key: str | None = None,
                profile: Profile | None = None) -> ApplyTarget:
    """The oMLX for `path`: an explicit url, else the oMLX profile whose base_path holds it; probed via /health."""
    if url is None:
        profile = profile or profile_for(config, path)
        if profile is None:
            return ApplyTarget()
        url, api_key = profile.base_url, api_key or profile.api_key
    target = ApplyTarget(url=url, api_key=api_key, profile=profile.name if profile else None)
    with OmlxAdmin(url, api_key) as admin:
        target.running = admin.health() is not None
        if target.running:
            target.version = admin.version()
    return target


def _running_profile(config: Config | None, path: Path) -> str | None:
    """The name of the oMLX backend using this file when its supervisor says it runs (no network)."""
    profile = profile_for(config, path)
    if profile is None or config is None:
        return None
    from mlx_console.core.lifecycle.control import Supervisor

    try:
        return profile.name if Supervisor(config).status(profile.name).active else None
    except Exception:  # noqa: BLE001 - unknown: say the general thing
        return None


def _put_value(change: Change) -> Any:
    """What the PUT body carries for a change: the new value, or the reset for a removed key."""
    if change.new is not MISSING:
        return change.new
    spec = KEYS[change.key]
    # null resets a nullable key; the PUT ignores null for is_pinned/is_default/…, so send the default.
    return None if spec.nullable else spec.default


def plan(changes: list[Change], version: str, server_models: set[str] | None) -> list[Step]:
    """Route each change: PUT when the installed oMLX's admin PUT takes the key and knows the model."""
    steps = []
    for c in changes:
        spec = KEYS.get(c.key)
        effect = effect_of(c.key, version)
        if spec is None or not known_to(spec, version):
            steps.append(Step(c, "file", effect, f"not a key of oMLX {version}: it drops it on its next save"))
        elif not spec.put:
            steps.append(Step(c, "file", effect, f"the oMLX {version} admin PUT ignores this key"))
        elif server_models is not None and c.model not in server_models:
            steps.append(Step(c, "file", effect, "the server does not know this model (not in its model dirs)"))
        elif server_models is None:
            steps.append(Step(c, "file", effect, "no running oMLX"))
        else:
            steps.append(Step(c, "put", effect, EFFECT_TEXT[effect]))
    return steps


def drift(file_models: dict[str, Any], server: list[dict[str, Any]], version: str) -> dict[str, list[str]]:
    """Keys where the file differs from what the running oMLX holds in memory (it would overwrite them)."""
    out: dict[str, list[str]] = {}
    for m in server:
        mid = m.get("id")
        if not isinstance(mid, str) or m.get("virtual"):
            continue
        server_settings = m.get("settings") or {}
        block = file_models.get(mid)
        block = block if isinstance(block, dict) else {}
        keys = [k for k, s in KEYS.items() if known_to(s, version)]
        differ = [k for k in keys if effective(block, k) != effective(server_settings, k)]
        if differ:
            out[mid] = differ
    return out


def _refuse_bad(store: SettingsStore, changes: list[Change]) -> None:
    """New errors, and old ones in a model being changed (oMLX would drop that model's whole block)."""
    touched = {c.model for c in changes}
    bad = store.new_errors() + [i for i in errors(store.issues()) if i.model in touched]
    if bad:
        listing = "\n".join(f"  {i}" for i in dict.fromkeys(bad))
        raise SettingsError(f"{store.path}: not applied:\n{listing}")


def _file_only(store: SettingsStore, result: ApplyResult, changes: list[Change], version: str, offline: bool,
               dry_run: bool, if_hash: str | None, running: str | None) -> ApplyResult:
    """Phase for an oMLX that is not running (or --offline): only the file is written. `running`: the
    configured oMLX backend that runs on this file although --offline was asked."""
    target = result.target
    result.steps = plan(changes, version, None)
    if running:
        result.messages.append(f"oMLX backend {running!r} is running: --offline wrote the file only. It keeps "
                               "its own copy in memory (the edit is not in effect) and overwrites the file on "
                               f"its next in-app save: `mlx-console backends restart {running}`, or apply "
                               "again without --offline")
    elif offline:
        result.messages.append("offline: only the file is written; a running oMLX keeps its own copy in "
                               "memory and overwrites the file on its next in-app save")
    elif target.url:
        result.messages.append(f"backend {target.profile or target.url} is not running: oMLX reads the file "
                               "when it starts")
    else:
        result.messages.append("no configured oMLX backend uses this file: if an oMLX runs on it, it needs "
                               "POST /admin/api/reload (unloads all models) or a restart to read it")
    result.diff = store.diff()
    result.hash = store.base_hash
    if not dry_run and changes:
        saved = store.save(if_hash)
        result.wrote_file, result.hash, result.backup = saved.wrote, saved.hash, saved.backup
    return result


def _put_settings(admin: OmlxAdmin, puts: list[Step], result: ApplyResult, say: Callable[[str], None],
                  keep_backup: Callable[[], None]) -> None:
    """Phase for a running oMLX: the keys its admin API takes, one PUT per model (`keep_backup` once oMLX has
    taken the first)."""
    by_model: dict[str, dict[str, Any]] = {}
    for s in puts:
        by_model.setdefault(s.change.model, {})[s.change.key] = _put_value(s.change)
    for model, body in by_model.items():
        say(f"PUT {model}: {', '.join(body)}")
        try:
            reply = admin.put_settings(model, body)
        except AdminError as e:
            done = ", ".join(result.replies)
            tail = (f"; already applied (and written by oMLX): {done}" if done
                    else "; nothing was changed")
            raise SettingsError(f"oMLX refused the settings of {model!r}: {e.detail or e}{tail}") from None
        keep_backup()
        result.replies[model] = reply
        stored = reply.get("settings") or {}
        for key, wanted in body.items():
            got = stored.get(key, KEYS[key].default if key in KEYS else None)
            if effective({key: got}, key) != effective({key: wanted}, key):
                result.messages.append(f"{model}: oMLX stored {key}={got!r} (asked {wanted!r})")
        flags = [k for k in ("requires_reload", "auto_unloaded", "auto_reloaded") if reply.get(k)]
        result.messages.append(f"{model}: applied through the admin API"
                               + (f" ({', '.join(flags)})" if flags else ""))
    result.wrote_file = True  # oMLX rewrote the file from memory


def _write_rest(store: SettingsStore, files: list[Step], put_done: bool, result: ApplyResult,
                keep_backup: Callable[[], None]) -> None:
    """Phase after the PUTs: write what the admin API cannot carry (file-only keys, and keys oMLX's own save
    dropped) onto the file as oMLX left it."""
    path, version = store.path, store.omlx_version
    writes = [(s.change.model, s.change.key, s.change.new) for s in files]
    if put_done:
        # oMLX's save drops keys it does not know; the file keeps them (oMLX ignores them anyway).
        now = SettingsStore.load(path, version).models()
        for model, block in store.models().items():
            if not isinstance(block, dict):
                continue
            for key, value in block.items():
                spec = KEYS.get(key)
                if (spec is None or not known_to(spec, version)) and key not in (now.get(model) or {}):
                    writes.append((model, key, value))
                    result.messages.append(f"{model}: oMLX's save dropped {key} (unknown to oMLX {version}); "
                                           "put back in the file, its next save drops it again")
    if not writes:
        return
    keep_backup()
    fresh = SettingsStore.load(path, version)
    for model, key, value in writes:
        if value is MISSING:
            fresh.unset(model, key)
        else:
            fresh.set(model, key, value, force=True)
    saved = fresh.save(backup=False)
    result.wrote_file = result.wrote_file or saved.wrote


def _reload_or_pending(admin: OmlxAdmin, files: list[Step], stale: dict[str, list[str]], reload: bool,
                       version: str, result: ApplyResult, say: Callable[[str], None]) -> None:
    """Last phase: keys the installed oMLX knows but only reads from the file (unknown ones it ignores anyway)
    take effect with a reload (--reload) or are said to be pending."""
    unread = [s for s in files if s.effect != "unknown" or stale]
    if not unread:
        return
    if reload:
        say("POST /admin/api/reload (unloads all models)")
        reply = admin.reload()
        result.reloaded = True
        result.messages.append(f"reloaded: oMLX re-read the file ({reply.get('message', 'ok')}); all models "
                               "were unloaded (pinned ones load again)")
    else:
        keys = ", ".join(f"{s.change.model}:{s.change.key}" for s in unread)
        result.pending_reload = True
        result.messages.append(
            f"written to the file only: {keys}. oMLX {version} uses them after POST /admin/api/reload "
            "(unloads all models; `--reload`) or a restart; until then its next in-app save overwrites them")


def apply(store: SettingsStore, config: Config | None = None, *, url: str | None = None,
          api_key: str | None = None, reload: bool = False, dry_run: bool = False, offline: bool = False,
          if_hash: str | None = None, progress: Callable[[str], None] | None = None) -> ApplyResult:
    """Make oMLX use the edit in `store` (see the module doc). Raises SettingsError / ConflictError / AdminError
    with the file untouched when it refuses before writing; `store` is stale afterwards (load it again)."""
    say = progress or (lambda _m: None)
    path = store.path
    target = ApplyTarget() if offline else find_target(path, config, url, api_key)
    result = ApplyResult(path=path, target=target, dry_run=dry_run)
    if target.version:
        store.omlx_version = target.version
    version = store.omlx_version
    changes = store.changes()
    _refuse_bad(store, changes)
    store.check_unchanged(if_hash)
    if changes and store.exists and not store.is_canonical:
        result.messages.append("the file was not laid out the way oMLX writes it: this save rewrites its layout "
                               "(so would oMLX's next save)")

    if not target.running:
        running = _running_profile(config, path) if offline else None
        return _file_only(store, result, changes, version, offline, dry_run, if_hash, running)

    if not target.api_key:
        raise SettingsError(f"{path}: oMLX at {target.url} is running, but no API key is known "
                            "(set api_key in the backend profile): cannot use its admin API. Writing only the "
                            "file would be overwritten by the server's next save; use --offline to do it anyway "
                            "and restart the backend afterwards")
    with OmlxAdmin(target.url or "", target.api_key) as admin:
        say(f"logging in to {target.url}")
        server = admin.models()
        server_ids = {m["id"] for m in server if isinstance(m.get("id"), str)}
        result.steps = plan(changes, version, server_ids)
        # An earlier external edit the server never read: a PUT would overwrite it from memory.
        stale = drift(store.loaded_models(), server, version)
        if stale:
            listing = "; ".join(f"{m}: {', '.join(ks[:6])}{' …' if len(ks) > 6 else ''}" for m, ks in stale.items())
            if not reload:
                raise SettingsError(
                    f"{path}: the file differs from what oMLX at {target.url} holds in memory ({listing}). An edit "
                    "was made without a reload; applying through the admin API would make oMLX overwrite it. "
                    "Use --reload to make oMLX read the file (this unloads all models), or undo that edit")
            result.messages.append(f"the file already differed from oMLX's memory ({listing}); the reload makes "
                                   "oMLX read it")
        puts = [s for s in result.steps if s.route == "put"]
        files = [s for s in result.steps if s.route == "file"]
        use_put = bool(puts) and not stale
        if stale:
            for s in result.steps:  # the reload carries everything
                s.route, s.why = "file", "sent with the reload (the file already differed from oMLX's memory)"
            files, puts = result.steps, []
        result.diff = store.diff()
        if dry_run:
            result.hash = store.base_hash
            if (any(s.effect != "unknown" for s in files) or stale) and not reload:
                result.pending_reload = True
                result.messages.append("this would leave keys oMLX reads only after POST /admin/api/reload "
                                       "(unloads all models; `--reload`) or a restart")
            return result

        def keep_backup() -> None:
            """The version before this apply, kept once something was changed (a refusal takes no slot)."""
            if result.backup is None and store.base is not None and changes:
                result.backup = atomic.write_backup(path, store.base)

        if use_put:
            _put_settings(admin, puts, result, say, keep_backup)
        _write_rest(store, files, use_put, result, keep_backup)
        _reload_or_pending(admin, files, stale, reload, version, result, say)
    final = atomic.read_current(path)
    result.hash = atomic.content_hash(final)
    result.diff = unified(store.base, final, str(path))
    return result



def apply_values(config: Config | None, model: str, values: dict[str, Any], *, path: Path | None = None,
                 exact: bool = False, reload: bool = False, offline: bool = False,
                 progress: Callable[[str], None] | None = None) -> ApplyResult:
    """Set `model`'s keys to `values` (None removes a key) and apply them, for callers such as bench bisect.

    `exact=True` makes the model's settings equal `values` (other keys are removed): restoring a baseline.
    """
    from mlx_console.core.settings.locate import default_path

    store = SettingsStore.load(path or default_path(config))
    if exact:
        for key in [k for k in store.get(model) if k not in values]:
            store.unset(model, key)
    for key, value in values.items():
        if value is None:
            store.unset(model, key)
        else:
            store.set(model, key, value, force=True)
    return apply(store, config, reload=reload, offline=offline, progress=progress)
