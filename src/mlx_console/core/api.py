"""The core as the console (or any other face) sees it: plain functions with typed results.

`ui/` imports this module and nothing else of the core (an import-linter contract in pyproject.toml keeps it
so). The results are the core's own dataclasses, the same the CLI's `--json` serialises with `to_json()`.
Each function imports its part of the core when first called, so the console's first frame does not wait
for the bench client, the settings schema or psutil.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlx_console.core.common.text import (
    visible as visible_text,  # text safe to draw: controls shown, not obeyed
)
from mlx_console.core.common.text import (
    without_formatting,  # a log line without its colours (CSI sequences)
)
from mlx_console.core.config import Config, Profile
from mlx_console.core.errors import ConfigError, ConsoleError
from mlx_console.core.logs.document import RUN_START, LogDocument, is_run_start
from mlx_console.core.settings.errors import ConflictError

if TYPE_CHECKING:
    from mlx_console.core.bench.runner import ProgressEvent
    from mlx_console.core.bench.session import ComparedRun
    from mlx_console.core.bench.target import Target
    from mlx_console.core.bench.trend import Trend
    from mlx_console.core.doctor import Report
    from mlx_console.core.fleet import FleetRows
    from mlx_console.core.lifecycle.control import BackendStatus, Supervisor
    from mlx_console.core.logs.live import LiveTriage
    from mlx_console.core.logs.live import Step as LiveStep
    from mlx_console.core.logs.patterns import Catalog
    from mlx_console.core.logs.triage import TriagedEvent
    from mlx_console.core.machine.models import SwapChoice as ModelChoice
    from mlx_console.core.machine.system import MemoryInfo
    from mlx_console.core.metrics.query import Activity, Marker, Panel, PlotData
    from mlx_console.core.report import IssueDraft
    from mlx_console.core.settings.apply import ApplyResult
    from mlx_console.core.settings.baseline import BaselineDiff
    from mlx_console.core.settings.remote import RemoteSettings
    from mlx_console.core.settings.server_flags import FlagSpec
    from mlx_console.core.settings.store import SettingsStore
    from mlx_console.core.settings.validate import Issue
    from mlx_console.core.settings.watch import SettingsWatcher

__all__ = [
    "METRICS_WINDOWS", "Activity", "RemoteSettings", "Trend", "ApplyResult", "BackendStatus", "BaselineDiff", "Catalog", "ComparedRun", "Config",
    "ConfigError", "ConflictError", "ConsoleError", "FlagSpec", "FleetRows", "Issue", "LogDocument", "RUN_START", "IssueDraft", "LiveStep", "LiveTriage", "Marker",
    "MemoryInfo", "ModelChoice", "Panel", "PlotData", "Profile", "ProgressEvent", "Report", "SettingsStore",
    "SettingsWatcher", "Supervisor", "Target", "TriagedEvent",
    "activities", "bench_trend", "remote_describe", "remote_model_choices", "remote_settings", "sparkline",
    "advice", "apply_settings", "bench_history", "bench_run", "bench_suites", "bench_target",
    "check_raw_settings", "describe", "check_server_flag", "server_args_change", "doctor", "draft_report", "join_server_args", "mlx_lm_flags", "save_server_args", "split_server_args", "is_run_start", "fleet_rows", "fmt_bytes", "live_triage",
    "load_catalog", "load_config", "load_settings", "mask_secrets", "memory", "save_report", "metrics_plot", "model_choices",
    "settings_baseline_diff", "settings_form_fields", "settings_path", "state_dir", "supervisor", "unified_diff",
    "visible_text", "watch_settings", "without_formatting", "write_atomic",
]

# The metrics screen's windows: name → seconds (core/metrics/query.py).
METRICS_WINDOWS: dict[str, int] = {"5m": 300, "1h": 3600, "24h": 86400}


# ---- backends -------------------------------------------------------------------------------------------

def load_config(path: str | Path | None = None) -> Config:
    from mlx_console.core import config as config_mod

    return config_mod.load(path)


def log_path(name: str) -> Path:
    """A local backend's captured log (what Supervisor.log_path gives), without importing the supervisor: the
    log pane opens it while the first poll is still importing it."""
    from mlx_console import paths

    return paths.server_log(name)


def supervisor(config: Config) -> Supervisor:
    """The backend lifecycle (start/stop/restart/swap, status, logs). Its calls block: run them in workers."""
    from mlx_console.core.lifecycle.control import Supervisor

    return Supervisor(config)


def fleet_rows(config: Config) -> FleetRows:
    """The [[host]]s' backends (rows named NAME@HOST, asked over ssh in a thread of their own); close() it."""
    from mlx_console.core.fleet import FleetRows

    return FleetRows(config)


