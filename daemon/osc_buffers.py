"""Audio buffers sent over OSC: whole blobs, or numbered chunks reassembled per sender."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..core.limits import MAX_AUDIO_SAMPLES
from .osc_budget import PendingBytes
from .osc_replies import Reply
from .osc_spec import BUFFER_BEGIN, ERROR, MAX_RATE, MIN_RATE, ArgError

log = logging.getLogger(__name__)


@dataclass(eq=False)  # a budget holder: hashed by identity
class _Assembly:
    key: tuple[str, int]
    sample_rate: int
    n_chunks: int
    refine: float | None
    candidates: int | None
    limit: int  # bytes
    owner: BufferAssembler
    reply: Reply | None = None
    chunks: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    touched: float = field(default_factory=time.monotonic)

    def evict(self, reason: str) -> None:
        self.owner._drop(self, f"buffer {self.key[1]} dropped: {reason}; send it again")


class BufferAssembler:
    """Reassembles ``/deepdiva/match/buffer/begin|chunk|end`` per (sender IP, buffer id).

    Chunks may arrive in any order; the size is capped at ``max_seconds`` of audio; unfinished
    buffers expire after ``ttl`` seconds and at most ``max_open`` are kept per sender. With a
    ``budget``, their bytes count against the cap shared with every sender and TCP connection,
    and the oldest buffers are dropped (their senders told) when it is reached.
    """

    def __init__(self, max_seconds: float, max_open: int = 8, ttl: float = 30.0,
                 budget: PendingBytes | None = None) -> None:
        self.max_seconds = max_seconds
        self.max_open = max_open
        self.ttl = ttl
        self.budget = budget
        self._open: dict[tuple[str, int], _Assembly] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def begin(self, key: tuple[str, int], sample_rate: int, n_chunks: int, refine: float | None,
              candidates: int | None = None, reply: Reply | None = None) -> None:
        check_rate(sample_rate)
        limit = max_bytes(self.max_seconds, sample_rate)
        if not 1 <= n_chunks <= limit // 4:
            raise ArgError(f"n_chunks must be between 1 and {limit // 4}, got {n_chunks}")
        self.expire()
        with self._lock:
            mine = sum(1 for k in self._open if k[0] == key[0] and k != key)
            if mine >= self.max_open:
                raise ArgError(f"too many unfinished buffers ({mine}); end or resend them")
            replaced = self._open.pop(key, None)
            self._open[key] = _Assembly(key, sample_rate, n_chunks, refine, candidates, limit, self, reply)
        if replaced is not None:
            self._release(replaced)

    def expire(self) -> int:
        """Drop buffers without a chunk for ``ttl`` seconds (their senders told); how many."""
        now = time.monotonic()
        with self._lock:
            old = [a for a in self._open.values() if now - a.touched > self.ttl]
        for a in old:
            log.info("buffer %s from %s expired unfinished", a.key[1], a.key[0])
            self._drop(a, f"buffer {a.key[1]} expired: no chunk for {self.ttl:g} s; send it again")
        return len(old)

    def chunk(self, key: tuple[str, int], index: int, blob: bytes) -> None:
        with self._lock:
            a = self._open.get(key)
        if a is None:
            raise ArgError(f"buffer {key[1]} was not begun (or expired): send {BUFFER_BEGIN} first")
        if not 0 <= index < a.n_chunks:
            raise ArgError(f"chunk index {index} is out of range 0..{a.n_chunks - 1} for buffer {key[1]}")
        if len(blob) % 4:
            raise ArgError(f"chunk {index} holds {len(blob)} bytes, not whole float32 samples")
        if self.budget is not None and not self.budget.reserve(a, len(blob)):  # outside our lock: it may evict
            self._drop(a, None)
            raise ArgError(f"buffer {key[1]} dropped: {PendingBytes.REASON}; send it again")
        with self._lock:
            if self._open.get(key) is not a:  # dropped meanwhile
                self._release(a)
                raise ArgError(f"buffer {key[1]} was dropped while its chunks arrived; send it again")
            old = a.chunks.get(index, b"")
            size = a.size - len(old) + len(blob)
            if size > a.limit:
                del self._open[key]
            else:
                a.chunks[index] = blob
                a.size = size
                a.touched = time.monotonic()
        if size > a.limit:
            self._release(a)
            raise ArgError(f"buffer {key[1]} is longer than {self.max_seconds:g} s "
                           f"(audio.max_buffer_seconds); refused")
        if old and self.budget is not None:
            self.budget.release(a, len(old))

    def end(self, key: tuple[str, int]) -> tuple[np.ndarray, int, float | None, int | None]:
        """The whole buffer: samples, sample rate, and the begin's refine seconds and candidates."""
        with self._lock:
            a = self._open.pop(key, None)
        if a is None:
            raise ArgError(f"buffer {key[1]} was not begun (or expired)")
        try:
            missing = [i for i in range(a.n_chunks) if i not in a.chunks]
            if missing:
                shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
                raise ArgError(f"buffer {key[1]} is incomplete: missing chunk(s) {shown} of {a.n_chunks}; "
                               "send it again")
            samples = np.frombuffer(b"".join(a.chunks[i] for i in range(a.n_chunks)), dtype="<f4")
            return samples.astype(np.float32), a.sample_rate, a.refine, a.candidates
        finally:
            self._release(a)

    def _drop(self, a: _Assembly, message: str | None) -> None:
        """Forget ``a`` if it is still open, free its chunks, and tell its sender ``message``."""
        with self._lock:
            if self._open.get(a.key) is a:
                del self._open[a.key]
        self._release(a)
        if message and a.reply is not None:
            a.reply.send(ERROR, message)

    def _release(self, a: _Assembly) -> None:
        a.chunks.clear()
        if self.budget is not None:
            self.budget.release(a)


def check_rate(sample_rate: int) -> None:
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise ArgError(f"sample_rate must be between {MIN_RATE} and {MAX_RATE} Hz, got {sample_rate}")


def max_bytes(max_seconds: float, sample_rate: int) -> int:
    """Bytes of one buffer: ``max_seconds`` of float32 samples, never more than a file may decode."""
    return min(int(max_seconds * sample_rate), MAX_AUDIO_SAMPLES) * 4


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

