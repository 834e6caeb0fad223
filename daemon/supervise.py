"""Threads that are restarted when they die: every server loop of the daemon runs in one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Supervised:
    """Runs ``loop`` on a daemon thread until ``stop`` is set; if it raises or returns before
    that, the failure is logged and ``loop`` runs again after ``backoff`` seconds."""

    def __init__(self, name: str, loop: Callable[[], None], stop: threading.Event, backoff: float = 0.2) -> None:
        self.name = name
        self.loop = loop
        self.stop = stop
        self.backoff = backoff
        self.restarts = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.loop()
            except BaseException:  # noqa: BLE001 - whatever killed the loop, the server must go on
                if self.stop.is_set():
                    return
                log.exception("%s died; restarting it", self.name)
            else:
                if self.stop.is_set():
                    return
                log.error("%s stopped unexpectedly; restarting it", self.name)
            self.restarts += 1
            self.stop.wait(self.backoff)