def state_dir() -> Path:
    from mlx_console import paths

    return paths.state_dir()


def describe(sup: Supervisor, name: str, row: dict[str, Any] | None = None,
             log_path: Path | None = None) -> dict[str, Any]:
    """Everything the describe view shows of one backend (core/describe.py). Blocking."""
    from mlx_console.core.describe import describe as run

    return run(sup, name, row, log_path)


def mask_secrets(argv: list[str]) -> list[str]:
    from mlx_console.core.describe import mask_secrets as mask

    return mask(argv)


def advice(config: Config, backend: str, model: str | None) -> list[str]:
    """The advisor's warnings for loading `model` on `backend` ("message (fix: …)"); none when it cannot tell."""
    from mlx_console.core.describe import advice as run

    return run(config, backend, model)


def memory() -> MemoryInfo:
    from mlx_console.core.machine.system import memory as read

    return read()


def fmt_bytes(n: object, *, compact: bool = False) -> str:
    """The one byte formatter: 1610612736 → '1.5 GiB' (compact, for table cells: '1.5G')."""
    from mlx_console.core.common.units import fmt_bytes as fmt

    return fmt(n, compact=compact)


# ---- models -------------------------------------------------------------------------------------------------

def model_choices(config: Config, backend: str | None = None) -> list[ModelChoice]:
    """The models on this machine the swap picker offers, with their fit in free memory now and, for `backend`,
    the advisor's warnings (`backends models NAME --discover --json` prints the same)."""
    from mlx_console.core.machine.models import swap_choices

    return swap_choices(config, backend)


