"""The one way to stop processes: SIGTERM, wait (psutil.wait_procs, which also reaps our own children),
SIGKILL what is left after the grace period. A zombie whose parent has not reaped it yet counts as gone."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable

import psutil


def send(p: psutil.Process, sig: int, *, group: bool = False) -> None:
    """Signal p; with group=True its whole process group when it leads one (a server and what it spawned)."""
    try:
        if group and os.getpgid(p.pid) == p.pid:
            os.killpg(p.pid, sig)
        else:
            p.send_signal(sig)
    except (OSError, psutil.Error):
        pass  # already gone, or not ours to signal


def _exited(p: psutil.Process) -> bool:
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def wait_gone(procs: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to `timeout` s for the processes to exit; returns those still alive."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive:
        _, alive = psutil.wait_procs(alive, timeout=min(0.05, max(0.0, deadline - time.monotonic())))
        alive = [p for p in alive if not _exited(p)]
        if time.monotonic() >= deadline:
            break
    return alive


def terminate(procs: Iterable[psutil.Process], grace: float, *, group: bool = False,
              kill_wait: float = 5.0) -> list[psutil.Process]:
    """SIGTERM, then SIGKILL whatever is still alive after `grace` s; returns what survived even that."""
    alive = list(procs)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_wait)):
        for p in alive:
            send(p, sig, group=group)
        alive = wait_gone(alive, wait)
        if not alive:
            break
    return alive
