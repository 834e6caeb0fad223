"""Audio intake: read any file soundfile reads, validate it, and cut the note a model expects.

Everything a user can get wrong raises :class:`AudioError` with a message naming the file and
the problem. Clipping warns: a clipped recording is still matched, its flat tops filled in (``core/declip.py``).

Hostile input costs bounded memory and time (limits in ``core/limits.py``): a file is decoded
only if its header gives a rate of 8-384 kHz, at most ``max_seconds`` and at most
``MAX_AUDIO_SAMPLES`` frames x channels (32 million, 6 min of 44.1 kHz stereo). It is decoded a
block at a time and mixed to mono on the fly, so the multichannel float array of a long file never
exists (a file whose channels cancel in that mix, one polarity-inverted, is decoded again from its
loudest channel: :class:`MonoMix`; one whose channel reached full scale is decoded again whole when
it holds at most :data:`CHANNELS_KEPT_SAMPLES`, 16 MB, to restore each channel: :func:`clipped_channels`);
validation and onset detection scan in blocks, and resampling to more than the same cap is
refused. Peak memory for the longest accepted file, measured as the RSS of a process that
only reads (numpy, soundfile and soxr loaded, 29 MB before reading): under 300 MB for
:func:`load_note` (262 MB at the default 600 s, 283 MB at the cap with ``max_seconds`` raised),
under 160 MB for :func:`read_audio`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .declip import FULL_SCALE, Runs, clipped_runs, restored, restored_channels, runs_mask
from .errors import AudioError
from .limits import MAX_AUDIO_SAMPLES, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

log = logging.getLogger(__name__)

SILENCE_DBFS = -60.0
DEFAULT_MAX_SECONDS = 600.0
ONSET_THRESHOLD_DB = -30.0  # relative to the loudest frame
# ... and, when the take opens on a steady noise floor (its first LEAD_IN_PROBE seconds within
# LEAD_IN_STEADY_DB of each other, LEAD_IN_BELOW_DB or more under the loudest frame and noise-like,
# spectral flatness LEAD_IN_FLATNESS or more: hiss before the note, where a quiet steady tone is the
# note's own start), at least ONSET_ABOVE_FLOOR_DB above that floor, and never above ONSET_CAP_DB
ONSET_ABOVE_FLOOR_DB = 10.0
ONSET_CAP_DB = -10.0  # relative to the loudest frame
LEAD_IN_PROBE = 0.1
LEAD_IN_STEADY_DB = 8.0
LEAD_IN_BELOW_DB = 15.0
LEAD_IN_FLATNESS = 0.3
DC_OFFSET_MIN = 1e-3  # a take opening on a constant this far off zero (-60 dBFS) ...
DC_SPREAD = 0.25  # ... with little else (spread under a quarter of it) has a DC offset, taken out
ONSET_PREROLL = 0.005  # seconds kept before the detected onset
LEAD_IN_SECONDS = 2.0  # at most this much of what a take holds before its note is kept (its noise floor)
AFTER_SECONDS = 3.0  # at most this much of what a take holds after its note's window is kept (a late release)
RESTORE_MARGIN = 0.05  # seconds restored beyond the window of a take at another rate (the resampler's reach)
NOMINAL_PEAK_DBFS = -18.0  # a note peaking lower is raised to this: how loud a take was recorded is not its sound
FRAME = 256
CLIP = 0.999  # samples this close to full scale count as clipped
BLOCK = 1 << 20  # samples decoded or scanned at a time (4 MB of float32)
# a mono mix this far below its loudest channel means the channels cancel (one is polarity-inverted):
# a hard-panned source loses 6 dB, unrelated channels 3 dB
CANCELLED_DB = 20.0
# a take of several channels, one of them at full scale, keeps its channels (to be restored one by one)
# when it holds at most this many samples (a note's take of 45 s of 44.1 kHz stereo; 16 MB): a longer
# one is restored where its mono mix reads as clipped, as a mono take is
CHANNELS_KEPT_SAMPLES = 4_000_000


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 audio with its sample rate and where it came from; for a take of several
    channels of which one clipped, the channels too (``(frames, channels)``; see :func:`clipped_channels`)."""

    samples: np.ndarray
    sample_rate: int
    source: str = "<buffer>"
    channels: np.ndarray | None = None

    @property
    def seconds(self) -> float:
        return self.samples.shape[-1] / self.sample_rate

    def named(self, source: str) -> AudioClip:
        """This clip, told by another name."""
        return replace(self, source=source)


