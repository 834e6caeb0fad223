"""Pitch of a note: its fundamental, the nearest MIDI note and the cents off, or "unpitched".

The fundamental comes from YIN (de Cheveigné & Kawahara 2002; :func:`yin_periods` is librosa's
maintained implementation written out, tested to give its periods) on the note's loud frames
within its first :data:`WINDOW_SECONDS`, at about 22 kHz (the note is decimated first: YIN's cost
grows with the square of the frame length). Per frame the period YIN picked is checked by the
normalised autocorrelation at that lag (1.0 for a perfectly periodic frame). The rule for **unpitched** (drums, noise, breath): fewer than
:data:`MIN_VOICED_SHARE` of the loud frames have a clear period (autocorrelation >=
:data:`CLARITY`), or the clear frames disagree (their pitches spread over more than
:data:`MAX_SPREAD_CENTS`, and fewer than :data:`MAJORITY_SHARE` of them agree within
:data:`MAJORITY_CENTS`). A pitched note's fundamental is the median of its clear frames,
moved up an octave while the note repeats at half its period about as clearly (YIN's octave
slips in noise: :func:`octave_above`), and to twice or three times itself when the spectrum
holds partials only on every 2nd or 3rd of its harmonics (YIN took two or three periods of a
note whose upper partials dominate: :func:`harmonic_multiple`). That is also how notes above
:data:`FMAX_HZ` are read, up to :data:`TOP_HZ` (C8): YIN searches periods only up to
:data:`SEARCH_FMAX_HZ` at the analysis rate, so a piccolo's G7 reads as G6 and its C8 as F6, and
where even its first search finds no trough (D#7-F7) a second one from the next lag on finds two
periods. Above C7 only a clearly periodic note whose partials fit a harmonic series counts (a
noisy resonance there is no note), and above C8 nothing does. At the other end, YIN's first
search stops at :data:`FMIN_HZ` (B0); frames where it found no trough at all are searched again
down to :data:`LOWEST_HZ`, so A0 and A#0 (a piano's and a sub-bass's lowest notes) are read
when they are clear (clarity >= 0.9). Last, the cents of a clearly
periodic note come from its partials (:func:`partials_fundamental`): YIN's period is a compromise
of every partial, which reads a piano 12-23 c sharp (its upper partials are stretched) and steady
harmonic notes up to a few cents off; the frequencies of the lowest partials in a long spectrum do not.
When they fit no harmonic series because strong partials lie off every harmonic (a music box, a
bell), the note is at its lowest strong partial, if that lies within a semitone of YIN's reading
(:func:`inharmonic_partial`). A reading above :data:`FMAX_HZ` is the period of a strong upper partial
when the spectrum holds the partials of a fundamental below it (:func:`fundamental_below`), else
the note itself if its partials fit.

Note names use the common convention MIDI 60 = C4 (middle C), 69 = A4 = 440 Hz, 48 = C3 (the
note every dataset used to be rendered at).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from .errors import AudioError
from .peaks import find_peaks

A4_HZ = 440.0
A4_MIDI = 69
DEFAULT_MIDI = 48  # what unpitched sounds are played at (C3, the renderers' default note)
FMIN_HZ = 30.0  # B0 is 30.9 Hz: a 5-string bass's lowest string is inside; below it only a clear note counts
LOWEST_HZ = 26.0  # A0 (27.5 Hz), a piano's lowest key, is inside: read by a second search past the first one's longest period
FMAX_HZ = 2200.0  # C7 is 2093 Hz: up to here any reading counts; above it only a clear harmonic note
TOP_HZ = 4300.0  # C8 is 4186 Hz: a piano's, a piccolo's and a glockenspiel's top note are inside
SEARCH_FMAX_HZ = 2600.0  # YIN searches a little beyond, so a note near FMAX_HZ is not at its edge
ANALYSIS_RATE = 22050  # YIN runs at about this rate (the note is decimated by an integer factor)
FRAME = 2048  # YIN frame at the analysis rate: 93 ms, two periods of 21.5 Hz
HOP = 1024  # 11 frames over the window: enough for a median, and YIN's cost is per frame
WINDOW_SECONDS = 0.6  # frames are taken from the note's first 0.6 s, where every note still sounds
LOUD_DB = 25.0  # frames within 25 dB of the loudest count
CLARITY = 0.8  # normalised autocorrelation at the period for a frame to count as periodic
MIN_VOICED_SHARE = 0.3  # of the loud frames; a sung or spoken note has breathy and consonant frames
MAX_SPREAD_CENTS = 300.0  # interquartile spread of the clear frames: a sung or spoken note glides
# ... unless two thirds of them lie within 150 c of their median: the others read a harmonic (an
# amsynth D#3 whose first 3 frames read its 3rd harmonic) or a pitch modulation's far end, and the
# note is at the majority's pitch. Changed 1 of 155 out-of-domain notes and 11 of 800 held-out
# builtin renders; their matches 7 closer, 5 further (geometric mean 0.96), SC closer for 10.
MAJORITY_CENTS = 150.0
MAJORITY_SHARE = 2 / 3
# Above this the analysis rate's whole-sample lags (< 37 per period) are too coarse to tell one
# period from two (a bright C7 saw came out as C6) or to place the period within a few cents:
# the period is refined at the full rate, and the octave above is taken when the note repeats
# there as clearly (a saw's half period correlates at -0.5).
OCTAVE_CHECK_HZ = 600.0
OCTAVE_UP_CLARITY = 0.95
# YIN tends to the longer of two periods that fit a note alike (noise, a faint sub-octave): a
# note that repeats at half the period read within this much as clearly (and at least CLARITY)
# is at the octave above. On 53 GM and range-end notes with white noise at 10 dB SNR, 4 high ones
# (harp E5 ... piccolo C7) were read an octave low without it, the slips within 0.01; a clean
# organ G2, whose second harmonic is strong, repeats at half its period 0.065 less clearly.
SAME_CLARITY = 0.03
OCTAVE_SLIP_SEMITONES = 0.25  # ... at half the period itself: a peak further off is another note
# YIN also takes a multiple of the period when the note's upper partials dominate and the period
# is no whole number of samples (an amsynth lead at 894 Hz read as D4, a third of it, clarity 1.0:
# three periods fit whole samples better than one). The spectrum tells: when the harmonics of the
# pitch read that are not multiples of k (2 or 3) hold together SIEVE_DB less than those that are,
# the note is at k times that pitch.
SIEVE_DB = 30.0
SIEVE_SAMPLES = 8192  # 186 ms at 44.1 kHz: harmonics of B0 (31 Hz) stand 5.7 bins apart
SIEVE_MAX_HZ = 6000.0  # partials up to here are weighed
SPECTRUM_PAD = 4  # the sieve's spectrum is zero-padded to 4x its length: partials placed to a hundredth of a bin
# YIN also reads a bright note at a strong upper partial's period when that ends its first dip (an
# amsynth D#5 read at its 4th harmonic, above FMAX_HZ): the note is at the largest fraction 1/k of
# that reading whose other harmonics hold real partials (fundamental_below).
SUBHARMONICS = 8
# A clearly periodic note's cents come from its lowest partials, fitted as a string's are: partial k
# at k f0 sqrt(1 + B k^2) (B = 0 for a harmonic note; a piano's B stretches its upper partials, which
# pulls YIN's period sharp). Synthetic notes at known pitches (saws, plucks, noisy, pianos with B up to
# 2e-4): YIN median error 0.0-4.3 c (piano), max 5.8 c; from the partials median 0.00-0.03 c, max 0.3 c.
PARTIALS_CLARITY = 0.9  # only notes this periodic (a voice gliding or a cluster of detuned partials is not)
PARTIALS_UP_TO = 8  # the lowest 8 harmonics, ...
PARTIALS_MAX_HZ = 5000.0  # ... up to here
PARTIALS_DB = 20.0  # a partial counts when its peak stands this far above the median of its harmonic's band
PARTIALS_FIT_CENTS = 3.0  # the fit's RMS residual: further off, the partials are not one note's and YIN stays
PARTIALS_REACH_CENTS = 50.0  # nor when they put the note this far from YIN's reading
# Struck bars and bells (a music box, a tinkle bell) have inharmonic partials: YIN's period is a
# compromise between them (a music box A3 read 52 c sharp, a tinkle bell C6 90 c sharp) and no harmonic
# fit holds. When a partial that strong lies off every harmonic of the reading, the note is at its
# lowest strong partial (a bar's first mode), if that lies near the reading.
INHARMONIC_DB = 15.0  # partials within this of the strongest count
INHARMONIC_PROMINENCE_DB = 10.0  # a partial stands this far above the spectrum around it
INHARMONIC_OFF = 0.1  # off a harmonic: by more than a tenth of the reading ...
INHARMONIC_SHARE = 0.02  # ... and 2 % of the harmonic (an ensemble's upper partials spread about as much)
INHARMONIC_REACH_CENTS = 100.0  # the lowest partial replaces the reading only this close to it
# A pure tone above the range (a 6 kHz sine) is read at a fraction of it that lies in the range (2 kHz:
# every third period), where the sieve, weighing partials up to SIEVE_MAX_HZ, sees none of its harmonics
# but the first two. Weighed up to ABOVE_RANGE_MAX_HZ, every partial of such a note stands on a
# multiple k of the reading (common_multiple): then the note is at k x the reading, above the range.
ABOVE_RANGE_MAX_HZ = 20000.0
HEARD_DB = 60.0  # partials further under the spectrum's strongest are a 16-bit file's noise, not the note's
YIN_TROUGH_THRESHOLD = 0.1  # YIN's (and librosa's) absolute threshold on the normalised difference
NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def hz_to_midi(hz: float | np.ndarray) -> np.ndarray:
    return A4_MIDI + 12.0 * np.log2(np.asarray(hz, dtype=np.float64) / A4_HZ)


def midi_to_hz(midi: float | np.ndarray) -> np.ndarray:
    return A4_HZ * 2.0 ** ((np.asarray(midi, dtype=np.float64) - A4_MIDI) / 12.0)


def note_name(midi: int) -> str:
    """``69 -> "A4"``, ``48 -> "C3"``, ``61 -> "C#4"``."""
    return f"{NAMES[int(midi) % 12]}{int(midi) // 12 - 1}"


@dataclass(frozen=True)
class Pitch:
    """The pitch of one note. Unpitched notes have ``hz`` None and ``midi`` the default note."""

    hz: float | None
    midi: int  # the key to play: nearest MIDI note, or DEFAULT_MIDI when unpitched
    cents: float  # how far the fundamental lies above (+) or below (-) that key, -50..50
    clarity: float  # median normalised autocorrelation at the period over the loud frames, 0..1

    @property
    def pitched(self) -> bool:
        return self.hz is not None

    @property
    def name(self) -> str:
        return note_name(self.midi) if self.pitched else "unpitched"

    @property
    def midi_float(self) -> float:
        """The fundamental on the MIDI scale (the key plus the cents)."""
        return self.midi + self.cents / 100.0

    def as_dict(self) -> dict:
        """``note``, ``midi_pitch``, ``cents``, ``hz`` and ``pitched``, as reports show them."""
        return {"note": self.name, "midi_pitch": self.midi, "cents": round(self.cents, 1),
                "hz": None if self.hz is None else round(self.hz, 2), "pitched": self.pitched}

    def describe(self) -> str:
        """``"A4 (+12 cents, 445.7 Hz)"`` or ``"unpitched"``."""
        if not self.pitched:
            return "unpitched"
        return f"{self.name} ({self.cents:+.0f} cents, {self.hz:.1f} Hz)"

    @classmethod
    def unpitched(cls, clarity: float = 0.0) -> Pitch:
        return cls(None, DEFAULT_MIDI, 0.0, clarity)

    @classmethod
    def from_hz(cls, hz: float, clarity: float = 1.0) -> Pitch:
        midi_float = float(hz_to_midi(hz))
        midi = int(round(midi_float))
        return cls(float(hz), midi, 100.0 * (midi_float - midi), clarity)


def _analysis_window(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """The first WINDOW_SECONDS, decimated by an integer factor to about ANALYSIS_RATE with a box
    filter (its first null lies at the new rate, far above FMAX_HZ), at least one frame long."""
    q = max(1, int(round(sample_rate / ANALYSIS_RATE)))
    sr = sample_rate // q
    n = max(FRAME, int(WINDOW_SECONDS * sr)) * q
    window = audio[:, :n]
    if window.shape[1] < n:
        window = np.pad(window, ((0, 0), (0, n - window.shape[1])))
    if q > 1:
        window = np.add.reduce([window[:, i::q] for i in range(q)]) * np.float32(1.0 / q)
    return np.ascontiguousarray(window, dtype=np.float32), sr


def _frames(audio: np.ndarray) -> np.ndarray:
    """(clips, samples) -> (clips, frames, FRAME), frames starting every HOP samples (no padding)."""
    return sliding_window_view(audio, FRAME, axis=-1)[:, ::HOP]


def _normalised_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num = np.einsum("...i,...i->...", a, b)
    den = np.sqrt(np.einsum("...i,...i->...", a, a) * np.einsum("...i,...i->...", b, b))
    return np.where(den > 0, num / np.maximum(den, 1e-30), 0.0)


def _frame_clarity(frames: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation of each frame's first half with itself ``lag`` samples later
    (``frames`` (..., FRAME), ``lags`` (...) ints): 1.0 for a period of a periodic signal. Both
    windows have the same length, so unlike YIN's difference function it has no bias towards
    short lags."""
    half = FRAME // 2
    later = sliding_window_view(frames, half, axis=-1)  # (..., FRAME - half + 1, half)
    b = np.take_along_axis(later, np.clip(lags, 0, FRAME - half)[..., None, None], axis=-2)[..., 0, :]
    return _normalised_dot(frames[..., :half], b)


