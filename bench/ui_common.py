"""Helpers for the UI benchmarks: run the real console in a pseudo-terminal and read what it draws."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

CONSOLE = Path(sys.executable).parent / "mlx-console"


class PtyConsole:
    """`mlx-console` on a pty of the given size; `read_until(text)` returns the seconds it took to appear."""

    def __init__(self, env: dict[str, str], cols: int = 80, rows: int = 24, argv: list[str] | None = None):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(argv or [str(CONSOLE)], stdin=slave, stdout=slave, stderr=slave,
                                     env=dict(env, TERM="xterm-256color"), start_new_session=True)
        os.close(slave)
        self.buf = b""

    def read_until(self, needle: bytes, timeout: float = 20.0) -> float:
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{needle!r} not drawn within {timeout}s")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    self.buf += os.read(self.master, 65536)
                except OSError:
                    break
        return time.perf_counter() - self.t0

    def drain(self) -> None:
        while select.select([self.master], [], [], 0)[0]:
            try:
                if not os.read(self.master, 65536):
                    return
            except OSError:
                return

    def close(self) -> None:
        try:
            os.write(self.master, b"q")
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        os.close(self.master)