@dataclass(frozen=True)
class Take:
    """A take made ready to match (:func:`prepare_take`): the note, what the take held before it
    (where its noise floor can be heard alone), how many dB both were raised by and how many
    clipped samples were restored in them, and what it held after the note's window (where a
    note held through the window is heard let go)."""

    note: np.ndarray
    lead_in: np.ndarray
    raised_db: float = 0.0
    restored: int = 0  # clipped samples filled in (core.declip), counted at the take's own rate
    after: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # raised as the note was, not declipped

    def as_dict(self) -> dict:
        """What was done to the take, as reports carry it: ``raised_db``, ``restored_samples``."""
        return {"raised_db": round(self.raised_db, 1), "restored_samples": self.restored}


def read_audio(path: str | Path, max_seconds: float = DEFAULT_MAX_SECONDS, name: str | None = None) -> AudioClip:
    """Read wav/flac/aiff/ogg/... as mono float32; errors name the file and the problem.

    The header is checked (rate, length, frames x channels) before anything is decoded.
    ``name``: how warnings name the file, if not by ``path`` (an alias such as ``/dev/fd/N``).
    """
    import soundfile as sf

    p = Path(path)
    with open_checked(p, max_seconds) as f:
        try:
            samples, mix = _decode_mono(f, f.frames, name or str(p))
            channels = None
            if mix.keeps_channels(samples.size * f.channels):
                f.seek(0)
                decoded = f.read(samples.size, dtype="float32", always_2d=True)
                # a decoder that gives back other frames the second time: the mix alone, as it was read
                channels = clipped_channels(decoded) if decoded.shape[0] == samples.size else None
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{p}: cannot decode the audio ({_short(exc)})") from None
        rate = f.samplerate
    return AudioClip(samples, int(rate), str(p), channels)


