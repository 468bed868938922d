"""Share CPU-bound work over forked processes: `map_forked(fn, jobs)` = `[fn(*job) for job in jobs]`, the
first job here and the others in children started with os.fork at the same time (so they see this process's
memory: an mmap'd log, a compiled pattern database), their answers pickled back through pipes.

Only where a fork is safe (`can_fork`: a POSIX system, one thread: another thread could hold a lock the child
needs). A child that fails is made up for by running its job here: the answer never depends on the children.
Used for big logs only (triage.py, scan.py): a fork costs ≈ 1–2 ms.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


def map_forked(fn: Callable[..., T], jobs: Sequence[tuple[Any, ...]]) -> list[T]:
    import pickle  # (only here: a small triage never shares its work)

    children: list[tuple[int, int]] = []  # (pid, read end of its pipe), for jobs[1:]
    try:
        for job in jobs[1:]:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child (coverage does not follow forks)
                code = 1
                try:
                    os.close(r)
                    data = pickle.dumps(fn(*job), protocol=pickle.HIGHEST_PROTOCOL)
                    with os.fdopen(w, "wb") as out:
                        out.write(data)
                    code = 0
                finally:
                    os._exit(code)  # no atexit handlers, no flush of the parent's buffered output
            os.close(w)
            children.append((pid, r))
    except OSError:
        pass  # no more processes or pipes: the jobs without a child are run here
    results = [fn(*jobs[0])] if jobs else []
    for k, job in enumerate(jobs[1:]):
        got: list[T] = []
        if k < len(children):
            pid, r = children[k]
            with os.fdopen(r, "rb") as f:
                data = f.read()
            _, status = os.waitpid(pid, 0)
            if status == 0:
                try:
                    got = [pickle.loads(data)]
                except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
                    got = []
        results.append(got[0] if got else fn(*job))
    return results
