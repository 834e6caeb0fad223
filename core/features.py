"""Audio features: mel spectrograms and MFCCs, the same function at training and at run time.

Pure numpy/scipy (librosa is only a test reference), vectorised over a batch ``(n, samples)``.
The definitions reproduce the original project (``librosa==0.8.1``), see :func:`mel_features`,
:func:`mel_db_features` and :func:`mfcc_features`; the numbers match librosa 0.11 called with
the same arguments to float32 precision.

Derived constants (mel filterbank, window) are cached per configuration with
``functools.lru_cache``; they are pure functions of the configuration and read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Literal

import numpy as np
import scipy.fft
import scipy.sparse
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

from .errors import AudioError, ConfigError
from .names import FEATURE_NAMES

PITCHED_FEATURES = ("mel_db_pitch",)  # features that take the note's fundamental as well
PadMode = Literal["reflect", "constant"]
PAD_MODES: tuple[PadMode, ...] = ("reflect", "constant")


@dataclass(frozen=True)
class FeatureConfig:
    """Feature settings; the defaults are the original project's.

    ``pad_mode`` is the padding of ``center=True`` framing: the original project used
    librosa 0.8.1, whose default was ``"reflect"`` (librosa >= 0.10 defaults to
    ``"constant"``). ``db_floor`` only applies to the ``mel_db`` feature and the
    :mod:`~deepdiva.core.metrics` built on it.
    """

    sample_rate: int = 44100
    n_mels: int = 128
    mel_n_fft: int = 2048
    mel_hop_length: int = 512
    n_mfcc: int = 13
    mfcc_n_mels: int = 128
    mfcc_n_fft: int = 2048
    mfcc_hop_length: int = 1024
    fmin: float = 50.0
    fmax: float = 15000.0
    center: bool = True
    pad_mode: PadMode = "reflect"
    amin: float = 1e-10
    top_db: float = 80.0
    db_floor: float = -80.0

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_mels", "mel_n_fft", "mel_hop_length", "n_mfcc",
                     "mfcc_n_mels", "mfcc_n_fft", "mfcc_hop_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise ConfigError(f"feature setting {name}={value!r} must be a positive integer")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ConfigError(f"feature band fmin={self.fmin}, fmax={self.fmax} Hz must satisfy "
                              f"0 <= fmin < fmax <= sample_rate/2 = {self.sample_rate / 2}")
        if self.n_mfcc > self.mfcc_n_mels:
            raise ConfigError(f"n_mfcc={self.n_mfcc} cannot exceed mfcc_n_mels={self.mfcc_n_mels}")
        if self.pad_mode not in PAD_MODES:
            raise ConfigError(f"pad_mode={self.pad_mode!r} is not one of {', '.join(PAD_MODES)}")
        if not self.amin > 0 or not self.top_db > 0 or not self.db_floor < 0:
            raise ConfigError("feature settings need amin > 0, top_db > 0 and db_floor < 0 "
                              f"(got {self.amin}, {self.top_db}, {self.db_floor})")

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for the model card)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        """Inverse of :meth:`to_dict`; missing keys take the defaults, unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown feature setting(s) {', '.join(unknown)}; "
                              f"expected some of {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except TypeError as exc:  # e.g. a string where a number belongs
            raise ConfigError(f"invalid feature settings {data}: {exc}") from exc


# --------------------------------------------------------------------------- cached constants

def hz_to_mel(hz: ArrayLike) -> np.ndarray:
    """Slaney mel scale (librosa ``htk=False``): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    lin = hz / f_sp
    log = min_log_hz / f_sp + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log, lin)


def mel_to_hz(mel: ArrayLike) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-normalised triangular mel filterbank, float32 ``(n_mels, 1 + n_fft//2)``.

    Same as ``librosa.filters.mel(sr=..., n_fft=..., n_mels=..., fmin=..., fmax=...)``
    (``htk=False``, ``norm="slaney"``): each triangle has unit area in Hz.
    """
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return _readonly(weights.astype(np.float32))


