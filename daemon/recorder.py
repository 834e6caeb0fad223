"""Record a sound to match from an audio input (sounddevice / PortAudio).

:func:`record` blocks the calling (worker) thread: ``sd.rec`` + a bounded wait. It first
probes ~200 ms, because an input without microphone permission (macOS) records exact zeros
without any error, then checks the level of the recording so silence is refused with a
reason instead of being matched into a nonsense preset.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..core.audio import DEFAULT_MAX_SECONDS, SILENCE_DBFS, AudioClip, to_mono, validate
from ..core.errors import AudioError

log = logging.getLogger(__name__)

PROBE_SECONDS = 0.2
MAX_CHANNELS = 2  # a stereo input is mixed to mono; more channels add nothing to a match
WAIT_MARGIN = 5.0  # seconds past the expected end before a stalled input counts as failed
_ONE_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class InputDevice:
    """An audio input as PortAudio lists it."""

    index: int
    name: str
    hostapi: str
    channels: int
    default_samplerate: int
    default: bool = False

    def __str__(self) -> str:
        mark = "*" if self.default else " "
        return (f"{mark} {self.index:>3}  {self.name}  ({self.hostapi}, {self.channels} ch, "
                f"{self.default_samplerate} Hz)")


def _sd(refresh: bool = False):
    """The sounddevice module; ``refresh`` re-scans devices (only while no stream is open)."""
    try:
        import sounddevice as sd
    except OSError as exc:  # the PortAudio library itself is missing
        raise AudioError(f"audio input is unavailable: {exc} (on Debian/Ubuntu: apt install libportaudio2)") from None
    # PortAudio only sees the devices present when it was initialised: re-scan on request
    # (only while no stream is open), and initialise again if someone terminated it.
    if refresh and sd._initialized:
        sd._terminate()
    if not sd._initialized:
        sd._initialize()
    return sd


def list_input_devices(refresh: bool = False) -> list[InputDevice]:
    """Every device with input channels; ``default`` marks the system's default input."""
    sd = _sd(refresh)
    hostapis = sd.query_hostapis()
    default_in = _default_input(sd)
    return [InputDevice(i, d["name"], hostapis[d["hostapi"]]["name"], int(d["max_input_channels"]),
                        int(d["default_samplerate"]), i == default_in)
            for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]


def _default_input(sd) -> int:
    try:
        return int(sd.default.device[0])
    except (TypeError, ValueError, IndexError):
        return -1


def _resolve(sd, device: str | int | None) -> tuple[int, dict]:
    if device is None:
        index = _default_input(sd)
        if index < 0:
            raise AudioError("no default audio input device; choose one (see `list_input_devices`)")
        device = index
    try:
        info = sd.query_devices(device, "input")
    except ValueError as exc:
        names = ", ".join(f"{d.index}: {d.name}" for d in list_input_devices()) or "none"
        raise AudioError(f"audio input {device!r}: {exc}; inputs: {names}") from None
    if info["max_input_channels"] < 1:
        raise AudioError(f"audio device {info['name']!r} has no input channels")
    return int(info["index"]), info


def _pick_rate(sd, index: int, info: dict, channels: int, sample_rate: int | None) -> int:
    native = int(info["default_samplerate"])
    if sample_rate is None or int(sample_rate) == native:
        return native
    try:
        sd.check_input_settings(device=index, channels=channels, samplerate=sample_rate, dtype="float32")
        return int(sample_rate)
    except Exception as exc:  # PortAudioError or ValueError: use what the device does natively
        log.info("%s does not record at %s Hz (%s): using its native %d Hz", info["name"], sample_rate, exc, native)
        return native


def _capture(sd, frames: int, rate: int, channels: int, index: int, name: str) -> np.ndarray:
    """``sd.rec`` + wait, bounded so a stalled device cannot hang the worker."""
    try:
        data = sd.rec(frames, samplerate=rate, channels=channels, dtype="float32", device=index)
        stream = sd.get_stream()
        deadline = time.monotonic() + frames / rate + WAIT_MARGIN
        while stream.active and time.monotonic() < deadline:
            time.sleep(0.01)
        if stream.active:
            sd.stop()
            raise AudioError(f"audio input {name!r} stopped delivering audio; check the device")
        sd.wait()
    except (sd.PortAudioError, ValueError) as exc:
        raise AudioError(f"cannot record from {name!r}: {exc}") from None
    return data


def record(seconds: float, device: str | int | None = None, sample_rate: int | None = None, *,
           probe_seconds: float = PROBE_SECONDS, silence_dbfs: float = SILENCE_DBFS) -> AudioClip:
    """Record ``seconds`` of mono audio from ``device`` (index, name part, or the default input).

    The device's native rate is used unless ``sample_rate`` is given and supported; the matcher
    resamples. Raises :class:`AudioError` for a missing device, an all-zero probe (no permission
    or a dead input; ``probe_seconds=0`` skips it) and a silent recording.
    """
    if not np.isfinite(seconds) or not 0 < seconds <= DEFAULT_MAX_SECONDS:
        raise AudioError(f"recording length must be between 0 and {DEFAULT_MAX_SECONDS:g} s, got {seconds}")
    with _ONE_AT_A_TIME:  # sd.rec/sd.wait share sounddevice's module-level "last stream"
        sd = _sd()
        index, info = _resolve(sd, device)
        name = str(info["name"])
        channels = min(int(info["max_input_channels"]), MAX_CHANNELS)
        rate = _pick_rate(sd, index, info, channels, sample_rate)
        if probe_seconds > 0:
            probe = _capture(sd, max(1, int(probe_seconds * rate)), rate, channels, index, name)
            if not np.any(probe):
                raise AudioError(f"the input is silent: check the input device / microphone permission "
                                 f"(input {name!r} delivered only zeros)")
        data = _capture(sd, max(1, int(round(seconds * rate))), rate, channels, index, name)
    clip = AudioClip(to_mono(data), rate, f"recording from {name}")
    validate(clip.samples, clip.source, silence_dbfs)
    return clip
