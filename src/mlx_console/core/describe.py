"""What `describe` shows of one backend: its status row, plus from the state files the server's command line
(secrets masked), pids with start times, the advisor's warnings and the last triage events of its log."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlx_console.core.errors import ConsoleError

if TYPE_CHECKING:
    from mlx_console.core.config import Config
    from mlx_console.core.lifecycle.control import Supervisor

# The flag's name ends with it (--api-key, --hf-token, --auth): `--max-tokens 64` is not a secret.
SECRET = re.compile(r"^--?[\w-]*(key|token|secret|password|passwd|auth)$", re.I)


def mask_secrets(argv: list[str]) -> list[str]:
    """A command line with the values of secret-looking options (`--api-key X`, `--token=X`) masked."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("****")
            hide_next = False
        elif arg.startswith("-") and SECRET.match(arg.split("=", 1)[0]):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=****")
            else:
                out.append(arg)
                hide_next = True
        else:
            out.append(arg)
    return out


def last_events(path: Path, lines: int = 2000, keep: int = 5) -> list[dict[str, Any]]:
    """The last triage events (errors and warnings) in the last `lines` lines of a log, newest last."""
    from mlx_console.core.logs.document import LogDocument
    from mlx_console.core.logs.patterns import Catalog
    from mlx_console.core.logs.triage import Triager

    try:
        with LogDocument(path) as doc:  # its end indexed (1 MiB): the whole file when it is smaller
            skip = max(0, doc.tail_count - lines)
            tail = doc.tail_lines(skip, doc.tail_count)
            exact = doc.head_done  # the tail is the whole file: its line numbers are the file's
    except OSError:
        return []
    first = skip + 1 if exact else 1
    triager = Triager(Catalog.load([]), include_all=True, first_line=first)
    out = [{"severity": t.severity, "title": t.title, "first_line": t.first_line, "last_line": t.last_line,
            "exact": exact}
           for t in (*triager.feed_many(tail), *triager.flush()) if t.severity in ("error", "warning")]
    return out[-keep:]


def advice(config: Config, name: str, model: str | None) -> list[str]:
    """The advisor's warnings (core/advisor.py) for `model` on backend `name`; none when it cannot tell."""
    from mlx_console.core.advisor import advise_profile

    try:
        return [f"{w.message} (fix: {w.fix})" for w in advise_profile(config, name, model).warnings]
    except (ConsoleError, OSError, ValueError, KeyError):
        return []


def describe(sup: Supervisor, name: str, row: dict[str, Any] | None = None,
             log_path: Path | None = None) -> dict[str, Any]:
    """Everything `describe` shows for backend `name` (`row`: its status row if the caller has it). Blocking."""
    from mlx_console.core.lifecycle.state import read_state

    info: dict[str, Any] = dict(row or {})
    state = None
    try:
        if not info:
            info = sup.status(name).to_json()
        state = read_state(sup.dir(name))
    except (ConsoleError, OSError) as e:
        info.setdefault("warnings", []).append(f"state not readable: {e}")
    if state is not None:
        info["cmdline"] = mask_secrets(state.cmdline)
        info["create_time"] = state.create_time
        info["supervisor_create_time"] = state.supervisor_create_time
        info.setdefault("supervisor_pid", state.supervisor_pid)
        info["started_at"] = state.started_at
        info["swapped"] = state.swapped
        for key in ("events", "warnings", "restart_policy", "restarts", "reason", "logs", "exit_code"):
            if not info.get(key):
                info[key] = getattr(state, key)
    info["advice"] = advice(sup.config, name, info.get("model"))
    log = info.get("log") or log_path
    info["triage"] = last_events(Path(log)) if log else []
    return info
