"""An upstream issue draft (Markdown) for one event of a log: `mlx-console report`, and the console's `R`.

    d = draft(path, line=None, backend=None, config=cfg)    # ConsoleError if the file has no such event
    d.markdown, d.title, d.to_json()

The event is the one covering `line` (default: the last error event of the file). The draft holds a
title, the environment (what `doctor` knows: chip, memory, OS, python, mlx, mlx-lm, oMLX versions), the
backend's command line and relevant settings (its profile and supervisor spec, oMLX's settings for the
model), the event excerpt, its category and the references already known, and a minimal reproduction (the
last request of that backend in the bench records, else a placeholder). API keys, tokens, Authorization
headers and the user's home path are redacted everywhere (`redact`).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from mlx_console.core.config import Config, Profile
from mlx_console.core.errors import ConsoleError
from mlx_console.core.logs.patterns import Catalog
from mlx_console.core.logs.triage import TriagedEvent, triage_file, triage_lines

_SECRET_KEYS = r"(?:api[_-]?key|apikey|token|secret|password|passwd|access[_-]?key|hf[_-]?token|x-api-key)"
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(authorization\W{0,4}\s*(?:bearer|basic|token)?\s*)[^\s\"',}]+"), r"\1[REDACTED]"),
    (re.compile(rf"(?i)(--{_SECRET_KEYS}[= ])\S+"), r"\1[REDACTED]"),
    (re.compile(rf"(?i)([\"']?\b[\w-]*{_SECRET_KEYS}[\"']?\s*[:=]\s*[\"']?)[^\s\"',}}]+"), r"\1[REDACTED]"),
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{12,}"), "[REDACTED]"),
    (re.compile(r"\bhf_[A-Za-z0-9]{12,}"), "[REDACTED]"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), "[REDACTED]"),
)
_HOMES = re.compile(r"(/Users/|/home/)(?!<user>)[^/\s\"']+")
_EXCERPT_LINES = 60
_ENV_BUDGET_S = 5.0


def redact(text: str, home: str | None = None) -> str:
    """Secrets (API keys, tokens, Authorization headers) and the user's home path taken out of `text`."""
    for rx, repl in _REDACTIONS:
        text = rx.sub(repl, text)
    home = (home if home is not None else str(Path.home())).rstrip("/")
    if home:
        text = re.sub(re.escape(home) + r"(?=/|$|[\s\"'])", "~", text)
    return _HOMES.sub(r"\1<user>", text)


@dataclass
class IssueDraft:
    title: str
    markdown: str
    event: TriagedEvent
    backend: str | None
    environment: dict[str, Any] = field(default_factory=dict)
    command: str | None = None

    def to_json(self) -> dict[str, Any]:
        t = self.event
        return {
            "title": self.title,
            "markdown": self.markdown,
            "line": t.first_line,
            "end_line": t.last_line,
            "categories": t.categories,
            "pattern": t.main.id if t.main else None,
            "references": t.references,
            "backend": self.backend,
            "environment": self.environment,
            "command": self.command,
        }


def pick_event(path: Path, line: int | None, catalog: Catalog | None = None,
               backend_kind: str | None = None) -> TriagedEvent:
    """The event covering `line`, else (no line) the last recognised error event, else the last error event;
    ConsoleError when there is none."""
    try:
        events = triage_file(path, catalog, include_all=True, backend=backend_kind)
    except FileNotFoundError:
        raise ConsoleError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConsoleError(f"{path}: is a directory") from None
    except OSError as e:
        raise ConsoleError(f"{path}: cannot read: {e.strerror or e}") from None
    if line is not None:
        for t in events:
            if t.first_line <= line <= t.last_line:
                return t
        raise ConsoleError(f"{path}: no warning/error event covers line {line} "
                           f"(events at lines: {', '.join(str(t.first_line) for t in events[:20]) or 'none'})")
    errors = [t for t in events if t.severity == "error"] or events
    # A recognised error explains more than the 5xx access line or warning after it.
    errors = [t for t in errors if t.categories] or [t for t in errors if t.event.fmt != "access"] or errors
    if not errors:
        raise ConsoleError(f"{path}: no warning/error event in this log")
    return errors[-1]


