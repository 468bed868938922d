"""A fleet of hosts: other machines' backends, read and driven through their own `mlx-console` over SSH.

No agent of our own and no open port: each call is the system OpenSSH client running the remote mlx-console
with the same CLI contracts (`backends list --json`, `start`, `triage --follow --json`, …), so the user's
~/.ssh/config, agent and ControlMaster apply. BatchMode: a host that would prompt for a password is an error,
never a hang.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from mlx_console.core.common import procs
from mlx_console.core.config import Config, Host
from mlx_console.core.errors import ConsoleError

if TYPE_CHECKING:
    from mlx_console.core.metrics.query import PlotData

LOCAL = "local"  # the fleet name of this machine
SPARK_READINGS = 10  # a remote row's sparkline: this many of the console's readings of that host's `ps`
ACTIVITY_EVERY = 3   # polls between two readings of a host's `ps --json` (every 15 s at the 5 s poll)
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15"]


def ssh_argv(host: Host, args: list[str], tty: bool = False) -> list[str]:
    """ssh … DEST -- '<command> <args…>' (the remote shell splits `command`; args are quoted)."""
    return shell_argv(host, host.command + (" " + shlex.join(args) if args else ""), tty)


def shell_argv(host: Host, script: str, tty: bool = False) -> list[str]:
    return ["ssh", *SSH_OPTIONS, *(["-t"] if tty else []), *host.ssh_options, host.ssh, "--", script]


def ssh_error(host: Host, stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    return f"host {host.name!r} ({host.ssh}): ssh failed: {lines[-1] if lines else 'no message'}"


def run(host: Host, args: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the remote mlx-console once; output captured. An ssh failure (exit 255) raises ConsoleError."""
    try:
        out = subprocess.run(ssh_argv(host, args), capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ConsoleError(f"host {host.name!r} ({host.ssh}): no answer within {timeout:g}s") from None
    except OSError as e:
        raise ConsoleError(f"cannot run ssh: {e}") from e
    if out.returncode == 255:
        raise ConsoleError(ssh_error(host, out.stderr))
    return out


def run_json(host: Host, args: list[str], timeout: float = 60.0) -> Any:
    out = run(host, [*args, "--json"], timeout)
    if out.returncode != 0:
        # Its own error line ("mlx-console: …", e.g. a settings conflict before its diff), else the last line.
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()] or ["(no message)"]
        tail = next((ln for ln in lines if ln.startswith("mlx-console:")), lines[-1]).removeprefix("mlx-console: ")
        raise ConsoleError(f"host {host.name!r}: `mlx-console {' '.join(args)}` failed: {tail}")
    try:
        return json.loads(out.stdout)
    except ValueError as e:
        raise ConsoleError(f"host {host.name!r}: `mlx-console {' '.join(args)} --json` did not print JSON "
                           f"(is `command` = {host.command!r} an mlx-console?): {e}") from e


@dataclass
class HostListing:
    """One host's backends, or why they could not be read."""

    host: str
    backends: list[dict[str, Any]]
    error: str = ""


def list_host(host: Host, timeout: float = 30.0) -> HostListing:
    try:
        rows = run_json(host, ["backends", "list"], timeout)
        return HostListing(host.name, rows if isinstance(rows, list) else [])
    except ConsoleError as e:
        return HostListing(host.name, [], str(e))


def list_all(config: Config, local_rows: list[dict[str, Any]], timeout: float = 30.0) -> list[HostListing]:
    """This machine's backends, then each [[host]]'s (asked in parallel: one slow host does not hold the rest)."""
    out = [HostListing(LOCAL, local_rows)]
    if config.hosts:
        with ThreadPoolExecutor(max_workers=min(8, len(config.hosts))) as pool:
            out += list(pool.map(lambda h: list_host(h, timeout), config.hosts))
    return out


