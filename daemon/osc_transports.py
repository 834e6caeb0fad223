"""OSC transports: a UDP socket, and OSC 1.1 over TCP (SLIP-framed, one thread per connection).

Both only move bytes: every packet goes to a :class:`PacketHandler` (the app) with a reply target.
Neither can be stopped by what a client sends or by a handler: UDP packets are received on one
thread and handled on another, and a handler stuck for ``handler_timeout`` seconds is left behind
and replaced; every loop runs :func:`~.supervise.supervised`, so one that dies is logged and
restarted. Idle TCP connections are closed, and buffered bytes count against one
:class:`~.osc_budget.PendingBytes` shared by every connection and chunked buffer.
"""

from __future__ import annotations

import logging
import queue
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from typing import Protocol

from pythonosc import slip

from .osc_budget import PendingBytes
from .osc_replies import Reply, TcpTarget, UdpReplier
from .osc_spec import BUSY, ERROR, MAX_TCP_CONNECTIONS, MAX_WAIT_WITH_JOBS, SEND_TIMEOUT
from .supervise import Supervised

log = logging.getLogger(__name__)

UDP_BACKLOG = 4096  # packets received and not yet handled; more get /deepdiva/busy
HANDLER_TIMEOUT = 10.0  # seconds one packet may take before its handler thread is replaced
MAX_ABANDONED = 8  # stuck handler threads kept waiting at most; then packets are refused
HOUSEKEEPING_SECONDS = 1.0


class PacketHandler(Protocol):
    """What a transport hands packets to (the app); no call may be assumed to return quickly."""

    replier: UdpReplier
    budget: PendingBytes

    def handle_packet(self, data: bytes, sender: tuple[str, int], reply: Reply) -> None: ...

    def refuse(self, problem: str, reply: Reply) -> None: ...

    def housekeeping(self) -> None: ...


class UdpServer:
    """Receives OSC datagrams on one thread; a second thread handles them in arrival order."""

    def __init__(self, host: str, port: int, app: PacketHandler, handler_timeout: float = HANDLER_TIMEOUT) -> None:
        self.app = app
        self.handler_timeout = handler_timeout
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except OSError:
            pass
        self.sock.bind((host, port))
        self.sock.settimeout(0.25)
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self._stop = threading.Event()
        self._packets: queue.Queue[tuple[bytes, tuple[str, int]]] = queue.Queue(UDP_BACKLOG)
        self._receiver = Supervised("deepdiva-osc-udp", self._receive, self._stop)
        self._handler: _HandlerThread | None = None
        self.abandoned: list[_HandlerThread] = []
        self._last_housekeeping = time.monotonic()

    @property
    def restarts(self) -> int:
        return self._receiver.restarts + (self._handler.loop.restarts if self._handler else 0)

    def start(self) -> None:
        self._handler = _HandlerThread(self)
        self._receiver.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        try:  # wake the receiving thread now rather than at its next timeout
            with socket.socket(self.sock.family, socket.SOCK_DGRAM) as waker:
                waker.sendto(b"", self.address)
        except OSError:
            pass
        self._receiver.join(timeout)
        if self._handler is not None:
            self._handler.stop()
        self.sock.close()

    def _receive(self) -> None:
        while not self._stop.is_set():
            self._watch()
            try:
                data, sender = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:  # e.g. Windows reports ICMP errors here; keep serving
                if self._stop.is_set():
                    break
                continue
            if self._stop.is_set():
                break
            try:
                self._packets.put_nowait((data, sender[:2]))
            except queue.Full:
                self.app.replier.target(sender[:2]).send(BUSY, "the OSC server is behind; packet dropped, send "
                                                               "it again")

    def _watch(self) -> None:
        """Replace a handler thread stuck on one packet; run the app's housekeeping now and then."""
        handler = self._handler
        if handler is not None and handler.stuck_for() > self.handler_timeout:
            log.error("OSC handler stuck for %.0f s on a packet from %s; replacing its thread",
                      handler.stuck_for(), handler.current_sender)
            handler.abandon()
            self.abandoned = [*self.stuck_threads(), handler]
            self._handler = _HandlerThread(self)
        now = time.monotonic()
        if now - self._last_housekeeping >= HOUSEKEEPING_SECONDS:
            self._last_housekeeping = now
            self.app.housekeeping()

    def stuck_threads(self) -> list[_HandlerThread]:
        """Replaced handler threads still inside their packet."""
        return [t for t in self.abandoned if t.loop.alive]


