"""Backend lifecycle for the CLI and the TUI: start (detached, supervised), stop, restart, status, re-adopt.

Each started backend gets a supervising process (core/supervise.py) in its own session that owns the
server, restarts it per the profile's policy and writes `state.json`; this module reads that file (plus
psutil) to answer status, so every console sees the same truth, and signals the supervisor to stop.
"""

from __future__ import annotations

import builtins
import dataclasses
import fcntl
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import psutil

from mlx_console import paths
from mlx_console.core.backends.base import kind_for
from mlx_console.core.common import procs
from mlx_console.core.config import Config, Profile
from mlx_console.core.errors import ConsoleError
from mlx_console.core.lifecycle import distributed
from mlx_console.core.lifecycle.state import (
    ACTIVE,
    SUPERVISE_LOG,
    Spec,
    State,
    Timings,
    live_process,
    read_state,
    read_swap,
    tail_lines,
    write_spec,
    write_state,
    write_swap,
)
from mlx_console.core.machine import system

Narrate = Callable[[str], None]  # a one-line note of what is happening now

LOCK_FILE = "start.lock"
LOG_ROTATE_BYTES = 64 * 1024 * 1024

JSON_KEYS = ("name", "kind", "status", "pid", "port", "model", "uptime_s", "rss_bytes", "log")


@dataclass
class BackendStatus:
    """One backend as the console sees it. `pid` is the server itself; the supervisor has its own field."""

    name: str
    kind: str
    status: str  # starting | loading | ready | degraded | dead | stopped
    pid: int | None = None
    port: int | None = None
    model: str | None = None
    uptime_s: float | None = None
    rss_bytes: int | None = None
    log: str = ""
    supervisor_pid: int | None = None
    host: str = "127.0.0.1"
    base_url: str = ""
    restart_policy: str = "on-failure"
    restarts: int = 0
    loaded_models: list[str] = field(default_factory=list)  # oMLX: loaded right now (`model` joins them)
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    liveness: dict[str, str] = field(default_factory=dict)  # model (or "server") → last liveness verdict
    swapped_model: str | None = None  # `backends swap` chose it; a restart brings it back
    server_settings: dict[str, Any] = field(default_factory=dict)  # oMLX: flag-backed settings.json values
    events: list[dict[str, Any]] = field(default_factory=list)  # last transitions {t, status, reason}
    exit_code: int | None = None
    logs: list[str] = field(default_factory=list)
    configured: bool = True  # False: found in the state dir but no longer in the config
    updated_at: float | None = None
    ranks: list[dict[str, Any]] = field(default_factory=list)  # distributed: {rank,host,pid,status,cpu_percent,…}

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_json(self) -> dict[str, Any]:
        # One shallow dict, no deep copy (asdict): status() builds fresh lists on every call, and the
        # console turns every backend's status into this once a second.
        d = {k: getattr(self, k) for k in JSON_KEYS}
        for f in _STATUS_FIELDS:
            d.setdefault(f, getattr(self, f))
        return d


_STATUS_FIELDS = tuple(f.name for f in fields(BackendStatus))


def _noop(msg: str) -> None:
    pass


