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

from mlx_console.core.backends.base import BackendKind, kind_for
from mlx_console.core.common import procs
from mlx_console.core.lifecycle.state import (
    Spec,
    State,
    live_process,
    port_open,
    read_spec,
    read_state,
    write_state,
)
from mlx_console.core.logs.live import Reactions
from mlx_console.core.logs.source import LogFollower

# A liveness probe that times out while the server used this share of one core is "busy", not "hung"
# (up to Timings.busy_timeouts in a row: a spinning server is not serving either).
BUSY_CPU_SHARE = 0.10


def describe_exit(code: int | None) -> str:
    if code is None:
        return "server process exited (exit code unknown: adopted, not our child)"
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
        self.follower = LogFollower(path, start_offset=offset, use_watchfiles=False)
        self.reactions = Reactions(kind)

    def new_lines(self) -> list[str]:
        return [ln.text for ln in self.follower.poll()]

    def close(self) -> None:
        self.follower.close()


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
        host = urlsplit(self.spec.base_url).hostname or "127.0.0.1"
        self.connect_host = host

    # -- state ---------------------------------------------------------------------------------
    def say(self, msg: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} supervise[{self.spec.name}]: {msg}", flush=True)  # noqa: T201  (its stdout is its own log file)

    def set(self, status: str, reason: str = "") -> None:
        if (status, reason) != (self.state.status, self.state.reason):
            self.state.event(status, reason)
            self.say(f"{status}" + (f": {reason}" if reason else ""))
        write_state(self.dir, self.state)

    # -- lifecycle -----------------------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # an SSH drop is not a reason to stop serving
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
        with log_path.open("ab") as log:
            offset = log.seek(0, os.SEEK_END)
            try:
                popen = subprocess.Popen(
                    self.spec.command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env={**os.environ, **self.spec.env}, process_group=0, close_fds=True,
                )
            except OSError as e:
                self.set("dead", f"cannot run {self.spec.command[0]!r}: {e}")
                return None
        child = Child(psutil.Process(popen.pid), popen)
        s = self.state
        s.pid, s.create_time, s.cmdline = popen.pid, child.proc.create_time(), list(self.spec.command)
        s.started_at, s.ready_at, s.exit_code, s.log_offset = time.time(), None, None, offset
        self.set("starting", "")
        return child

    def _adopt(self) -> Child | None:
        prev = self.adopt_from
        assert prev is not None
        proc = live_process(prev.pid, prev.create_time)
        if proc is None:
            return None
        s = self.state
        for key in ("pid", "create_time", "cmdline", "started_at", "ready_at", "restarts", "log_offset"):
            setattr(s, key, getattr(prev, key))
        self.ever_ready = prev.status in ("ready", "degraded")
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
        try:
            while True:
                if self.stop_requested:
                    child.terminate(self.t.grace)
                    return "stopped", "stopped on request", False
                if child.exited():
                    self._drain_log(scanner)  # the last words, e.g. a traceback, for the reason
                    outcome = "exited-clean" if child.exit_code == 0 else "exited"
                    return outcome, self._with_last_error(describe_exit(child.exit_code), scanner), True
                verdict = self._scan(scanner)
                if verdict is None:
                    verdict = self._take_probes(child)
                if verdict is not None:
                    outcome, reason, retry = verdict
                    child.terminate(self.t.grace)
                    return outcome, reason, retry
                if (self.state.status == "ready" and self.state.ready_at
                        and time.time() - self.state.ready_at > self.t.stable_after):
                    self.consecutive = 0
                time.sleep(self.t.poll)
        finally:
            stop.set()
            scanner.close()

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
                if owns_port(child.pid, self.spec.port) is False:
                    return "fatal", (f"port {self.spec.port} is answered by another process, not by this "
                                     "backend's server"), False
                self.ever_ready = True
                self.state.ready_at = time.time()
                self.set("ready", "")
            elif what == "load-failed":
                return "fatal", detail, False
            elif what == "unhealthy":
                self.set("degraded", f"liveness probe failed: {detail}")
                if self.spec.restart != "never":
                    return "degraded", f"liveness probe failed: {detail}", True
            elif what == "models":
                self.state.loaded_models = list(detail)
                self.say(f"loaded models: {', '.join(detail) or '(none)'}")
                write_state(self.dir, self.state)
            elif what == "recovered" and self.state.status == "degraded":
                self.set("ready", "liveness probe answers again")

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
                    report("ready", res.detail)
                    note = self.kind.after_ready(spec.base_url, spec.api_key, spec.model)
                    if note:
                        self.say(note)
                    break
                if res.dead:
                    report("load-failed", res.detail)
                    return
                if stop.wait(0.3):
                    return
        fails, busy = 0, 0
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
            cpu_before, t0 = self._cpu_seconds(), time.monotonic()
            res = self.kind.probe(spec.base_url, spec.api_key, timeout=t.probe_timeout)
            next_probe = time.monotonic() + t.probe_interval
            if stop.is_set():
                return
            if res.ok:
                if fails >= t.probe_failures:
                    report("recovered", res.detail)
                fails, busy = 0, 0
                continue
            # A timeout while the server is working hard (a long request on a model that cannot batch)
            # is not a hang: don't count it, for a while. A hang or a dead thread burns no CPU.
            used = self._cpu_seconds() - cpu_before
            if res.listening and not res.dead and used >= BUSY_CPU_SHARE * (time.monotonic() - t0) \
                    and busy < t.busy_timeouts:
                busy += 1
                self.say(f"liveness probe timed out while busy (cpu {used:.1f}s): not counted ({res.detail})")
                continue
            fails += 1
            if fails == t.probe_failures or res.dead:
                report("unhealthy", res.detail)

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
