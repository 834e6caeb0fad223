"""Where OSC replies go: the sender's IP on its declared or the configured UDP port, or back
over the TCP connection a request came in on while it is open."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pythonosc import slip
from pythonosc.osc_message_builder import build_msg

from ..core.filenames import printable
from .jobs import Outcome
from .osc_spec import ALTERNATIVE, ERROR, MAX_DECLARED, PARAMS, QUEUED, RECORDING, RESULT

log = logging.getLogger(__name__)


class Reply(Protocol):
    def send(self, address: str, *args: Any) -> None: ...


class UdpReplier:
    """Sends replies from its own socket and remembers ports declared with ``/deepdiva/hello``."""

    def __init__(self, default_port: int) -> None:
        self.default_port = default_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._declared: dict[Any, int] = {}
        self._lock = threading.Lock()

    def declare(self, sender: tuple[str, int], port: int) -> None:
        """Replies to ``sender`` (its IP and, when it keeps it, its source port) go to ``port``; 0 forgets."""
        with self._lock:
            for key in (sender[0], (sender[0], sender[1])):
                self._declared.pop(key, None)
                if port:
                    self._declared[key] = port
            while len(self._declared) > MAX_DECLARED:  # forget the oldest: senders can be made up
                self._declared.pop(next(iter(self._declared)))

    def port_for(self, sender: tuple[str, int]) -> int:
        with self._lock:
            return self._declared.get((sender[0], sender[1]), self._declared.get(sender[0], self.default_port))

    def target(self, sender: tuple[str, int]) -> UdpTarget:
        return UdpTarget(self, sender[0], self.port_for(sender))

    def send_to(self, host: str, port: int, address: str, args: Sequence[Any]) -> None:
        try:
            self.sock.sendto(build_msg(address, list(args)).dgram, (host, port))
        except OSError as exc:  # nobody listening, message too big, network gone: log, never raise
            log.debug("reply %s to %s:%s failed: %s", address, host, port, exc)

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class UdpTarget:
    replier: UdpReplier
    host: str
    port: int

    def send(self, address: str, *args: Any) -> None:
        self.replier.send_to(self.host, self.port, address, args)


class TcpTarget:
    """Replies on a TCP connection (SLIP-framed) while it is open, else over UDP.

    It also keeps what the idle timeout needs: when it last sent, and how many jobs accepted on
    this connection still owe their result (``/deepdiva/queued`` or ``/deepdiva/recording`` opens
    one; ``/deepdiva/result`` or an error naming a job closes one).
    """

    def __init__(self, conn: socket.socket, replier: UdpReplier, sender: tuple[str, int]) -> None:
        self.conn = conn
        self.replier = replier
        self.sender = sender
        self.open = True
        self.last_sent = 0.0
        self.in_flight = 0
        self._lock = threading.Lock()

    def send(self, address: str, *args: Any) -> None:
        data = slip.encode(build_msg(address, list(args)).dgram)
        with self._lock:
            if address in (QUEUED, RECORDING):
                self.in_flight += 1
            elif (address == RESULT or (address == ERROR and len(args) > 1)) and self.in_flight:
                self.in_flight -= 1
            if self.open:
                try:
                    self.conn.sendall(data)
                    self.last_sent = time.monotonic()
                    return
                except OSError:
                    self.open = False
        self.replier.target(self.sender).send(address, *args)  # the port declared by then


def _or_nan(value: float | None) -> float:
    """A float for OSC: NaN for None, not measured or not heard (OSC floats have no null)."""
    return float("nan") if value is None else float(value)


def send_outcome(reply: Reply, outcome: Outcome) -> None:
    """``/deepdiva/result`` + ``/deepdiva/params`` for a match, or ``/deepdiva/error``."""
    job = outcome.job
    if not outcome.ok or outcome.result is None:
        reply.send(ERROR, printable(outcome.error or "the match failed"), job.id)
        return
    result = outcome.result
    params = {name: p["normalised"] if isinstance(p, dict) else p for name, p in (result.get("params") or {}).items()}
    distance = result.get("distance")  # None: not measured (model.score off, or --dry-run)
    played = result.get("played_at") or {}
    reply.send(RESULT, printable(str(result["preset"])), _or_nan(distance),
               json.dumps(params, separators=(",", ":")), job.id, str(result.get("note", "unpitched")),
               int(played.get("midi_pitch", -1)), float(played.get("cents", 0.0)), _or_nan(played.get("held_for")),
               " ".join(played.get("keys") or []), float(result.get("raised_db") or 0.0),
               int(result.get("restored_samples") or 0), _or_nan(result.get("noise_floor_dbfs")),
               _or_nan(played.get("let_go_at")), _or_nan(played.get("release")))
    normalised = result.get("normalised")
    if normalised:
        reply.send(PARAMS, *[float(v) for v in normalised])
    for rank, alt in enumerate(result.get("alternatives") or [], start=2):
        reply.send(ALTERNATIVE, printable(str(alt["preset"])), float(alt["distance"]), rank, job.id)

