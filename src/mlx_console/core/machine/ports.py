"""Which process listens on which TCP port, and which LLM backend it looks like.

Ports → pid → process (psutil), backend kind guessed from the command line and, when asked, confirmed by
`GET /v1/models`. On macOS `psutil.net_connections()` needs root: we then ask each of our own processes,
and fall back to `lsof -nP -iTCP -sTCP:LISTEN` (docs/apple-silicon.md §4).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psutil

from mlx_console.core.backends.base import headers as bearer
from mlx_console.core.common import net
from mlx_console.core.common.net import is_loopback
from mlx_console.core.machine.parse import parse_lsof_listen

if TYPE_CHECKING:
    import httpx

MLX_LM, OMLX, UNKNOWN = "mlx-lm", "omlx", "unknown"
OPENAI = "openai"  # an unknown process that answers /v1/models in the OpenAI shape
LLM_BACKENDS = (MLX_LM, OMLX, "llama.cpp", "ollama", "vllm", OPENAI)


def _current_user() -> str | None:
    try:
        return str(psutil.Process().username())
    except (psutil.Error, KeyError):
        return None


@dataclass
class Listener:
    """One listening TCP port and its owner. pid/process are None when the owner is not visible to us."""

    port: int
    addresses: list[str] = field(default_factory=list)
    pid: int | None = None
    process: str | None = None
    cmdline: list[str] = field(default_factory=list)
    user: str | None = None
    backend: str = UNKNOWN
    confirmed: bool = False  # backend seen in a /v1/models answer, not only guessed from the command line
    models: list[str] = field(default_factory=list)
    auth_required: bool = False  # /v1/models answered 401/403
    probe: str | None = None  # what the /v1/models probe saw, when it was not a clean answer

    @property
    def is_llm(self) -> bool:
        return self.backend in LLM_BACKENDS

    @property
    def loopback_only(self) -> bool:
        return bool(self.addresses) and all(is_loopback(a) for a in self.addresses)

    @property
    def command(self) -> str:
        """The command line to show people (secrets redacted)."""
        return " ".join(redact(self.cmdline)) if self.cmdline else (self.process or "?")

    def to_json(self) -> dict[str, Any]:
        return {"port": self.port, "pid": self.pid, "process": self.process, "backend": self.backend,
                "addresses": self.addresses, "cmdline": redact(self.cmdline), "user": self.user,
                "confirmed": self.confirmed, "models": self.models, "auth_required": self.auth_required,
                "probe": self.probe}

    def describe(self) -> str:
        """One line for messages: `pid 123 (python3 -m mlx_lm.server --port 8080), looks like mlx-lm`."""
        if self.pid is None:
            owner = "a process not visible to this user"
        else:
            cmd = self.command
            owner = f"pid {self.pid} ({cmd[:120] + '…' if len(cmd) > 120 else cmd})"
            if self.user and self.user != _current_user():
                owner += f" of user {self.user}"
        what = {UNKNOWN: "not a known LLM backend", OPENAI: "an OpenAI-compatible server"}.get(
            self.backend, f"{'is' if self.confirmed else 'looks like'} {self.backend}")
        return f"{owner}, {what}"


_SECRET_FLAG = re.compile(r"^--?[\w-]*(key|token|secret|password)$", re.I)


def redact(cmdline: Sequence[str]) -> list[str]:
    """The command line fit to show: values of --api-key / --token / … replaced by ***."""
    out: list[str] = []
    hide = False
    for arg in cmdline:
        flag, eq, _value = arg.partition("=")
        if hide:
            out.append("***")
            hide = False
        elif eq and _SECRET_FLAG.match(flag):
            out.append(f"{flag}=***")
        else:
            out.append(arg)
            hide = bool(_SECRET_FLAG.match(arg))
    return out


def _head(cmdline: Sequence[str]) -> list[str]:
    """The arguments before the first `--flag`: program, interpreter options, module, subcommand."""
    head: list[str] = []
    for arg in cmdline:
        if arg.startswith("--"):
            break
        head.append(arg)
    return head


def guess_backend(cmdline: Sequence[str], name: str = "") -> str:
    """Backend kind from a command line: mlx-lm, omlx, llama.cpp, ollama, vllm, or unknown."""
    args = _head(cmdline) or [name]
    bases = [os.path.basename(a).lower() for a in args]
    for i, b in enumerate(bases):
        rest = bases[i + 1:]
        if b in ("mlx_lm.server", "mlx_lm.server.py") or args[i].endswith("mlx_lm/server.py"):
            return MLX_LM
        if b == "mlx_lm" and rest[:1] == ["server"]:
            return MLX_LM
        # oMLX sets its process title to "omlx-server"; otherwise `omlx serve`, `-m omlx.cli serve`
        # (or a stand-in script named omlx_*.py started with `serve`).
        if b == "omlx-server" or (b.startswith("omlx") and "serve" in rest):
            return OMLX
        if b in ("llama-server", "llama-server.exe"):
            return "llama.cpp"
        if b == "ollama" and ("serve" in rest or "runner" in rest):
            return "ollama"
        if (b == "vllm" and "serve" in rest) or b.startswith("vllm.entrypoints"):
            return "vllm"
    return UNKNOWN


# --- finding listeners -------------------------------------------------------------------------------

def _listen_psutil_global() -> list[tuple[str, int, int | None]]:
    return [(c.laddr.ip, c.laddr.port, c.pid) for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr]


def _listen_own_processes() -> list[tuple[str, int, int | None]]:
    """Ask each process we may inspect (our own user's) for its listening sockets."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    out: list[tuple[str, int, int | None]] = []
    for proc in psutil.process_iter(["uids"]):
        try:
            uids = proc.info.get("uids")
            if uid not in (None, 0) and uids is not None and uids.real != uid:
                continue
            for c in proc.net_connections(kind="tcp"):
                if c.status == psutil.CONN_LISTEN and c.laddr:
                    out.append((c.laddr.ip, c.laddr.port, proc.pid))
        except (psutil.Error, OSError):
            continue
    return out


def _listen_lsof(timeout: float = 3.0) -> list[tuple[str, int, int | None]]:
    lsof = shutil.which("lsof") or ("/usr/sbin/lsof" if os.path.exists("/usr/sbin/lsof") else None)
    if lsof is None:
        return []
    try:
        r = subprocess.run([lsof, "-nP", "-iTCP", "-sTCP:LISTEN"], capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [(e.address, e.port, e.pid) for e in parse_lsof_listen(r.stdout)]


def _raw_listeners() -> list[tuple[str, int, int | None]]:
    for _attempt in range(2):
        try:
            return _listen_psutil_global()
        except (psutil.AccessDenied, PermissionError):
            break  # macOS without root
        except (psutil.Error, OSError):
            continue  # a process vanished while its sockets were being listed: try again
    found = _listen_own_processes()
    return found or _listen_lsof()


def _port_answers(port: int, timeout: float = 0.2) -> str | None:
    """A loopback address on which something accepts connections on this port (owner unknown)."""
    for host in ("127.0.0.1", "::1"):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return host
        except OSError:
            continue
    return None


def _fill_process(listener: Listener) -> None:
    if listener.pid is None:
        return
    try:
        p = psutil.Process(listener.pid)
        with p.oneshot():
            listener.process = p.name()
            try:
                cmdline = p.cmdline()
            except (psutil.AccessDenied, psutil.ZombieProcess):
                cmdline = []
            while cmdline and not cmdline[-1].strip():
                cmdline.pop()  # a process title set with setproctitle (oMLX's) leaves empty padding args
            listener.cmdline = cmdline
            try:
                listener.user = p.username()
            except (psutil.Error, KeyError):
                listener.user = None
    except psutil.NoSuchProcess:
        listener.pid = None
    except psutil.AccessDenied:
        pass
    listener.backend = guess_backend(listener.cmdline, listener.process or "")


def _probe_host(listener: Listener) -> str:
    for a in listener.addresses:
        if is_loopback(a):
            return a.removeprefix("::ffff:")
    if any(":" in a for a in listener.addresses) and "0.0.0.0" not in listener.addresses:
        return "::1"
    return "127.0.0.1"


def _base_url(listener: Listener) -> str:
    host = _probe_host(listener)
    return f"http://{'[' + host + ']' if ':' in host else host}:{listener.port}"


def probe_models(listener: Listener, api_key: str | None = None, timeout: float = 0.6) -> None:
    """Confirm the backend kind from `GET /v1/models`: oMLX entries say `owned_by: "omlx"`; mlx_lm.server's
    entries have no owned_by. A missing HF hub cache makes mlx_lm.server answer 200 with an empty body.
    When that cannot tell (no models, API key required), oMLX's open `/health` has an `engine_pool`."""
    import httpx

    base = _base_url(listener)
    headers = bearer(api_key)
    try:
        r = net.request("GET", base + "/v1/models", headers=headers, timeout=timeout)
    except httpx.HTTPError as e:
        listener.probe = f"GET /v1/models: {type(e).__name__}"
        return
    _read_models_answer(listener, r)
    if not listener.confirmed and listener.backend in (OMLX, UNKNOWN, OPENAI):
        try:
            health = net.request("GET", base + "/health", timeout=timeout).json()
        except (httpx.HTTPError, ValueError):
            return
        if isinstance(health, dict) and "engine_pool" in health:
            listener.backend, listener.confirmed = OMLX, True


def _read_models_answer(listener: Listener, r: httpx.Response) -> None:
    if r.status_code in (401, 403):
        listener.auth_required = True
        listener.probe = f"GET /v1/models: {r.status_code} (API key required)"
        return
    if r.status_code != 200:
        listener.probe = f"GET /v1/models: HTTP {r.status_code}"
        return
    if not r.content.strip():
        listener.probe = "GET /v1/models: 200 with an empty body (mlx_lm.server without an HF hub cache dir)"
        return
    try:
        body = r.json()
        data = body["data"]
        assert isinstance(data, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        listener.probe = "GET /v1/models: 200 but not an OpenAI model list"
        return
    listener.models = [str(m.get("id")) for m in data if isinstance(m, dict)]
    owners = {m.get("owned_by") for m in data if isinstance(m, dict)}
    if "omlx" in owners:
        listener.backend, listener.confirmed = OMLX, True
    elif listener.backend == MLX_LM:
        listener.confirmed = owners <= {None}  # mlx_lm.server's entries carry no owned_by
    elif listener.backend in LLM_BACKENDS and listener.backend != OMLX:
        listener.confirmed = True
    elif listener.backend == UNKNOWN and data:
        listener.backend, listener.confirmed = OPENAI, True


def listeners(ports: Iterable[int] | None = None, *, probe: bool = False, probe_ports: Iterable[int] = (),
              api_keys: Mapping[int, str] | None = None, timeout: float = 0.6) -> list[Listener]:
    """Listening TCP ports with their owners, sorted by port.

    ports: only these ports (a requested port that accepts connections but whose owner we cannot see is
    still listed, with pid None). probe: confirm the backend with `GET /v1/models` for listeners that look
    like an LLM backend and for those on `probe_ports` (probes run concurrently, each with `timeout`).
    api_keys: port → API key for the probe (oMLX with an API key answers 401 otherwise).
    """
    wanted = set(ports) if ports is not None else None
    by_key: dict[tuple[int, int | None], Listener] = {}
    for ip, port, pid in _raw_listeners():
        if wanted is not None and port not in wanted:
            continue
        lst = by_key.setdefault((port, pid), Listener(port=port, pid=pid))
        if ip not in lst.addresses:
            lst.addresses.append(ip)
    found = list(by_key.values())
    for lst in found:
        _fill_process(lst)
    if wanted is not None:
        seen = {lst.port for lst in found}
        for port in sorted(wanted - seen):
            host = _port_answers(port)
            if host is not None:
                found.append(Listener(port=port, addresses=[host]))
    found.sort(key=lambda x: (x.port, x.pid or 0))
    if probe:
        extra = set(probe_ports)
        targets = [lst for lst in found if lst.is_llm or lst.port in extra]
        keys = api_keys or {}
        if targets:
            from concurrent.futures import ThreadPoolExecutor  # not at import: `backends list` needs none

            with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
                list(pool.map(lambda lst: probe_models(lst, keys.get(lst.port), timeout), targets))
    return found


def owner_of(port: int, *, probe: bool = True, api_key: str | None = None) -> Listener | None:
    """The listener on one port (the supervisor asks this before a start), or None when the port is free."""
    found = listeners([port], probe=probe, probe_ports=[port], api_keys={port: api_key} if api_key else None)
    return found[0] if found else None
