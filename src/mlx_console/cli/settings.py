"""`mlx-console settings show|set|unset|validate|diff|keys`: oMLX's model_settings.json, checked and applied.

Diffs go to stdout as unified diffs; hints and progress to stderr. Exit 1 on any refusal, the file untouched.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mlx_console.cli._common import add_json_flag, load_config, print_json, say
from mlx_console.core.common import atomic
from mlx_console.core.config import Config
from mlx_console.core.errors import ConfigError
from mlx_console.core.settings.apply import ApplyResult, apply, find_target
from mlx_console.core.settings.errors import ConflictError
from mlx_console.core.settings.locate import backend_path, default_path, profile_for
from mlx_console.core.settings.schema import EFFECT_TEXT, KEYS, OMLX_VERSION, effect_of, form_fields
from mlx_console.core.settings.store import SettingsStore, parse_bytes
from mlx_console.core.settings.textdiff import unified
from mlx_console.core.settings.validate import Issue
from mlx_console.core.settings.values import split_assignment


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("settings", help="oMLX per-model settings (model_settings.json): show, set, validate, diff",
                       description="Edit oMLX's model_settings.json safely and apply it to a running oMLX.")
    ss = p.add_subparsers(dest="settings_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--file", metavar="PATH", help="the model_settings.json (default: the first oMLX profile's "
                       "base_path, else ~/.omlx)")
        q.add_argument("--backend", metavar="NAME", help="the model_settings.json of this oMLX profile")
        q.add_argument("--omlx-version", metavar="V", default=None,
                       help=f"installed oMLX version for key checks (default: the running server's, else {OMLX_VERSION})")
        add_json_flag(q)

    q = ss.add_parser("show", help="the settings of every model, or of MODEL, with problems")
    common(q)
    q.add_argument("model", nargs="?", metavar="MODEL")
    q.set_defaults(func=cmd_show)

    def editing(q: argparse.ArgumentParser) -> None:
        common(q)
        q.add_argument("--if-hash", metavar="HASH", help="refuse unless the file's hash is HASH (from `show --json`)")
        q.add_argument("--dry-run", action="store_true", help="print the diff and the plan; change nothing")
        q.add_argument("--reload", action="store_true", help="if keys must go through the file while oMLX runs, "
                       "POST /admin/api/reload afterwards (UNLOADS ALL MODELS)")
        q.add_argument("--offline", action="store_true", help="only write the file; do not contact a server")
        q.add_argument("--url", metavar="URL", help="the oMLX server to apply to (default: the profile's)")
        q.add_argument("--api-key", metavar="KEY", help="its API key (default: the profile's)")

    q = ss.add_parser("set", help="set keys of MODEL (KEY=VALUE …) and apply them")
    editing(q)
    q.add_argument("--force", action="store_true", help="allow keys unknown to the schema (or newer than oMLX)")
    q.add_argument("model", metavar="MODEL")
    q.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    q.set_defaults(func=cmd_set)

    q = ss.add_parser("unset", help="remove keys of MODEL (oMLX then uses the defaults) and apply")
    editing(q)
    q.add_argument("model", metavar="MODEL")
    q.add_argument("keys", nargs="+", metavar="KEY")
    q.set_defaults(func=cmd_unset)

    q = ss.add_parser("validate", help="check the file: exit 0 when valid, 1 with the list of problems")
    common(q)
    q.add_argument("--strict", action="store_true", help="warnings (unknown, newer keys …) fail too")
    q.set_defaults(func=cmd_validate)

    q = ss.add_parser("diff", help="the settings against a baseline: one flag at a time?")
    common(q)
    q.add_argument("--against", required=True, metavar="BASELINE",
                   help="a model_settings.json, a bench run record, a {key: value} file, `last` or a run id")
    q.add_argument("model", nargs="?", metavar="MODEL")
    q.set_defaults(func=cmd_diff)

    q = ss.add_parser("backups", help="the kept previous versions of the file, newest first")
    common(q)
    q.set_defaults(func=cmd_backups)

    q = ss.add_parser("restore", help="bring back a kept version (applied like any edit)")
    editing(q)
    q.add_argument("backup", metavar="BACKUP", help="1 = the newest backup (see `settings backups`), or a path")
    q.set_defaults(func=cmd_restore)

    q = ss.add_parser("keys", help="every key: type, default, allowed values, how a change takes effect")
    add_json_flag(q)
    q.add_argument("--group", help="only this group")
    q.set_defaults(func=cmd_keys)


# ---- helpers -----------------------------------------------------------------------------------------

def _config(args: argparse.Namespace) -> Config | None:
    try:
        return load_config(args)
    except ConfigError:
        if getattr(args, "file", None):
            return None  # the file is named: a broken config need not stop a look at it
        raise


def _path(args: argparse.Namespace, config: Config | None) -> Path:
    if getattr(args, "backend", None) and not args.file:
        if config is None:
            raise ConfigError("--backend needs a readable config")
        return backend_path(config, args.backend).absolute()
    return (Path(args.file).expanduser() if args.file else default_path(config)).absolute()


def _load(args: argparse.Namespace, config: Config | None, probe: bool = False) -> SettingsStore:
    """The file; with `probe`, checked against the version of the oMLX that serves it when it runs."""
    path = _path(args, config)
    version = args.omlx_version
    if version is None and probe and profile_for(config, path) is not None:
        version = find_target(path, config).version
    return SettingsStore.load(path, version or OMLX_VERSION)


def _model_dirs(path: Path, config: Any = None) -> set[str] | None:
    """The model ids oMLX discovers for this file: folders of its model directories that hold weights (oMLX
    skips one without: `No model weights found`). None when no model directory exists."""
    from mlx_console.core.machine.models import omlx_model_dirs
    from mlx_console.core.settings.locate import profile_for

    profile = profile_for(config, path) if config is not None else None
    roots = omlx_model_dirs(profile) if profile is not None else [path.parent / "models"]
    ids: set[str] = set()
    found = False
    for root in roots:
        try:
            if not root.is_dir():
                continue
            found = True
            ids |= {p.name for p in root.iterdir() if p.is_dir() and (p / "config.json").is_file() and (
                any(p.glob("*.safetensors")) or any(p.glob("*.bin")) or any(p.glob("*/*.safetensors")))}
        except OSError:
            continue
    return ids if found else None


def _err(text: str) -> None:
    say(text, file=sys.stderr)


def _issues_json(issues: list[Issue]) -> list[dict[str, Any]]:
    return [i.to_json() for i in issues]


def _is_default(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return default is value  # 1 == True, but not as a setting
    return default == value


def _fmt(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# ---- show / validate ---------------------------------------------------------------------------------

def cmd_show(args: argparse.Namespace) -> int:
    config = _config(args)
    store = _load(args, config, probe=True)
    issues = store.issues(_model_dirs(store.path, config))
    models = store.models()
    if args.model:
        models = {args.model: models.get(args.model, {})}
        issues = [i for i in issues if i.model in (None, args.model)]
    if args.json:
        print_json({"path": str(store.path), "hash": store.base_hash, "models": models,
                    "issues": _issues_json(issues)})
        return 0
    say(f"{store.path}  (hash {store.base_hash[:12]}{'' if store.exists else ', no file yet'}; "
          f"checked against oMLX {store.omlx_version})")
    if not models:
        say("  no model settings: oMLX uses its defaults")
    for model, block in models.items():
        say(f"\n{model}")
        if not isinstance(block, dict):
            say(f"  (not an object: {_fmt(block)})")
            continue
        if not block:
            say("  (no settings in the file: oMLX defaults)")
        width = max((len(k) for k in block), default=0)
        for key, value in block.items():
            spec = KEYS.get(key)
            tag = effect_of(key, store.omlx_version)
            note = "  ← unknown" if spec is None else ("  (default)" if _is_default(spec.default, value) else "")
            say(f"  {key:<{width}}  {_fmt(value)}   [{tag}]{note}")
    if issues:
        say()
        for i in issues:
            say(f"  {i}")
    if store.exists and not store.is_canonical:
        _err("note: the file is not laid out the way oMLX writes it; the next save (ours or oMLX's) rewrites it")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    config = _config(args)
    store = _load(args, config, probe=True)
    issues = store.issues(_model_dirs(store.path, config))
    failing = [i for i in issues if i.level == "error" or args.strict]
    if args.json:
        print_json({"path": str(store.path), "hash": store.base_hash, "valid": not failing,
                    "issues": _issues_json(issues)})
        return 1 if failing else 0
    for i in issues:
        say(f"{store.path}: {i}")
    if failing:
        _err(f"{store.path}: {len(failing)} problem(s)")
        return 1
    say(f"{store.path}: valid" + (f" ({len(issues)} warning(s))" if issues else ""))
    return 0


# ---- set / unset -------------------------------------------------------------------------------------

def _report_conflict(e: ConflictError) -> None:
    c = e.conflict
    _err(f"mlx-console: {e}")
    theirs = unified(c.base, c.theirs, str(c.path))
    if theirs:
        _err("what changed on disk since it was loaded:")
        _err(theirs.rstrip("\n"))
    if c.changed_keys:
        _err("your edit (not written): " + ", ".join(f"{m}:{k}" for m, k in c.changed_keys))


def _edit(args: argparse.Namespace, edit: Any) -> int:
    config = _config(args)
    store = _load(args, config)
    known = _model_dirs(store.path, config)
    model = getattr(args, "model", None)
    if model is not None and model not in store.models() and known is not None and model not in known:
        close = ", ".join(sorted(known)[:8]) or "none"
        _err(f"warning: {model!r} is neither in the file nor a directory of {store.path.parent / 'models'} "
             f"(models there: {close}); oMLX ids are directory names")
    edit(store)
    for hint in dict.fromkeys(store.hints):
        _err(f"hint: {hint}")
    if not store.dirty:
        _err("no change: the file already has these settings")
        if args.if_hash:
            store.check_unchanged(args.if_hash)
        if args.json:
            print_json({"path": str(store.path), "hash": store.base_hash, "dry_run": args.dry_run,
                        "steps": [], "messages": ["no change"], "diff": "", "issues": []})
        return 0
    try:
        result = apply(store, config, url=args.url, api_key=args.api_key, reload=args.reload,
                       dry_run=args.dry_run, offline=args.offline, if_hash=args.if_hash, progress=_err)
    except ConflictError as e:
        _report_conflict(e)
        return 1
    _print_result(args, result, store)
    return 0


def _print_result(args: argparse.Namespace, result: ApplyResult, store: SettingsStore) -> None:
    warnings = [i for i in store.issues() if i.level == "warning"
                and any(s.change.model == i.model and s.change.key == i.key for s in result.steps)]
    if args.json:
        print_json({**result.to_json(), "issues": _issues_json(warnings)})
        return
    if result.diff:
        say(result.diff, end="")
        sys.stdout.flush()
    for s in result.steps:
        how = "admin PUT" if s.route == "put" else "file"
        _err(f"{s.change}  via {how}: {EFFECT_TEXT.get(s.effect, s.effect)}"
             + (f" ({s.why})" if s.route == "file" and s.why else ""))
    for w in warnings:
        _err(f"warning: {w.message} [{w.model}:{w.key}]")
    for m in result.messages:
        _err(m)
    if result.dry_run:
        _err("dry run: nothing written, no change sent")
    else:
        if result.backup:
            _err(f"previous version kept in {result.backup}")
        _err(f"file hash now {result.hash}")


def cmd_set(args: argparse.Namespace) -> int:
    pairs = [split_assignment(a) for a in args.assignments]

    def edit(store: SettingsStore) -> None:
        for key, text in pairs:
            store.set_text(args.model, key, text, force=args.force)

    return _edit(args, edit)


def cmd_unset(args: argparse.Namespace) -> int:
    def edit(store: SettingsStore) -> None:
        for key in args.keys:
            real = store.resolve_key(key)
            if real not in store.get(args.model):
                _err(f"note: {args.model}: {real} is not set")
            store.unset(args.model, real)

    return _edit(args, edit)


# ---- diff / keys -------------------------------------------------------------------------------------

def cmd_diff(args: argparse.Namespace) -> int:
    config = _config(args)
    store = _load(args, config)
    result = store.diff_against(args.against, args.model)
    if args.json:
        print_json({"path": str(store.path), "hash": store.base_hash, **result.to_json()})
        return 0
    if result.diff:
        say(result.diff, end="")
    say(result.summary())
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    fields = [f for f in form_fields() if not args.group or f["group"] == args.group]
    if args.json:
        print_json(fields)
        return 0
    group = None
    for f in fields:
        if f["group"] != group:
            group = f["group"]
            say(f"\n[{group}]")
        say(f"  {f['key']}  ({f['allowed']}; default {_fmt(f['default'])})  [{f['effect']}]")
        say(f"      {f['meaning']}" + (f" — {f['note']}" if f["note"] else ""))
    return 0


# ---- backups -----------------------------------------------------------------------------------------

def cmd_backups(args: argparse.Namespace) -> int:
    path = _path(args, _config(args))
    rows = []
    for i, b in enumerate(atomic.list_backups(path), 1):
        data = b.read_bytes()
        rows.append({"index": i, "path": str(b), "hash": atomic.content_hash(data), "bytes": len(data),
                     "saved": b.name.removeprefix(path.name + ".")})
    if args.json:
        print_json({"path": str(path), "backups": rows})
        return 0
    if not rows:
        say(f"no backups of {path} (kept in {atomic.backup_dir(path)})")
    for r in rows:
        say(f"{r['index']:>2}  {r['saved']}  {r['hash'][:12]}  {r['bytes']} bytes  {r['path']}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    path = _path(args, _config(args))
    if args.backup.isdigit():
        backups = atomic.list_backups(path)
        n = int(args.backup)
        if not 1 <= n <= len(backups):
            _err(f"mlx-console: no backup {n} of {path} ({len(backups)} kept; see `settings backups`)")
            return 1
        source = backups[n - 1]
    else:
        source = Path(args.backup).expanduser()
    doc, _ = parse_bytes(source, source.read_bytes())

    def edit(store: SettingsStore) -> None:
        store.replace_doc(doc)

    return _edit(args, edit)