class _HandlerThread:
    """The thread that runs the app for UDP packets, one at a time in arrival order, and what it
    is busy with since when (so the receiving thread can replace it when it is stuck)."""

    def __init__(self, server: UdpServer) -> None:
        self.server = server
        self.stop_event = threading.Event()
        self.current_sender: str | None = None
        self._since: float | None = None
        self.loop = Supervised("deepdiva-osc-udp-handler", self._run, self.stop_event)
        self.loop.start()

    def _run(self) -> None:
        server = self.server
        while not self.stop_event.is_set():
            try:
                data, sender = server._packets.get(timeout=0.25)
            except queue.Empty:
                continue
            if self.stop_event.is_set():  # replaced while waiting: the new thread takes it
                server._packets.put((data, sender))
                return
            if len(server.stuck_threads()) >= MAX_ABANDONED:
                server.app.replier.target(sender).send(BUSY, "the OSC server is stuck; try again later")
                continue
            self.current_sender, self._since = sender[0], time.monotonic()
            try:
                server.app.handle_packet(data, sender, server.app.replier.target(sender))
            except Exception:
                log.exception("OSC packet from %s", sender[0])
            finally:
                self._since = None

    def stuck_for(self) -> float:
        since = self._since
        return 0.0 if since is None else time.monotonic() - since

    def abandon(self) -> None:
        self.stop_event.set()  # it exits once its handler returns, if ever

    def stop(self) -> None:
        self.stop_event.set()
        self.loop.join(1.0)


class SlipDecoder:
    """Splits a TCP byte stream into SLIP frames (OSC 1.1); frames over ``max_size`` are refused.

    With a ``budget``, the bytes of an unfinished frame are reserved in it; when the budget drops
    this decoder (it held the oldest bytes), ``on_evicted`` is told and the frame is discarded.
    """

    END = slip.END[0]

    def __init__(self, max_size: int, budget: PendingBytes | None = None,
                 on_evicted: Callable[[str], None] | None = None) -> None:
        self.max_size = max_size
        self.budget = budget
        self.on_evicted = on_evicted
        self._buf = bytearray()
        self._overflow = False
        self._evicted: str | None = None
        self._lock = threading.Lock()

    def feed(self, data: bytes) -> list[bytes | str]:
        """Complete frames (bytes) and problems (str), in order."""
        out: list[bytes | str] = []
        pos = 0
        while pos < len(data):
            end = data.find(self.END, pos)
            piece = data[pos:] if end < 0 else data[pos:end]
            self._append(piece)
            if end < 0:
                break
            out.extend(self._frame())
            pos = end + 1
        return out

    def _append(self, piece: bytes) -> None:
        if not piece:
            return
        # never call the budget while holding our lock: it may evict (lock) another decoder
        if not self._overflow and len(self._buf) + len(piece) <= 2 * self.max_size + 2:  # SLIP at most doubles
            if self.budget is not None and not self.budget.reserve(self, len(piece)):
                self.budget.release(self)
                self.evict(PendingBytes.REASON)
                return
            with self._lock:
                if not self._overflow:
                    self._buf += piece
                    return
        with self._lock:
            self._buf.clear()
            self._overflow = True
        self._release()

    def evict(self, reason: str) -> None:
        """Called by the budget: drop the unfinished frame now (its bytes are already released)."""
        with self._lock:
            self._buf.clear()
            self._overflow = True
            self._evicted = reason
        if self.on_evicted is not None:
            self.on_evicted(f"packet dropped: {reason}; send it again")

    def close(self) -> None:
        with self._lock:
            self._buf.clear()
        self._release()

    def _release(self) -> None:
        if self.budget is not None:
            self.budget.release(self)

    def _frame(self) -> list[bytes | str]:
        with self._lock:
            overflow, evicted = self._overflow, self._evicted
            raw = bytes(self._buf)
            self._buf.clear()
            self._overflow, self._evicted = False, None
        self._release()
        if evicted is not None:
            return [] if self.on_evicted is not None else [f"packet dropped: {evicted}; send it again"]
        if overflow:
            return [f"packet larger than {self.max_size} bytes refused (audio.max_buffer_seconds)"]
        if not raw:
            return []  # the empty frame between END END
        try:
            packet = slip.decode(raw)
        except slip.ProtocolError:
            return ["malformed SLIP frame (bad escape sequence)"]
        if len(packet) > self.max_size:
            return [f"packet larger than {self.max_size} bytes refused (audio.max_buffer_seconds)"]
        return [packet]


