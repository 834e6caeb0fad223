"""The OSC front end: UDP and TCP (OSC 1.1, SLIP-framed) servers and the ``/deepdiva`` address space.

Transport and protocol are apart: :class:`UdpServer` and :class:`SlipTcpServer`
(``osc_transports``) hand raw packets to :class:`OscApp`, which parses them, checks every argument
and calls a :class:`Backend` (the service) that only enqueues work. Handlers never wait for a
match. Replies go to the sender's IP on its declared (``/deepdiva/hello``) or the configured reply
port; requests over TCP are answered on their connection while it is open (``osc_replies``).
Addresses and limits: ``osc_spec`` and ``OSC.md``; chunked buffers: ``osc_buffers``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pythonosc.osc_packet import OscPacket

from ..core.errors import DeepDivaError
from ..core.filenames import inside_roots, printable
from .jobs import Busy
from .memory import release_free_memory
from .osc_budget import PendingBytes
from .osc_buffers import BufferAssembler, blob_to_samples, check_rate, max_bytes
from .osc_guard import packet_problem
from .osc_replies import Reply, TcpTarget, UdpReplier, UdpTarget, send_outcome
from .osc_spec import (
    ALTERNATIVE,
    BUFFER_BEGIN,
    BUFFER_CHUNK,
    BUFFER_END,
    BUSY,
    ERROR,
    HELLO,
    HELLO_OK,
    MATCH_BUFFER,
    MATCH_FILE,
    MAX_CANDIDATES,
    MAX_RATE,
    MAX_RECORD_SECONDS,
    MAX_REFINE_SECONDS,
    MIN_RATE,
    PARAMS,
    PING,
    PONG,
    PUSH,
    PUSHED,
    QUEUED,
    RECORD,
    RECORDING,
    RESULT,
    ROOT,
    STATUS,
    ArgError,
)
from .osc_transports import SlipDecoder, SlipTcpServer, UdpServer

# The daemon, tests and clients import the whole OSC front end from here.
__all__ = [
    "ALTERNATIVE", "MAX_CANDIDATES", "MAX_REFINE_SECONDS", "BUFFER_BEGIN", "BUFFER_CHUNK", "BUFFER_END", "BUSY", "ERROR", "HELLO", "HELLO_OK", "MATCH_BUFFER",
    "MATCH_FILE", "MAX_RATE", "MAX_RECORD_SECONDS", "MIN_RATE", "PARAMS", "PING", "PONG", "PUSH", "PUSHED",
    "QUEUED", "RECORD", "RECORDING", "RESULT", "ROOT", "STATUS", "ArgError", "Backend", "BufferAssembler",
    "OscApp", "PendingBytes", "Reply", "Route", "Signature", "SlipDecoder", "SlipTcpServer", "TcpTarget", "UdpReplier", "UdpServer",
    "UdpTarget", "blob_to_samples", "check_path", "check_rate", "max_bytes", "send_outcome",
]

log = logging.getLogger(__name__)


def _not_from_pythonosc(record: logging.LogRecord) -> bool:
    return "pythonosc" not in record.pathname


# python-osc logs a warning on the root logger for every odd packet it parses; garbage from the
# network must not flood the daemon's log, so those records are dropped (our own error reply and
# counters say enough).
if _not_from_pythonosc not in logging.getLogger().filters:
    logging.getLogger().addFilter(_not_from_pythonosc)


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
    if not inside_roots(real, roots):
        raise ArgError(f"refused: {text} is outside the folders deepdiva may read (files.allowed_roots)")
    if not real.is_file():
        raise ArgError(f"no such file: {text}")
    return real


# --------------------------------------------------------------------------- the protocol

class Backend(Protocol):
    """What the OSC front end needs from the service; every call returns at once.

    ``accepted(job, position)`` and ``started(seconds)`` are called before any result can be
    sent, so acknowledgements always arrive first.
    """

    def submit_file(self, path: Path, refine: float | None, reply: Reply,
                    accepted: Callable[[Any, int], None] | None = None, candidates: int | None = None) -> str: ...

    def submit_buffer(self, samples: np.ndarray, sample_rate: int, refine: float | None, reply: Reply,
                      source: str, accepted: Callable[[Any, int], None] | None = None, *,
                      candidates: int | None = None) -> str: ...

    def record(self, seconds: float | None, reply: Reply, started: Callable[[float], None] | None = None,
               refine: float | None = None, candidates: int | None = None) -> float: ...

    def push(self) -> int: ...

    def status(self) -> dict[str, Any]: ...


Handler = Callable[[list[Any], tuple[str, int], Reply], None]


@dataclass(frozen=True)
class Route:
    """One address: how its arguments are checked, and what handles them once they are."""

    handler: Handler  # gets the arguments as the signature converted them
    signature: Signature | None = None  # None: any arguments, passed on as they came
    button: bool = False  # a single 0 is a button's release (TouchOSC, Max), ignored


DEFAULT_MAX_PENDING_BYTES = 128 << 20


class OscApp:
    """Parses packets, checks arguments, and turns requests into backend calls and replies.

    Every address is registered once, in :attr:`routes`. The transports see it only as their
    ``PacketHandler``: ``handle_packet``, ``refuse``, ``housekeeping``, the replier and the budget.
    """

    def __init__(self, backend: Backend, allowed_roots: Sequence[Path], max_buffer_seconds: float,
                 replier: UdpReplier, max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES) -> None:
        self.backend = backend
        self.allowed_roots = list(allowed_roots)
        self.max_buffer_seconds = max_buffer_seconds
        self.replier = replier
        self.budget = PendingBytes(max_pending_bytes)
        self.buffers = BufferAssembler(max_buffer_seconds, budget=self.budget)
        self.packets = 0
        self.malformed = 0
        self._evictions_seen = 0
        options = (("refine_seconds", "f"), ("candidates", "i"))
        self.routes: dict[str, Route] = {
            PING: Route(self._ping),
            HELLO: Route(self._hello, Signature((("port", "i"),))),
            STATUS: Route(self._status, Signature((), (("trigger", "f"),))),
            MATCH_FILE: Route(self._match_file, Signature((("path", "s"),), options)),
            MATCH_BUFFER: Route(self._match_buffer, Signature((("sample_rate", "i"), ("samples", "b")), options)),
            BUFFER_BEGIN: Route(self._buffer_begin,
                                Signature((("id", "i"), ("sample_rate", "i"), ("n_chunks", "i")), options)),
            BUFFER_CHUNK: Route(self._buffer_chunk, Signature((("id", "i"), ("index", "i"), ("samples", "b")))),
            BUFFER_END: Route(self._buffer_end, Signature((("id", "i"),))),
            RECORD: Route(self._record, Signature((), (("seconds", "f"), *options)), button=True),
            PUSH: Route(self._push, Signature((), (("trigger", "f"),)), button=True),
        }

    def handle_packet(self, data: bytes, sender: tuple[str, int], reply: Reply) -> None:
        """One datagram or SLIP frame: a message or a bundle (timetags are not waited for)."""
        self.packets += 1
        problem = packet_problem(bytes(data))
        if problem is not None:
            self.refuse(f"malformed OSC packet of {len(data)} bytes ({problem})", reply)
            return
        try:
            messages = [timed.message for timed in OscPacket(bytes(data)).messages]
        except Exception as exc:  # python-osc raises more than ParseError on garbage
            self.refuse(f"malformed OSC packet of {len(data)} bytes ({type(exc).__name__})", reply)
            return
        for message in messages:
            self.handle_message(message.address, list(message.params), sender, reply)

    def refuse(self, problem: str, reply: Reply) -> None:
        """A packet that could not be taken: counted, and the sender told why."""
        self.malformed += 1
        reply.send(ERROR, problem)

    def housekeeping(self) -> None:
        """Now and then (the UDP server's loop): expire unfinished buffers, give freed memory back."""
        if self.buffers.expire() or self.budget.evictions != self._evictions_seen:
            self._evictions_seen = self.budget.evictions
            release_free_memory()

    def handle_message(self, address: str, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        if not (address == ROOT or address.startswith(ROOT + "/")):
            log.debug("ignoring %s from %s (not a deepdiva address)", address, sender[0])
            return
        route = self.routes.get(address)
        if route is None:
            reply.send(ERROR, f"unknown address {address}; see OSC.md for the {ROOT} address space")
            return
        if route.button and _is_release(args):
            return
        try:
            route.handler(route.signature.parse(args) if route.signature else args, sender, reply)
        except Busy as exc:
            reply.send(BUSY, str(exc))
        except DeepDivaError as exc:
            reply.send(ERROR, f"{address}: {exc}")
        except Exception as exc:  # a bug in one request must not stop the server
            log.exception("%s from %s failed", address, sender[0])
            reply.send(ERROR, f"{address}: internal error ({type(exc).__name__})")

    # ----------------------------------------------------------------- handlers (arguments checked)

    def _ping(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        reply.send(PONG, *[a for a in args if isinstance(a, int | float | str | bytes)])

    def _hello(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        (port,) = args
        if not 0 <= port <= 65535:
            raise ArgError(f"port must be between 1 and 65535 (0 forgets), got {port}")
        self.replier.declare(sender, port)
        target = self.replier.target(sender) if isinstance(reply, UdpTarget) else reply
        target.send(HELLO_OK, port or self.replier.default_port)

    def _status(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        s = self.backend.status()
        reply.send(STATUS, int(s["queued"]), str(s["state"]), float(s["uptime"]), int(s["completed"]),
                   int(s["failed"]), printable(str(s.get("last_preset") or "")), float(s.get("last_distance", -1.0)))

    def _match_file(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        path_text, *rest = args
        refine, candidates = _options(rest)
        path = check_path(path_text, self.allowed_roots)
        self.backend.submit_file(path, refine, reply, accepted=_acknowledge(reply), candidates=candidates)

    def _match_buffer(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        sample_rate, blob, *rest = args
        refine, candidates = _options(rest)
        samples = blob_to_samples(blob, sample_rate, self.max_buffer_seconds)
        self._submit_buffer(samples, sample_rate, refine, sender, reply, candidates)

    def _buffer_begin(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        buffer_id, sample_rate, n_chunks, *rest = args
        self.buffers.begin((sender[0], buffer_id), sample_rate, n_chunks, *_options(rest), reply=reply)

    def _buffer_chunk(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        buffer_id, index, blob = args
        self.buffers.chunk((sender[0], buffer_id), index, blob)

    def _buffer_end(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        (buffer_id,) = args
        samples, sample_rate, refine, candidates = self.buffers.end((sender[0], buffer_id))
        self._submit_buffer(samples, sample_rate, refine, sender, reply, candidates)

    def _submit_buffer(self, samples: np.ndarray, sample_rate: int, refine: float | None,
                       sender: tuple[str, int], reply: Reply, candidates: int | None = None) -> None:
        self.backend.submit_buffer(samples, sample_rate, refine, reply, f"OSC buffer from {sender[0]}",
                                   accepted=_acknowledge(reply), candidates=candidates)

    def _record(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        seconds = args[0] if args else None
        if seconds is not None and not 0 <= seconds <= MAX_RECORD_SECONDS:
            raise ArgError(f"seconds must be between 0 and {MAX_RECORD_SECONDS:g}, got {seconds:g}")
        refine, candidates = _options(args[1:])
        self.backend.record(seconds or None, reply, started=lambda length: reply.send(RECORDING, float(length)),
                            refine=refine, candidates=candidates)

    def _push(self, args: list[Any], sender: tuple[str, int], reply: Reply) -> None:
        reply.send(PUSHED, int(self.backend.push()))


def _acknowledge(reply: Reply) -> Callable[[Any, int], None]:
    return lambda job, position: reply.send(QUEUED, job.id, position)


def _options(rest: list[Any]) -> tuple[float | None, int | None]:
    """The optional ``[f:refine_seconds] [i:candidates]`` of a match request; None: configured."""
    refine = _refine(rest)
    return refine, _candidates(rest[1:], refine)


def _candidates(rest: list[Any], refine: float | None) -> int | None:
    if not rest:
        return None  # the configured number (model.candidates)
    value = int(rest[0])
    if not 1 <= value <= MAX_CANDIDATES:
        raise ArgError(f"candidates must be between 1 and {MAX_CANDIDATES}, got {value}")
    if value > 1 and not refine:
        raise ArgError("candidates > 1 needs refine_seconds > 0: the alternatives come from the search")
    return value


def _refine(rest: list[Any]) -> float | None:
    if not rest:
        return None
    value = float(rest[0])
    if not 0 <= value <= MAX_REFINE_SECONDS:
        raise ArgError(f"refine_seconds must be between 0 and {MAX_REFINE_SECONDS:g}, got {value:g}")
    return value

