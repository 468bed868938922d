"""The supervising process of one backend: `python -m mlx_console.core.lifecycle.daemon DIR [--adopt]`.

Who restarts a crashed backend while no console runs? This process, as daemontools' `supervise` does: one per
backend, in its own session (it survives the console's exit and an SSH drop), owning the server as its child
(it reaps it: no zombies). It watches the server's log for fatal lines, probes it with real 1-token
completions, applies the restart policy (backoff, retry cap) and writes state.json, which the CLI and the TUI
both read: they see the same truth. It exits once the backend is stopped (SIGTERM) or dead for good.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

from mlx_console.core.backends.base import BackendKind, LoadFailed, ProbeResult, kind_for
from mlx_console.core.common import procs
from mlx_console.core.lifecycle import distributed
from mlx_console.core.lifecycle.state import (
    Spec,
    State,
    live_process,
    port_open,
    read_spec,
    read_state,
    read_swap,
    write_state,
)
from mlx_console.core.logs.live import Reactions
from mlx_console.core.logs.tail import LogTail
from mlx_console.core.machine.ports import redact
from mlx_console.paths import open_private

# A liveness probe that times out while the server used this share of one core is "busy", not "hung"
# (up to Timings.busy_timeouts in a row: a spinning server is not serving either).
BUSY_CPU_SHARE = 0.10


def describe_exit(code: int | None) -> str:
    if code is None:
        return "server process exited (exit code unknown: adopted, not our child)"
    if code == -signal.SIGKILL:  # mlx-console's own stop never gets here: someone else sent it
        return (f"server process killed by SIGKILL (exit {code}), not by mlx-console: most often the system "
                "out of memory (macOS memory pressure / jetsam, Linux's OOM killer)")
    if code < 0:
        try:
            return f"server process killed by {signal.Signals(-code).name} (exit {code})"
        except ValueError:
            return f"server process killed by signal {-code}"
    return f"server process exited with code {code}"


class Child:
    """The server: our own child (exit code known, reaped by us) or an adopted one (watched via psutil)."""

    def __init__(self, proc: psutil.Process, popen: subprocess.Popen[bytes] | None = None):
        self.proc, self.popen, self.pid = proc, popen, proc.pid
        self.exit_code: int | None = None

    def exited(self) -> bool:
        if self.popen is not None:
            code = self.popen.poll()  # reaps
            if code is None:
                return False
            self.exit_code = code
            return True
        try:
            return not self.proc.is_running() or self.proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    def signal_group(self, sig: int) -> None:
        # The server leads its own process group: signal it with anything it spawned.
        procs.send(self.proc, sig, group=True)

    def terminate(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; then kill whatever it left behind."""
        try:
            descendants = self.proc.children(recursive=True)
        except psutil.Error:
            descendants = []
        self.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while not self.exited() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.exited():
            self.signal_group(signal.SIGKILL)
            deadline = time.monotonic() + 5
            while not self.exited() and time.monotonic() < deadline:
                time.sleep(0.05)
        for p in descendants:  # whatever it left behind
            procs.send(p, signal.SIGKILL)
        procs.wait_gone(descendants, 2.0)


class LogScanner:
    """New complete lines of the server's log since an offset, through core/logs (the one log pipeline:
    rotation, partial and over-long lines handled there); `reactions` says what a line means."""

    def __init__(self, path: Path, offset: int, kind: str):
        self.tail = LogTail(path, start=offset)
        self.reactions = Reactions(kind)

    def new_lines(self) -> list[str]:
        return self.tail.poll().lines

    def close(self) -> None:
        self.tail.close()


