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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mlx_console.core.config import Config, Host
from mlx_console.core.errors import ConsoleError

LOCAL = "local"  # the fleet name of this machine
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15"]


def ssh_argv(host: Host, args: list[str], tty: bool = False) -> list[str]:
    """ssh … DEST -- '<command> <args…>' (the remote shell splits `command`; args are quoted)."""
    remote = host.command + (" " + shlex.join(args) if args else "")
    return ["ssh", *SSH_OPTIONS, *(["-t"] if tty else []), *host.ssh_options, host.ssh, "--", remote]


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
        tail = (out.stderr.strip().splitlines() or ["(no message)"])[-1]
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