@lru_cache(maxsize=16)
def _mel_projection(sample_rate: int, n_fft: int, n_mels: int, fmin: float,
                    fmax: float) -> tuple[int, int, scipy.sparse.csr_array]:
    """``(lo, hi, W)``: the FFT bins any filter uses and the filterbank on them as a sparse matrix.

    Sparse, not BLAS: each bin feeds at most two filters, and OpenBLAS threads that spin
    between small calls slow the surrounding FFT work badly on a busy machine.
    """
    fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
    used = np.flatnonzero(fb.any(axis=0))
    lo, hi = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
    return lo, hi, scipy.sparse.csr_array(fb[:, lo:hi])


@lru_cache(maxsize=16)
def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window (``scipy.signal.get_window("hann", n, fftbins=True)``), float32."""
    return _readonly((0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32))


@lru_cache(maxsize=16)
def _full_scale_reference(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> float:
    fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax).astype(np.float64)
    # |X| of a unit sine on an FFT bin is |W(j)| / 2 at offsets j from it (W = window's DFT)
    w_spec = np.abs(np.fft.fft(hann_window(n_fft).astype(np.float64))) ** 2 / 4.0
    reach = 2
    padded = np.pad(fb, ((0, 0), (reach, reach)))
    width = fb.shape[1]
    response = sum(w_spec[j % n_fft] * padded[:, reach + j:reach + j + width]
                   for j in range(-reach, reach + 1))
    return float(response.max())


def full_scale_reference(cfg: FeatureConfig) -> float:
    """The 0 dB of ``mel_db``: the largest mel power a full-scale (amplitude 1) sine on an FFT bin
    can produce with the ``mel`` settings.

    The Slaney filters have unit area, so narrow (low, < 1 kHz) bands peak highest: a full-scale
    sine below 1 kHz reads about 0 dB, higher ones less (-8 dB at 5 kHz, -10 dB at 12 kHz).
    """
    return _full_scale_reference(cfg.sample_rate, cfg.mel_n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)


# --------------------------------------------------------------------------- spectra

def as_batch(audio: np.ndarray, min_samples: int = 1) -> np.ndarray:
    """Validate audio and return a C-contiguous float32 batch ``(n, samples)``.

    A 1-D array is a batch of one clip; float64 is cast to float32 (features are float32).
    """
    a = np.asarray(audio)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise AudioError(f"audio must be (samples,) or (clips, samples); got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise AudioError(f"audio must be floating point samples in [-1, 1]; got dtype {a.dtype} "
                         "(convert integer PCM by dividing by its full scale, e.g. 32768)")
    if a.shape[0] == 0:
        raise AudioError("audio batch is empty")
    if a.shape[1] < min_samples:
        raise AudioError(f"audio has {a.shape[1]} samples; at least {min_samples} are needed")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise AudioError("audio contains NaN or infinite samples; check the file or the renderer")
    return a


def n_frames(n_samples: int, hop_length: int) -> int:
    """Number of centred STFT frames: ``1 + n_samples // hop_length``."""
    return 1 + n_samples // hop_length


