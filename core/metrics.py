"""Distances between batches of audio, and parameter errors, for evaluation and search refinement.

All audio distances take a batch ``a`` of shape ``(n, samples)`` and a reference ``b`` of shape
``(n, samples)`` or one clip ``(samples,)`` / ``(1, samples)`` compared with every row of ``a``;
they return float64 ``(n,)``, 0 for identical audio. Pure numpy/scipy.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import AudioError, ConfigError, ParameterValueError
from .features import FeatureConfig, as_batch, mel_db, mfcc_features, stft_chunks, stft_map

DEFAULT_FFT_SIZES = (2048, 1024, 512, 256)
MAG_FLOOR = 1e-7  # floor on |X|^2, as in ParallelWaveGAN's STFT loss
# Samples per STFT chunk when scoring candidates against a cached target: larger than
# ``stft_chunks``' default, because a search scores its candidates on two threads at once, and
# fewer, longer numpy calls mean fewer hand-overs of the GIL (measured: 1.8x on two threads
# instead of 1.2x, and a little faster on one).
CANDIDATE_CHUNK = 1 << 18


def _pair(a: np.ndarray, b: np.ndarray, min_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Validate a batch and its reference; the reference has 1 row or as many as ``a``."""
    a = as_batch(a, min_samples)
    b = as_batch(b, min_samples)
    if a.shape[1] != b.shape[1]:
        raise AudioError(f"cannot compare audio of {a.shape[1]} and {b.shape[1]} samples; "
                         "trim or pad both to the same length")
    if b.shape[0] not in (1, a.shape[0]):
        raise AudioError(f"reference batch has {b.shape[0]} clips; expected 1 or {a.shape[0]}")
    return a, b


