"""A subprocess's output read line by line as it comes (a reader thread per stream), and waited on with a
deadline: tests wait for what the process says ("following …", an event), never for a fixed time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import IO


class Lines:
    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def wait(self, cond: Callable[[list[str]], bool], timeout: float = 30.0, what: str = "") -> list[str]:
        deadline = time.monotonic() + timeout
        while not cond(list(self.lines)):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or cond}; output so far:\n{self.text()}")
            time.sleep(0.02)
        return list(self.lines)

    def wait_for_line(self, needle: str, timeout: float = 30.0) -> list[str]:
        return self.wait(lambda lines: any(needle in x for x in lines), timeout, repr(needle))

    def close(self, timeout: float = 10.0) -> str:
        """Once the process has exited: everything it wrote."""
        self._thread.join(timeout)
        return self.text()
