"""The OSC front end: UDP and TCP (OSC 1.1, SLIP-framed) servers and the ``/deepdiva`` address space.

Transport and protocol are apart: :class:`UdpServer` and :class:`SlipTcpServer` hand raw packets
to :class:`OscApp`, which parses them, checks every argument and calls a :class:`Backend` (the
service) that only enqueues work. Handlers never wait for a match. Replies go to the sender's IP
on its declared (``/deepdiva/hello``) or the configured reply port; requests over TCP are
answered on their connection while it is open. The address space is documented in ``OSC.md``.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pythonosc import slip
from pythonosc.osc_message_builder import build_msg
from pythonosc.osc_packet import OscPacket

from ..core.errors import DeepDivaError
from .jobs import Busy, Outcome

log = logging.getLogger(__name__)

ROOT = "/deepdiva"
# requests
PING, HELLO, STATUS = f"{ROOT}/ping", f"{ROOT}/hello", f"{ROOT}/status"
MATCH_FILE, MATCH_BUFFER = f"{ROOT}/match/file", f"{ROOT}/match/buffer"
BUFFER_BEGIN, BUFFER_CHUNK, BUFFER_END = (f"{MATCH_BUFFER}/begin", f"{MATCH_BUFFER}/chunk", f"{MATCH_BUFFER}/end")
RECORD, PUSH = f"{ROOT}/record", f"{ROOT}/push"
# replies
PONG, HELLO_OK, QUEUED, RESULT, PARAMS = (f"{ROOT}/pong", f"{ROOT}/hello/ok", f"{ROOT}/queued",
                                          f"{ROOT}/result", f"{ROOT}/params")
ERROR, BUSY, RECORDING, PUSHED = f"{ROOT}/error", f"{ROOT}/busy", f"{ROOT}/recording", f"{ROOT}/pushed"

MIN_RATE, MAX_RATE = 8000, 384000
MAX_RECORD_SECONDS = 60.0
MAX_TCP_CONNECTIONS = 64
MAX_DECLARED = 1024
SEND_TIMEOUT = 5.0


def _not_from_pythonosc(record: logging.LogRecord) -> bool:
    return "pythonosc" not in record.pathname


# python-osc logs a warning on the root logger for every odd packet it parses; garbage from the
# network must not flood the daemon's log, so those records are dropped (our own error reply and
# counters say enough).
if _not_from_pythonosc not in logging.getLogger().filters:
    logging.getLogger().addFilter(_not_from_pythonosc)


class ArgError(DeepDivaError):
    """A request with missing, extra or wrongly typed arguments, or values out of range."""


# --------------------------------------------------------------------------- replies

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
    """Replies on a TCP connection (SLIP-framed) while it is open, else over UDP."""

    def __init__(self, conn: socket.socket, replier: UdpReplier, sender: tuple[str, int]) -> None:
        self.conn = conn
        self.replier = replier
        self.sender = sender
        self.open = True
        self._lock = threading.Lock()

    def send(self, address: str, *args: Any) -> None:
        data = slip.encode(build_msg(address, list(args)).dgram)
        with self._lock:
            if self.open:
                try:
                    self.conn.sendall(data)
                    return
                except OSError:
                    self.open = False
        self.replier.target(self.sender).send(address, *args)  # the port declared by then


def send_outcome(reply: Reply, outcome: Outcome) -> None:
    """``/deepdiva/result`` + ``/deepdiva/params`` for a match, or ``/deepdiva/error``."""
    job = outcome.job
    if not outcome.ok or outcome.result is None:
        reply.send(ERROR, outcome.error or "the match failed", job.id)
        return
    result = outcome.result
    params = {name: p["normalised"] if isinstance(p, dict) else p for name, p in (result.get("params") or {}).items()}
    reply.send(RESULT, str(result["preset"]), float(result.get("distance", float("nan"))),
               json.dumps(params, separators=(",", ":")), job.id)
    normalised = result.get("normalised")
    if normalised:
        reply.send(PARAMS, *[float(v) for v in normalised])


# --------------------------------------------------------------------------- arguments

_TYPE_NAMES = {"s": "string", "f": "float", "i": "int", "b": "blob"}


@dataclass(frozen=True)
class Signature:
    """Required and optional arguments as ``(name, type)``; types s, f, i, b."""

    required: tuple[tuple[str, str], ...] = ()
    optional: tuple[tuple[str, str], ...] = ()

    def usage(self) -> str:
        parts = [f"{t}:{n}" for n, t in self.required] + [f"[{t}:{n}]" for n, t in self.optional]
        return " ".join(parts) if parts else "(no arguments)"

    def parse(self, args: Sequence[Any]) -> list[Any]:
        specs = self.required + self.optional
        if len(args) < len(self.required) or len(args) > len(specs):
            raise ArgError(f"expects {self.usage()}, got {_describe(args)}")
        return [_convert(value, name, kind, self) for value, (name, kind) in zip(args, specs, strict=False)]


def _describe(args: Sequence[Any]) -> str:
    if not args:
        return "no arguments"
    return "(" + ", ".join(_arg_type(a) for a in args) + ")"


def _arg_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return f"blob of {len(value)} bytes"
    return type(value).__name__


def _convert(value: Any, name: str, kind: str, sig: Signature) -> Any:
    ok = False
    if kind == "s":
        ok = isinstance(value, str)
    elif kind == "b":
        ok = isinstance(value, bytes)
    elif kind == "f":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
        value = float(value) if ok else value
    elif kind == "i":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok:
        raise ArgError(f"{name} must be a {_TYPE_NAMES[kind]}, got {_arg_type(value)} (expects {sig.usage()})")
    return value


def _is_release(args: Sequence[Any]) -> bool:
    """A single 0 argument: the release of a TouchOSC/Max button, not a request."""
    return len(args) == 1 and isinstance(args[0], int | float) and not isinstance(args[0], bool) and args[0] == 0


def check_path(text: str, roots: Sequence[Path]) -> Path:
    """The real path of an audio file inside one of ``roots``; symlinks and ``..`` resolved first.

    Whether a file exists is only said for paths inside the roots.
    """
    if "\x00" in text or not text.strip():
        raise ArgError("path must be a non-empty file path")
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise ArgError(f"path must be absolute, got {text!r}")
    try:
        real = path.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops
        raise ArgError(f"cannot resolve {text!r}: {exc}") from None
    if not any(real.is_relative_to(root) for root in _real_roots(roots)):
        raise ArgError(f"refused: {text} is outside the folders deepdiva may read (files.allowed_roots)")
    if not real.is_file():
        raise ArgError(f"no such file: {text}")
    return real


def _real_roots(roots: Sequence[Path]) -> list[Path]:
    out = []
    for root in roots:
        try:
            out.append(Path(root).expanduser().resolve())
        except (OSError, RuntimeError):
            continue
    return out


# --------------------------------------------------------------------------- chunked buffers

@dataclass
class _Assembly:
    sample_rate: int
    n_chunks: int
    refine: float | None
    limit: int  # bytes
    chunks: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    touched: float = field(default_factory=time.monotonic)


class BufferAssembler:
    """Reassembles ``/deepdiva/match/buffer/begin|chunk|end`` per (sender IP, buffer id).

    Chunks may arrive in any order; the size is capped at ``max_seconds`` of audio; unfinished
    buffers expire after ``ttl`` seconds and at most ``max_open`` are kept per sender.
    """

    def __init__(self, max_seconds: float, max_open: int = 8, ttl: float = 30.0) -> None:
        self.max_seconds = max_seconds
        self.max_open = max_open
        self.ttl = ttl
        self._open: dict[tuple[str, int], _Assembly] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def begin(self, key: tuple[str, int], sample_rate: int, n_chunks: int, refine: float | None) -> None:
        check_rate(sample_rate)
        limit = max_bytes(self.max_seconds, sample_rate)
        if not 1 <= n_chunks <= limit // 4:
            raise ArgError(f"n_chunks must be between 1 and {limit // 4}, got {n_chunks}")
        now = time.monotonic()
        with self._lock:
            for k in [k for k, a in self._open.items() if now - a.touched > self.ttl]:
                log.info("buffer %s from %s expired unfinished", k[1], k[0])
                del self._open[k]
            mine = sum(1 for k in self._open if k[0] == key[0] and k != key)
            if mine >= self.max_open:
                raise ArgError(f"too many unfinished buffers ({mine}); end or resend them")
            self._open[key] = _Assembly(sample_rate, n_chunks, refine, limit)

    def chunk(self, key: tuple[str, int], index: int, blob: bytes) -> None:
        with self._lock:
            a = self._open.get(key)
            if a is None:
                raise ArgError(f"buffer {key[1]} was not begun (or expired): send {BUFFER_BEGIN} first")
            if not 0 <= index < a.n_chunks:
                raise ArgError(f"chunk index {index} is out of range 0..{a.n_chunks - 1} for buffer {key[1]}")
            if len(blob) % 4:
                raise ArgError(f"chunk {index} holds {len(blob)} bytes, not whole float32 samples")
            size = a.size - len(a.chunks.get(index, b"")) + len(blob)
            if size > a.limit:
                del self._open[key]
                raise ArgError(f"buffer {key[1]} is longer than {self.max_seconds:g} s "
                               f"(audio.max_buffer_seconds); refused")
            a.chunks[index] = blob
            a.size = size
            a.touched = time.monotonic()

    def end(self, key: tuple[str, int]) -> tuple[np.ndarray, int, float | None]:
        with self._lock:
            a = self._open.pop(key, None)
        if a is None:
            raise ArgError(f"buffer {key[1]} was not begun (or expired)")
        missing = [i for i in range(a.n_chunks) if i not in a.chunks]
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
            raise ArgError(f"buffer {key[1]} is incomplete: missing chunk(s) {shown} of {a.n_chunks}; "
                           "send it again")
        samples = np.frombuffer(b"".join(a.chunks[i] for i in range(a.n_chunks)), dtype="<f4")
        return samples.astype(np.float32), a.sample_rate, a.refine


def check_rate(sample_rate: int) -> None:
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise ArgError(f"sample_rate must be between {MIN_RATE} and {MAX_RATE} Hz, got {sample_rate}")


def max_bytes(max_seconds: float, sample_rate: int) -> int:
    return int(max_seconds * sample_rate) * 4


def blob_to_samples(blob: bytes, sample_rate: int, max_seconds: float) -> np.ndarray:
    """A whole-buffer blob (float32 little-endian) -> samples, within the size limit."""
    check_rate(sample_rate)
    if len(blob) % 4:
        raise ArgError(f"the blob holds {len(blob)} bytes, not whole float32 samples")
    seconds = len(blob) / 4 / sample_rate
    if len(blob) > max_bytes(max_seconds, sample_rate):
        raise ArgError(f"the buffer of {seconds:.2f} s is longer than {max_seconds:g} s "
                       "(audio.max_buffer_seconds); refused")
    if not blob:
        raise ArgError("the buffer is empty")
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


# --------------------------------------------------------------------------- the protocol

class Backend(Protocol):
    """What the OSC front end needs from the service; every call returns at once.

    ``accepted(job, position)`` and ``started(seconds)`` are called before any result can be
    sent, so acknowledgements always arrive first.
    """

    def submit_file(self, path: Path, refine: float | None, reply: Reply,
                    accepted: Callable[[Any, int], None] | None = None) -> str: ...

    def submit_buffer(self, samples: np.ndarray, sample_rate: int, refine: float | None, reply: Reply,
                      source: str, accepted: Callable[[Any, int], None] | None = None) -> str: ...

    def record(self, seconds: float | None, reply: Reply,
               started: Callable[[float], None] | None = None) -> float: ...

    def push(self) -> int: ...

    def status(self) -> dict[str, Any]: ...


Handler = Callable[[list[Any], tuple[str, int], Reply], None]


class OscApp:
    """Parses packets, checks arguments, and turns requests into backend calls and replies."""

    def __init__(self, backend: Backend, allowed_roots: Sequence[Path], max_buffer_seconds: float,
                 replier: UdpReplier) -> None:
        self.backend = backend
        self.allowed_roots = list(allowed_roots)
        self.max_buffer_seconds = max_buffer_seconds
        self.replier = replier
        self.buffers = BufferAssembler(max_buffer_seconds)
        self.packets = 0
        self.malformed = 0
        self.signatures: dict[str, Signature] = {
            HELLO: Signature((("port", "i"),)),
            MATCH_FILE: Signature((("path", "s"),), (("refine_seconds", "f"),)),
            MATCH_BUFFER: Signature((("sample_rate", "i"), ("samples", "b")), (("refine_seconds", "f"),)),
            BUFFER_BEGIN: Signature((("id", "i"), ("sample_rate", "i"), ("n_chunks", "i")),
                                    (("refine_seconds", "f"),)),
            BUFFER_CHUNK: Signature((("id", "i"), ("index", "i"), ("samples", "b"))),
            BUFFER_END: Signature((("id", "i"),)),
            RECORD: Signature((), (("seconds", "f"),)),
            PUSH: Signature((), (("trigger", "f"),)),
            STATUS: Signature((), (("trigger", "f"),)),
        }
        self.handlers: dict[str, Handler] = {
            PING: self._ping, HELLO: self._hello, STATUS: self._status, MATCH_FILE: self._match_file,
            MATCH_BUFFER: self._match_buffer, BUFFER_BEGIN: self._buffer_begin, BUFFER_CHUNK: self._buffer_chunk,
            BUFFER_END: self._buffer_end, RECORD: self._record, PUSH: self._push,
        }

    def handle_packet(self, data: bytes, sender: tuple[str, int], reply: Reply) -> None:
        """One datagram or SLIP frame: a message or a bundle (timetags are not waited for)."""
        self.packets += 1
        try:
            messages = [timed.message for timed in OscPacket(bytes(data)).messages]
        except Exception as exc:  # python-osc raises more than ParseError on garbage
            self.malformed += 1
            reply.send(ERROR, f"malformed OSC packet of {len(data)} bytes ({type(exc).__name__})")
            return
        for message in messages:
            self.handle_message(message.address, list(message.params), sender, reply)

    def handle_message(self, address: str, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        if not (address == ROOT or address.startswith(ROOT + "/")):
            log.debug("ignoring %s from %s (not a deepdiva address)", address, sender[0])
            return
        handler = self.handlers.get(address)
        if handler is None:
            reply.send(ERROR, f"unknown address {address}; see OSC.md for the {ROOT} address space")
            return
        try:
            handler(args, sender, reply)
        except Busy as exc:
            reply.send(BUSY, str(exc))
        except DeepDivaError as exc:
            reply.send(ERROR, f"{address}: {exc}")
        except Exception as exc:  # a bug in one request must not stop the server
            log.exception("%s from %s failed", address, sender[0])
            reply.send(ERROR, f"{address}: internal error ({type(exc).__name__})")

    def _args(self, address: str, args: list[Any]) -> list[Any]:
        return self.signatures[address].parse(args)

    # ----------------------------------------------------------------- handlers

    def _ping(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        reply.send(PONG, *[a for a in args if isinstance(a, int | float | str | bytes)])

    def _hello(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        (port,) = self._args(HELLO, args)
        if not 0 <= port <= 65535:
            raise ArgError(f"port must be between 1 and 65535 (0 forgets), got {port}")
        self.replier.declare(sender, port)
        target = self.replier.target(sender) if isinstance(reply, UdpTarget) else reply
        target.send(HELLO_OK, port or self.replier.default_port)

    def _status(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        self._args(STATUS, args)
        s = self.backend.status()
        reply.send(STATUS, int(s["queued"]), str(s["state"]), float(s["uptime"]), int(s["completed"]),
                   int(s["failed"]), str(s.get("last_preset") or ""), float(s.get("last_distance", -1.0)))

    def _match_file(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        path_text, *rest = self._args(MATCH_FILE, args)
        refine = _refine(rest)
        path = check_path(path_text, self.allowed_roots)
        self.backend.submit_file(path, refine, reply, accepted=_acknowledge(reply))

    def _match_buffer(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        sample_rate, blob, *rest = self._args(MATCH_BUFFER, args)
        samples = blob_to_samples(blob, sample_rate, self.max_buffer_seconds)
        self._submit_buffer(samples, sample_rate, _refine(rest), sender, reply)

    def _buffer_begin(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        buffer_id, sample_rate, n_chunks, *rest = self._args(BUFFER_BEGIN, args)
        self.buffers.begin((sender[0], buffer_id), sample_rate, n_chunks, _refine(rest))

    def _buffer_chunk(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        buffer_id, index, blob = self._args(BUFFER_CHUNK, args)
        self.buffers.chunk((sender[0], buffer_id), index, blob)

    def _buffer_end(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        (buffer_id,) = self._args(BUFFER_END, args)
        samples, sample_rate, refine = self.buffers.end((sender[0], buffer_id))
        self._submit_buffer(samples, sample_rate, refine, sender, reply)

    def _submit_buffer(self, samples: np.ndarray, sample_rate: int, refine: float | None,
                       sender: tuple[str, int], reply: Reply) -> None:
        self.backend.submit_buffer(samples, sample_rate, refine, reply, f"OSC buffer from {sender[0]}",
                                   accepted=_acknowledge(reply))

    def _record(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        if _is_release(args):
            return
        rest = self._args(RECORD, args)
        seconds = rest[0] if rest else None
        if seconds is not None and not 0 < seconds <= MAX_RECORD_SECONDS:
            raise ArgError(f"seconds must be between 0 and {MAX_RECORD_SECONDS:g}, got {seconds:g}")
        self.backend.record(seconds, reply, started=lambda length: reply.send(RECORDING, float(length)))

    def _push(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        if _is_release(args):
            return
        self._args(PUSH, args)
        reply.send(PUSHED, int(self.backend.push()))


def _acknowledge(reply: Reply) -> Callable[[Any, int], None]:
    return lambda job, position: reply.send(QUEUED, job.id, position)


def _refine(rest: list[Any]) -> float | None:
    if not rest:
        return None
    value = float(rest[0])
    if not 0 <= value <= 600:
        raise ArgError(f"refine_seconds must be between 0 and 600, got {value:g}")
    return value


# --------------------------------------------------------------------------- transports

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