def owns_port(pid: int, port: int) -> bool | None:
    """Does the process (or a descendant) listen on `port`? None when the OS will not say."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
        for p in procs:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port:
                    return True
        return False
    except psutil.AccessDenied:
        return None
    except psutil.Error:
        return False


class Supervise:
    def __init__(self, dir: Path, adopt: bool = False):
        self.dir = dir
        self.spec: Spec = read_spec(dir)
        self.t = self.spec.timings
        self.kind: BackendKind = kind_for(self.spec.kind)
        me = psutil.Process()
        self.state = State(
            name=self.spec.name, kind=self.spec.kind, status="starting", run_id=self.spec.run_id,
            host=self.spec.host, port=self.spec.port, model=self.spec.model, base_url=self.spec.base_url,
            restart_policy=self.spec.restart, swapped=self.spec.swapped, log=self.spec.log,
            logs=[self.spec.log, *self.spec.extra_logs], warnings=list(self.spec.warnings),
            supervisor_pid=me.pid, supervisor_create_time=me.create_time(),
        )
        self.adopt_from = read_state(dir) if adopt else None
        self.stop_requested = False
        self.ever_ready = False  # in this supervisor's life: failures before the first ready are not retried
        self.consecutive = 0
        self.child: Child | None = None
        self.probes: queue.Queue[tuple[int, str, Any]] = queue.Queue()
        self.generation = 0
        self.last_error = ""
        self.write_error, self.write_since, self.write_failed_at = "", 0.0, 0.0  # state.json unwritable
        self.proofs = 0  # log lines that show a served completion (proof of life: no probe needed)
        host = urlsplit(self.spec.base_url).hostname or "127.0.0.1"
        self.connect_host = host
        self.token = ""  # distributed: this spawn's token in the rank pid files
        self.rank_offsets: dict[int, int] = {}

    # -- state ---------------------------------------------------------------------------------
    def say(self, msg: str) -> None:
        try:
            print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} supervise[{self.spec.name}]: {msg}", flush=True)  # noqa: T201  (its stdout is its own log file)
        except OSError:  # supervise.log on a full or read-only disk: supervising matters more
            pass

    def set(self, status: str, reason: str = "") -> None:
        if (status, reason) != (self.state.status, self.state.reason):
            self.state.event(status, reason)
            self.say(f"{status}" + (f": {reason}" if reason else ""))
        self.write()

    def write(self) -> None:
        """state.json, or — on a full, read-only or unwritable disk — say so and keep supervising: the
        server matters more than its record. The old file stays whole (atomic write); the next write
        that works notes how long the state could not be written."""
        # The first write that works after failures carries the note itself: written after it, a reader could
        # see the new state without it in between.
        kept, note = self.state.warnings, ""
        if self.write_error:
            note = (f"state.json could not be written for {time.time() - self.write_since:.0f}s "
                    f"({self.write_error}); supervising went on")
            self.state.warnings = [w for w in kept if "could not be written" not in w] + [note]
        try:
            write_state(self.dir, self.state)
        except OSError as e:
            self.state.warnings = kept
            if not self.write_error:
                self.write_error, self.write_since = f"{e.strerror or e}", time.time()
                self.say(f"cannot write {self.dir / 'state.json'}: {self.write_error}; still supervising")
            self.write_failed_at = time.time()
            return
        if note:
            self.say(note)
            self.write_error = ""

    # -- lifecycle -----------------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # an SSH drop is not a reason to stop serving
        from mlx_console.core.metrics.sampler import start_sampler  # observability (issue 14)

        self.sampler = start_sampler(self)
        self.child = self._adopt() if self.adopt_from else None
        while True:
            if self.child is None:
                self.child = self._spawn()
                if self.child is None:
                    return 0
            outcome, reason, retry = self._watch(self.child)
            self.state.exit_code = self.child.exit_code
            self.child = None
            if outcome == "stopped":
                self.set("stopped", reason)
                return 0
            restart = retry and self.ever_ready and (
                self.spec.restart == "always"
                or (self.spec.restart == "on-failure" and outcome != "exited-clean"))
            if not restart:
                if retry and not self.ever_ready:
                    reason += " (before it was ever ready: not restarted)"
                self.set("dead", reason)
                return 0
            self.consecutive += 1
            if self.consecutive > self.t.retry_cap:
                self.set("dead", f"gave up after {self.t.retry_cap} restarts in a row: {reason}")
                return 0
            delay = min(self.t.backoff_initial * 2 ** (self.consecutive - 1), self.t.backoff_max)
            self.set("dead", f"{reason}; restarting in {delay:g}s (restart {self.consecutive}/{self.t.retry_cap})")
            if self._sleep(delay):
                self.set("stopped", "stopped on request")
                return 0
            self.state.restarts += 1

    def _on_stop(self, signum: int, frame: Any) -> None:
        self.stop_requested = True

    def _sleep(self, seconds: float) -> bool:
        """Sleep; True when a stop was requested meanwhile."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.stop_requested:
                return True
            time.sleep(min(self.t.poll, max(0.0, deadline - time.monotonic())))
        return self.stop_requested

    def _spawn(self) -> Child | None:
        log_path = Path(self.spec.log)
        command = self._ranks_before_spawn()
        try:
            out = open_private(log_path)
        except OSError as e:  # a read-only or unwritable state dir: serve anyway, say so
            self.say(f"cannot open {log_path}: {e.strerror or e}; the server's output is not kept")
            out = open(os.devnull, "ab")  # noqa: SIM115 - closed by the with below
        with out as log:
            offset = log.seek(0, os.SEEK_END)
            try:
                popen = subprocess.Popen(
                    command, stdin=self._stdin(), stdout=log, stderr=subprocess.STDOUT,
                    env={**os.environ, **self.spec.env}, process_group=0, close_fds=True,
                )
            except OSError as e:
                self.set("dead", f"cannot run {self.spec.command[0]!r}: {e}")
                return None
        child = Child(psutil.Process(popen.pid), popen)
        s = self.state
        s.pid, s.create_time, s.cmdline = popen.pid, child.proc.create_time(), redact(list(command))
        s.started_at, s.ready_at, s.exit_code, s.log_offset = time.time(), None, None, offset
        self.set("starting", "")
        return child

    # -- distributed: the ranks mlx.launch starts ----------------------------------------------------
    def _ranks_before_spawn(self) -> list[str]:
        """The command of this spawn (with a fresh rank token) and the ranks it will start."""
        if not self.spec.rank_hosts:
            return list(self.spec.command)
        self.token = self.state.rank_token = os.urandom(6).hex()
        rank_dir = Path(self.spec.rank_dir)
        self.state.ranks = []
        for i, host in enumerate(self.spec.rank_hosts):
            log = distributed.rank_log(rank_dir, i)
            self.state.ranks.append(distributed.Rank(i, host, log=distributed.log_label(host, log)).__dict__)
            if host == distributed.LOCAL:
                try:
                    self.rank_offsets[i] = log.stat().st_size
                except OSError:
                    self.rank_offsets[i] = 0
        return [self.token if c == distributed.RUN_TOKEN else c for c in self.spec.command]

    def _stdin(self) -> Any:
        # mlx.launch forwards its stdin to every rank and polls it: at EOF (/dev/null) that loop spins a core.
        # A pipe that stays open and silent lets it sleep in select().
        if not self.spec.rank_hosts:
            return subprocess.DEVNULL
        if getattr(self, "_stdin_pipe", None) is None:
            self._stdin_pipe = os.pipe()
        return self._stdin_pipe[0]

    def _rank_loop(self, stop: threading.Event, gen: int) -> None:
        """In a thread (ssh may be slow): report the ranks; any rank gone ends the group."""
        ranks = [distributed.Rank(**r) for r in self.state.ranks]
        remote = any(r.host != distributed.LOCAL for r in ranks)
        last: list[tuple[int | None, str]] = []
        while not stop.wait(3.0 if remote else self.t.poll):
            distributed.look(ranks, Path(self.spec.rank_dir), self.token)
            now = [(r.pid, r.status) for r in ranks]
            if now != last or remote:
                self.probes.put((gen, "ranks", [dict(r.__dict__) for r in ranks]))
                last = now

    def _kill_ranks(self) -> None:
        if self.spec.rank_hosts:
            ranks = [distributed.Rank(**r) for r in self.state.ranks]
            distributed.kill_ranks(ranks)
            self.state.ranks = [r.__dict__ for r in ranks]

    def _gone_rank(self) -> str:
        gone = [r for r in self.state.ranks if r.get("status") == "gone"]
        return "; ".join(f"rank {r['rank']} on {r['host']} (pid {r['pid']}) is gone" for r in gone)

    def _adopt(self) -> Child | None:
        prev = self.adopt_from
        assert prev is not None
        proc = live_process(prev.pid, prev.create_time)
        if proc is None:
            return None
        s = self.state
        for key in ("pid", "create_time", "cmdline", "started_at", "ready_at", "restarts", "log_offset", "ranks",
                    "rank_token"):
            setattr(s, key, getattr(prev, key))
        self.ever_ready = prev.status in ("ready", "degraded")
        self.token = prev.rank_token  # distributed: the adopted group's rank pid files
        self.say(f"adopted server pid {proc.pid} ({prev.status})")
        self.set(prev.status if prev.status in ("starting", "loading", "ready", "degraded") else "starting",
                 "re-adopted by a new supervisor")
        try:
            s.log_offset = Path(self.spec.log).stat().st_size
        except OSError:
            pass
        return Child(proc)

    # -- watching one server process -------------------------------------------------------------
    def _watch(self, child: Child) -> tuple[str, str, bool]:
        """Until the server ends or must be ended: (outcome, reason, worth a restart)."""
        scanner = LogScanner(Path(self.spec.log), self.state.log_offset, self.kind.kind)
        self.last_error = ""
        # Each server process gets its own probe thread; a late report of an earlier one is ignored.
        self.generation += 1
        stop = threading.Event()
        ready_now = self.state.status in ("ready", "degraded")
        threading.Thread(target=self._probe_loop, args=(stop, ready_now, self.generation), daemon=True).start()
        scanners = [scanner]
        if self.spec.rank_hosts:
            threading.Thread(target=self._rank_loop, args=(stop, self.generation), daemon=True).start()
            scanners += [LogScanner(distributed.rank_log(Path(self.spec.rank_dir), i), off, self.kind.kind)
                         for i, off in self.rank_offsets.items()]
        try:
            while True:
                if self.stop_requested:
                    child.terminate(self.t.grace)
                    return "stopped", "stopped on request", False
                if child.exited():
                    for sc in scanners:
                        self._drain_log(sc)  # the last words, e.g. a traceback, for the reason
                    outcome = "exited-clean" if child.exit_code == 0 else "exited"
                    reason = describe_exit(child.exit_code)
                    if self.spec.rank_hosts:  # mlx.launch exits 0 when a rank died: the group failed anyway
                        outcome, gone = "exited", self._gone_rank()
                        reason = f"mlx.launch ended ({reason})" + (f": {gone}" if gone else "")
                    return outcome, self._with_last_error(reason, scanner), True
                verdict = None
                for sc in scanners:
                    verdict = verdict or self._scan(sc)
                if verdict is None:
                    verdict = self._take_probes(child)
                if verdict is not None:
                    outcome, reason, retry = verdict
                    child.terminate(self.t.grace)
                    return outcome, reason, retry
                if (self.state.status == "ready" and self.state.ready_at
                        and time.time() - self.state.ready_at > self.t.stable_after):
                    self.consecutive = 0
                if self.write_error and time.time() - self.write_failed_at > 1.0:
                    self.write()  # the disk may have room again: the state on disk is stale until then
                time.sleep(self.t.poll)
        finally:
            stop.set()
            self._kill_ranks()  # stop leaves no rank on any host (mlx.launch may leave remote ones)
            for sc in scanners:
                sc.close()

    def _drain_log(self, scanner: LogScanner) -> None:
        for line in scanner.new_lines():
            self._note_error(line)

    def _note_error(self, line: str) -> None:
        # The last exception line (`SomethingError: message`) makes the reason for a crash readable.
        stripped = line.strip()
        head = stripped.split(":", 1)[0]
        if (head.endswith(("Error", "Exception")) and " " not in head and ":" in stripped) \
                or ": error: " in stripped:  # argparse: `prog: error: unrecognized arguments: …`
            self.last_error = stripped[:300]

    def _with_last_error(self, reason: str, scanner: LogScanner) -> str:
        return f"{reason}; last error in the log: {self.last_error}" if self.last_error else reason

    def _scan(self, scanner: LogScanner) -> tuple[str, str, bool] | None:
        for line in scanner.new_lines():
            self._note_error(line)
            if self.kind.proof_of_life(line):
                self.proofs += 1
            hit = scanner.reactions.react(line)
            if hit is None:
                continue
            why = hit.reason
            if hit.action == "stop":
                return "fatal", why, False
            if not self.ever_ready or self.state.status in ("starting", "loading"):
                return "fatal", f"{why} (while loading)", False
            self.set("degraded", why)
            if self.spec.restart != "never":
                return "degraded", why, True
        return None

    def _take_probes(self, child: Child) -> tuple[str, str, bool] | None:
        while True:
            try:
                gen, what, detail = self.probes.get_nowait()
            except queue.Empty:
                return None
            if gen != self.generation:
                continue
            if what == "loading" and self.state.status == "starting":
                self.set("loading", "")
            elif what == "ready":
                rank0_here = not self.spec.rank_hosts or self.spec.rank_hosts[0] == distributed.LOCAL
                if rank0_here and owns_port(child.pid, self.spec.port) is False:
                    return "fatal", (f"port {self.spec.port} is answered by another process, not by this "
                                     "backend's server"), False
                self.ever_ready = True
                self.state.ready_at = time.time()
                self.set("ready", detail if detail.startswith("no model") else "")
            elif what == "load-failed":
                return "fatal", detail, False
            elif what == "unhealthy":
                self.set("degraded", f"liveness probe failed: {detail}")
                if self.spec.restart != "never":
                    return "degraded", f"liveness probe failed: {detail}", True
            elif what == "models":
                self.state.loaded_models = list(detail)
                self.say(f"loaded models: {', '.join(detail) or '(none)'}")
                self.write()
            elif what == "ranks":
                self.state.ranks = detail
                self.write()
                gone = self._gone_rank()
                if gone:
                    return "exited", f"{gone}: the group is stopped and restarted as a whole", True
            elif what == "sampler":  # the metrics sampler cannot write ("" = it can again)
                self.state.warnings = [w for w in self.state.warnings if not w.startswith("metrics:")]
                self.state.warnings += [detail] if detail else []
                self.write()
            elif what == "recovered" and self.state.status == "degraded":
                self.set("ready", "liveness probe answers again")
            elif what == "liveness":
                if detail != self.state.liveness:
                    self.state.liveness = dict(detail)
                    write_state(self.dir, self.state)
            elif what == "model-unhealthy":  # one model of a multi-model server: reported, never a restart
                self.set("degraded", detail)
            elif what == "model-recovered" and self.state.status == "degraded" \
                    and self.state.reason.startswith("model "):
                self.set("ready", detail)

    def _probe_loop(self, stop: threading.Event, already_ready: bool, gen: int) -> None:
        """In a thread, so that a long completion never delays seeing a crash."""
        t, spec = self.t, self.spec

        def report(what: str, detail: Any = "") -> None:  # tagged with this server's generation
            self.probes.put((gen, what, detail))

        deadline = time.monotonic() + t.load_timeout
        if not already_ready:
            while not port_open(self.connect_host, spec.port):
                if stop.wait(0.2):
                    return
                if time.monotonic() > deadline:
                    report("load-failed", f"port {spec.port} not listening after {t.load_timeout:g}s")
                    return
            report("loading", "")
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    report("load-failed", f"no completion answered within {t.load_timeout:g}s")
                    return
                res = self.kind.probe(spec.base_url, spec.api_key, timeout=remaining)
                if res.ok:
                    # oMLX: the profile's (or the swapped-in) model must load and answer: else a failed start.
                    try:
                        note = self.kind.after_ready(spec.base_url, spec.api_key, read_swap(self.dir) or spec.model)
                    except LoadFailed as e:
                        report("load-failed", str(e))
                        return
                    if note:
                        self.say(note)
                    report("ready", note or res.detail)
                    break
                if res.dead:
                    report("load-failed", res.detail)
                    return
                if stop.wait(0.3):
                    return
        self._liveness_loop(stop, report)

    def _liveness_loop(self, stop: threading.Event, report: Any) -> None:
        """Every probe_interval: a completion the server logged since the last look is proof of life; else a
        1-token probe, but never one that loads a model or keeps an idle model's TTL alive (oMLX: per model,
        /health for the process). probe_failures failed probes in a row: the process is restarted (per the
        policy); on oMLX a failing model is reported (or reloaded), the process kept."""
        t, spec = self.t, self.spec
        fails, busy = 0, 0
        model_fails: dict[str, int] = {}
        prev_access: dict[str, float | None] = {}
        proofs_seen = self.proofs
        next_probe = time.monotonic() + t.probe_interval
        tracks_models = self.kind.tracks_models
        last_models: list[str] | None = None
        while True:
            if tracks_models:  # oMLX: which models are loaded, for the status (cheap, every few seconds)
                ids = self.kind.loaded_models(spec.base_url, spec.api_key, timeout=min(5.0, t.probe_timeout))
                if ids is not None and ids != last_models:
                    report("models", ids)
                    last_models = ids
            wait = next_probe - time.monotonic()
            if tracks_models:
                wait = min(wait, t.models_interval)
            if stop.wait(max(0.0, wait)):
                return
            if time.monotonic() < next_probe:
                continue
            served = self.proofs > proofs_seen
            proofs_seen = self.proofs
            if served and not self.kind.per_model:
                if fails >= t.probe_failures:
                    report("recovered", "completions served")
                fails, busy = 0, 0
                report("liveness", {"server": "alive: served a completion since the last check (not probed)"})
                next_probe = time.monotonic() + t.probe_interval
                continue
            cpu_before, t0 = self._cpu_seconds(), time.monotonic()
            res = self.kind.probe(spec.base_url, spec.api_key, timeout=t.probe_timeout)
            if stop.is_set():
                return
            if res.ok:
                if fails >= t.probe_failures:
                    report("recovered", res.detail)
                fails, busy = 0, 0
                if self.kind.per_model:
                    prev_access = self._check_models(report, served, prev_access, model_fails)
                else:
                    report("liveness", {"server": f"alive: {res.detail}"})
                next_probe = time.monotonic() + t.probe_interval
                continue
            next_probe = time.monotonic() + t.probe_interval
            if self._busy(res, cpu_before, t0) and busy < t.busy_timeouts:
                busy += 1
                self.say(f"liveness probe timed out while busy: not counted ({res.detail})")
                continue
            fails += 1
            report("liveness", {"server": f"probe failed ({fails}/{t.probe_failures}): {res.detail}"})
            if fails == t.probe_failures or res.dead:
                report("unhealthy", res.detail)

    def _check_models(self, report: Any, served: bool, prev_access: dict[str, float | None],
                      model_fails: dict[str, int]) -> dict[str, float | None]:
        """oMLX: each loaded model on its own. Returns the models' last access times after this check."""
        t, spec = self.t, self.spec
        seen = self.kind.models_seen(spec.base_url, spec.api_key, min(5.0, t.probe_timeout), spec.base_path)
        if seen is None:
            return prev_access
        verdicts: dict[str, str] = {}
        probed = False
        for m in (m for m in seen if m.loaded):
            used = m.id in prev_access and m.last_access is not None and m.last_access != prev_access[m.id]
            if served and used:
                verdicts[m.id] = "alive: served a completion since the last check (not probed)"
                if model_fails.pop(m.id, 0) >= t.probe_failures:
                    report("model-recovered", f"model {m.id!r} serves again")
                continue
            if m.ttl is not None and not used:
                verdicts[m.id] = (f"idle, not probed (unloads after {m.ttl:g}s idle: a probe would keep it "
                                  "loaded)")
                continue
            cpu_before, t0 = self._cpu_seconds(), time.monotonic()
            res = self.kind.probe_model(spec.base_url, spec.api_key, m.id, t.probe_timeout)
            probed = True
            if res.ok:
                verdicts[m.id] = f"alive: {res.detail}"
                if model_fails.pop(m.id, 0) >= t.probe_failures:
                    report("model-recovered", f"model {m.id!r} answers again")
                continue
            if self._busy(res, cpu_before, t0):
                verdicts[m.id] = f"busy: probe timed out while the server works (not counted): {res.detail}"
                continue
            n = model_fails[m.id] = model_fails.get(m.id, 0) + 1
            verdicts[m.id] = f"probe failed ({n}/{t.probe_failures}): {res.detail}"
            if n == t.probe_failures:
                reason = f"model {m.id!r} failed {n} liveness probes in a row: {res.detail}"
                if t.on_model_failure == "reload":
                    reason += "; " + self.kind.reload_model(spec.base_url, spec.api_key, m.id)
                report("model-unhealthy", reason)
        report("liveness", verdicts)
        if probed:  # our own probes moved last_access: start the next comparison after them
            seen = self.kind.models_seen(spec.base_url, spec.api_key, min(5.0, t.probe_timeout)) or seen
        return {m.id: m.last_access for m in seen if m.loaded}

    def _busy(self, res: ProbeResult, cpu_before: float, t0: float) -> bool:
        """A timeout while the server is working hard (a long request on a model that cannot batch) is not a
        hang: don't count it, for a while. A hang or a dead thread burns no CPU."""
        used = self._cpu_seconds() - cpu_before
        return res.listening and not res.dead and used >= BUSY_CPU_SHARE * (time.monotonic() - t0)

    def _cpu_seconds(self) -> float:
        try:
            c = psutil.Process(self.state.pid or 0).cpu_times()
            return float(c.user + c.system)
        except (psutil.Error, ValueError):
            return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlx_console.core.lifecycle.daemon")
    parser.add_argument("dir", type=Path, help="the backend's state dir (holds spec.json)")
    parser.add_argument("--adopt", action="store_true", help="watch the server recorded in state.json")
    parser.add_argument("--foreground", action="store_true", help="do not fork (for debugging)")
    args = parser.parse_args(argv)
    if not args.foreground and os.fork() > 0:
        # The console waits for this parent only; the child is adopted by init, so the console (a
        # long-lived TUI too) never has to reap the supervisor.
        os._exit(0)
    sup = Supervise(args.dir.resolve(), adopt=args.adopt)
    try:
        return sup.run()
    except Exception as e:
        # Never leave an unsupervised server behind a supervisor that broke.
        if sup.child is not None and not sup.child.exited():
            sup.child.terminate(sup.t.grace)
        sup.set("dead", f"supervisor failed: {type(e).__name__}: {e}")
        raise


if __name__ == "__main__":
    sys.exit(main())
