"""The files a backend's supervising process and the console share: spec.json (what to run) and
state.json (what is running and how it is), both written atomically, plus process identity checks.

Layout per backend: `paths.backends_dir()/<name>/` holding spec.json, state.json, server.log (the server's
stdout+stderr, appended) and supervise.log (the supervising process's own output).
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import psutil

from mlx_console.core.common.atomic import write_atomic

ACTIVE = ("starting", "loading", "ready", "degraded")
STATES = (*ACTIVE, "dead", "stopped")

SPEC_FILE, STATE_FILE, SUPERVISE_LOG = "spec.json", "state.json", "supervise.log"  # server.log: paths.SERVER_LOG


@dataclass
class Timings:
    """How the supervising process paces itself. Defaults suit a real machine; tests shorten them."""

    poll: float = 0.2  # process and log checks: a crash is seen within this (must stay < 1 s)
    probe_interval: float = 30.0  # liveness completions once ready
    probe_timeout: float = 60.0  # a liveness completion slower than this counts as failed
    probe_failures: int = 2  # consecutive failed liveness probes → degraded
    busy_timeouts: int = 5  # probe timeouts while the server burns CPU that are not counted, in a row
    load_timeout: float = 900.0  # from spawn to the first answered completion
    grace: float = 10.0  # SIGTERM → SIGKILL
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    retry_cap: int = 5  # consecutive restarts without a stable period, then give up (dead)
    stable_after: float = 60.0  # ready this long → the consecutive-restart count resets
    models_interval: float = 2.0  # oMLX: how often the loaded-model list is refreshed
    on_model_failure: str = "report"  # oMLX: a model failing its probes is reported, or "reload"ed


@dataclass
class Spec:
    """What the supervising process runs; written by the console before it spawns the supervisor."""

    run_id: str
    name: str
    kind: str
    command: list[str]
    env: dict[str, str]
    host: str
    port: int
    model: str | None
    base_url: str
    api_key: str | None
    restart: str
    log: str
    extra_logs: list[str] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    swapped: bool = False  # the model came from swap_model, not from the profile
    warnings: list[str] = field(default_factory=list)  # e.g. bound beyond loopback without an API key
    # distributed (mlx.launch): the ssh host of each rank, and the dir (same path on every host) of their logs
    rank_hosts: list[str] = field(default_factory=list)
    rank_dir: str = ""
    # meter = true: the metering proxy serves this public address; host/port above are the server's own
    meter_host: str | None = None
    meter_port: int | None = None
    base_path: str | None = None  # oMLX: where its settings files are (model TTLs for liveness)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Spec:
        d = dict(d)
        d["timings"] = Timings(**d.get("timings", {}))
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in fields(cls)}})


@dataclass
class State:
    """What is running. Written only by the supervising process while it lives (the console writes it
    only when no supervisor is alive: before spawning one, or to record a stop it had to do itself)."""

    name: str
    kind: str
    status: str = "stopped"
    reason: str = ""
    run_id: str = ""
    pid: int | None = None
    create_time: float | None = None
    cmdline: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int | None = None
    model: str | None = None
    base_url: str = ""
    restart_policy: str = "on-failure"
    swapped: bool = False  # model chosen by swap_model (restart keeps it), not the profile's
    restarts: int = 0
    loaded_models: list[str] = field(default_factory=list)  # oMLX: models loaded right now
    warnings: list[str] = field(default_factory=list)
    liveness: dict[str, str] = field(default_factory=dict)  # model (or "server") → last liveness verdict
    exit_code: int | None = None
    supervisor_pid: int | None = None
    supervisor_create_time: float | None = None
    started_at: float | None = None  # wall time the current server process was spawned
    ready_at: float | None = None
    log: str = ""
    log_offset: int = 0  # where the current server process's output starts in the log
    logs: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # last few transitions, newest last
    ranks: list[dict[str, Any]] = field(default_factory=list)  # distributed: distributed.Rank of each rank
    rank_token: str = ""  # distributed: the token of this spawn in the ranks' pid files
    updated_at: float = 0.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> State:
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in fields(cls)}})

    def event(self, status: str, reason: str = "") -> None:
        self.status, self.reason = status, reason
        self.events = [*self.events[-19:], {"t": round(time.time(), 3), "status": status, "reason": reason}]


def write_json(path: Path, data: dict[str, Any], mode: int = 0o600) -> None:
    """Atomic: readers see the old file or the new one, never half of one."""
    write_atomic(path, json.dumps(data, indent=1).encode("utf-8"), mode=mode)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_spec(dir: Path, spec: Spec) -> None:
    # 0600: the spec may hold an API key.
    write_json(dir / SPEC_FILE, asdict(spec), mode=0o600)


def read_spec(dir: Path) -> Spec:
    data = read_json(dir / SPEC_FILE)
    if data is None:
        raise FileNotFoundError(dir / SPEC_FILE)
    return Spec.from_dict(data)


def write_state(dir: Path, state: State) -> None:
    state.updated_at = time.time()
    write_json(dir / STATE_FILE, asdict(state), mode=0o600)  # owner only, like every file of the state dir


def read_state(dir: Path) -> State | None:
    data = read_json(dir / STATE_FILE)
    return State.from_dict(data) if data else None


SWAP_FILE = "swap.json"


def write_swap(dir: Path, model: str | None) -> None:
    """The model `backends swap` put in place of the profile's (oMLX: loaded through the API, so the running
    supervisor's spec does not know it): restarts, and the supervisor's own restarts, load it again."""
    if model is None:
        (dir / SWAP_FILE).unlink(missing_ok=True)
    else:
        write_json(dir / SWAP_FILE, {"model": model})


def read_swap(dir: Path) -> str | None:
    data = read_json(dir / SWAP_FILE)
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) and model else None


def create_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def live_process(pid: int | None, created: float | None) -> psutil.Process | None:
    """The process `pid` if it is still the one we started (same create time) and has not exited.
    A recycled pid (another process, other create time) is not ours; a zombie has exited."""
    if not pid or created is None:
        return None
    try:
        p = psutil.Process(pid)
        with p.oneshot():  # status with the create time from one read of the process's info (polled every second)
            if abs(p.create_time() - created) > 0.05 or p.status() == psutil.STATUS_ZOMBIE:
                return None
        return p
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def tail_lines(path: Path, offset: int = 0, n: int = 15) -> list[str]:
    """The last n lines of a log from offset on (the current run's output), read from the end."""
    from mlx_console.core.logs.document import last_lines

    return last_lines(path, n, offset)


def port_open(host: str, port: int) -> bool:
    """Something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