def tag_rows(listing: HostListing, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of `backends list --all-hosts --json`: "host" is the fleet host ("local" here); the address the
    backend binds moves to "bind_host". An unreachable host is one row with status "unreachable" and the error."""
    if listing.error:
        return [{**dict.fromkeys(keys), "status": "unreachable", "host": listing.host, "reason": listing.error}]
    rows = []
    for r in listing.backends:
        r = dict(r)
        if "host" in r:
            r["bind_host"] = r.pop("host")
        rows.append({**r, "host": listing.host})
    return rows


def split_host_option(argv: list[str]) -> tuple[str | None, list[str]]:
    """`--host NAME` (or --host=NAME) among the global options before the subcommand, and argv without it
    (and without --config, which names this machine's config, not the remote one)."""
    out: list[str] = []
    host: str | None = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-"):
            out += argv[i:]
            break
        if a in ("--host", "--config") and i + 1 < len(argv):
            if a == "--host":
                host = argv[i + 1]
            else:
                out += [a, argv[i + 1]]
            i += 2
            continue
        if a.startswith("--host="):
            host = a.split("=", 1)[1]
        else:
            out.append(a)
        i += 1
    return host, out


def remote_args(argv: list[str]) -> list[str]:
    """argv for the remote mlx-console: without this machine's --config."""
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--config" and i + 1 < len(argv) and not any(not x.startswith("-") for x in argv[:i]):
            skip = True
            continue
        if a.startswith("--config=") and not any(not x.startswith("-") for x in argv[:i]):
            continue
        out.append(a)
    return out


def exec_remote(host: Host, args: list[str]) -> int:
    """Run one remote subcommand with our stdin/stdout/stderr (streams as it goes: `triage --follow`)."""
    tty = not any(not a.startswith("-") for a in args)  # no subcommand: the remote TUI needs a terminal
    try:
        code = subprocess.call(ssh_argv(host, args, tty=tty))
    except OSError as e:
        raise ConsoleError(f"cannot run ssh: {e}") from e
    if code == 255:
        raise ConsoleError(f"host {host.name!r} ({host.ssh}): ssh failed (see the message above)")
    return code


class LogMirror:
    """A remote log followed into a local file (`tail -F` over ssh), so the console's log view and its live
    triage read it like any local log. One ssh process per mirrored log; stop() ends it."""

    def __init__(self, host: Host, remote_path: str, local_path: Path):
        self.host, self.remote_path, self.local_path = host, remote_path, local_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.local_path.parent.mkdir(parents=True, exist_ok=True)
        with self.local_path.open("wb") as out:  # a fresh copy of the last lines, then what follows
            self.proc = subprocess.Popen(
                shell_argv(self.host, f"tail -n 2000 -F {shlex.quote(self.remote_path)}"),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                procs.terminate([psutil.Process(self.proc.pid)], 5.0)
            except psutil.NoSuchProcess:
                pass
            self.proc.poll()  # reaped by the helper: the Popen learns it is gone


class FleetRows:
    """The [[host]]s' backends for a UI polling every second: asked over ssh every `interval` seconds in a
    thread of its own (a slow or unreachable host never delays the local rows); rows() returns the latest."""

    def __init__(self, config: Config, interval: float = 5.0):
        self.config, self.interval = config, interval
        self.listings: list[HostListing] = []
        self._stop = threading.Event()
        self._wake = threading.Event()  # set after an action: ask again now, not in `interval` seconds
        self._thread: threading.Thread | None = None
        self.mirrors: dict[str, LogMirror] = {}
        self.activity: dict[str, dict[str, Any]] = {}  # NAME@HOST → requests_1m, tok_s_1m, spark, spark_of
        self.readings: dict[str, list[float]] = {}

    def rows(self) -> list[dict[str, Any]]:
        if self._thread is None and self.config.hosts:
            self._thread = threading.Thread(target=self._run, name="fleet-rows", daemon=True)
            self._thread.start()
        out: list[dict[str, Any]] = []
        for li in list(self.listings):
            if li.error:
                out.append({"name": f"@{li.host}", "kind": "-", "status": "unreachable", "model": li.error[:70],
                            "pid": None, "port": None, "fleet_host": li.host, "reason": li.error})
            out += [{**r, "name": f"{r['name']}@{li.host}", "fleet_host": li.host,
                     **self.activity.get(f"{r['name']}@{li.host}", {})} for r in li.backends]
        return out

    def _run(self) -> None:
        polls = 0
        while not self._stop.is_set():
            try:
                listings = list_all(self.config, [])[1:]
                polls += 1
                if polls % ACTIVITY_EVERY == 1:  # one more ssh per host: not at every poll
                    self._read_activity([li for li in listings if not li.error])
            except RuntimeError:  # "cannot schedule new futures after interpreter shutdown": the console exits
                return
            self.listings = listings
            self._wake.wait(self.interval)
            self._wake.clear()

    def _read_activity(self, listings: list[HostListing]) -> None:
        """Each reachable host's `ps --json` (its samplers' rates) into the rows' req/min and tok/s; the
        sparkline is this console's readings of them, one per ACTIVITY_EVERY polls (SPARK_READINGS kept)."""
        hosts = {h.name: h for h in self.config.hosts}

        def ps(li: HostListing) -> tuple[str, list[Any]]:
            try:
                rows = run_json(hosts[li.host], ["ps"], timeout=30)
            except ConsoleError:
                rows = []
            return li.host, rows if isinstance(rows, list) else []

        if not listings:
            return
        with ThreadPoolExecutor(max_workers=min(8, len(listings))) as pool:
            results = list(pool.map(ps, listings))
        for host, rows in results:
            seen: set[str] = set()
            for r in rows:
                if not isinstance(r, dict) or r.get("backend") in seen:
                    continue  # one row per loaded model: the backend's rates are on each
                seen.add(str(r.get("backend")))
                name = f"{r.get('backend')}@{host}"
                tps, req = r.get("tok_s_1m"), r.get("requests_1m")
                history = self.readings.setdefault(name, [])
                value = tps if isinstance(tps, int | float) else req
                if isinstance(value, int | float):
                    history.append(float(value))
                    del history[:-SPARK_READINGS]
                self.activity[name] = {"requests_1m": req, "tok_s_1m": tps, "spark": list(history),
                                       "spark_of": "tok/s" if isinstance(tps, int | float) else "req/min"}

    def split(self, name: str) -> tuple[Host, str] | None:
        """`NAME@HOST` → the [[host]] and the backend's name there; None for a local backend."""
        if "@" not in name:
            return None
        base, _, host = name.rpartition("@")
        match = [h for h in self.config.hosts if h.name == host]
        return (match[0], base) if match else None

    def run(self, name: str, *args: str) -> Any:
        """A `backends` action on a remote backend: `NAME@HOST` → `backends ACTION NAME … --json` there
        (what that prints: a status object for start/stop/restart/swap, a list for `models`)."""
        target = self.split(name)
        if target is None:
            raise ConsoleError(f"{name!r} is not a backend of a [[host]]")
        host, base = target
        try:
            return run_json(host, ["backends", args[0], base, *args[1:]], timeout=900)
        finally:
            self._wake.set()

    def plot_data(self, name: str, window: int) -> PlotData:
        """The metrics screen's panels for a remote backend, from that host's samplers' database:
        `metrics NAME --since W --step S --json --events` there (one line), plotted against our clock."""
        import time

        from mlx_console.core.metrics.query import parse_export, plot_from, plot_step

        target = self.split(name)
        if target is None:
            raise ConsoleError(f"{name!r} is not a backend of a [[host]]")
        host, base = target
        now = time.time()
        step = plot_step(window)
        obj = run_json(host, ["metrics", base, "--since", f"{window}s", "--events",
                              *(["--step", f"{step}s"] if step else [])], timeout=60)
        data, events = parse_export(obj if isinstance(obj, dict) else {})
        return plot_from(name, window, now, data, events)

    def log_path(self, name: str, state_dir: Path) -> Path | None:
        """A local mirror of the remote backend's log (started on first use)."""
        target = self.split(name)
        if target is None:
            return None
        host, base = target
        remote = next((r.get("log") for li in self.listings if li.host == host.name
                       for r in li.backends if r.get("name") == base), None)
        if not remote:
            return None
        m = self.mirrors.get(name)
        if m is None or m.remote_path != remote:
            if m is not None:
                m.stop()
            m = self.mirrors[name] = LogMirror(host, remote, state_dir / "fleet" / host.name / f"{base}.log")
        m.start()
        return m.local_path

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        for m in self.mirrors.values():
            m.stop()
