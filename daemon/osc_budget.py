"""One cap on the bytes the OSC front end holds for requests not finished yet.

Unfinished chunked buffers (every sender) and partly received TCP packets (every connection)
reserve their bytes here. When a reservation would pass the cap, the holders that started
holding first are dropped first: each is told (``evict``) so it can free its bytes and tell its
sender. Many senders together can therefore never hold more than the cap, whatever their IPs.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger(__name__)


class Holder(Protocol):
    def evict(self, reason: str) -> None:
        """Drop what is held (its bytes are already released) and tell the sender ``reason``."""


class PendingBytes:
    """Bytes reserved per holder, oldest holder first, within ``cap`` bytes in all."""

    REASON = "the daemon holds too many unfinished buffers and packets (osc.max_pending_mb)"

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._held: dict[Holder, int] = {}  # insertion order = age
        self._lock = threading.Lock()
        self.evictions = 0

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._held.values())

    def reserve(self, holder: Holder, n: int) -> bool:
        """Reserve ``n`` more bytes for ``holder``, dropping older holders if needed.

        False when ``holder`` itself is the oldest that would have to go (it keeps what it had:
        the caller drops it). Evicted holders are told after the lock is released, so a holder
        may hold its own lock while it calls this, as long as ``evict`` takes no lock of ours.
        """
        victims: list[Holder] = []
        with self._lock:
            total = sum(self._held.values()) + n
            for other in list(self._held):
                if total <= self.cap:
                    break
                if other is holder:
                    break
                total -= self._held.pop(other)
                victims.append(other)
            ok = total <= self.cap
            if ok:
                self._held[holder] = self._held.get(holder, 0) + n
            self.evictions += len(victims)
        for victim in victims:
            log.warning("dropping unfinished OSC data: %s", self.REASON)
            try:
                victim.evict(self.REASON)
            except Exception:  # one holder's bug must not stop the reservation of another
                log.exception("evicting %r", victim)
        return ok

    def release(self, holder: Holder, n: int | None = None) -> None:
        """Give back ``n`` bytes of ``holder`` (None: all of them)."""
        with self._lock:
            left = 0 if n is None else self._held.get(holder, 0) - n
            if left > 0:
                self._held[holder] = left
            else:
                self._held.pop(holder, None)
