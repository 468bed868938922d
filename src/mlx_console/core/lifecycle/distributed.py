"""Distributed mlx-lm backends: MLX's own `mlx.launch` starts one `mlx_lm.server` rank per host; rank 0 serves HTTP.

Nothing here is a distributed runtime: the console builds mlx.launch's command line from the profile (`hosts` or
`hostfile`, `distributed_backend`, `pipeline`, `ring_port`), and wraps each rank's program in a tiny `/bin/sh`
prologue that records the rank's pid and sends its output to its own log (`<dir>/rank<N>.log` on that rank's
host). The supervising process (daemon.py) watches the ranks through these files: a rank that is gone takes the
whole group down (a lone survivor blocks forever in its next collective) and the restart policy applies.

A rank on `127.0.0.1` runs here (mlx.launch's own rule: only that literal host is local); any other host is
reached by ssh (BatchMode, the system OpenSSH client), both by mlx.launch and by the console for status and stop.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from mlx_console.core.errors import ConsoleError

LOCAL = "127.0.0.1"  # mlx.launch runs this host's ranks without ssh; every other name goes through ssh
RUN_TOKEN = "@RUN@"  # replaced by the supervising process with a fresh token for each spawn of the group
SSH_BASE = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]

# $0 = the rank dir, $1 = this spawn's token, the rest = the rank's program. `exec` keeps the pid: the pid
# file names the mlx_lm.server process itself.
RANK_WRAPPER = ('mkdir -p "$0" && echo "$$ $1" > "$0/rank$MLX_RANK.pid" && exec >>"$0/rank$MLX_RANK.log" 2>&1 '
                '&& echo "== rank $MLX_RANK pid $$ on $(hostname) at $(date) (run $1)" && shift && exec "$@"')


@dataclass
class Rank:
    """One rank as status shows it (the `ranks` array of `--json`)."""

    rank: int
    host: str
    pid: int | None = None
    status: str = "starting"  # starting (no pid yet) | running | gone | stopped
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    log: str = ""
    create_time: float | None = None  # local ranks: tells a recycled pid from ours

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("create_time")
        return d


# -- the profile -------------------------------------------------------------------------------------
def validate_profile_keys(table: dict[str, Any], base: Path) -> tuple[str, str] | None:
    """(key, message) for the first distributed key of a [[backend]] table that is wrong, else None."""
    from mlx_console.core.config import DISTRIBUTED_BACKENDS

    hosts, hostfile = table.get("hosts"), table.get("hostfile")
    dist = bool(hosts) or hostfile is not None
    backend = table.get("distributed_backend", "ring")
    if hosts is not None and hostfile is not None:
        return "hostfile", "set either 'hosts' or 'hostfile', not both"
    for key in ("distributed_backend", "pipeline", "ring_port"):
        if key in table and not dist:
            return key, f"{key!r} applies only to a distributed profile (one with 'hosts' or 'hostfile')"
    if hosts is not None:
        if not all(isinstance(h, str) and h.strip() for h in hosts):
            return "hosts", "every item of 'hosts' must be a non-empty host name or address"
        if len(hosts) < 2:
            return "hosts", "'hosts' needs at least 2 hosts (one rank each; repeat a host for 2 ranks on it)"
    if backend not in DISTRIBUTED_BACKENDS:
        return "distributed_backend", (f"distributed_backend {backend!r} is not one of "
                                       f"{', '.join(DISTRIBUTED_BACKENDS)}")
    if hosts and backend == "ring":
        bad = [h for h in hosts if not _is_ip(h)]
        if bad:
            return "hosts", (f"the ring backend needs IP addresses (mlx.launch connects the ranks by IP), got "
                             f"{bad[0]!r}; use an IP or a 'hostfile' with ssh names and ips")
    if hosts and backend == "jaccl":
        return "distributed_backend", "the jaccl backend needs a 'hostfile' with RDMA devices (mlx.distributed_config writes one)"
    port = table.get("ring_port")
    if port is not None and not 1 <= port <= 65535:
        return "ring_port", f"ring_port {port} is out of range 1-65535"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def read_hostfile(path: Path) -> tuple[list[str], str]:
    """The ssh host of each rank and the backend a hostfile names ('' if none). mlx.launch's format: a JSON
    list of hosts, or {"backend", "envs", "hosts"}; each host {"ssh", "ips", "rdma"}. Raises ConsoleError."""
    try:
        data = json.loads(path.expanduser().read_text(encoding="utf-8"))
    except OSError as e:
        raise ConsoleError(f"{path}: cannot read hostfile: {e}") from e
    except ValueError as e:
        raise ConsoleError(f"{path}: hostfile is not valid JSON: {e}") from e
    hosts = data.get("hosts") if isinstance(data, dict) else data
    backend = data.get("backend", "") if isinstance(data, dict) else ""
    if not isinstance(hosts, list) or not hosts:
        raise ConsoleError(f"{path}: hostfile has no hosts (a list, or an object with \"hosts\": [...])")
    out = []
    for i, h in enumerate(hosts):
        if not isinstance(h, dict) or not isinstance(h.get("ssh"), str) or not h["ssh"]:
            raise ConsoleError(f"{path}: host #{i + 1} must be an object with \"ssh\" (a host name), got {h!r}")
        if not isinstance(h.get("ips", []), list):
            raise ConsoleError(f"{path}: host #{i + 1}: \"ips\" must be a list of addresses")
        out.append(h["ssh"])
    return out, backend if isinstance(backend, str) else ""


def rank_hosts(profile: Any) -> list[str]:
    if profile.hostfile:
        return read_hostfile(Path(profile.hostfile))[0]
    return list(profile.hosts)


def launcher() -> str:
    """mlx.launch of the console's own environment (mlx is one of its dependencies)."""
    beside = Path(sys.executable).parent / "mlx.launch"
    found = str(beside) if beside.exists() else shutil.which("mlx.launch")
    if not found:
        raise ConsoleError("mlx.launch not found (it is installed with mlx): cannot start a distributed backend")
    return found