class _TcpHandler(socketserver.BaseRequestHandler):
    server: _ThreadingTcp

    def handle(self) -> None:
        owner = self.server.owner
        conn: socket.socket = self.request
        sender = self.client_address[:2]
        app = owner.app
        target = TcpTarget(conn, app.replier, sender)
        conn.settimeout(SEND_TIMEOUT)  # a client that stops reading must not block replies for long
        if not owner._register(conn):
            target.send(ERROR, f"too many TCP connections ({MAX_TCP_CONNECTIONS}); close one and try again")
            target.open = False
            return
        decoder = SlipDecoder(owner.max_packet, app.budget, on_evicted=lambda reason: target.send(ERROR, reason))
        conn.settimeout(min(SEND_TIMEOUT, owner.idle_seconds))
        last_heard = time.monotonic()
        try:
            while not owner.stopping.is_set():
                try:
                    data = conn.recv(1 << 16)
                except TimeoutError:
                    if self._idle(target, last_heard, owner.idle_seconds):
                        target.send(ERROR, f"closing the connection: idle for {owner.idle_seconds:g} s "
                                           "(osc.tcp_idle_seconds)")
                        break
                    continue
                except OSError:
                    break
                if not data:
                    break
                last_heard = time.monotonic()
                for item in decoder.feed(data):
                    if isinstance(item, str):
                        app.refuse(item, target)
                    else:
                        try:
                            app.handle_packet(item, sender, target)
                        except Exception:
                            log.exception("OSC packet from %s over TCP", sender[0])
        finally:
            target.open = False
            decoder.close()
            owner._unregister(conn)

    @staticmethod
    def _idle(target: TcpTarget, last_heard: float, idle_seconds: float) -> bool:
        """Nothing received or sent for ``idle_seconds``; with replies still owed, much longer."""
        quiet = time.monotonic() - max(last_heard, target.last_sent)
        return quiet > (MAX_WAIT_WITH_JOBS if target.in_flight else idle_seconds)


class _ThreadingTcp(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: SlipTcpServer

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        log.exception("OSC TCP connection from %s", client_address[0])


class SlipTcpServer:
    """OSC 1.1 over TCP: SLIP-framed packets, one thread per connection."""

    def __init__(self, host: str, port: int, app: PacketHandler, max_packet: int, idle_seconds: float = 300.0) -> None:
        self.app = app
        self.max_packet = max_packet
        self.idle_seconds = idle_seconds
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("_ThreadingTcpServer", (_ThreadingTcp,), {"address_family": family})
        self._server = server_class((host, port), _TcpHandler)
        self._server.owner = self
        self.address: tuple[str, int] = self._server.server_address[:2]  # type: ignore[assignment]
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._loop = Supervised("deepdiva-osc-tcp", self._serve, self.stopping)

    @property
    def restarts(self) -> int:
        return self._loop.restarts

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def start(self) -> None:
        self._loop.start()

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.1)

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self._loop.alive:  # shutdown() waits forever for a loop that never ran
            self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._loop.join(timeout)

    def _register(self, conn: socket.socket) -> bool:
        with self._lock:
            if len(self._conns) >= MAX_TCP_CONNECTIONS:
                return False
            self._conns.add(conn)
            return True

    def _unregister(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)