def open_checked(path: str | Path, max_seconds: float = DEFAULT_MAX_SECONDS):
    """An open ``soundfile.SoundFile`` whose header passed the checks (rate, length, frames x
    channels); nothing is decoded. Close it (it is a context manager)."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise AudioError(f"{p}: no such audio file")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: the file is empty (0 bytes); was it still being written?")
    try:
        f = sf.SoundFile(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{p}: not a readable audio file ({_short(exc)})") from None
    try:
        frames, channels, rate = f.frames, f.channels, f.samplerate
        if frames <= 0:
            raise AudioError(f"{p}: the audio file is empty (0 samples)")
        check_rate(rate, str(p))
        if frames / rate > max_seconds:
            raise AudioError(f"{p}: {frames / rate:.0f} s of audio is longer than the "
                             f"limit of {max_seconds:.0f} s; trim it to the note you want matched")
        check_samples(frames * channels, f"{frames / rate:.0f} s of {channels}-channel audio at {rate} Hz",
                      str(p), "or save it as mono" if channels > 1 else "")
    except BaseException:
        f.close()
        raise
    return f


def _decode_mono(f, frames: int, source: str = "<buffer>") -> tuple[np.ndarray, MonoMix]:
    """``frames`` frames of an open ``soundfile.SoundFile``, decoded a block at a time and mixed
    down as they come (fewer if the file is shorter than its header says); if its channels cancel
    in the mix, decoded again keeping only the loudest (see :class:`MonoMix`). Returns the mono
    audio and the mix that made it."""
    out = np.empty(frames, np.float32)
    block = np.empty((max(1, BLOCK // f.channels), f.channels), np.float32)
    mix = MonoMix()
    done = _decode_into(f, block, out, mix.add)
    keep = mix.cancelled(source)
    if keep is not None:
        f.seek(0)
        done = _decode_into(f, block, out, lambda channels: channels[:, keep])
    return (out if done == frames else out[:done].copy()), mix


def _decode_into(f, block: np.ndarray, out: np.ndarray, mono: Callable[[np.ndarray], np.ndarray]) -> int:
    """Decode ``f`` into ``out`` a ``block`` at a time, each made mono by ``mono``; frames decoded."""
    done = 0
    while done < len(out):
        got = len(f.read(min(len(block), len(out) - done), out=block))
        if got == 0:
            break
        out[done:done + got] = mono(block[:got])
        done += got
    return done


def check_rate(sample_rate: int, source: str = "<buffer>") -> None:
    """Reject sample rates outside ``MIN_SAMPLE_RATE``-``MAX_SAMPLE_RATE``."""
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{source}: the sample rate of {sample_rate} Hz is outside {MIN_SAMPLE_RATE}-"
                         f"{MAX_SAMPLE_RATE} Hz; convert it to a common rate such as 44100 or 48000 Hz")


def check_samples(n: int, what: str, source: str = "<buffer>", hint: str = "") -> None:
    """Reject work of more than ``MAX_AUDIO_SAMPLES`` samples; ``what`` describes it in the error."""
    if n > MAX_AUDIO_SAMPLES:
        minutes = MAX_AUDIO_SAMPLES / (2 * 44100) / 60
        raise AudioError(f"{source}: {what} is {n / 1e6:.1f} million samples, more than the limit of "
                         f"{MAX_AUDIO_SAMPLES / 1e6:g} million (about {minutes:.0f} min of 44.1 kHz stereo); "
                         f"trim it to the note you want matched{' ' + hint if hint else ''}")


def _blocks(audio: np.ndarray, size: int = BLOCK) -> Iterator[np.ndarray]:
    """Views of ``size`` rows at a time: scans that would otherwise copy the whole array."""
    return (audio[i:i + size] for i in range(0, len(audio), size))


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__


def _channel_mean(frames: np.ndarray) -> np.ndarray:
    """The mean of a (frames, channels) array's columns, column by column: numpy's
    ``mean(axis=1)`` over a few channels reduces each short row on its own (4 ms for 5 s of
    stereo against 0.3 ms)."""
    mono = frames[:, 0].copy()
    for channel in range(1, frames.shape[1]):
        mono += frames[:, channel]
    mono /= np.float32(frames.shape[1])
    return mono


class MonoMix:
    """Mixes blocks of (frames, channels) audio down to mono (:func:`to_mono`) and keeps the energy
    of the mix and of each channel, to tell whether the channels cancelled in it."""

    def __init__(self) -> None:
        self.mixed = 0.0
        self.channels = np.zeros(0)
        self.peak = 0.0  # the loudest sample of any channel
        self.kept: int | None = None  # the one channel kept when they cancelled (:meth:`cancelled`)

    def add(self, block: np.ndarray) -> np.ndarray:
        mono = to_mono(block)
        if block.ndim == 2 and block.shape[1] > 1:
            self.mixed += float(np.dot(mono, mono))
            energy = np.einsum("ij,ij->j", block, block, dtype=np.float64)
            self.channels = energy if self.channels.size == 0 else self.channels + energy
            if block.size:
                self.peak = max(self.peak, _peak(block))
        return mono

    def keeps_channels(self, samples: int) -> bool:
        """Whether the channels (``samples`` in all) are worth keeping to restore one by one: a channel
        of a mix of several reached full scale (so may have clipped), they were mixed (none kept
        alone), and they hold at most :data:`CHANNELS_KEPT_SAMPLES`."""
        return self.kept is None and self.peak >= FULL_SCALE and samples <= CHANNELS_KEPT_SAMPLES

    def cancelled(self, source: str = "<buffer>") -> int | None:
        """The loudest channel when the mix lies :data:`CANCELLED_DB` below it (one channel's polarity
        inverted: the mono mix is nearly silent although the channels are not), else None."""
        if self.channels.size < 2:
            return None
        loudest = int(np.argmax(self.channels))
        if not self.mixed < self.channels[loudest] * 10 ** (-CANCELLED_DB / 10):
            return None
        log.warning("%s: the channels cancel when mixed to mono (one is polarity-inverted?): using channel %d alone",
                    source, loudest + 1)
        self.kept = loudest
        return loudest


def mix_down(data: np.ndarray, sample_rate: int, source: str = "<buffer>") -> AudioClip:
    """Audio in memory ((frames,) or (frames, channels)) as a clip: :func:`to_mono`, or its loudest
    channel if the channels cancel in the mix; its channels kept if one clipped (:func:`clipped_channels`)."""
    data = np.asarray(data, dtype=np.float32)
    mix = MonoMix()
    mono = mix.add(data)
    keep = mix.cancelled(source)
    if keep is not None:
        return AudioClip(np.ascontiguousarray(data[:, keep]), sample_rate, source)
    return AudioClip(mono, sample_rate, source, clipped_channels(data) if mix.keeps_channels(data.size) else None)


def clipped_channels(data: np.ndarray) -> np.ndarray | None:
    """``data`` (frames, channels) if it has several channels and one of them reads as clipped
    (:func:`~deepdiva.core.declip.clipped_runs`), else None. Each channel clips on its own, and where
    one clips and the other does not the mono mix has no flat top to find: restored channel by
    channel, then mixed (60 stereo GM notes clipped 12 dB past full scale: median MR-STFT from the
    clean note 0.88 against 1.51 restored from the mix, 1.83 as clipped; ``benchmarks/stereo_clipping.py``)."""
    if data.ndim != 2 or data.shape[1] < 2:
        return None
    if not any(clipped_runs(data[:, c]) is not None for c in range(data.shape[1])):
        return None
    return np.ascontiguousarray(data, dtype=np.float32)


def to_mono(data: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) -> (frames,) float32, channels averaged."""
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == 2:
        arr = _channel_mean(arr) if arr.shape[1] > 1 else arr[:, 0]
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


