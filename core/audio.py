"""Audio intake: read any file soundfile reads, validate it, and cut the note a model expects.

Everything a user can get wrong raises :class:`AudioError` with a message naming the file and
the problem. Clipping only warns: a clipped recording can still be matched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AudioError

log = logging.getLogger(__name__)

SILENCE_DBFS = -60.0
DEFAULT_MAX_SECONDS = 600.0
ONSET_THRESHOLD_DB = -30.0  # relative to the loudest frame
ONSET_PREROLL = 0.005  # seconds kept before the detected onset
FRAME = 256


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 audio with its sample rate and where it came from."""

    samples: np.ndarray
    sample_rate: int
    source: str = "<buffer>"

    @property
    def seconds(self) -> float:
        return self.samples.shape[-1] / self.sample_rate


def read_audio(path: str | Path, max_seconds: float = DEFAULT_MAX_SECONDS) -> AudioClip:
    """Read wav/flac/aiff/ogg/... as mono float32; errors name the file and the problem."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise AudioError(f"{p}: no such audio file")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: the file is empty (0 bytes); was it still being written?")
    try:
        info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{p}: not a readable audio file ({_short(exc)})") from None
    if info.frames <= 0:
        raise AudioError(f"{p}: the audio file is empty (0 samples)")
    if info.frames / info.samplerate > max_seconds:
        raise AudioError(f"{p}: {info.frames / info.samplerate:.0f} s of audio is longer than the "
                         f"limit of {max_seconds:.0f} s; trim it to the note you want matched")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{p}: cannot decode the audio ({_short(exc)})") from None
    return AudioClip(to_mono(data), int(sr), str(p))


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__


def to_mono(data: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) -> (frames,) float32, channels averaged."""
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr.mean(axis=1) if arr.shape[1] > 1 else arr[:, 0]
    if arr.ndim != 1:
        raise AudioError(f"audio must be 1-D or (frames, channels), got shape {np.shape(data)}")
    return np.ascontiguousarray(arr)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling (soxr), float32 in and out."""
    if sr_in == sr_out:
        return audio
    if sr_in <= 0:
        raise AudioError(f"invalid sample rate {sr_in}")
    import soxr

    return soxr.resample(audio, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def peak_dbfs(audio: np.ndarray) -> float:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20 * np.log10(peak) if peak > 0 else -np.inf


def find_onset(audio: np.ndarray, sample_rate: int) -> int:
    """Sample index where the note starts: first frame within 30 dB of the loudest, minus 5 ms."""
    n_frames = audio.size // FRAME
    if n_frames < 2:
        return 0
    frames = audio[: n_frames * FRAME].reshape(n_frames, FRAME)
    energy = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    threshold = energy.max() * 10 ** (ONSET_THRESHOLD_DB / 20)
    first = int(np.argmax(energy >= threshold))
    return max(0, first * FRAME - int(ONSET_PREROLL * sample_rate))


def validate(audio: np.ndarray, source: str = "<buffer>", silence_dbfs: float = SILENCE_DBFS) -> None:
    """Reject empty, non-finite and silent audio; warn about clipping."""
    if audio.size == 0:
        raise AudioError(f"{source}: the audio is empty (0 samples)")
    if not np.all(np.isfinite(audio)):
        bad = int(np.count_nonzero(~np.isfinite(audio)))
        raise AudioError(f"{source}: the audio holds {bad} NaN or infinite samples")
    level = peak_dbfs(audio)
    if level < silence_dbfs:
        shown = "-inf" if not np.isfinite(level) else f"{level:.1f}"
        raise AudioError(f"{source}: the audio is silent (peak {shown} dBFS, below {silence_dbfs:g} dBFS)")
    clipped = int(np.count_nonzero(np.abs(audio) >= 0.999))
    if clipped >= 3:
        log.warning("%s: %d samples at full scale: the input is probably clipped", source, clipped)


def prepare_note(clip: AudioClip, sample_rate: int = 44100, seconds: float = 2.0,
                 silence_dbfs: float = SILENCE_DBFS) -> np.ndarray:
    """Validate, resample, find the onset and cut (or zero-pad) exactly ``seconds`` of audio."""
    validate(clip.samples, clip.source, silence_dbfs)
    audio = resample(clip.samples, clip.sample_rate, sample_rate)
    return cut_note(audio, sample_rate, int(round(seconds * sample_rate)))


def cut_note(audio: np.ndarray, sample_rate: int, length: int) -> np.ndarray:
    """``length`` samples from the note's onset (:func:`find_onset`), zero-padded when short;
    training data goes through the same cut as targets do."""
    start = find_onset(audio, sample_rate)
    window = audio[start: start + length]
    if window.size < length:
        window = np.pad(window, (0, length - window.size))
    return np.ascontiguousarray(window, dtype=np.float32)


def load_note(path: str | Path, sample_rate: int = 44100, seconds: float = 2.0,
              max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """Read a file and return the ``seconds``-long mono note a model expects."""
    return prepare_note(read_audio(path, max_seconds), sample_rate, seconds)
