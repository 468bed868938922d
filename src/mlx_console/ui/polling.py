"""Polls that never overlap (dolphie's rule): one thread per poll fetches, hands the result to the event
loop, waits until it was handled, then sleeps its interval. `poke()` fetches again at once.

A poll is skipped (and re-checked each interval) while it is inactive: its pane hidden or a modal screen
open. One long-lived thread per poll, not a Textual worker per fetch: a worker per second costs a thread
and several messages each time, a noticeable share of the idle CPU budget.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from textual.app import App

_NOTHING = object()
HANDOFF_TIMEOUT = 5.0  # s to wait for the loop to take a result (it may be shutting down)


class Poller:
    def __init__(self, app: App, name: str, interval: float, fetch: Callable[[], Any],
                 deliver: Callable[[Any], None], *, active: Callable[[], bool] = lambda: True,
                 on_error: Callable[[BaseException], None] | None = None,
                 shown: Callable[[Any], Any] | None = None) -> None:
        self.app, self.name, self.interval = app, name, interval
        self.fetch, self.deliver, self.active, self.on_error = fetch, deliver, active, on_error
        # shown(result) → what the screen would show of it: a result that shows the same as the last one
        # delivered is not handed to the loop (no message, no handler, no repaint). poke() always delivers.
        self.shown = shown
        self._last_shown: Any = _NOTHING
        self._force = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.fetches = 0        # for tests and benchmarks
        self.skipped = 0        # fetches not delivered: they would show the same

    @property
    def _stopped(self) -> bool:
        return self._thread is None or self._stop.is_set()

    def start(self, delay: float = 0.0) -> None:
        """Call on the event loop's thread."""
        if self._thread is not None and not self._stop.is_set():
            return
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(delay,), name=f"poll:{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def poke(self) -> None:
        """Fetch as soon as the current fetch (if any) is handled, and deliver it even if unchanged."""
        self._force = True
        self._wake.set()

    def _run(self, delay: float) -> None:
        if delay and self._wake.wait(delay):
            self._wake.clear()
        while not self._stop.is_set():
            if self._is_active():
                force, self._force = self._force, False
                try:
                    result, error = self.fetch(), None
                except BaseException as e:  # reported on the loop; the poll keeps going
                    result, error = None, e
                if not self._unchanged(result, error, force) and (
                        self._stop.is_set() or not self._hand_over(result, error)):
                    return
            if self._wake.wait(self.interval):
                self._wake.clear()

    def _unchanged(self, result: Any, error: BaseException | None, force: bool) -> bool:
        if self.shown is None or error is not None:
            self._last_shown = _NOTHING
            return False
        try:
            key = self.shown(result)
        except Exception:
            key = _NOTHING
        same = key is not _NOTHING and key == self._last_shown and not force
        self._last_shown = key
        if same:
            self.skipped += 1
        return same

    def _is_active(self) -> bool:
        try:
            return bool(self.active())
        except Exception:
            return False

    def _hand_over(self, result: Any, error: BaseException | None) -> bool:
        """Run the handler on the loop and wait for it (so fetches never pile up). False: loop gone."""
        done = threading.Event()

        def handle() -> None:
            try:
                self.fetches += 1
                if self._stop.is_set():
                    return
                if error is not None:
                    if self.on_error is not None:
                        self.on_error(error)
                else:
                    self.deliver(result)
            except Exception as e:  # a handler bug is shown, not raised into asyncio's logger (the screen)
                self.app.notify(f"poll {self.name}: {type(e).__name__}: {e}", severity="error")
            finally:
                done.set()

        loop = self._loop
        if loop is None or loop.is_closed() or not self.app.is_running:
            return False
        try:
            loop.call_soon_threadsafe(handle)
        except RuntimeError:  # loop closed meanwhile
            return False
        while not done.wait(HANDOFF_TIMEOUT):
            if self._stop.is_set() or loop.is_closed() or not self.app.is_running:
                return False
        return True