def stft_chunks(audio: np.ndarray, n_fft: int, hop: int, center: bool, pad_mode: PadMode,
                chunk: int = 1 << 16, rows_together: bool = False
                ) -> Iterator[tuple[np.ndarray, slice, slice]]:
    """The STFT of a float32 batch ``(n, samples)``, chunk by chunk: ``(spec, rows, frames)``.

    ``spec`` holds the complex ``rfft(hann * frame)`` spectra of the clips ``rows`` and STFT
    frames ``frames``, shape ``(clips, frames, 1 + n_fft//2)``. Chunks of about ``chunk``
    samples (256 KB of float32 by default) keep the temporaries in cache and out of the
    allocator's mmap path, whose page faults would otherwise double the time of a single clip.
    ``rows_together`` puts every clip in each chunk, for sums across clips of the same frames.
    """
    if center:
        audio = np.pad(audio, ((0, 0), (n_fft // 2, n_fft // 2)), mode=pad_mode)
    frames = sliding_window_view(audio, n_fft, axis=-1)[:, ::hop]
    n_clips, n_fr = frames.shape[:2]
    window = hann_window(n_fft)
    if rows_together:
        clip_step = n_clips
        frame_step = max(1, min(n_fr, chunk // (n_fft * n_clips)))
    else:
        frame_step = max(1, min(n_fr, chunk // n_fft))
        clip_step = max(1, chunk // (n_fr * n_fft))
    for i in range(0, n_clips, clip_step):
        rows = slice(i, min(i + clip_step, n_clips))
        for j in range(0, n_fr, frame_step):
            cols = slice(j, min(j + frame_step, n_fr))
            yield scipy.fft.rfft(frames[rows, cols] * window, axis=-1), rows, cols


def stft_map(audio: np.ndarray, n_fft: int, hop: int, center: bool, pad_mode: PadMode,
             fn: Callable[[np.ndarray, slice, slice], np.ndarray], chunk: int = 1 << 16) -> np.ndarray:
    """Apply ``fn(spec, rows, frames)`` to each chunk of :func:`stft_chunks` and assemble the
    results, each ``(clips, frames, ...)``, into ``(n, n_frames, ...)``."""
    out: np.ndarray | None = None
    for spec, rows, cols in stft_chunks(audio, n_fft, hop, center, pad_mode, chunk):
        part = fn(spec, rows, cols)
        if out is None:
            n_fr = n_frames(audio.shape[1], hop) if center else 1 + (audio.shape[1] - n_fft) // hop
            out = np.empty((audio.shape[0], n_fr) + part.shape[2:], dtype=part.dtype)
        out[rows, cols] = part
    assert out is not None  # audio has at least one clip and one frame
    return out


def _power(spec: np.ndarray) -> np.ndarray:
    """``|spec|^2`` (``np.abs`` is faster than ``real^2 + imag^2`` on the strided views)."""
    mag = np.abs(spec)
    return np.multiply(mag, mag, out=mag)


def mel_power(audio: np.ndarray, cfg: FeatureConfig, *, n_fft: int | None = None,
              hop_length: int | None = None, n_mels: int | None = None) -> np.ndarray:
    """Mel power spectrogram, float32 ``(n, n_mels, frames)`` (librosa's layout).

    ``librosa.feature.melspectrogram(y, sr, n_fft, hop_length, n_mels, fmin, fmax,
    center=cfg.center, pad_mode=cfg.pad_mode)``; the defaults are the ``mel`` settings.
    """
    n_fft = cfg.mel_n_fft if n_fft is None else n_fft
    hop = cfg.mel_hop_length if hop_length is None else hop_length
    n_mels = cfg.n_mels if n_mels is None else n_mels
    audio = as_batch(audio, min_samples=n_fft // 2 + 1 if cfg.center else n_fft)
    lo, hi, weights = _mel_projection(cfg.sample_rate, n_fft, n_mels, cfg.fmin, cfg.fmax)

    def project(spec: np.ndarray, _rows: slice, _frames: slice) -> np.ndarray:
        clips, frames, _ = spec.shape
        power = _power(spec[..., lo:hi]).reshape(clips * frames, hi - lo)
        return (weights @ power.T).T.reshape(clips, frames, n_mels)

    time_major = stft_map(audio, n_fft, hop, cfg.center, cfg.pad_mode, project)
    return np.ascontiguousarray(time_major.transpose(0, 2, 1))


def power_to_db(power: np.ndarray, ref: float | np.ndarray = 1.0, amin: float = 1e-10,
                top_db: float | None = 80.0) -> np.ndarray:
    """``librosa.power_to_db`` per clip: ``ref`` and the ``top_db`` threshold apply to each
    item of axis 0 on its own (``ref`` may be an array broadcasting against ``power``)."""
    db = 10.0 * np.log10(np.maximum(power, np.float32(amin)))
    db -= (10.0 * np.log10(np.maximum(ref, amin))).astype(db.dtype)
    if top_db is not None:
        peak = db.max(axis=tuple(range(1, db.ndim)), keepdims=True)
        db = np.maximum(db, peak - np.float32(top_db))
    return db


def _to_image(x: np.ndarray) -> np.ndarray:
    """``(n, mels, T)`` -> ``(n, mels, T, 1)`` with low frequencies in the last row."""
    return np.ascontiguousarray(x[:, ::-1, :, None], dtype=np.float32)


def mel_features(audio: np.ndarray, cfg: FeatureConfig | None = None) -> np.ndarray:
    """The original project's CNN input: per-clip normalised dB mel spectrogram.

    ``power_to_db(mel, ref=max of the clip, top_db=80)`` (so values lie in [-80, 0] dB),
    then each clip min/max-scaled to [0, 1], frequency axis flipped (lowest band = last row)
    and a channel axis added. Returns float32 ``(n, n_mels, frames, 1)``; ``(n, 128, 173, 1)``
    for 2 s at 44.1 kHz. A clip whose spectrogram is constant (e.g. silence) gives zeros.
    """
    cfg = cfg or FeatureConfig()
    power = mel_power(audio, cfg)
    ref = power.max(axis=(1, 2), keepdims=True)
    db = power_to_db(power, ref=ref, amin=cfg.amin, top_db=cfg.top_db)
    lo = db.min(axis=(1, 2), keepdims=True)
    span = db.max(axis=(1, 2), keepdims=True) - lo
    scaled = (db - lo) / np.where(span > 0, span, np.float32(1.0))
    return _to_image(scaled)


def mel_db(audio: np.ndarray, cfg: FeatureConfig | None = None) -> np.ndarray:
    """Mel spectrogram in dB re :func:`full_scale_reference`, clipped to ``[db_floor, 0]``;
    float32 ``(n, n_mels, frames)`` (low bands first). No per-clip normalisation."""
    cfg = cfg or FeatureConfig()
    db = power_to_db(mel_power(audio, cfg), ref=full_scale_reference(cfg), amin=cfg.amin, top_db=None)
    return np.clip(db, np.float32(cfg.db_floor), np.float32(0.0), out=db)


def mel_db_features(audio: np.ndarray, cfg: FeatureConfig | None = None) -> np.ndarray:
    """Loudness-aware variant of :func:`mel_features`: a fixed dB range instead of per-clip scaling.

    :func:`mel_db` mapped linearly from ``[db_floor, 0]`` dB to [0, 1] (``1 - db/db_floor``),
    so a quieter sound gives a darker image. Same layout as :func:`mel_features`.
    """
    cfg = cfg or FeatureConfig()
    return _to_image(1.0 - mel_db(audio, cfg) / np.float32(cfg.db_floor))


@lru_cache(maxsize=16)
def _band_peaks(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """The mel filterbank with each filter scaled to a peak of 1, float32 ``(n_mels, bins)``."""
    fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
    peak = fb.max(axis=1, keepdims=True)
    return _readonly((fb / np.where(peak > 0, peak, 1.0)).astype(np.float32))


HARMONIC_WEIGHT = 0.5  # the comb marks the fundamental with 1 and its overtones with 0.5


def harmonic_comb(f0_hz: np.ndarray, cfg: FeatureConfig | None = None) -> np.ndarray:
    """Where a note's harmonics fall on the mel bands: float32 ``(n, n_mels)`` in [0, 1].

    Band ``b`` holds the largest response of its (peak-normalised) mel filter to a harmonic
    ``k * f0`` (weight 1 for the fundamental, :data:`HARMONIC_WEIGHT` above it); all zeros for an
    unpitched note (``f0`` NaN). It tells a network where the harmonics of the detected note lie,
    so it can read the spectrum relative to the note.
    """
    cfg = cfg or FeatureConfig()
    f0 = np.atleast_1d(np.asarray(f0_hz, dtype=np.float64))
    bands = _band_peaks(cfg.sample_rate, cfg.mel_n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
    bin_hz = cfg.sample_rate / cfg.mel_n_fft
    out = np.zeros((f0.size, cfg.n_mels), dtype=np.float32)
    for row, f in enumerate(f0):
        if not (np.isfinite(f) and f > 0):
            continue
        harmonics = f * np.arange(1, int(cfg.fmax // f) + 1)
        if harmonics.size == 0:
            continue
        bins = np.rint(harmonics / bin_hz).astype(np.int64)
        weights = np.full(harmonics.size, HARMONIC_WEIGHT, dtype=np.float32)
        weights[0] = 1.0
        out[row] = (bands[:, bins] * weights).max(axis=1)
    return out


def mel_db_pitch_features(audio: np.ndarray, cfg: FeatureConfig | None = None,
                          f0_hz: np.ndarray | None = None) -> np.ndarray:
    """:func:`mel_db_features` plus a second channel: the :func:`harmonic_comb` of each note's
    fundamental (``f0_hz``, NaN when unpitched; detected with :mod:`~deepdiva.core.pitch` when not
    given), the same in every frame. float32 ``(n, n_mels, frames, 2)``."""
    cfg = cfg or FeatureConfig()
    image = mel_db_features(audio, cfg)
    if f0_hz is None:
        from .pitch import detect_pitches

        f0_hz = np.array([np.nan if p.hz is None else p.hz for p in detect_pitches(audio, cfg.sample_rate)])
    comb = harmonic_comb(f0_hz, cfg)
    if comb.shape[0] != image.shape[0]:
        raise AudioError(f"{comb.shape[0]} fundamentals for {image.shape[0]} clips")
    comb_image = np.broadcast_to(comb[:, ::-1, None, None], image.shape)
    return np.concatenate([image, comb_image], axis=-1)


def mfcc_features(audio: np.ndarray, cfg: FeatureConfig | None = None) -> np.ndarray:
    """The original project's LSTM input before scaling: MFCCs, time-major.

    ``librosa.feature.mfcc(y, sr, n_mfcc=13, n_fft=2048, hop_length=1024, fmin, fmax)``
    transposed: orthonormal DCT-II over the bands of ``power_to_db(mel power with 128 bands,
    ref=1, top_db=80)``, first ``n_mfcc`` coefficients. Returns float32 ``(n, frames, n_mfcc)``;
    ``(n, 87, 13)`` for 2 s at 44.1 kHz. Scale with
    :class:`~deepdiva.core.scaler.MinMaxScaler` fitted on the training set.
    """
    cfg = cfg or FeatureConfig()
    power = mel_power(audio, cfg, n_fft=cfg.mfcc_n_fft, hop_length=cfg.mfcc_hop_length,
                      n_mels=cfg.mfcc_n_mels)
    db = power_to_db(power, ref=1.0, amin=cfg.amin, top_db=cfg.top_db)
    coeffs = scipy.fft.dct(db, type=2, norm="ortho", axis=1)[:, :cfg.n_mfcc, :]
    return np.ascontiguousarray(coeffs.transpose(0, 2, 1))


_EXTRACTORS: dict[str, Callable[[np.ndarray, FeatureConfig | None], np.ndarray]] = {
    "mel": mel_features,
    "mel_db": mel_db_features,
    "mfcc": mfcc_features,
}


def extract(name: str, audio: np.ndarray, cfg: FeatureConfig | None = None,
            f0_hz: np.ndarray | None = None) -> np.ndarray:
    """Compute feature ``name`` (one of :data:`FEATURE_NAMES`) for a batch of audio.

    ``f0_hz``: each clip's fundamental (NaN: unpitched) for the features that use it
    (:data:`PITCHED_FEATURES`), when already known; the others ignore it.
    """
    if name in PITCHED_FEATURES:
        return mel_db_pitch_features(audio, cfg, f0_hz)
    try:
        fn = _EXTRACTORS[name]
    except KeyError:
        raise ConfigError(f"unknown feature {name!r}; choose one of {', '.join(FEATURE_NAMES)}") from None
    return fn(audio, cfg)


def _n_frames_for(n_samples: int, n_fft: int, hop_length: int, center: bool) -> int:
    return n_frames(n_samples, hop_length) if center else 1 + (n_samples - n_fft) // hop_length


def feature_shape(name: str, n_samples: int, cfg: FeatureConfig | None = None) -> tuple[int, ...]:
    """Shape of one clip's feature (without the batch axis), e.g. ``(128, 173, 1)`` for "mel"."""
    cfg = cfg or FeatureConfig()
    if name in ("mel", "mel_db", "mel_db_pitch"):
        channels = 2 if name == "mel_db_pitch" else 1
        return (cfg.n_mels, _n_frames_for(n_samples, cfg.mel_n_fft, cfg.mel_hop_length, cfg.center), channels)
    if name == "mfcc":
        return (_n_frames_for(n_samples, cfg.mfcc_n_fft, cfg.mfcc_hop_length, cfg.center), cfg.n_mfcc)
    raise ConfigError(f"unknown feature {name!r}; choose one of {', '.join(FEATURE_NAMES)}")