def _peak(audio: np.ndarray) -> float:
    """max |audio| without an |audio| copy; NaN if any sample is NaN."""
    return max(-float(np.min(audio)), float(np.max(audio))) if audio.size else 0.0


def peak_dbfs(audio: np.ndarray) -> float:
    peak = _peak(audio)
    return 20 * np.log10(peak) if peak > 0 else -np.inf


def raise_db(note: np.ndarray, nominal_dbfs: float = NOMINAL_PEAK_DBFS) -> float:
    """How many dB a note peaking under ``nominal_dbfs`` is raised to reach it (0 for louder or silent ones)."""
    raised = nominal_dbfs - peak_dbfs(note)
    return raised if raised > 0 and math.isfinite(raised) else 0.0


def _gain(raised_db: float) -> np.float32:
    """The amplitude factor of a rise of ``raised_db`` dB."""
    return np.float32(10 ** (raised_db / 20))


def raised_to_nominal(notes: np.ndarray, nominal_dbfs: float = NOMINAL_PEAK_DBFS) -> np.ndarray:
    """Notes (n, samples) or one (samples,), each one peaking under ``nominal_dbfs`` raised to it:
    the level rule of :func:`prepare_take`, for audio that did not come through it (a dataset's
    renders, so a network learns from what a match gives it). Float32; the input is not changed."""
    batch = np.asarray(notes, dtype=np.float32)
    rows = batch.reshape(-1, batch.shape[-1]) if batch.ndim > 1 else batch[None, :]
    gains = np.array([_gain(raise_db(r, nominal_dbfs)) for r in rows], dtype=np.float32)
    if np.all(gains == 1):
        return batch
    return (rows * gains[:, None]).reshape(batch.shape)