def environment(config: Config | None, timeout: float = _ENV_BUDGET_S) -> dict[str, Any]:
    """chip, memory, OS, python, mlx, mlx-lm, oMLX versions (each None when it cannot be learnt in time)."""
    from mlx_console.core import doctor
    from mlx_console.core.machine import system

    def pkg(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    commands = [p.command for p in (config.backends if config else []) if p.kind == "omlx"]
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="report-env")
    futs: dict[str, Future[Any]] = {
        "chip": pool.submit(system.chip),
        "memory": pool.submit(system.memory),
        "mlx": pool.submit(system.mlx_probe, None, timeout),
        "omlx": pool.submit(doctor.omlx_version, commands, min(3.0, timeout)),
    }
    wait(list(futs.values()), timeout=timeout)
    pool.shutdown(wait=False, cancel_futures=True)

    def got(k: str) -> Any:
        f = futs[k]
        return f.result() if f.done() and f.exception() is None else None

    chip, mem, probe, omlx = got("chip"), got("memory"), got("mlx"), got("omlx")
    return {
        "chip": (f"{chip.model}, {chip.name}" if chip.model else chip.name) if chip else platform.machine(),
        "memory": system.fmt_bytes(chip.memory_bytes if chip and chip.memory_bytes else getattr(mem, "total", None)),
        "os": f"{platform.system()} {platform.release()}" + (f" ({platform.mac_ver()[0]})" if platform.mac_ver()[0] else ""),
        "python": platform.python_version(),
        "mlx": (getattr(probe, "version", None) if probe else None) or pkg("mlx"),
        "mlx_lm": pkg("mlx-lm"),
        "omlx": omlx[0] if omlx else None,
    }


def _profile_for_log(config: Config | None, path: Path, name: str | None) -> Profile | None:
    if config is None:
        return None
    if name:
        return config.backend(name)  # ConsoleError naming the known backends
    from mlx_console.core.lifecycle.control import Supervisor

    sup = Supervisor(config)
    real = path.resolve()
    for p in config.backends:
        if any(lp.resolve() == real for lp in sup.log_paths(p.name) if lp.exists()):
            return p
    return None


def _backend_section(profile: Profile | None, config: Config | None) -> tuple[list[str], str | None]:
    if profile is None:
        return ["_Backend: not one of the configured backends (pass `--backend NAME` to add its command line)._"], None
    from mlx_console.core.lifecycle.control import Supervisor
    from mlx_console.core.lifecycle.state import read_spec

    command: list[str] | None = None
    try:
        command = read_spec(Supervisor(config).dir(profile.name)).command if config else None
    except (OSError, ValueError, KeyError, TypeError):
        command = None
    if not command:
        from mlx_console.core.backends.base import kind_for

        try:
            command = kind_for(profile.kind).command(profile, profile.model)
        except (ConsoleError, AttributeError, TypeError):
            command = [*profile.command, *profile.args] if profile.kind == "omlx" else list(profile.args)
    cmd = shlex.join(command)
    out = [f"**Backend:** `{profile.name}` ({profile.kind}), model `{profile.model or '-'}`", "",
           "```sh", cmd, "```"]
    if profile.env:
        out += ["", "Environment: " + ", ".join(f"`{k}={v}`" for k, v in sorted(profile.env.items()))]
    if profile.kind == "omlx":
        out += _omlx_settings(profile)
    return out, cmd