class Supervisor:
    """`Supervisor(config)`; `list()`, `status(name)`, `start(name, wait, progress)`, `stop(name)`,
    `restart(name)`, `swap_model(name, model)`, `log_path(name)`. Cheap to create; holds no processes."""

    def __init__(self, config: Config, timings: Timings | None = None):
        self.config = config
        self.timings = timings or Timings()

    # -- reading ---------------------------------------------------------------------------------
    def dir(self, name: str) -> Path:
        return paths.backends_dir() / name

    def log_path(self, name: str) -> Path:
        """The server's captured stdout+stderr (the file to tail)."""
        return paths.server_log(name)

    def log_paths(self, name: str) -> list[Path]:
        """Every log of the backend: the captured one first, then the backend's own (oMLX server.log)."""
        extra: list[Path] = []
        try:
            profile = self.config.backend(name)
            extra = kind_for(profile.kind).extra_logs(profile)
            st = read_state(self.dir(name))
            extra += [Path(p) for p in (st.logs[1:] if st and profile.distributed else []) if Path(p).is_absolute()]
        except ConsoleError:
            st = read_state(self.dir(name))
            extra = [Path(p) for p in (st.logs[1:] if st else [])]
        return [self.log_path(name), *extra]

    def log_tail(self, name: str, lines: int = 40) -> list[str]:
        """The last lines the current (or last) server process wrote to the captured log."""
        state = read_state(self.dir(name))
        return tail_lines(self.log_path(name), state.log_offset if state else 0, lines)

    def list(self) -> list[BackendStatus]:
        """Configured backends, then any still running that the config no longer names."""
        out = [self.status(p.name) for p in self.config.backends]
        names = {p.name for p in self.config.backends}
        base = paths.backends_dir()
        for d in sorted(base.iterdir()) if base.exists() else []:
            if d.name not in names and (d / "state.json").exists():
                st = self.status(d.name)
                if st.active:
                    out.append(st)
        return out


    def status(self, name: str) -> BackendStatus:
        profile = self._profile_or_none(name)
        state = read_state(self.dir(name))
        if state is None:
            if profile is None:
                self.config.backend(name)  # raises, naming the configured backends
            assert profile is not None
            return BackendStatus(name=name, kind=profile.kind, status="stopped", port=profile.port,
                                 model=profile.model, log=str(self.log_path(name)), host=profile.host,
                                 base_url=profile.base_url, restart_policy=profile.restart,
                                 logs=[str(p) for p in self.log_paths(name)])
        server = live_process(state.pid, state.create_time)
        sup = live_process(state.supervisor_pid, state.supervisor_create_time)
        status, reason = state.status, state.reason
        if status in ACTIVE and state.pid and server is None and sup is not None:
            # Between the crash and the supervisor's next look (< its poll interval): already dead.
            status, reason = "dead", f"server pid {state.pid} is gone (its supervisor is handling it)"
        elif status in ACTIVE and sup is None and state.supervisor_pid is None \
                and time.time() - state.updated_at < 30:
            pass  # written by start() just before it spawned the supervisor, which has not reported yet
        elif status in ACTIVE and sup is None:
            if server is None:
                was = f"last known: {state.status}{': ' + state.reason if state.reason else ''}"
                status, reason = "dead", (f"server pid {state.pid} and its supervisor are gone ({was})"
                                          if state.pid else f"its supervisor is gone ({was}); see "
                                          f"{self.dir(name) / SUPERVISE_LOG}")
            else:
                reason = (f"unsupervised: supervisor pid {state.supervisor_pid} is gone; "
                          "`backends start` re-adopts it")
        loaded = state.loaded_models if status in ACTIVE else []
        st = BackendStatus(
            name=name, kind=state.kind, status=status, port=state.port,
            model=", ".join(loaded) if loaded else state.model, loaded_models=list(loaded),
            log=state.log or str(self.log_path(name)), host=state.host, base_url=state.base_url,
            restart_policy=state.restart_policy, restarts=state.restarts, reason=reason,
            exit_code=state.exit_code, logs=state.logs or [str(p) for p in self.log_paths(name)],
            configured=profile is not None, updated_at=state.updated_at, warnings=list(state.warnings),
            events=list(state.events), liveness=dict(state.liveness) if status in ACTIVE else {},
            swapped_model=read_swap(self.dir(name)) or (state.model if state.swapped else None),
        )
        if not st.active and profile is not None:  # what a start would use now (the config may have changed)
            st.port, st.host, st.base_url, st.model = profile.port, profile.host, profile.base_url, profile.model
        if profile is not None and profile.kind == "omlx":
            from mlx_console.core.backends.omlx_settings import in_force

            st.server_settings = in_force(profile)
        if sup is not None:
            st.supervisor_pid = sup.pid
        st.ranks = _ranks(state.ranks, status in ACTIVE)
        if server is not None and status in ACTIVE:
            st.pid = server.pid
            st.uptime_s = round(time.time() - server.create_time(), 1)
            st.rss_bytes = _rss(server)
        return st

    def _profile_or_none(self, name: str) -> Profile | None:
        try:
            return self.config.backend(name)
        except ConsoleError:
            return None

    # -- starting --------------------------------------------------------------------------------
    def timings_for(self, profile: Profile) -> Timings:
        """The supervisor's pacing with the profile's [backend.liveness] applied."""
        lv = profile.liveness
        return replace(self.timings,
                       probe_interval=float(lv.get("interval", self.timings.probe_interval)),
                       probe_timeout=float(lv.get("timeout", self.timings.probe_timeout)),
                       probe_failures=int(lv.get("failures", self.timings.probe_failures)),
                       on_model_failure=str(lv.get("on_model_failure", self.timings.on_model_failure)))

    def start(self, name: str, wait: float | None = None, progress: Narrate | None = None,
              model: str | None = None) -> BackendStatus:
        """Start (or re-adopt) a backend. With `wait`, block until ready; raise ConsoleError with the
        reason and the log lines that say why when it dies or does not get ready in time."""
        say = progress or _noop
        profile = self.config.backend(name)
        d = self.dir(name)
        paths.private_dir(d)
        # Two consoles starting the same backend at once: the second waits, then finds it running.
        with paths.open_private(d / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            st = self._start_locked(profile, d, say, model)
        return self._wait(name, wait, say) if wait is not None else st

    def _start_locked(self, profile: Profile, d: Path, say: Narrate, model: str | None) -> BackendStatus:
        name = profile.name
        kind = kind_for(profile.kind)
        cur = self.status(name)
        if cur.active and cur.supervisor_pid:
            say(f"{name}: already {cur.status} (pid {cur.pid}, supervisor pid {cur.supervisor_pid})")
            return cur
        if cur.supervisor_pid and not cur.active:  # its supervisor waits to restart it: start now instead
            say(f"{name}: {cur.status} ({cur.reason}); starting it now")
            self.stop(name)
        if cur.active and cur.pid:  # server alive, supervisor gone: supervise it again, do not restart it
            say(f"{name}: re-adopting server pid {cur.pid} (its supervisor is gone)")
            self._spawn_supervisor(d, adopt=True)
            return self._wait_supervisor(name, None)
        swapped = bool(model) and model != profile.model
        write_swap(d, model if swapped and profile.kind == "omlx" else None)
        model = model or profile.model
        if profile.demo and model:
            self._ensure_demo_model(Path(model), say)
        kind.check_model(profile, model)
        warnings: list[str] = []
        if profile.demo:  # no config: the built-in demo moves aside rather than fail on a taken 8080
            warnings += self._demo_port(profile)
        if not profile.distributed or distributed.rank_hosts(profile)[0] == distributed.LOCAL:
            self._check_port(profile)  # (rank 0 on another host listens there, not here)
        warning = kind.exposure_warning(profile)
        warnings += [warning] if warning else []
        if profile.kind == "omlx":
            from mlx_console.core.backends.omlx_settings import flag_mismatches

            warnings += flag_mismatches(profile)
        warnings += self.advice(name, model)
        for w in warnings:
            say(f"warning: {w}")
        public = profile
        if profile.meter:  # the meter (in the supervising process) takes the public port; the server a private one
            profile = dataclasses.replace(profile, host="127.0.0.1", port=_free_loopback_port())
        command = kind.command(profile, model)
        rank_hosts: list[str] = []
        if profile.distributed:
            rank_hosts = distributed.rank_hosts(profile)
            command = distributed.command(profile, command, d / "ranks")
        log = self.log_path(name)
        _rotate_if_large(log)
        import uuid  # here, not at import (uuid imports platform): only a start needs a run id

        spec = Spec(
            run_id=uuid.uuid4().hex, name=name, kind=profile.kind, command=command,
            env=kind.env(profile), host=profile.host, port=profile.port, model=model,
            base_url=profile.base_url, api_key=profile.api_key, restart=profile.restart, log=str(log),
            extra_logs=[str(p) for p in kind.extra_logs(profile)] + [
                distributed.log_label(h, distributed.rank_log(d / "ranks", i)) for i, h in enumerate(rank_hosts)],
            timings=self.timings_for(profile), swapped=swapped,
            warnings=warnings, rank_hosts=rank_hosts, rank_dir=str(d / "ranks"),
            meter_host=public.host if public.meter else None, meter_port=public.port if public.meter else None,
            base_path=str(profile.base_path_resolved) if profile.kind == "omlx" else None,
        )
        write_spec(d, spec)
        write_state(d, State(name=name, kind=profile.kind, status="starting", reason="spawning supervisor",
                             run_id=spec.run_id, host=public.host, port=public.port, model=model,
                             base_url=public.base_url, restart_policy=profile.restart, log=str(log),
                             logs=[str(log), *spec.extra_logs], swapped=swapped))
        say(f"{name}: starting {profile.kind} on {public.base_url}" + (" (metered)" if public.meter else "")
            + f" (log: {log})")
        self._spawn_supervisor(d, adopt=False)
        return self._wait_supervisor(name, spec.run_id)

    def _spawn_supervisor(self, d: Path, adopt: bool) -> None:
        cmd = [sys.executable, "-m", "mlx_console.core.lifecycle.daemon", str(d)] + (["--adopt"] if adopt else [])
        with paths.open_private(d / SUPERVISE_LOG) as out:
            # Own session: no SIGHUP when the SSH session or terminal goes; its output goes to its own
            # file, so it never holds the caller's stdout/stderr open. It forks once and exits at once.
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True, cwd=d)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise ConsoleError(f"the supervising process did not detach within 30s: see {d / SUPERVISE_LOG}") from None

    def _wait_supervisor(self, name: str, run_id: str | None) -> BackendStatus:
        """Until the new supervisor has written its state (it knows the server pid then)."""
        d = self.dir(name)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = read_state(d)
            if state and (run_id is None or state.run_id == run_id) and (
                    live_process(state.supervisor_pid, state.supervisor_create_time)
                    or (run_id and state.supervisor_pid and state.status in ("dead", "stopped"))):
                return self.status(name)
            time.sleep(0.05)
        tail = "\n".join(tail_lines(d / SUPERVISE_LOG))
        raise ConsoleError(f"{name}: the supervising process did not report within 30s; "
                           f"{d / SUPERVISE_LOG} says:\n{tail}")

    def _wait(self, name: str, wait: float, say: Narrate) -> BackendStatus:
        """Until ready (return), dead/stopped (raise with the log lines), or `wait` seconds (raise)."""
        deadline = time.monotonic() + wait
        last = ""
        while True:
            st = self.status(name)
            if st.status != last:
                if st.status in ("starting", "loading"):
                    say(f"{name}: {st.status}" + (f" (pid {st.pid})" if st.pid else ""))
                last = st.status
            if st.status == "ready":
                return st
            if st.status in ("dead", "stopped") and st.supervisor_pid is None:  # final: nobody restarts it
                raise ConsoleError(self._failure(st))
            if time.monotonic() >= deadline:
                raise ConsoleError(f"{name}: not ready after {wait:g}s (still {st.status}"
                                   f"{': ' + st.reason if st.reason else ''}); it keeps running — see "
                                   f"{st.log} or `mlx-console backends stop {name}`")
            time.sleep(0.1)

    def _failure(self, st: BackendStatus) -> str:
        lines = _why_lines(self.log_tail(st.name, 80))
        msg = f"{st.name}: {st.status}: {st.reason or 'no reason recorded'}"
        if lines:
            msg += f"\nlast lines of {st.log}:\n" + "\n".join("  " + ln for ln in lines)
        return msg

    def _ensure_demo_model(self, model_dir: Path, say: Narrate) -> None:
        if (model_dir / "config.json").exists():
            return
        say(f"building the tiny demo model in {model_dir} (once; a few seconds)…")
        cmd = [sys.executable, "-m", "mlx_console", "demo-model", str(model_dir)]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise ConsoleError(f"building the demo model in {model_dir} took over 300s") from e
        if out.returncode != 0:
            tail = "\n".join((out.stderr or out.stdout).strip().splitlines()[-10:])
            raise ConsoleError(f"building the demo model failed (exit {out.returncode}):\n{tail}")
        say(f"demo model built in {model_dir}")

    def _demo_port(self, profile: Profile) -> builtins.list[str]:
        """The demo backend's port taken by something else: take a free one (the profile changes, so the
        console and this run agree) and say so. A configured backend still fails: its port is a decision."""
        owner = port_owner(profile.port, profile.api_key)
        if not owner:
            return []
        taken, profile.port = profile.port, _free_loopback_port()
        return [f"port {taken} is taken by {owner}: the demo backend uses port {profile.port} instead "
                "(a config file with a [[backend]] sets a port for good)"]

    def _check_port(self, profile: Profile) -> None:
        owner = port_owner(profile.port, profile.api_key)
        if owner:
            raise ConsoleError(f"cannot start {profile.name!r}: port {profile.port} is taken by {owner}")
        _check_bindable(profile)

    # -- stopping --------------------------------------------------------------------------------
    def stop(self, name: str, progress: Narrate | None = None) -> BackendStatus:
        """SIGTERM the supervisor (it stops the server: TERM, then KILL after the grace period) and wait.
        A backend already stopped or dead is left as it is (its status says so)."""
        say = progress or _noop
        d = self.dir(name)
        state = read_state(d)
        if state is None:
            self.config.backend(name)  # unknown name → ConsoleError
            return self.status(name)
        server = live_process(state.pid, state.create_time)
        sup = live_process(state.supervisor_pid, state.supervisor_create_time)
        if server is None and sup is None:
            return self.status(name)
        grace = self.timings.grace
        if sup is not None:
            say(f"{name}: stopping (supervisor pid {sup.pid}, server pid {state.pid})")
            procs.terminate([sup], grace + 10)
        server = live_process(state.pid, state.create_time)
        if server is not None:  # no supervisor (or it failed): stop the server ourselves
            say(f"{name}: stopping server pid {server.pid} directly")
            procs.terminate([server], grace, group=True)
        after = read_state(d) or state
        if after.status != "stopped":
            after.event("stopped", "stopped on request")
            write_state(d, after)
        return self.status(name)

    def restart(self, name: str, wait: float | None = None, progress: Narrate | None = None) -> BackendStatus:
        """Stop and start again: on the swapped-in model if `swap_model` chose one, else the profile's."""
        d = self.dir(name)
        state = read_state(d)
        # oMLX swaps through its API (swap.json); mlx-lm swaps by a restart on the model (state.swapped).
        model = read_swap(d) or (state.model if state and state.swapped else None)
        self.stop(name, progress)
        return self.start(name, wait=wait, progress=progress, model=model)

    def swap_model(self, name: str, model: str, wait: float | None = None,
                   progress: Narrate | None = None, keep: bool = False, record: bool = True) -> BackendStatus:
        """mlx-lm: restart on another model. oMLX: load it through the API, then unload the model it replaces
        (unless `keep`); with `record` a restart brings it back. Returns the status after the load."""
        profile = self.config.backend(name)
        say = progress or _noop
        if profile.kind == "omlx":
            before = self.status(name)
            replaced = read_swap(self.dir(name)) or profile.model
            for line in self.advice(name, model):
                say(f"warning: {line}")
            say(f"{name}: loading {model} through the oMLX API…")
            from mlx_console.core.backends.omlx import OmlxError, load_failure_text

            try:
                self._omlx_call(name, f"loading {model}", lambda c: c.load(model))
            except OmlxError as e:
                raise ConsoleError(f"{name}: {load_failure_text(model, e)}") from None
            if record:
                write_swap(self.dir(name), None if model == profile.model else model)
            if not keep and replaced and replaced != model and replaced in before.loaded_models:
                say(f"{name}: unloading {replaced} (the model it replaces; --keep keeps both)")
                self._omlx_call(name, f"unloading {replaced}", lambda c: c.unload(replaced))
            return self._settled(name, model, None if keep or not replaced or replaced == model else replaced)
        if keep:
            raise ConsoleError(f"{name}: mlx_lm.server serves one model; --keep applies to oMLX backends")
        kind_for(profile.kind).check_model(profile, model)  # refuse before stopping what runs
        self.stop(name, progress)
        return self.start(name, wait=wait, progress=progress, model=model)

    def advice(self, name: str, model: str | None) -> builtins.list[str]:
        """The advisor's warnings for loading `model` on backend `name`, as lines (none when it cannot tell)."""
        if not model:
            return []
        from mlx_console.core import advisor

        try:
            return [f"advisor: {line}" for line in advisor.advise_profile(self.config, name, model).lines()]
        except Exception:  # noqa: BLE001 - advice never stops a load
            return []

    def _settled(self, name: str, loaded: str, unloaded: str | None, timeout: float = 10.0) -> BackendStatus:
        """The status once the supervisor has seen the load (it refreshes the model list every few seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(name)
            if (loaded in st.loaded_models and unloaded not in st.loaded_models) or not st.active \
                    or time.monotonic() > deadline:
                return st
            time.sleep(0.1)

    def models(self, name: str) -> builtins.list[dict[str, Any]]:
        """The backend's models with their loaded state. oMLX: every model it knows (through its API);
        mlx-lm: the one model it serves."""
        profile = self.config.backend(name)
        if profile.kind == "omlx":
            models: builtins.list[dict[str, Any]] = self._omlx_call(name, "listing models", lambda c: c.models())
            return models
        st = self.status(name)
        return [{"id": st.model, "loaded": st.status == "ready"}] if st.model else []

    def unload(self, name: str, model: str) -> BackendStatus:
        """oMLX: unload through its API. mlx_lm.server cannot unload its model: stop the backend instead."""
        profile = self.config.backend(name)
        if profile.kind != "omlx":
            raise ConsoleError(f"{name}: mlx_lm.server cannot unload its model; "
                               f"`mlx-console backends stop {name}` frees it")
        self._omlx_call(name, f"unloading {model}", lambda c: c.unload(model))
        return self.status(name)

    def _omlx_call(self, name: str, what: str, call: Callable[[Any], Any]) -> Any:
        import httpx

        from mlx_console.core.backends.omlx import OmlxClient

        st = self.status(name)
        if not st.active:
            raise ConsoleError(f"{name}: {what} needs a running backend; it is {st.status}")
        try:
            return call(OmlxClient(st.base_url, self.config.backend(name).api_key))
        except httpx.HTTPError as e:
            raise ConsoleError(f"{name}: {what} failed: {type(e).__name__}: {e}") from e


_ALARM = re.compile(r"\w(Error|Exception)\b|- (ERROR|CRITICAL) -|\berror:|died|Errno|Traceback")


def _ranks(ranks: list[dict[str, Any]], active: bool) -> list[dict[str, Any]]:
    """The ranks for status: cpu and rss of the local ones asked now; none running once the group is not."""
    out = []
    for d in ranks:
        r = distributed.Rank(**d)
        if not active and r.status != "gone":
            r.status = "stopped"
        elif r.status == "running" and r.host == distributed.LOCAL:
            r.cpu_percent, r.rss_bytes = distributed.usage(r)
            if not distributed.alive_local(r):
                r.status = "gone"
        out.append(r.to_json())
    return out


def _why_lines(lines: list[str], n: int = 15) -> list[str]:
    """The lines that say why: ending just after the last error-looking line, else the last n."""
    hits = [i for i, ln in enumerate(lines) if _ALARM.search(ln)]
    if not hits:
        return lines[-n:]
    end = hits[-1] + 3
    return lines[max(0, end - n):end]


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _rotate_if_large(log: Path) -> None:
    """The server log is appended across runs; past LOG_ROTATE_BYTES it moves to .1 (one old copy kept)."""
    try:
        if log.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(log, log.with_name(log.name + ".1"))
    except OSError:
        pass


# children(recursive=True) scans all of /proc: the console polls every second, so the child list of a
# server is looked up at most every CHILDREN_TTL_S (a server's helper processes rarely change).
CHILDREN_TTL_S = 15.0
_children_cache: dict[tuple[int, float], tuple[float, list[psutil.Process]]] = {}


def _children(p: psutil.Process) -> list[psutil.Process]:
    key = (p.pid, p.create_time())
    now = time.monotonic()
    hit = _children_cache.get(key)
    if hit is None or now - hit[0] > CHILDREN_TTL_S:
        hit = (now, p.children(recursive=True))
        if len(_children_cache) > 64:
            _children_cache.clear()
        _children_cache[key] = hit
    return hit[1]


def _rss(p: psutil.Process) -> int | None:
    """The server's resident memory plus that of its child processes."""
    try:
        total = p.memory_info().rss
        for c in _children(p):
            try:
                total += c.memory_info().rss
            except psutil.Error:
                pass
        return int(total)
    except psutil.Error:
        return None


