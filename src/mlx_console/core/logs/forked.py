"""Share CPU-bound work over forked processes: `map_forked(fn, jobs)` = `[fn(*job) for job in jobs]`, the
first job here and the others in children started with os.fork at the same time (so they see this process's
memory: an mmap'd log, a compiled pattern database), their answers pickled back through pipes.

Only where a fork is safe (`can_fork`: a POSIX system, one thread: another thread could hold a lock the child
needs). A child that fails is made up for by running its job here: the answer never depends on the children.
Used for big logs only (triage.py, scan.py): a fork costs ≈ 1–2 ms.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


MAX_WORKERS = 8  # more processes than this cost more forks than they save on one log


def default_workers() -> int:
    """The processes a big log's triage is shared by: one per core, at most MAX_WORKERS."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


def map_forked(fn: Callable[..., T], jobs: Sequence[tuple[Any, ...]]) -> list[T]:
    children: dict[int, tuple[int, int]] = {}  # job index → (pid, read end of its pipe)
    try:
        for k, job in enumerate(jobs[1:], 1):
            try:
                r, w = os.pipe()
            except OSError:
                break  # no more pipes: the jobs without a child are run here
            try:
                pid = os.fork()
            except OSError:
                os.close(r)
                os.close(w)
                break
            if pid == 0:  # pragma: no cover - the child (coverage does not follow forks)
                _child(fn, job, r, w)
            os.close(w)
            children[k] = (pid, r)
        results = [fn(*jobs[0])] if jobs else []
        for k, job in enumerate(jobs[1:], 1):
            got = _collect(*children.pop(k)) if k in children else []
            results.append(got[0] if got else fn(*job))
        return results
    finally:  # (an exception here, e.g. Ctrl-C: the children left are stopped and reaped)
        for pid, r in children.values():
            with contextlib.suppress(OSError):
                os.close(r)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)


def _child(fn: Callable[..., Any], job: tuple[Any, ...], r: int, w: int) -> None:  # pragma: no cover - in the child
    import pickle

    code = 1
    try:
        os.close(r)
        data = pickle.dumps(fn(*job), protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(w, "wb") as out:
            out.write(data)
        code = 0
    finally:
        os._exit(code)  # no atexit handlers, no flush of the parent's buffered output


def _collect(pid: int, r: int) -> list[Any]:
    """[the child's answer], or [] if it failed."""
    import pickle

    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        return []
    try:
        return [pickle.loads(data)]
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
        return []
