"""Polls that never overlap (dolphie's pattern): a one-shot timer fires a thread worker, whose end re-arms it.

A poll is skipped (and re-checked later) while it is inactive: its pane hidden or a modal screen open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.timer import Timer


class Poller:
    def __init__(self, app: App, name: str, interval: float, fetch: Callable[[], Any],
                 deliver: Callable[[Any], None], *, active: Callable[[], bool] = lambda: True,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.app, self.name, self.interval = app, name, interval
        self.fetch, self.deliver, self.active, self.on_error = fetch, deliver, active, on_error
        self._timer: Timer | None = None
        self._running = False   # a fetch is in flight
        self._again = False     # poke() arrived while in flight: fetch again right after
        self._stopped = True
        self.fetches = 0        # for tests and benchmarks

    def start(self, delay: float = 0.0) -> None:
        self._stopped = False
        self._arm(delay)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def poke(self) -> None:
        """Fetch as soon as possible (after an action), without ever running two fetches at once."""
        if self._stopped:
            return
        if self._running:
            self._again = True
            return
        self._arm(0.0)

    def _arm(self, delay: float) -> None:
        if self._timer is not None:
            self._timer.stop()
        # Textual timers need a positive delay.
        self._timer = self.app.set_timer(max(delay, 0.001), self._fire, name=f"poll:{self.name}")

    def _fire(self) -> None:
        self._timer = None
        if self._stopped or self._running:
            return
        if not self.active():
            self._arm(self.interval)
            return
        self._running = True
        self.app.run_worker(self._work, name=f"poll:{self.name}", group=f"poll:{self.name}", thread=True,
                            exit_on_error=False)

    def _work(self) -> None:
        try:
            result = self.fetch()
        except BaseException as e:  # reported on the main thread; the poll keeps going
            self._call(self._done, None, e)
        else:
            self._call(self._done, result, None)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self.app.call_from_thread(fn, *args)
        except RuntimeError:
            pass  # the app is shutting down

    def _done(self, result: Any, error: BaseException | None) -> None:
        self._running = False
        self.fetches += 1
        if self._stopped:
            return
        try:
            if error is not None:
                if self.on_error is not None:
                    self.on_error(error)
            else:
                self.deliver(result)
        finally:
            self._arm(0.0 if self._again else self.interval)
            self._again = False