def stft_magnitude(audio: np.ndarray, n_fft: int, hop_length: int | None = None,
                   floor: float = MAG_FLOOR) -> np.ndarray:
    """``sqrt(max(|STFT|^2, floor))``, float32 ``(n, frames, 1 + n_fft//2)``.

    Periodic Hann window of ``n_fft``, centred frames with reflect padding (``torch.stft``
    defaults), ``hop_length`` defaults to ``n_fft // 4``.
    """
    hop = n_fft // 4 if hop_length is None else hop_length
    audio = as_batch(audio, min_samples=n_fft // 2 + 1)
    return stft_map(audio, n_fft, hop, True, "reflect",
                    lambda spec, _rows, _frames: _magnitude(spec, floor))


def _magnitude(spec: np.ndarray, floor: float) -> np.ndarray:
    """``max(|X|, sqrt(floor))`` == ``sqrt(max(|X|^2, floor))``."""
    mag = np.abs(spec)
    return np.maximum(mag, np.float32(np.sqrt(floor)), out=mag)


@dataclass(frozen=True)
class _Resolution:
    n_fft: int
    hop: int
    mag: np.ndarray  # (m, frames, bins) float32
    log_mag: np.ndarray
    norm: np.ndarray  # (m,) float64, Frobenius norm of mag
    noise: np.ndarray | None = None  # (bins,) float32: the target's noise floor, under which nothing counts


class SpectralTarget:
    """Multi-resolution STFT distance to a fixed target, with the target's spectra cached.

    ``SpectralTarget(target).distance(candidates)`` equals
    ``multires_stft_distance(candidates, target)``; use it inside a search loop. ``target`` is
    one clip (compared with every candidate) or a batch matched row by row.

    ``noise``: the target recording's noise floor alone (its hiss or room tone after the note or
    before it: :func:`~deepdiva.core.envelope.noise_floor`), for one target clip. Its mean power
    per frequency bin (at each resolution) then floors the magnitudes of the target and of every
    candidate, as recording a candidate in the same room would: what lies under the floor does not
    count, so a candidate need not make hiss to be close, nor may it win by filling the floor with
    a long tail.
    """

    def __init__(self, target: np.ndarray, fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
                 hop_ratio: float = 0.25, floor: float = MAG_FLOOR, noise: np.ndarray | None = None) -> None:
        self.fft_sizes = _check_resolutions(fft_sizes, hop_ratio)
        self.hop_ratio = float(hop_ratio)
        self.floor = float(floor)
        self.target = as_batch(target, min_samples=max(self.fft_sizes) // 2 + 1)
        if noise is not None and self.target.shape[0] != 1:
            raise AudioError(f"a noise floor is one target's; got {self.target.shape[0]} target clips")
        self.noise = None if noise is None else as_batch(noise, min_samples=max(self.fft_sizes) // 2 + 1)
        self._resolutions = [self._analyse(n_fft) for n_fft in self.fft_sizes]
        self._subsets: dict[tuple[tuple[int, ...], float], SpectralTarget] = {}

    def _analyse(self, n_fft: int) -> _Resolution:
        hop = _hop(n_fft, self.hop_ratio)
        mag = stft_magnitude(self.target, n_fft, hop, self.floor)
        noise = None
        if self.noise is not None:  # the floor's mean power per bin
            power = np.square(stft_magnitude(self.noise[:1], n_fft, hop, self.floor)[0], dtype=np.float64)
            noise = np.sqrt(np.mean(power, axis=0)).astype(np.float32)
            mag = np.maximum(mag, noise, out=mag)
        norm = np.sqrt(np.einsum("ijk,ijk->i", mag, mag, dtype=np.float64))
        return _Resolution(n_fft, hop, mag, np.log(mag), norm, noise)

    def at_sizes(self, fft_sizes: Sequence[int], hop_ratio: float | None = None) -> SpectralTarget:
        """The same target's distance at ``fft_sizes`` only (and ``hop_ratio``, default its own),
        reusing the spectra analysed already."""
        hop_ratio = self.hop_ratio if hop_ratio is None else float(hop_ratio)
        sizes = _check_resolutions(fft_sizes, hop_ratio)
        if (sizes, hop_ratio) in self._subsets:  # a match asks for the same one several times
            return self._subsets[sizes, hop_ratio]
        analysed = {res.n_fft: res for res in self._resolutions} if hop_ratio == self.hop_ratio else {}
        subset = copy.copy(self)
        subset.fft_sizes, subset.hop_ratio, subset._subsets = sizes, hop_ratio, {}
        subset._resolutions = [analysed.get(n) or subset._analyse(n) for n in sizes]
        self._subsets[sizes, hop_ratio] = subset
        return subset

    @property
    def n_samples(self) -> int:
        return self.target.shape[1]

    def noise_dbfs(self) -> float | None:
        """The RMS level (dB re full scale) of the noise floor looked through, or None without one."""
        if self.noise is None:
            return None
        return float(10.0 * np.log10(np.mean(np.square(self.noise, dtype=np.float64)) + 1e-20))

    def distance(self, candidates: np.ndarray) -> np.ndarray:
        """Mean over resolutions of spectral convergence + mean log-magnitude L1, ``(n,)``."""
        cand, _ = _pair(candidates, self.target, max(self.fft_sizes) // 2 + 1)
        total = np.zeros(cand.shape[0], dtype=np.float64)
        for res in self._resolutions:
            sums = np.zeros((cand.shape[0], 2), dtype=np.float64)
            for spec, rows, frames in stft_chunks(cand, res.n_fft, res.hop, True, "reflect", CANDIDATE_CHUNK):
                ref = slice(0, 1) if res.mag.shape[0] == 1 else rows
                mag = _magnitude(spec, self.floor)
                if res.noise is not None:
                    np.maximum(mag, res.noise, out=mag)
                sums[rows] += _diff_sums(mag, res.mag[ref, frames], res.log_mag[ref, frames])
            total += _combine(sums, res.norm, res.mag[0].size)
        return total / len(self._resolutions)

    def distance_at_gains(self, candidate: np.ndarray, gains: np.ndarray | Sequence[float]) -> np.ndarray:
        """``distance(gains[:, None] * candidate)`` for one clip, ``(len(gains),)``, from one STFT
        of the clip per resolution (the STFT is linear: only the magnitude floor sees the gain)."""
        cand, _ = _pair(candidate, self.target[:1], max(self.fft_sizes) // 2 + 1)
        if cand.shape[0] != 1:
            raise AudioError(f"distance_at_gains takes one clip, got {cand.shape[0]}")
        g = np.asarray(gains, dtype=np.float32)
        total = np.zeros(g.size, dtype=np.float64)
        for res in self._resolutions:
            floor = np.float32(np.sqrt(self.floor)) if res.noise is None else np.maximum(res.noise, np.sqrt(self.floor))
            log_floor = np.log(floor)
            sums = np.zeros((g.size, 2), dtype=np.float64)
            for spec, _rows, frames in stft_chunks(cand, res.n_fft, res.hop, True, "reflect", CANDIDATE_CHUNK):
                mag = np.abs(spec)[0]
                log_mag = np.log(np.maximum(mag, np.float32(1e-30)))  # one log; each gain adds log(g)
                ref_mag, ref_log = res.mag[0, frames], res.log_mag[0, frames]
                for i, gain in enumerate(g):
                    scaled = np.maximum(mag * gain, floor)
                    sums[i, 0] += float(np.square(scaled - ref_mag).sum(dtype=np.float64))
                    logs = np.maximum(log_mag + np.log(gain), log_floor)
                    sums[i, 1] += float(np.abs(logs - ref_log).sum(dtype=np.float64))
            total += _combine(sums, res.norm[0], res.mag[0].size)
        return total / len(self._resolutions)


def _combine(sums: np.ndarray, norm: np.ndarray | float, size: int) -> np.ndarray:
    """One resolution's distance from :func:`_diff_sums`' ``(clips, 2)``: spectral convergence
    (against the target's norm) plus the mean log-magnitude L1 over its ``size`` bins."""
    return np.sqrt(sums[:, 0]) / norm + sums[:, 1] / size


def _check_resolutions(fft_sizes: Sequence[int], hop_ratio: float) -> tuple[int, ...]:
    if not fft_sizes or not 0 < hop_ratio <= 1:
        raise ConfigError("multi-resolution STFT needs FFT sizes and 0 < hop_ratio <= 1; "
                          f"got {fft_sizes}, {hop_ratio}")
    return tuple(int(n) for n in fft_sizes)


def _hop(n_fft: int, hop_ratio: float) -> int:
    return max(1, int(n_fft * hop_ratio))


def _diff_sums(mag: np.ndarray, ref_mag: np.ndarray, ref_log: np.ndarray) -> np.ndarray:
    """``(clips, 2)``: sums over frames and bins of ``(A - B)^2`` and ``|log A - log B|``.

    ``mag`` (A) is overwritten; ``ref_*`` (B) broadcast against it. Called chunk by chunk while
    the spectra are in cache, by both the cached and the streaming distance, so they agree.
    Sums within a chunk are float32 (numpy sums pairwise: ~1e-7 relative), float64 across them.
    """
    log_diff = np.log(mag)
    log_diff -= ref_log
    abs_log = np.abs(log_diff, out=log_diff).sum(axis=(1, 2))
    mag -= ref_mag
    sq = np.square(mag, out=mag).sum(axis=(1, 2))
    return np.stack([sq, abs_log], axis=1).astype(np.float64)


def multires_stft_distance(a: np.ndarray, b: np.ndarray, fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
                           hop_ratio: float = 0.25, floor: float = MAG_FLOOR) -> np.ndarray:
    """Multi-resolution STFT distance of candidates ``a`` to targets ``b`` (ParallelWaveGAN loss).

    For each FFT size N (Hann window N, hop ``N * hop_ratio``, centred reflect-padded frames)
    with magnitudes ``|X| = sqrt(max(|STFT|^2, floor))``::

        SC  = ||A - B||_F / ||B||_F            (spectral convergence, per clip)
        LM  = mean |log A - log B|             (log-magnitude L1, per clip)

    and the result is the mean over resolutions of ``SC + LM`` (Yamamoto et al. 2020,
    ``ParallelWaveGAN``'s ``MultiResolutionSTFTLoss`` with equal weights). 0 for identical
    audio; not symmetric because SC is normalised by the target ``b``.

    Candidates and targets are transformed together, chunk by chunk, keeping only sums; to
    score many candidate batches against one target, :class:`SpectralTarget` caches the
    target's spectra instead.
    """
    sizes = _check_resolutions(fft_sizes, hop_ratio)
    a, b = _pair(a, b, max(sizes) // 2 + 1)
    n = a.shape[0]
    both = np.concatenate([a, b])
    total = np.zeros(n, dtype=np.float64)
    for n_fft in sizes:
        sums = np.zeros((n, 2), dtype=np.float64)
        ref_sq = np.zeros(b.shape[0], dtype=np.float64)
        bins = 0
        for spec, _rows, _frames in stft_chunks(both, n_fft, _hop(n_fft, hop_ratio), True, "reflect",
                                               rows_together=True):
            mag = _magnitude(spec, floor)
            ref = mag[n:]
            ref_sq += np.square(ref).sum(axis=(1, 2))
            sums += _diff_sums(mag[:n], ref, np.log(ref))
            bins += ref[0].size
        total += np.sqrt(sums[:, 0] / ref_sq) + sums[:, 1] / bins
    return total / len(sizes)


def spectral_convergence(a: np.ndarray, b: np.ndarray, n_fft: int = 2048, lowest_hz: float = 0.0,
                         sample_rate: int = 44100) -> np.ndarray:
    """``||A - B||_F / ||B||_F`` of the STFT magnitudes (Hann ``n_fft``, hop ``n_fft // 4``), ``(n,)``.

    A linear measure: 0 for identical audio, 1.0 for silence against any target (a candidate no
    closer than nothing), above 1 for one further away than silence. It cannot be won with a quiet
    noise floor the way a log-magnitude distance can. ``lowest_hz``: both are high-passed there
    first (4th-order Butterworth at ``sample_rate``, zero phase), to measure only what is heard of
    audio whose energy lies mostly under 20 Hz (an offset or a slow thump a render can hold, which
    no one hears; left in, its window's leakage alone fills the low bins).
    """
    a, b = _pair(a, b, n_fft // 2 + 1)
    if lowest_hz > 0:
        from scipy.signal import butter, sosfiltfilt

        sos = butter(4, lowest_hz, "highpass", fs=sample_rate, output="sos")
        a, b = (sosfiltfilt(sos, x, axis=1).astype(np.float32) for x in (a, b))
    mag_a, mag_b = stft_magnitude(a, n_fft, floor=0.0), stft_magnitude(b, n_fft, floor=0.0)
    diff = np.sqrt(np.square(mag_a - mag_b, dtype=np.float64).sum(axis=(1, 2)))
    ref = np.sqrt(np.square(mag_b, dtype=np.float64).sum(axis=(1, 2)))
    return diff / np.maximum(ref, 1e-12)


def log_mel_l1(a: np.ndarray, b: np.ndarray, cfg: FeatureConfig | None = None) -> np.ndarray:
    """Mean absolute difference in dB of the ``mel_db`` spectrograms (fixed range, no per-clip
    normalisation, so loudness counts), ``(n,)``; symmetric."""
    cfg = cfg or FeatureConfig()
    a, b = _pair(a, b)
    return np.abs(mel_db(a, cfg) - mel_db(b, cfg)).mean(axis=(1, 2), dtype=np.float64)


def mfcc_distance(a: np.ndarray, b: np.ndarray, cfg: FeatureConfig | None = None) -> np.ndarray:
    """Mean over frames of the Euclidean distance between unscaled MFCC vectors (all
    ``n_mfcc`` coefficients incl. c0), ``(n,)``; symmetric."""
    cfg = cfg or FeatureConfig()
    a, b = _pair(a, b)
    diff = mfcc_features(a, cfg).astype(np.float64) - mfcc_features(b, cfg)
    return np.sqrt(np.square(diff).sum(axis=2)).mean(axis=1)


def parameter_mae(pred_norm: np.ndarray, true_norm: np.ndarray) -> np.ndarray:
    """Mean absolute error per parameter of normalised ``(n, params)`` arrays -> float64 ``(params,)``."""
    pred = np.asarray(pred_norm, dtype=np.float64)
    true = np.asarray(true_norm, dtype=np.float64)
    if pred.ndim != 2 or pred.shape != true.shape or pred.shape[0] == 0:
        raise ParameterValueError(f"need two non-empty (n, params) arrays of one shape; "
                                  f"got {pred.shape} and {true.shape}")
    if not (np.isfinite(pred).all() and np.isfinite(true).all()):
        raise ParameterValueError("parameter arrays contain NaN or infinite values")
    return np.mean(np.abs(pred - true), axis=0)
