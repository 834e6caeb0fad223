"""OSC transports: a UDP socket, and OSC 1.1 over TCP (SLIP-framed, one thread per connection).

Both only move bytes: every packet goes to the app's ``handle_packet`` with a reply target.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from typing import TYPE_CHECKING

from pythonosc import slip

from .osc_replies import TcpTarget
from .osc_spec import ERROR, MAX_TCP_CONNECTIONS, SEND_TIMEOUT

if TYPE_CHECKING:
    from .osc_server import OscApp

log = logging.getLogger(__name__)


class UdpServer:
    """Receives OSC datagrams on one thread and hands them to the app."""

    def __init__(self, host: str, port: int, app: OscApp) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except OSError:
            pass
        self.sock.bind((host, port))
        self.sock.settimeout(0.25)
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="deepdiva-osc-udp", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        try:  # wake the receiving thread now rather than at its next timeout
            with socket.socket(self.sock.family, socket.SOCK_DGRAM) as waker:
                waker.sendto(b"", self.address)
        except OSError:
            pass
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.sock.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
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
                self.app.handle_packet(data, sender[:2], self.app.replier.target(sender[:2]))
            except Exception:
                log.exception("OSC packet from %s", sender[0])


class SlipDecoder:
    """Splits a TCP byte stream into SLIP frames (OSC 1.1); frames over ``max_size`` are refused."""

    END = slip.END[0]

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[bytes | str]:
        """Complete frames (bytes) and problems (str), in order."""
        out: list[bytes | str] = []
        pos = 0
        while pos < len(data):
            end = data.find(self.END, pos)
            piece = data[pos:] if end < 0 else data[pos:end]
            if not self._overflow:
                if len(self._buf) + len(piece) > 2 * self.max_size + 2:  # SLIP at most doubles a packet
                    self._buf.clear()
                    self._overflow = True
                else:
                    self._buf += piece
            if end < 0:
                break
            out.extend(self._frame())
            pos = end + 1
        return out

    def _frame(self) -> list[bytes | str]:
        if self._overflow:
            self._overflow = False
            return [f"packet larger than {self.max_size} bytes refused (audio.max_buffer_seconds)"]
        if not self._buf:
            return []  # the empty frame between END END
        raw = bytes(self._buf)
        self._buf.clear()
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
        if not owner._register(conn):
            return
        conn.settimeout(SEND_TIMEOUT)  # a client that stops reading must not block replies for long
        target = TcpTarget(conn, owner.app.replier, sender)
        decoder = SlipDecoder(owner.max_packet)
        try:
            while True:
                try:
                    data = conn.recv(1 << 16)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                for item in decoder.feed(data):
                    if isinstance(item, str):
                        owner.app.malformed += 1
                        target.send(ERROR, item)
                    else:
                        owner.app.handle_packet(item, sender, target)
        finally:
            target.open = False
            owner._unregister(conn)


class _ThreadingTcp(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: SlipTcpServer


class SlipTcpServer:
    """OSC 1.1 over TCP: SLIP-framed packets, one thread per connection."""

    def __init__(self, host: str, port: int, app: OscApp, max_packet: int) -> None:
        self.app = app
        self.max_packet = max_packet
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_class = type("_ThreadingTcpServer", (_ThreadingTcp,), {"address_family": family})
        self._server = server_class((host, port), _TcpHandler)
        self._server.owner = self
        self.address: tuple[str, int] = self._server.server_address[:2]  # type: ignore[assignment]
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="deepdiva-osc-tcp", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():  # shutdown() waits forever for a loop that never ran
            self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _register(self, conn: socket.socket) -> bool:
        with self._lock:
            if len(self._conns) >= MAX_TCP_CONNECTIONS:
                return False
            self._conns.add(conn)
            return True

    def _unregister(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)