def _omlx_settings(profile: Profile) -> list[str]:
    base = profile.base_path_resolved
    out: list[str] = []
    ms = base / "model_settings.json"
    try:
        doc = json.loads(ms.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return out
    models = doc.get("models", {}) if isinstance(doc, dict) else {}
    model = Path(profile.model).name if profile.model else None
    chosen = {k: v for k, v in models.items() if model is None or k == model} if isinstance(models, dict) else {}
    if chosen:
        out += ["", f"oMLX model settings ({ms.name}):", "", "```json", json.dumps(chosen, indent=2)[:3000], "```"]
    return out


def _reproduction(profile: Profile | None) -> list[str]:
    """The last bench request against this backend, as a curl command; else a placeholder."""
    if profile is not None:
        from mlx_console.core.bench import store

        try:
            runs = [r for r in store.history() if (r.get("backend") or {}).get("base_url") == profile.base_url]
        except OSError:
            runs = []
        for run in reversed(runs):
            rows = store.load_requests(run.get("run_id", ""))
            if not rows:
                continue
            last = rows[-1]
            body = {"model": run.get("model"), "messages": [{"role": "user", "content": "<the prompt of bench cell "
                                                               f"{last.get('cell')}>"}],
                    "max_tokens": last.get("max_tokens"), "stream": bool(last.get("stream", True))}
            return [f"The last request mlx-console's bench sent to this backend (run `{run.get('run_id')}`, suite "
                    f"`{run.get('suite')}`, cell `{last.get('cell')}`):", "", "```sh",
                    f"curl -s {profile.base_url}/v1/chat/completions -H 'Content-Type: application/json' \\",
                    f"  -d '{json.dumps(body)}'", "```", "",
                    f"Re-run it with `mlx-console bench run --suite {run.get('suite')}`."]
    return ["_No recorded request for this backend. Describe the request that triggered it (endpoint, model, "
            "message count and length, tools, stream) or paste a minimal curl command._"]


def _excerpt(log_name: str, t: TriagedEvent) -> list[str]:
    lines = t.event.lines
    if len(lines) > _EXCERPT_LINES:
        half = _EXCERPT_LINES // 2
        lines = [*lines[:half], f"… ({len(lines) - _EXCERPT_LINES} lines cut) …", *lines[-half:]]
    return [f"Lines {t.first_line}–{t.last_line} of `{log_name}`:", "", "```text", *lines, "```"]


def draft(path: str | os.PathLike[str], *, line: int | None = None, backend: str | None = None,
          config: Config | None = None, catalog: Catalog | None = None,
          env: dict[str, Any] | None = None) -> IssueDraft:
    """The issue draft for the event at `line` (default: the last error event) of the log at `path`.
    `backend`: a configured backend's name (else the one whose log this is, when there is one)."""
    p = Path(path).expanduser()
    profile = _profile_for_log(config, p, backend)
    t = pick_event(p, line, catalog, None)
    return _draft(p.name, t, profile, config, env)


def draft_lines(lines: Sequence[str], *, first_line: int = 1, log: str | os.PathLike[str] = "log",
                backend: str | None = None, config: Config | None = None, catalog: Catalog | None = None,
                env: dict[str, Any] | None = None) -> IssueDraft:
    """The issue draft for the lines of one event as a viewer shows them (the console's `R`): numbered from
    `first_line`, from the log at `log`. ConsoleError if they hold no warning/error event."""
    p = Path(log).expanduser()
    events = triage_lines(list(lines), catalog, include_all=True, first_line=first_line)
    if not events:
        raise ConsoleError(f"{p.name}: lines {first_line}-{first_line + len(lines) - 1} hold no warning/error event")
    errors = [t for t in events if t.severity == "error"] or events
    return _draft(p.name, errors[-1], _profile_for_log(config, p, backend), config, env)


def save(d: IssueDraft, directory: Path) -> Path:
    """Write the draft to `directory` (created 0700) as `<time>-<title>.md`, readable by the user only."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", d.title).strip("-")[:60] or "event"
    path = directory / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}.md"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(d.markdown)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
    return path


def _draft(log_name: str, t: TriagedEvent, profile: Profile | None, config: Config | None,
           env: dict[str, Any] | None) -> IssueDraft:
    env = env if env is not None else environment(config)
    exc = t.facts.exception if t.facts else None
    record = t.facts.records[0][1] if t.facts and t.facts.records else t.event.summary
    what = f"{exc.type.rsplit('.', 1)[-1]}: {exc.message}" if exc and exc.message else record.strip()
    what = re.sub(r"\s+", " ", what)[:110]
    kind = profile.kind if profile else (t.backend or "")
    title = f"[{kind}] {what}" if kind else what
    known = ", ".join(f"`{c}`" for c in t.categories) or "not recognised by mlx-console's catalogue"
    md: list[str] = [f"## {title}", "", "### Environment", "", "| | |", "|---|---|"]
    labels = (("chip", "Chip"), ("memory", "Memory"), ("os", "OS"), ("python", "Python"), ("mlx", "mlx"),
              ("mlx_lm", "mlx-lm"), ("omlx", "oMLX"))
    md += [f"| {label} | {env.get(k) or '-'} |" for k, label in labels]
    md += ["", "### Backend", ""]
    section, cmd = _backend_section(profile, config)
    md += section
    md += ["", "### What happened", "", f"Category: {known}" + (f" (entry `{t.main.id}`, confidence "
                                                                  f"{t.confidence:.2f})" if t.main else "")]
    if t.main:
        md += ["", t.main.cause]
    if t.references:
        md += ["", "Possibly related:", *[f"- {r}" for r in t.references]]
    elif t.search_urls:
        md += ["", f"Searched for: {t.search_urls[0]}"]
    md += ["", "### Log excerpt", "", *_excerpt(log_name, t), "", "### Reproduction", "", *_reproduction(profile), "",
           "<sub>Drafted by mlx-console report; secrets and the home path are redacted.</sub>", ""]
    markdown = redact("\n".join(md))
    return IssueDraft(title=redact(title), markdown=markdown, event=t, backend=profile.name if profile else None,
                      environment=env, command=redact(cmd) if cmd else None)
