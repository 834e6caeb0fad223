"""The ``/deepdiva`` OSC address space and its limits (documented in ``OSC.md``)."""

from __future__ import annotations

from ..core.errors import DeepDivaError
from ..core.limits import MAX_CANDIDATES as MAX_CANDIDATES  # re-exported: part of the OSC spec
from ..core.limits import MAX_REFINE_SECONDS as MAX_REFINE_SECONDS
from ..core.limits import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

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
ALTERNATIVE = f"{ROOT}/alternative"

MIN_RATE, MAX_RATE = MIN_SAMPLE_RATE, MAX_SAMPLE_RATE  # the same limits as for audio files
MAX_RECORD_SECONDS = 60.0
MAX_TCP_CONNECTIONS = 64
MAX_DECLARED = 1024
SEND_TIMEOUT = 5.0
MAX_WAIT_WITH_JOBS = 3600.0  # a TCP connection still owed a result may stay silent this long


class ArgError(DeepDivaError):
    """A request with missing, extra or wrongly typed arguments, or values out of range."""
