"""Record a sound to match from an audio input (sounddevice / PortAudio).

:func:`record` blocks the calling (worker) thread: ``sd.rec`` + a bounded wait. It first
probes ~200 ms, because an input without microphone permission (macOS) records exact zeros
without any error, then checks the level of the recording so silence is refused with a
reason instead of being matched into a nonsense preset.

After a stream error (typically: the JACK server was restarted) this process's PortAudio is
unusable and may never be terminated (see ``_KEEP_PORTAUDIO``), so that recording, and every
later one, runs in a short-lived child process with a fresh PortAudio (``python -m
deepdiva.daemon.recorder``, ~0.3 s of start-up): the daemon recovers without a restart.
"""

from __future__ import annotations

import atexit
import json
import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..core.audio import DEFAULT_MAX_SECONDS, SILENCE_DBFS, AudioClip, mix_down, validate
from ..core.errors import AudioError

log = logging.getLogger(__name__)

PROBE_SECONDS = 0.2
MAX_CHANNELS = 2  # a stereo input is mixed to mono; more channels add nothing to a match
WAIT_MARGIN = 5.0  # seconds past the expected end before a stalled input counts as failed
_ONE_AT_A_TIME = threading.Lock()
# Set after a stream error. PortAudio aborts the whole process (an assertion in its JACK host
# API) when it is terminated after its JACK server died, so from then on it is never terminated:
# no device re-scans, and sounddevice's exit handler is unregistered (the OS frees the rest).
_KEEP_PORTAUDIO = threading.Event()
# Every error about a missing or wrong input names the command that lists the inputs.
LIST_INPUTS = "`deepdiva audio inputs` lists the inputs"


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
    if refresh and sd._initialized and not _KEEP_PORTAUDIO.is_set():
        sd._terminate()
    if not sd._initialized:
        sd._initialize()
    return sd


class _DeviceNotFound(AudioError):
    """No such input in PortAudio's device list: worth one retry after a re-scan."""


class _StreamError(AudioError):
    """PortAudio failed mid-recording; this process's PortAudio is unusable from now on."""


def _record_raw(sd, seconds: float, device: str | int | None, sample_rate: int | None,
                probe_seconds: float) -> tuple[np.ndarray, int, str]:
    index, info = _resolve(sd, device)
    name = str(info["name"])
    channels = min(int(info["max_input_channels"]), MAX_CHANNELS)
    rate = _pick_rate(sd, index, info, channels, sample_rate)
    if probe_seconds > 0:
        probe = _capture(sd, max(1, int(probe_seconds * rate)), rate, channels, index, name)
        if not np.any(probe):
            raise AudioError(f"the input is silent: check the input device / microphone permission "
                             f"(input {name!r} delivered only zeros; {LIST_INPUTS})")
    return _capture(sd, max(1, int(round(seconds * rate))), rate, channels, index, name), rate, name


def list_input_devices(refresh: bool = False) -> list[InputDevice]:
    """Every device with input channels; ``default`` marks the system's default input."""
    sd = _sd(refresh)
    hostapis = sd.query_hostapis()
    default_in = _default_input(sd)
    return [InputDevice(i, d["name"], hostapis[d["hostapi"]]["name"], int(d["max_input_channels"]),
                        int(d["default_samplerate"]), i == default_in)
            for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]


def format_inputs(devices: list[InputDevice]) -> str:
    """``deepdiva audio inputs``: one line per device, ``*`` marking the default input."""
    if not devices:
        return "no audio input devices"
    head = "    #  name  (host API, channels, default rate)"
    foot = "* the default input; use another with audio.input_device (or deepdiva serve --input-device): an index or a name"
    return "\n".join([head, *map(str, devices), foot])


def _default_input(sd) -> int:
    try:
        return int(sd.default.device[0])
    except (TypeError, ValueError, IndexError):
        return -1


def _resolve(sd, device: str | int | None) -> tuple[int, dict]:
    if device is None:
        index = _default_input(sd)
        if index < 0:
            raise AudioError("no default audio input device: choose one with audio.input_device in the "
                             f"config (or deepdiva serve --input-device); {LIST_INPUTS}")
        device = index
    try:
        info = sd.query_devices(device, "input")
    except ValueError as exc:
        names = ", ".join(f"{d.index}: {d.name}" for d in list_input_devices()) or "none"
        raise _DeviceNotFound(f"audio input {device!r}: {exc}; inputs: {names} ({LIST_INPUTS})") from None
    if info["max_input_channels"] < 1:
        raise AudioError(f"audio device {info['name']!r} has no input channels; {LIST_INPUTS}")
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
        if not _KEEP_PORTAUDIO.is_set():
            _KEEP_PORTAUDIO.set()
            atexit.unregister(sd._exit_handler)
        raise _StreamError(f"cannot record from {name!r}: {exc}") from None
    return data