def command(profile: Any, server_cmd: list[str], rank_dir: Path) -> list[str]:
    """mlx.launch … -- /bin/sh -c WRAPPER RANK_DIR @RUN@ <mlx_lm.server command>."""
    cmd = [launcher(), "--backend", profile.distributed_backend]
    if profile.hostfile:
        cmd += ["--hostfile", str(Path(profile.hostfile).expanduser().resolve())]
    else:
        cmd += ["--hosts", ",".join(profile.hosts)]
    if profile.ring_port:
        cmd += ["--starting-port", str(profile.ring_port)]
    server = list(server_cmd)
    if profile.pipeline and "--pipeline" not in server:
        server.append("--pipeline")
    return [*cmd, "--", "/bin/sh", "-c", RANK_WRAPPER, str(rank_dir), RUN_TOKEN, *server]


def rank_log(rank_dir: Path, rank: int) -> Path:
    return rank_dir / f"rank{rank}.log"


def log_label(host: str, path: Path) -> str:
    """Where a rank's log is: a local path, or host:path on the rank's own host."""
    return str(path) if host == LOCAL else f"{host}:{path}"


# -- looking at ranks ----------------------------------------------------------------------------------
def ssh(host: str, script: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    """Run a shell script on host with the system ssh client, never prompting (BatchMode)."""
    try:
        return subprocess.run([*SSH_BASE, host, script], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess([host], 255, "", f"ssh {host}: no answer within {timeout:g}s")


def _read_pid(text: str, token: str) -> int | None:
    parts = text.split()
    if len(parts) == 2 and parts[1] == token and parts[0].isdigit():
        return int(parts[0])
    return None


def look(ranks: list[Rank], rank_dir: Path, token: str) -> list[Rank]:
    """Fresh pid/status/cpu/rss of each rank (this spawn's pids only). Remote ranks: one ssh per host."""
    by_host: dict[str, list[Rank]] = {}
    for r in ranks:
        by_host.setdefault(r.host, []).append(r)
    for host, group in by_host.items():
        if host == LOCAL:
            for r in group:
                _look_local(r, rank_dir, token)
        else:
            _look_remote(host, group, rank_dir, token)
    return ranks


def _look_local(r: Rank, rank_dir: Path, token: str) -> None:
    if r.pid is None:
        try:
            r.pid = _read_pid((rank_dir / f"rank{r.rank}.pid").read_text(), token)
        except OSError:
            return
        if r.pid is None:
            return
        try:
            r.create_time = psutil.Process(r.pid).create_time()
        except psutil.Error:
            r.status = "gone"
            return
    r.status = "running" if alive_local(r) else "gone"


def alive_local(r: Rank) -> bool:
    try:
        p = psutil.Process(r.pid or 0)
        return bool((r.create_time is None or abs(p.create_time() - r.create_time) < 0.05)
                    and p.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _look_remote(host: str, group: list[Rank], rank_dir: Path, token: str) -> None:
    d = shlex.quote(str(rank_dir))
    script = "; ".join(
        f'echo "R {r.rank} $(cat {d}/rank{r.rank}.pid 2>/dev/null)"' for r in group
    ) + "; ps -A -o pid=,pcpu=,rss="
    out = ssh(host, script)
    if out.returncode != 0:
        return  # unreachable for now: the rank keeps its last known status
    pids: dict[int, int | None] = {}
    ps: dict[int, tuple[float, int]] = {}
    for line in out.stdout.splitlines():
        f = line.split()
        if f[:1] == ["R"] and len(f) >= 2:
            pids[int(f[1])] = _read_pid(" ".join(f[2:]), token)
        elif len(f) == 3 and f[0].isdigit():
            try:
                ps[int(f[0])] = (float(f[1]), int(f[2]) * 1024)
            except ValueError:
                pass
    for r in group:
        r.pid = pids.get(r.rank) or r.pid
        if r.pid is None:
            continue
        if r.pid in ps:
            r.status, (r.cpu_percent, r.rss_bytes) = "running", ps[r.pid]
        else:
            r.status = "gone"


def kill_ranks(ranks: list[Rank]) -> None:
    """Stop every rank still running: SIGKILL here (after the group's SIGTERM), TERM then KILL over ssh."""
    for r in ranks:
        if r.pid is None:
            continue
        if r.host == LOCAL and alive_local(r):
            try:
                psutil.Process(r.pid).kill()
            except psutil.Error:
                pass
    remote: dict[str, list[int]] = {}
    for r in ranks:
        if r.pid is not None and r.host != LOCAL:
            remote.setdefault(r.host, []).append(r.pid)
    for host, pids in remote.items():
        p = " ".join(str(x) for x in pids)
        ssh(host, f"kill -TERM {p} 2>/dev/null; for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 {p} 2>/dev/null "
                  f"|| exit 0; sleep 0.5; done; kill -KILL {p} 2>/dev/null; exit 0")
    for r in ranks:
        r.status = "stopped"


def usage(r: Rank) -> tuple[float | None, int | None]:
    """cpu_percent and rss of a local rank: the share of a core since the last call in this process (a UI
    polling), or its average since it started (a one-shot CLI call)."""
    if r.host != LOCAL or not r.pid or not alive_local(r):
        return r.cpu_percent, r.rss_bytes
    key = (r.pid, r.create_time or 0.0)
    try:
        p = _procs.get(key)
        if p is None:
            p = _procs[key] = psutil.Process(r.pid)
            p.cpu_percent(None)
            t = p.cpu_times()
            cpu = 100.0 * (t.user + t.system) / max(1e-3, time.time() - p.create_time())
        else:
            cpu = p.cpu_percent(None)
        return round(cpu, 1), p.memory_info().rss
    except psutil.Error:
        return None, None


_procs: dict[tuple[int, float], psutil.Process] = {}