def _refine_period(segment: np.ndarray, period: float) -> float:
    """The period near ``period`` where the normalised autocorrelation of one frame peaks, to a
    fraction of a sample (parabolic interpolation): YIN's own estimate is biased towards short
    periods by up to a fifth of a semitone at low notes."""
    return _peak_near(segment, period)[0]


def _peak_near(segment: np.ndarray, period: float) -> tuple[float, float]:
    """The lag near ``period`` (within 3 %) where the normalised autocorrelation of ``segment``'s
    first FRAME // 2 samples peaks, to a fraction of a sample, and the peak's height."""
    lags, heights = _peaks_near(segment[None, :], period)
    return float(lags[0]), float(heights[0])


def _peaks_near(segments: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_peak_near` for each row of ``segments`` (f, n) at once: lags (f,) and heights (f,)."""
    reach = max(2, int(math.ceil(0.03 * period)))
    length = FRAME // 2
    centre = int(round(period))
    lags = np.arange(max(1, centre - reach), min(segments.shape[1] - length, centre + reach) + 1)
    if lags.size < 3:
        return np.full(len(segments), float(period)), np.zeros(len(segments))
    r = _normalised_dot(segments[:, None, :length], sliding_window_view(segments, length, axis=-1)[:, lags])
    i = np.clip(np.argmax(r, axis=1), 1, lags.size - 2)
    a, b, c = (np.take_along_axis(r, (i + d)[:, None], axis=1)[:, 0] for d in (-1, 0, 1))
    curve = a - 2 * b + c
    shift = np.where(curve < 0, np.clip(0.5 * (a - c) / np.where(curve < 0, curve, -1.0), -1.0, 1.0), 0.0)
    return lags[i] + shift, b - 0.25 * (a - c) * shift


def _full_rate_period(segment: np.ndarray, period: float) -> float:
    """A high note's period (samples of the full-rate ``segment``) refined at the full rate: half
    of ``period`` if the note repeats there as clearly (YIN took it for the octave below)."""
    full, clarity = _peak_near(segment, period)
    half, clarity_half = _peak_near(segment, period / 2)
    return half if clarity_half >= OCTAVE_UP_CLARITY and clarity_half >= clarity - 0.02 else full


def detect_pitches(notes: np.ndarray, sample_rate: int) -> list[Pitch]:
    """The pitch of each note of a batch ``(n, samples)`` (or one note ``(samples,)``), each
    starting at its onset (``core.audio.prepare_note``)."""
    batch = np.asarray(notes, dtype=np.float32)
    if batch.ndim == 1:
        batch = batch[None, :]
    if batch.ndim != 2 or batch.shape[0] == 0:
        raise AudioError(f"pitch detection needs audio of shape (samples,) or (notes, samples); got {np.shape(notes)}")
    frames, energy, sr = _framed(batch, sample_rate)
    fmax = min(SEARCH_FMAX_HZ, sr / 2 - 1)
    periods = _yin_frames(frames, sr, FMIN_HZ, fmax)
    # A period at the shortest YIN may return means it found no trough in range, not a pitch, or
    # a note above it (D#7-C8); at the longest, none in range or a note below it (A0, A#0). Those
    # frames are searched again (one YIN for both): from the next lag on, where two periods of a
    # high note lie, down to LOWEST_HZ.
    first_shortest = np.floor(sr / fmax) + 1.0
    shortest = np.full(periods.shape, first_shortest)
    longest = min(math.ceil(sr / FMIN_HZ), FRAME - 1)
    loud = _loud(energy)  # the frames a pitch is read from
    short, long = loud & (periods < shortest), loud & (periods > longest - 0.5)
    if short.any() or long.any():
        again_fmax = sr / (first_shortest + 1.5)  # its first lag is one past the first search's last artefact
        again = np.full(periods.shape, np.nan)
        again[short | long] = _yin_frames(frames[short | long], sr, LOWEST_HZ, again_fmax)
        # only two periods of a high note count, and only periods beyond the first search's for a low one
        # (others are another note's, read where the first search found no trough: left out as before)
        periods = np.where(short & (again < 2 * shortest) | long & (again > longest + 0.5), again, periods)
        shortest[short] = np.floor(sr / again_fmax) + 1.0
    clarity = _frame_clarity(frames, np.rint(periods).astype(np.int64))
    clarity[periods < shortest] = 0.0
    pitches = []
    for row in range(len(frames)):
        pitch, frame = _summarise(frames[row], periods[row], clarity[row], energy[row], sr)
        start = frame * HOP * (sample_rate // sr)
        segment = batch[row, start:start + FRAME]
        if pitch.hz is not None and pitch.hz > OCTAVE_CHECK_HZ and segment.size == FRAME:
            hz = sample_rate / _full_rate_period(segment, sample_rate / pitch.hz)
            pitch = Pitch.from_hz(hz, pitch.clarity) if hz <= FMAX_HZ else pitch
        while pitch.hz is not None and 2 * pitch.hz <= FMAX_HZ:  # YIN's octave slips
            up = _octave_above(frames[row], energy[row], sr, pitch.hz)
            if up is None:
                break
            pitch = Pitch.from_hz(up, pitch.clarity)
        if pitch.hz is None:
            pitches.append(pitch)
            continue
        spectrum = Spectrum.of(batch[row, start:start + SIEVE_SAMPLES], sample_rate)
        if pitch.hz > FMAX_HZ:  # the period of a strong upper partial: is the note below the range's top?
            below = fundamental_below(spectrum, pitch.hz)
            if below is not None:
                pitch = Pitch.from_hz(below, pitch.clarity)
        while pitch.hz is not None:  # a period YIN took two or three times over
            k = harmonic_multiple(spectrum, sample_rate, pitch.hz)
            if k == 1:
                break
            # the note is at k times the reading, which may lie above the range (a piccolo's C8 read as F6)
            pitch = Pitch.from_hz(k * pitch.hz, pitch.clarity) if k * pitch.hz <= TOP_HZ else Pitch.unpitched(pitch.clarity)
        if pitch.hz is not None and above_range(spectrum, pitch.hz):
            pitch = Pitch.unpitched(pitch.clarity)  # every partial a multiple of the reading, above C8
        fitted = (partials_fundamental(spectrum, pitch.hz)
                  if pitch.hz is not None and pitch.clarity >= PARTIALS_CLARITY else None)
        if pitch.hz is not None and (pitch.hz > FMAX_HZ and fitted is None or
                                     pitch.hz < FMIN_HZ and pitch.clarity < PARTIALS_CLARITY):
            # at the range's ends only a clear note counts (above C7 a harmonic one: not a resonance)
            pitch = Pitch.unpitched(pitch.clarity)
        elif pitch.hz is not None and pitch.clarity >= PARTIALS_CLARITY:
            # no harmonic fit: an inharmonic note is at its lowest partial
            fundamental = fitted if fitted is not None else inharmonic_partial(spectrum, pitch.hz)
            if fundamental is not None and fundamental <= TOP_HZ:
                pitch = Pitch.from_hz(fundamental, pitch.clarity)
        pitches.append(pitch)
    return pitches


def _yin_frames(frames: np.ndarray, sr: int, fmin: float, fmax: float) -> np.ndarray:
    """YIN's period (samples at ``sr``) in each of ``frames`` (..., FRAME), searched between ``fmin``
    and ``fmax`` (each frame on its own: the same as YIN over the note with these frames' hop)."""
    rows = frames.reshape(-1, frames.shape[-1])
    return yin_periods(rows, sr, fmin, fmax).reshape(frames.shape[:-1])


def yin_periods(frames: np.ndarray, sr: float, fmin: float, fmax: float,
                trough_threshold: float = YIN_TROUGH_THRESHOLD) -> np.ndarray:
    """YIN's period (samples, fractional) of each row of ``frames`` (n, frame_length), searched
    between ``fmin`` and ``fmax``: ``librosa.yin`` (0.11) step for step, one frame per row
    (``center=False``, hop = frame length), so ``sr / librosa.yin(...)`` gives the same periods
    (tests/core/test_pitch.py compares them). Written out here because importing librosa for this one
    function took ~1.2 s of a one-file ``deepdiva match`` (~5.2 s then).

    The difference function of the frame with itself at each lag (autocorrelation by FFT, energy by
    a running sum), its cumulative mean normalised form, and the first lag from ``sr / fmax`` up that
    is a local minimum under ``trough_threshold`` (else the lowest point), refined by a parabola."""
    frames = np.asarray(frames, dtype=np.float32)
    length = frames.shape[-1]
    min_period = int(np.floor(sr / fmax))
    max_period = min(int(np.ceil(sr / fmin)), length - 1)
    n_fft = scipy.fft.next_fast_len(2 * length - 1, real=True)
    spectrum = scipy.fft.rfft(frames, n=n_fft, axis=-1)
    acf = scipy.fft.irfft(spectrum.real ** 2 + spectrum.imag ** 2, n=n_fft, axis=-1)[:, : max_period + 1]
    energy = np.cumsum(np.square(frames), axis=-1)
    energy[:, 0] = 0  # (librosa's in-place step leaves the lag-1 term without the first sample's energy)
    difference = 2 * (acf[:, :1] - acf[:, 1:]) - energy[:, :max_period]  # lags 1 .. max_period
    cmnd = difference[:, min_period - 1:] / (
        (np.cumsum(difference, axis=-1) / np.arange(1, max_period + 1))[:, min_period - 1:] + np.finfo(np.float64).tiny)
    left, middle, right = cmnd[:, :-2], cmnd[:, 1:-1], cmnd[:, 2:]
    curve, slope = right + left - 2 * middle, (right - left) / 2
    shifts = np.zeros_like(cmnd)
    bend = np.abs(slope) < np.abs(curve)
    shifts[:, 1:-1][bend] = -slope[bend] / curve[bend]
    trough = np.zeros(cmnd.shape, dtype=bool)
    trough[:, 0] = cmnd[:, 0] < cmnd[:, 1]
    trough[:, 1:-1] = (middle < left) & (middle <= right)
    trough[:, -1] = cmnd[:, -1] < cmnd[:, -2]
    below = trough & (cmnd < trough_threshold)
    lag = np.where(below.any(axis=-1), np.argmax(below, axis=-1), np.argmin(cmnd, axis=-1))
    return min_period + lag + np.take_along_axis(shifts, lag[:, None], axis=-1)[:, 0]


@functools.cache
def _hann(n: int) -> np.ndarray:
    """A float32 Hann window of ``n`` samples (made once per length)."""
    return np.hanning(n).astype(np.float32)


@dataclass(frozen=True)
class Spectrum:
    """The magnitude spectrum of a note's first :data:`SIEVE_SAMPLES` (Hann window, zero-padded
    :data:`SPECTRUM_PAD` times; other lengths and paddings for others, e.g. the chord reader) and
    the width of its bins in Hz."""

    magnitude: np.ndarray
    bin_hz: float

    @classmethod
    def of(cls, segment: np.ndarray, sample_rate: int, n: int = SIEVE_SAMPLES, pad: int = SPECTRUM_PAD) -> Spectrum:
        """The spectrum of the first ``n`` samples of ``segment`` (zero-filled when shorter),
        zero-padded to ``pad`` times that length."""
        segment = np.asarray(segment, dtype=np.float32)[:n]
        if segment.size < n:
            segment = np.pad(segment, (0, n - segment.size))
        return cls(np.abs(scipy.fft.rfft(segment * _hann(n), pad * n)), sample_rate / (pad * n))

    def peaks(self, hz: np.ndarray, reach_hz: float) -> tuple[np.ndarray, np.ndarray]:
        """The bin of the highest magnitude within ``reach_hz`` of each frequency of ``hz``, and
        whether it is a peak (not at the edge of that reach: the partial lies further off)."""
        reach = max(1, int(reach_hz / self.bin_hz))
        first = np.clip(np.rint(np.asarray(hz) / self.bin_hz).astype(np.int64) - reach, 0,
                        self.magnitude.size - 2 * reach - 1)
        at = np.argmax(sliding_window_view(self.magnitude, 2 * reach + 1)[first], axis=1)
        return first + at, (at > 0) & (at < 2 * reach)

    def top_hz(self, limit_hz: float) -> float:
        """``limit_hz``, or 0.45 x the sample rate if that is lower (the partials weighed lie below both)."""
        return min(limit_hz, 0.9 * self.bin_hz * (self.magnitude.size - 1))

    def stands_out(self, bins: np.ndarray, hz: np.ndarray, width_hz: float) -> np.ndarray:
        """Whether the magnitude at each of ``bins`` stands :data:`PARTIALS_DB` above the median of
        the band ``width_hz`` wide centred on the matching frequency of ``hz``."""
        width = max(1, int(width_hz / self.bin_hz))
        starts = np.clip(((np.asarray(hz) - 0.5 * width_hz) / self.bin_hz).astype(np.int64), 0,
                         self.magnitude.size - width)
        floor = np.median(sliding_window_view(self.magnitude, width)[starts], axis=1)
        return self.magnitude[bins] >= floor * 10 ** (PARTIALS_DB / 20)

    def partials(self, low_hz: float, high_hz: float, within_db: float, prominence_db: float) -> np.ndarray:
        """The bins of the spectrum's peaks between ``low_hz`` and ``high_hz`` (and 0.45 x the sample
        rate) within ``within_db`` of the strongest there and standing ``prominence_db`` above the
        spectrum around them, lowest first (each in 1 .. size - 2, as :meth:`peak_hz` needs)."""
        top = min(int(high_hz / self.bin_hz), self.magnitude.size - 2)
        low = max(1, int(low_hz / self.bin_hz))
        db = 20.0 * np.log10(self.magnitude[low:top].astype(np.float64) + 1e-30)
        if db.size < 3:
            return np.empty(0, dtype=np.int64)
        peaks = find_peaks(db, float(db.max()) - within_db, prominence_db)
        return peaks + low

    def peak_hz(self, bins: np.ndarray) -> np.ndarray:
        """The frequencies (Hz) of the peaks at ``bins`` (each in 1 .. size - 2), placed between
        bins by a parabola through the log magnitudes."""
        bins = np.asarray(bins)
        a, b, c = (np.log(self.magnitude[bins + d].astype(np.float64) + 1e-30) for d in (-1, 0, 1))
        curve = a - 2 * b + c
        shift = np.where(curve < 0, np.clip(0.5 * (a - c) / np.where(curve < 0, curve, -1.0), -0.5, 0.5), 0.0)
        return (bins + shift) * self.bin_hz


def harmonic_multiple(segment: np.ndarray | Spectrum, sample_rate: int, hz: float) -> int:
    """2 or 3 when the partials of ``segment`` (mono, full rate, or its :class:`Spectrum`) at the
    harmonics of ``hz`` lie only on every 2nd or 3rd of them (those off it together
    :data:`SIEVE_DB` weaker: the note is at that multiple of ``hz``), else 1. Each harmonic's
    strength is the spectrum's peak within a quarter of ``hz`` of it; the harmonics weighed are
    those below :data:`SIEVE_MAX_HZ`, at least k of them (a reading near the range's top has two)."""
    spectrum = segment if isinstance(segment, Spectrum) else Spectrum.of(segment, sample_rate)
    top = spectrum.top_hz(SIEVE_MAX_HZ)
    harmonics = np.arange(1, int(top // hz) + 1)
    if harmonics.size < 2:  # too few partials in range to tell
        return 1
    strength = spectrum.magnitude[spectrum.peaks(harmonics * hz, 0.25 * hz)[0]].astype(np.float64) ** 2
    for k in (3, 2):
        if harmonics.size < k:  # the k-th harmonic lies above the partials weighed
            continue
        on = float(strength[harmonics % k == 0].sum())
        off = float(strength[harmonics % k != 0].sum())
        if on > 0 and off < on * 10 ** (-SIEVE_DB / 10):
            return k
    return 1


def fundamental_below(spectrum: Spectrum, hz: float) -> float | None:
    """The fundamental (Hz, at most :data:`FMAX_HZ`) of a note YIN read at ``hz``, one of its upper
    partials: ``hz / k`` for the largest k up to :data:`SUBHARMONICS` whose harmonics off the
    multiples of k hold real partials (peaks :data:`PARTIALS_DB` above their band) together within
    :data:`SIEVE_DB` of those on them; None when no k does (the note is above the range)."""
    top = spectrum.top_hz(SIEVE_MAX_HZ)
    found = None
    for k in range(2, SUBHARMONICS + 1):
        f = hz / k
        if f < FMIN_HZ:
            break
        harmonics = np.arange(1, int(top // f) + 1)
        strength = _partial_strengths(spectrum, harmonics * f, f)
        on = float(strength[harmonics % k == 0].sum())
        off = float(strength[harmonics % k != 0].sum())
        if on > 0 and off >= on * 10 ** (-SIEVE_DB / 10):
            found = f
    return found if found is not None and found <= FMAX_HZ else None


def above_range(spectrum: Spectrum, hz: float) -> bool:
    """Whether a note read at ``hz`` is a tone above the range read at a fraction of it: the
    spectrum's strongest point lies above :data:`TOP_HZ` (one look, most notes end here) and so
    does k x ``hz`` for the :func:`common_multiple` k of its partials."""
    strongest_hz = float(np.argmax(spectrum.magnitude)) * spectrum.bin_hz
    return strongest_hz > TOP_HZ and common_multiple(spectrum, hz) * hz > TOP_HZ


def common_multiple(spectrum: Spectrum, hz: float) -> int:
    """The largest k such that every real partial among the harmonics of ``hz`` (up to
    :data:`ABOVE_RANGE_MAX_HZ`: the spectrum's peak within a quarter of ``hz`` of each, standing
    :data:`PARTIALS_DB` above its band and within :data:`HEARD_DB` of the strongest point of the
    spectrum) is on a multiple of k: 1 when the first harmonic is real (a note heard at ``hz``) or
    none is, k when the note's partials are those of k x ``hz``."""
    harmonics = np.arange(1, int(spectrum.top_hz(ABOVE_RANGE_MAX_HZ) // hz) + 1)
    if harmonics.size < 2:
        return 1
    peak, inside = spectrum.peaks(harmonics * hz, 0.25 * hz)
    heard = spectrum.magnitude[peak] >= float(spectrum.magnitude.max()) * 10 ** (-HEARD_DB / 20)
    real = harmonics[inside & heard & spectrum.stands_out(peak, harmonics * hz, hz)]
    return int(np.gcd.reduce(real)) if real.size else 1


def _partial_strengths(spectrum: Spectrum, hz: np.ndarray, spacing: float) -> np.ndarray:
    """The power of the partial at each frequency of ``hz`` (the spectrum's peak within a tenth of
    ``spacing``), 0 where no peak stands :data:`PARTIALS_DB` above the median of the band ``spacing``
    wide around it."""
    peak, inside = spectrum.peaks(hz, 0.1 * spacing)
    real = inside & spectrum.stands_out(peak, hz, spacing)
    return np.where(real, spectrum.magnitude[peak].astype(np.float64) ** 2, 0.0)


def partials_fundamental(spectrum: Spectrum, hz: float) -> float | None:
    """The fundamental (Hz) of a note read at ``hz`` from its lowest partials in ``spectrum``.

    Each harmonic's peak (the spectrum's highest point within a tenth of ``hz`` of it, placed
    between bins by a parabola through the log magnitudes) that stands :data:`PARTIALS_DB` above
    its band counts, in cents from its harmonic of ``hz``; they are fitted as ``a + b k^2`` (``b``
    >= 0: a stiff string's stretch; with fewer than three partials, their mean) and the fit's value
    at the first partial is the note. None when no partial stands out, the fit misses by more than
    :data:`PARTIALS_FIT_CENTS` or lands more than :data:`PARTIALS_REACH_CENTS` from ``hz``.
    """
    top = spectrum.top_hz(PARTIALS_MAX_HZ)
    harmonics = np.arange(1, min(PARTIALS_UP_TO, int(top // hz)) + 1)
    if harmonics.size == 0:
        return None
    mag = spectrum.magnitude
    peak, inside = spectrum.peaks(harmonics * hz, 0.1 * hz)
    peak = np.clip(peak, 1, mag.size - 2)
    cents = 1200.0 * np.log2(spectrum.peak_hz(peak) / (harmonics * hz))
    keep = inside & spectrum.stands_out(peak, harmonics * hz, hz)
    k, cents = harmonics[keep].astype(np.float64), cents[keep]
    if k.size == 0:
        return None
    fit = np.array([float(np.mean(cents)), 0.0])
    if k.size >= 3:
        stretched = np.linalg.lstsq(np.stack([np.ones_like(k), k * k], axis=1), cents, rcond=None)[0]
        fit = stretched if stretched[1] > 0 else fit
    at_first = float(fit[0] + fit[1])
    misses = float(np.sqrt(np.mean((cents - fit[0] - fit[1] * k * k) ** 2)))
    if misses > PARTIALS_FIT_CENTS or abs(at_first) > PARTIALS_REACH_CENTS:
        return None
    return float(hz * 2 ** (at_first / 1200))


def inharmonic_partial(spectrum: Spectrum, hz: float) -> float | None:
    """The lowest strong partial (Hz) of a note read at ``hz`` whose partials are no harmonic series
    of ``hz``; None for a harmonic note, or when that partial lies more than
    :data:`INHARMONIC_REACH_CENTS` from ``hz``.

    Partials are the spectrum's peaks between :data:`FMIN_HZ` and :data:`SIEVE_MAX_HZ` standing
    :data:`INHARMONIC_PROMINENCE_DB` above their surroundings and within :data:`INHARMONIC_DB` of
    the strongest; one is off the harmonics when it lies more than :data:`INHARMONIC_OFF` x ``hz``
    and :data:`INHARMONIC_SHARE` of its harmonic's frequency from the nearest harmonic of ``hz``.
    """
    peaks = spectrum.partials(FMIN_HZ, SIEVE_MAX_HZ, INHARMONIC_DB, INHARMONIC_PROMINENCE_DB)
    if peaks.size < 2:
        return None
    partials = spectrum.peak_hz(peaks)
    ratios = partials / hz
    harmonic = np.maximum(np.round(ratios), 1.0)
    off = np.abs(ratios - harmonic) > np.maximum(INHARMONIC_OFF, INHARMONIC_SHARE * harmonic)
    lowest = float(partials[0])
    if not off.any() or abs(1200.0 * math.log2(lowest / hz)) > INHARMONIC_REACH_CENTS:
        return None
    return lowest


def repeats_at(notes: np.ndarray, sample_rate: int, hz: float) -> tuple[np.ndarray, np.ndarray]:
    """How clearly each note of ``notes`` (n, samples) repeats at the period of ``hz``, and where:
    ``(clarity (n,), semitones (n,))``, the median over the loud frames of its first
    :data:`WINDOW_SECONDS` of the normalised autocorrelation's peak within 3 % of that period,
    and the pitch of the peak's lag from ``hz`` (0 where a note is silent). A note that YIN reads
    an octave low because of a faint sub-octave still repeats clearly at its own period."""
    frames, energy, sr = _framed(notes, sample_rate)
    found = np.array([_repeats(frames[row], energy[row], sr, hz) for row in range(len(frames))])
    return found[:, 0], found[:, 1]


def octave_above(note: np.ndarray, sample_rate: int, hz: float) -> float | None:
    """The pitch (Hz) an octave above ``hz`` where ``note`` (1, samples), read at ``hz``, repeats at
    half that period within :data:`SAME_CLARITY` as clearly as at the period (and at least
    :data:`CLARITY`): YIN took the longer period; else None."""
    frames, energy, sr = _framed(note, sample_rate)
    return _octave_above(frames[0], energy[0], sr, hz)


def _framed(notes: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Notes (n, samples) as :func:`detect_pitches` sees them: the frames (n, f, FRAME) of their
    analysis window at the analysis rate, each frame's energy (n, f), and that rate."""
    audio, sr = _analysis_window(np.atleast_2d(np.asarray(notes, dtype=np.float32)), sample_rate)
    frames = _frames(audio)
    return frames, np.einsum("...i,...i->...", frames, frames), sr


def _loud(energy: np.ndarray) -> np.ndarray:
    """Which frames (by their ``energy``) lie within :data:`LOUD_DB` of the loudest."""
    return energy >= energy.max(axis=-1, keepdims=True) * 10 ** (-LOUD_DB / 10)


def _repeats(frames: np.ndarray, energy: np.ndarray, sr: int, hz: float) -> tuple[float, float]:
    """:func:`repeats_at` for one note's frames (f, FRAME) and their ``energy`` (f,)."""
    if not float(energy.max()) > 0:
        return 0.0, 0.0
    lags, heights = _peaks_near(frames[_loud(energy)], sr / hz)
    return float(np.median(heights)), float(12.0 * np.log2(sr / hz / np.median(lags)))


def _octave_above(frames: np.ndarray, energy: np.ndarray, sr: int, hz: float) -> float | None:
    """:func:`octave_above` for one note's frames (f, FRAME) and their ``energy`` (f,)."""
    own, _ = _repeats(frames, energy, sr, hz)
    up, semitones = _repeats(frames, energy, sr, 2 * hz)
    if up >= max(CLARITY, own - SAME_CLARITY) and abs(semitones) <= OCTAVE_SLIP_SEMITONES:
        hz_up = float(2 * hz * 2 ** (semitones / 12))
        return hz_up if hz_up <= FMAX_HZ else None
    return None


def fold_octaves(midi: np.ndarray) -> np.ndarray:
    """Frame pitches with YIN's octave slips folded down: when the lowest pitch that at least a
    quarter of the frames agree on explains three quarters of them up to whole octaves (an organ
    or a flute whose second harmonic wins some frames), those frames are moved down onto it."""
    for low in np.sort(midi):
        offset = midi - low
        octaves = np.round(offset / 12.0)
        own = np.abs(offset) <= 0.5
        related = (octaves >= 0) & (np.abs(offset - 12.0 * octaves) <= 0.5)
        if own.sum() >= 0.25 * midi.size:
            if related.sum() >= 0.75 * midi.size:
                return np.where(related, midi - 12.0 * octaves, midi)
            break
    return midi


def _summarise(frames: np.ndarray, periods: np.ndarray, clarity: np.ndarray, energy: np.ndarray,
               sr: int) -> tuple[Pitch, int]:
    """One note's pitch from its frames' YIN periods and their clarity (see the module's rule),
    and the frame it was measured on."""
    if not float(energy.max()) > 0:
        return Pitch.unpitched(), 0
    loud = _loud(energy)
    median_clarity = float(np.median(clarity[loud]))
    clear = loud & (clarity >= CLARITY)
    if clear.sum() < max(1, math.ceil(MIN_VOICED_SHARE * loud.sum())):
        return Pitch.unpitched(median_clarity), 0
    midi = fold_octaves(hz_to_midi(sr / periods[clear]))
    q25, q50, q75 = np.percentile(midi, [25, 50, 75])
    if 100.0 * (q75 - q25) > MAX_SPREAD_CENTS:  # unless most frames agree and a few read a harmonic
        agree = np.abs(midi - q50) <= MAJORITY_CENTS / 100.0
        if agree.sum() < MAJORITY_SHARE * midi.size or agree.sum() < MIN_VOICED_SHARE * loud.sum():
            return Pitch.unpitched(median_clarity), 0
        clear[np.flatnonzero(clear)[~agree]] = False
        midi = midi[agree]
        q50 = float(np.median(midi))
    # refine on the clear frame nearest the median pitch, at the period of that pitch
    pick = int(np.argmin(np.abs(midi - q50)))
    row = np.flatnonzero(clear)[pick]
    periods = periods.copy()
    periods[row] = sr / float(midi_to_hz(midi[pick]))
    hz = sr / _refine_period(frames[row], float(periods[row]))
    if hz < LOWEST_HZ:
        return Pitch.unpitched(median_clarity), 0
    return Pitch.from_hz(hz, median_clarity), int(row)  # above FMAX_HZ: detect_pitches looks below it


def detect_pitch(note: np.ndarray, sample_rate: int) -> Pitch:
    """The pitch of one note (mono, starting at its onset)."""
    return detect_pitches(np.asarray(note)[None, :] if np.ndim(note) == 1 else note, sample_rate)[0]