def spectral_flatness(audio: np.ndarray, sample_rate: int, band_hz: tuple[float, float] = (200.0, 16000.0),
                      n_fft: int = 2048) -> float:
    """Geometric over arithmetic mean of the mean power spectrum of ``audio`` (Hann frames of
    ``n_fft``, half overlapping, at least one) in ``band_hz``: near 1 for white noise, near 0 for partials."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.size < n_fft:
        audio = np.pad(audio, (0, n_fft - audio.size))
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[:: n_fft // 2]
    power = np.mean(np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2, axis=0)
    lo, hi = (int(f * n_fft / sample_rate) for f in band_hz)
    band = power[lo: min(hi, power.size)] + 1e-30
    return float(np.exp(np.mean(np.log(band))) / np.mean(band))


def without_dc_offset(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """``audio`` less the DC offset a recording chain added (:func:`dc_offset`), or as it is."""
    return _less(audio, dc_offset(audio, sample_rate))


def _less(audio: np.ndarray, offset: float) -> np.ndarray:
    return audio if offset == 0 else (audio - np.float32(offset)).astype(np.float32, copy=False)


def dc_offset(audio: np.ndarray, sample_rate: int) -> float:
    """The DC offset a recording chain added, when the take's opening shows one: the first
    :data:`LEAD_IN_PROBE` seconds hold a constant at least :data:`DC_OFFSET_MIN` off zero with
    little else (their spread under :data:`DC_SPREAD` of it); else 0: a sound's own asymmetry is
    its own (a pulse wave's mean, a decaying bass's)."""
    head = np.asarray(audio[: max(1, int(LEAD_IN_PROBE * sample_rate))], dtype=np.float64)
    offset = float(np.mean(head))
    if abs(offset) < DC_OFFSET_MIN or float(np.std(head)) > DC_SPREAD * abs(offset):
        return 0.0
    return offset


def find_onset(audio: np.ndarray, sample_rate: int) -> int:
    """Sample index where the note starts: first frame within 30 dB of the loudest and 10 dB above
    the take's noise floor before it (:data:`ONSET_ABOVE_FLOOR_DB`), minus 5 ms."""
    n_frames = audio.size // FRAME
    if n_frames < 2:
        return 0
    frames = audio[: n_frames * FRAME].reshape(n_frames, FRAME)
    energy = np.concatenate([np.sqrt(np.mean(np.square(rows, dtype=np.float64), axis=1))
                             for rows in _blocks(frames, BLOCK // FRAME)])
    loudest = float(energy.max())
    threshold = loudest * 10 ** (ONSET_THRESHOLD_DB / 20)
    head = energy[: max(1, int(LEAD_IN_PROBE * sample_rate) // FRAME)]
    if head.size < n_frames // 2 and head.min() > 0:
        floor = float(np.median(head))
        steady = 20 * np.log10(head.max() / head.min()) <= LEAD_IN_STEADY_DB
        if (steady and floor <= loudest * 10 ** (-LEAD_IN_BELOW_DB / 20)
                and spectral_flatness(audio[: head.size * FRAME], sample_rate) >= LEAD_IN_FLATNESS):
            threshold = max(threshold, min(floor * 10 ** (ONSET_ABOVE_FLOOR_DB / 20), loudest * 10 ** (ONSET_CAP_DB / 20)))
    first = int(np.argmax(energy >= threshold))
    return max(0, first * FRAME - int(ONSET_PREROLL * sample_rate))


def validate(audio: np.ndarray, source: str = "<buffer>", silence_dbfs: float = SILENCE_DBFS) -> None:
    """Reject empty, non-finite and silent audio; warn about clipping."""
    if audio.size == 0:
        raise AudioError(f"{source}: the audio is empty (0 samples)")
    peak = _peak(audio)
    if not math.isfinite(peak):
        bad = sum(int(np.count_nonzero(~np.isfinite(b))) for b in _blocks(audio))
        raise AudioError(f"{source}: the audio holds {bad} NaN or infinite samples")
    level = peak_dbfs(audio)
    if level < silence_dbfs:
        shown = "-inf" if not np.isfinite(level) else f"{level:.1f}"
        raise AudioError(f"{source}: the audio is silent (peak {shown} dBFS, below {silence_dbfs:g} dBFS)")
    clipped = sum(int(np.count_nonzero(np.abs(b) >= CLIP)) for b in _blocks(audio)) if peak >= CLIP else 0
    if clipped >= 3:
        log.warning("%s: %d samples at full scale: the input is probably clipped", source, clipped)


def prepare_note(clip: AudioClip, sample_rate: int = 44100, seconds: float = 2.0,
                 silence_dbfs: float = SILENCE_DBFS) -> np.ndarray:
    """Validate, resample, find the onset and cut (or zero-pad) exactly ``seconds`` of audio, raised
    to :data:`NOMINAL_PEAK_DBFS` if it peaks lower (:func:`prepare_take`)."""
    return prepare_take(clip, sample_rate, seconds, silence_dbfs).note


def prepare_take(clip: AudioClip, sample_rate: int = 44100, seconds: float = 2.0,
                 silence_dbfs: float = SILENCE_DBFS) -> Take:
    """:func:`prepare_note`'s note, and the take's lead-in: what it held before the note (resampled,
    up to :data:`LEAD_IN_SECONDS` of it; empty when the note starts at once), where the recording's
    noise floor can be heard alone, and up to :data:`AFTER_SECONDS` of what it held after the note's
    ``seconds`` (a note held longer is let go there).

    A note peaking under :data:`NOMINAL_PEAK_DBFS` is raised to it, its lead-in with it: the level
    step gives a preset the level of its target, and a take recorded 40 dB down otherwise gave a
    preset 40 dB down (oscillator volumes ~0.1 of 100) that no one can hear; the network's answers
    to such takes were further from the sound too (development instruments 20 dB down 1.28, 40 dB
    down 1.42 from the note against 1.16 as recorded, ``deepdiva match``). Louder takes keep their
    level (a hot take may be a driven one). A clipped take (:func:`~deepdiva.core.declip.clipped_runs`,
    read at its own rate) has its clipped samples in the lead-in and note filled in
    (:func:`~deepdiva.core.declip.restored`), at the peak level it was clipped at."""
    check_rate(clip.sample_rate, clip.source)
    validate(clip.samples, clip.source, silence_dbfs)
    check_samples(math.ceil(clip.samples.size * sample_rate / clip.sample_rate),
                  f"{clip.seconds:.0f} s of audio resampled to {sample_rate} Hz", clip.source)
    runs = _clipped(clip)  # read before resampling rounds the flat tops off
    resampled = resample(clip.samples, clip.sample_rate, sample_rate)
    offset = dc_offset(resampled, sample_rate)
    audio = _less(resampled, offset)
    start = find_onset(audio, sample_rate)
    length = int(round(seconds * sample_rate))
    first = max(0, start - int(LEAD_IN_SECONDS * sample_rate))
    window = np.ascontiguousarray(audio[first: start + length], dtype=np.float32)
    count = 0
    if runs is not None:
        window, count = _declipped(clip, runs, window, first, sample_rate, offset)
    note, lead_in = _cut_at(window, start - first, length), window[: start - first]
    after = np.ascontiguousarray(audio[start + length: start + length + int(AFTER_SECONDS * sample_rate)],
                                 dtype=np.float32)
    raised_db = raise_db(note)
    if raised_db > 0:
        gain = _gain(raised_db)
        return Take(note * gain, lead_in * gain, raised_db, count, after * gain)
    return Take(note, lead_in, 0.0, count, after)


def _clipped(clip: AudioClip) -> list[Runs | None] | Runs | None:
    """Where ``clip`` clipped: for a clip with its channels, each channel's runs (None where one did
    not), else its mono mix's; None when it did not clip."""
    if clip.channels is None:
        return clipped_runs(clip.samples)
    runs = [clipped_runs(clip.channels[:, c]) for c in range(clip.channels.shape[1])]
    return runs if any(r is not None for r in runs) else None


def _declipped(clip: AudioClip, runs: list[Runs | None] | Runs, window: np.ndarray, first: int,
               sample_rate: int, offset: float) -> tuple[np.ndarray, int]:
    """``window`` (the take from ``first`` on, resampled to ``sample_rate``, less ``offset``) with
    the clipped ``runs`` in it restored (:func:`~deepdiva.core.declip.restored`), and how many samples
    of the take were. A mono take at this rate is restored in the window. Otherwise the take is
    restored at its own rate, where its flat tops are exact (a resampler rings beside them), over the
    window and :data:`RESTORE_MARGIN` either side, each of its channels on its own when ``runs`` holds
    each channel's (then mixed as it was), then resampled."""
    if clip.sample_rate == sample_rate and not isinstance(runs, list):
        mask = runs_mask(runs, first, window.size)
        count = int(np.count_nonzero(mask))
        return (restored(window, mask), count) if count else (window, 0)
    ratio = clip.sample_rate / sample_rate
    margin = int(RESTORE_MARGIN * clip.sample_rate)
    lo = max(0, int(first * ratio) - margin)
    hi = min(clip.samples.size, int(math.ceil((first + window.size) * ratio)) + margin)
    if isinstance(runs, list):
        assert clip.channels is not None
        span, count = _restored_channels(clip.channels[lo:hi], runs, lo)
    else:
        mask = runs_mask(runs, lo, hi - lo)
        count = int(np.count_nonzero(mask))
        span = restored(clip.samples[lo:hi], mask) if count else clip.samples[lo:hi]
    if not count:
        return window, 0
    part = _less(resample(span, clip.sample_rate, sample_rate), offset)
    at = int(round(first - lo / ratio))  # where the window begins in the resampled part
    return _cut_at(part, at, window.size), count


def _restored_channels(channels: np.ndarray, runs: list[Runs | None], first: int) -> tuple[np.ndarray, int]:
    """``channels`` (frames, channels: a take's from sample ``first`` on) each with its clipped
    ``runs`` restored, mixed to mono as :func:`to_mono` mixes them; and how many samples were restored."""
    masks = [None if r is None else runs_mask(r, first, channels.shape[0]) for r in runs]
    count = sum(int(np.count_nonzero(m)) for m in masks if m is not None)
    return (to_mono(restored_channels(channels, masks)) if count else to_mono(channels)), count


def cut_note(audio: np.ndarray, sample_rate: int, length: int) -> np.ndarray:
    """``length`` samples from the note's onset (:func:`find_onset`), zero-padded when short;
    training data goes through the same cut as targets do."""
    return _cut_at(audio, find_onset(audio, sample_rate), length)


def _cut_at(audio: np.ndarray, start: int, length: int) -> np.ndarray:
    window = audio[start: start + length]
    if window.size < length:
        window = np.pad(window, (0, length - window.size))
    return np.ascontiguousarray(window, dtype=np.float32)


def load_note(path: str | Path, sample_rate: int = 44100, seconds: float = 2.0,
              max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """Read a file and return the ``seconds``-long mono note a model expects."""
    return prepare_note(read_audio(path, max_seconds), sample_rate, seconds)