# -- who holds a port ------------------------------------------------------------------------------
def _our_backend(pid: int) -> str | None:
    base = paths.backends_dir()
    for d in base.iterdir() if base.exists() else []:
        st = read_state(d)
        if st and st.pid == pid and live_process(st.pid, st.create_time):
            return st.name
    return None


def _check_bindable(profile: Profile) -> None:
    """A `host` that is not an address of this machine: the server would sit unbound, `starting`, for the
    whole load timeout. Bind it here first (port 0: nothing is taken) and fail at once with the error."""
    for host in (h.strip() for h in profile.host.split(",")):  # oMLX takes a comma list
        if not host or host in ("0.0.0.0", "::", "localhost"):
            continue
        try:
            infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
        except OSError as e:
            raise ConsoleError(f"cannot start {profile.name!r}: host {host!r}: {e.strerror or e}") from None
        family, _, _, _, addr = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((addr[0], 0, *addr[2:]))
            except OSError as e:
                raise ConsoleError(f"cannot start {profile.name!r}: host {host!r} is not an address of this "
                                   f"machine: bind: [Errno {e.errno}] {e.strerror}") from None


def port_owner(port: int, api_key: str | None = None) -> str | None:
    """Who listens on the port (pid, command line, which backend it looks like), or None when it is free."""
    owner = system.owner_of(port, api_key=api_key)
    if owner is None:
        return None
    text = owner.describe()
    ours = _our_backend(owner.pid) if owner.pid else None
    if ours:
        text += f" — backend {ours!r} of this console (`mlx-console backends stop {ours}`)"
    return text