def remote_model_choices(fleet: FleetRows, name: str) -> list[ModelChoice]:
    """The same for a [[host]]'s backend NAME@HOST: that host's models, asked over ssh."""
    from mlx_console.core.machine.models import swap_choice_from_json

    rows = fleet.run(name, "models", "--discover")
    return [swap_choice_from_json(r) for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def remote_describe(fleet: FleetRows, name: str) -> dict[str, Any]:
    """describe() of a [[host]]'s backend, done there (`backends describe NAME --json` over ssh)."""
    info = fleet.run(name, "describe")
    return dict(info) if isinstance(info, dict) else {}


def remote_settings(fleet: FleetRows, name: str) -> RemoteSettings:
    """The model_settings.json of a [[host]]'s oMLX backend NAME@HOST, read and written on that host."""
    from mlx_console.core.settings.remote import RemoteSettings

    target = fleet.split(name)
    if target is None:
        raise ConsoleError(f"{name!r} is not a backend of a [[host]]")
    return RemoteSettings(*target)


def doctor(config: Config | None) -> Report:
    from mlx_console.core.doctor import run

    return run(config)


# ---- metrics ------------------------------------------------------------------------------------------------

def metrics_plot(backend: str, window: str, fleet: FleetRows | None = None) -> PlotData:
    """The metrics screen's panels and markers for `backend` over the named window (METRICS_WINDOWS): from this
    machine's samplers' database, or with `fleet` and a NAME@HOST backend from that host's
    (`metrics NAME --json --events` over ssh)."""
    from mlx_console.core.metrics.query import WINDOWS, local_plot_data

    if fleet is not None and fleet.split(backend) is not None:
        return fleet.plot_data(backend, WINDOWS[window])
    return local_plot_data(backend, WINDOWS[window])


def activities(backends: list[str]) -> dict[str, Activity]:
    """Each backend's requests/min, tok/s and throughput sparkline values lately (the dashboard's columns)."""
    from mlx_console.core.metrics.query import activities as read

    return read(backends)


def sparkline(values: list[float], width: int = 8) -> str:
    """The last `width` values as block characters (▁…█) scaled to their maximum."""
    if not values:  # "" as draw() gives, without importing the metrics queries (the first frame's placeholder rows)
        return ""
    from mlx_console.core.metrics.query import sparkline as draw

    return draw(values, width)


# ---- files and text -----------------------------------------------------------------------------------------

def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace `path` with `data` all at once (a crash leaves the old or the new file, never half of one)."""
    from mlx_console.core.common.atomic import write_atomic as write

    write(path, data, mode=mode)


# ---- logs ---------------------------------------------------------------------------------------------------

def live_triage(path: Path, catalog: Callable[[], Catalog], *, history: int, quiet: float, frame: float,
                stream_frame: float = 0.0, hand_over: bool = True) -> LiveTriage:
    """The one log pipeline (core/logs/live.py) as a view follows a log: the document first (its end indexed
    at once; `step.opened`), then its last `history` lines triaged over all levels (info lines too, the view
    shows every event), then appends. The view closes the documents it is handed."""
    from mlx_console.core.logs.live import LiveTriage

    return LiveTriage(path, catalog, include_all=True, history=history, quiet=quiet, frame=frame,
                      stream_frame=stream_frame, hand_over=hand_over)


def load_catalog(extra: list[Path]) -> Catalog:
    """The shipped bug catalogue with the user's files (config `catalogs`) over it."""
    from mlx_console.core.logs.patterns import Catalog

    return Catalog.load(extra)


def draft_report(lines: list[str], *, first_line: int, log: Path | str, backend: str | None, config: Config,
                 catalog: Catalog) -> IssueDraft:
    """The issue draft for the lines of one event as the viewer shows them (`R`; core/report.py). Probes the
    environment (seconds): call it from a worker. ConsoleError if the lines hold no warning/error event."""
    from mlx_console.core.report import draft_lines

    return draft_lines(lines, first_line=first_line, log=log, backend=backend, config=config, catalog=catalog)


def save_report(draft: IssueDraft) -> Path:
    """Write the draft under <state>/reports/ (0600) and return its path."""
    from mlx_console.core.report import save

    return save(draft, state_dir() / "reports")


# ---- bench --------------------------------------------------------------------------------------------------

def bench_trend(runs: list[dict[str, Any]], cell: str | None = None) -> Trend:
    """A cell's decode tok/s across stored runs: median and p25–p75 per run, config changes (core/bench/trend.py)."""
    from mlx_console.core.bench.trend import trend

    return trend(runs, cell)


def bench_suites() -> list[str]:
    from mlx_console.core.bench.suites import available

    return [str(n) for n in available()]


def bench_target(config: Config, backend: str, model: str | None = None) -> Target:
    """URL, model and server flags / oMLX model settings of the backend (the run's fingerprint)."""
    from mlx_console.core.bench.target import for_profile

    return for_profile(config, backend, model)


def bench_history(model: str | None = None) -> list[dict[str, Any]]:
    """Stored run summaries (schema 1), oldest first."""
    from mlx_console.core.bench.store import history

    return history(model)


def bench_run(config: Config, backend: str, suite: str, *, running_model: str | None = None,
              cancel: threading.Event | None = None,
              progress: Callable[[ProgressEvent], None] | None = None) -> ComparedRun:
    """Run `suite` on the backend, store it, and compare it with the model's previous run."""
    from mlx_console.core.bench.session import run_compared
    from mlx_console.core.bench.suites import load
    from mlx_console.core.bench.target import for_profile

    target = for_profile(config, backend, running_model)
    if target.backend_kind == "mlx-lm" and running_model:
        target.model_path = target.model  # swapped: read the running model's config.json
    return run_compared(target, load(suite), label=f"console:{backend}", cancel=cancel, progress=progress)


# ---- oMLX model settings ----------------------------------------------------------------------------------

def settings_path(config: Config, backend: str | None) -> Path:
    """The model_settings.json of the backend when it is oMLX, else the first oMLX profile's, else ~/.omlx."""
    from mlx_console.core.settings.locate import default_path

    if backend:
        try:
            profile: Profile | None = config.backend(backend)
        except ConsoleError:
            profile = None
        if profile is not None and profile.kind == "omlx":
            return profile.base_path_resolved / "model_settings.json"
    return default_path(config)


def settings_form_fields() -> list[dict[str, Any]]:
    from mlx_console.core.settings.schema import form_fields

    return form_fields()


def load_settings(path: str | Path) -> SettingsStore:
    from mlx_console.core.settings.store import SettingsStore

    return SettingsStore.load(path)


def check_raw_settings(path: Path, data: bytes, omlx_version: str) -> tuple[Any, list[Issue]]:
    """Parse a raw edit of the file: (document, its errors). Bad JSON raises, naming line and column."""
    from mlx_console.core.settings.store import parse_bytes
    from mlx_console.core.settings.validate import check_document, errors

    doc, _ = parse_bytes(path, data)
    return doc, errors(check_document(doc, omlx_version))


def apply_settings(store: SettingsStore, config: Config | None,
                   progress: Callable[[str], None] | None = None) -> ApplyResult:
    """Save and apply (reload in oMLX); raises ConflictError when the file changed since it was loaded."""
    from mlx_console.core.settings.apply import apply

    return apply(store, config, progress=progress)


def settings_baseline_diff(current: dict[str, dict[str, Any]], model: str | None) -> BaselineDiff:
    """How the settings differ from those of the last bench run (raises when there is none)."""
    from mlx_console.core.settings.baseline import compare, load

    return compare(current, load("last", model), model)


def watch_settings(path: Path, on_change: Callable[[str], None]) -> SettingsWatcher:
    """Started watcher: on_change(new_hash) from its thread whenever the file's content changes."""
    from mlx_console.core.settings.watch import SettingsWatcher

    return SettingsWatcher(path, on_change).start()


def unified_diff(old: bytes | None, new: bytes | None, name: str) -> str:
    from mlx_console.core.settings.textdiff import unified

    return unified(old, new, name)


# ---- mlx_lm.server flags (a [[backend]]'s `args` in config.toml) -------------------------------------------

def mlx_lm_flags() -> list[FlagSpec]:
    """Every long option the installed mlx_lm.server accepts, from its own parser (a subprocess; cached per
    mlx-lm version): run it in a worker."""
    from mlx_console.core.settings.server_flags import mlx_lm_flags as read

    return read()


def split_server_args(args: list[str], specs: list[FlagSpec]) -> tuple[dict[str, str], list[str]]:
    """A profile's `args` → (flag → value as typed, problems with the rest)."""
    from mlx_console.core.settings.server_flags import split_args

    return split_args(args, specs)


def join_server_args(values: dict[str, str], specs: list[FlagSpec]) -> list[str]:
    from mlx_console.core.settings.server_flags import join_args

    return join_args(values, specs)


def check_server_flag(spec: FlagSpec, text: str) -> str | None:
    """Why `text` is not a value the flag accepts, or None."""
    from mlx_console.core.settings.server_flags import check_value

    return check_value(spec, text)


def server_args_change(path: Path, backend: str, args: list[str]) -> tuple[str, str]:
    """config.toml's text now and with that [[backend]]'s `args` replaced, comments and layout kept (checked,
    not written); ConsoleError names a missing file, a missing [[backend]] or a value the loader refuses."""
    from mlx_console.core.settings.server_flags import args_change

    return args_change(path, backend, args)


def save_server_args(path: Path, backend: str, args: list[str]) -> tuple[str, str]:
    """Write `args` for `backend` into config.toml (atomic, mode kept): (old text, new text)."""
    from mlx_console.core.settings.server_flags import save_args

    return save_args(path, backend, args)