def _record_here(seconds: float, device: str | int | None, sample_rate: int | None,
                 probe_seconds: float) -> tuple[np.ndarray, int, str]:
    """Record with this process's PortAudio; a missing device gets one re-scan first."""
    try:
        return _record_raw(_sd(), seconds, device, sample_rate, probe_seconds)
    except _DeviceNotFound as exc:
        # PortAudio lists the devices present when it started: one plugged in (or a JACK
        # client started) since then appears only after a re-scan. Re-scanning is safe here
        # because no stream is open; it is not done after a stream error, because PortAudio
        # aborts the process when it is terminated after its JACK server died.
        log.info("%s; re-scanning the audio devices and trying once more", exc)
        return _record_raw(_sd(refresh=True), seconds, device, sample_rate, probe_seconds)


def _record_in_child(seconds: float, device: str | int | None, sample_rate: int | None,
                     probe_seconds: float) -> tuple[np.ndarray, int, str]:
    """Record in a child process with a fresh PortAudio (see the module docstring).

    The child (:func:`_child_main`) writes one JSON line (rate, name, channels) and the raw
    float32 samples to stdout, or exits 2 with the AudioError's message on stderr.
    """
    request = json.dumps({"seconds": seconds, "device": device, "sample_rate": sample_rate,
                          "probe_seconds": probe_seconds})
    timeout = seconds + probe_seconds + 2 * WAIT_MARGIN + 30  # + start-up on a loaded machine
    try:
        done = subprocess.run([sys.executable, "-m", __name__, request], capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AudioError(f"the recording process did not finish within {timeout:.0f} s") from None
    message = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
    if done.returncode == 2:
        raise AudioError(message[0])
    if done.returncode != 0:
        raise AudioError(f"the recording process failed (exit code {done.returncode}): {message[0]}")
    header, _, body = done.stdout.partition(b"\n")
    meta = json.loads(header)
    data = np.frombuffer(body, dtype="<f4").reshape(-1, int(meta["channels"]))
    return data, int(meta["rate"]), str(meta["name"])


def _child_main(request: str) -> int:
    """``python -m deepdiva.daemon.recorder REQUEST``: one recording for :func:`_record_in_child`."""
    args = json.loads(request)
    try:
        data, rate, name = _record_here(float(args["seconds"]), args["device"], args["sample_rate"],
                                        float(args["probe_seconds"]))
    except AudioError as exc:
        print(str(exc).replace("\n", " "), file=sys.stderr)
        return 2
    data = np.ascontiguousarray(data, dtype="<f4")
    out = sys.stdout.buffer
    out.write(json.dumps({"rate": rate, "name": name, "channels": data.shape[1]}).encode() + b"\n")
    out.write(data.tobytes())
    out.flush()
    return 0


def record(seconds: float, device: str | int | None = None, sample_rate: int | None = None, *,
           probe_seconds: float = PROBE_SECONDS, silence_dbfs: float = SILENCE_DBFS) -> AudioClip:
    """Record ``seconds`` of mono audio from ``device`` (index, name part, or the default input).

    The device's native rate is used unless ``sample_rate`` is given and supported; the matcher
    resamples. A device missing from PortAudio's list gets one re-scan first (an interface
    plugged in, or a JACK client started, after the daemon). Raises :class:`AudioError` for a
    missing device, a stream error, an all-zero probe (no permission or a dead input;
    ``probe_seconds=0`` skips it) and a silent recording.
    """
    if not np.isfinite(seconds) or not 0 < seconds <= DEFAULT_MAX_SECONDS:
        raise AudioError(f"recording length must be between 0 and {DEFAULT_MAX_SECONDS:g} s, got {seconds}")
    with _ONE_AT_A_TIME:  # sd.rec/sd.wait share sounddevice's module-level "last stream"
        if _KEEP_PORTAUDIO.is_set():  # an earlier stream error: this PortAudio is unusable
            data, rate, name = _record_in_child(seconds, device, sample_rate, probe_seconds)
        else:
            try:
                data, rate, name = _record_here(seconds, device, sample_rate, probe_seconds)
            except _StreamError as exc:
                log.warning("%s; recording again through a fresh connection to the audio system", exc)
                try:
                    data, rate, name = _record_in_child(seconds, device, sample_rate, probe_seconds)
                except AudioError as again:
                    raise AudioError(f"{exc}; a fresh connection to the audio system failed too: {again}") from None
    source = f"recording from {name}"
    clip = mix_down(data, rate, source)
    validate(clip.samples, clip.source, silence_dbfs)
    return clip


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1]))
