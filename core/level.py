"""Loudness of an answer: both oscillator volumes scaled so a patch plays as loud as suits its target.

The synth's oscillators feed its filters linearly (until the drive stage saturates), so scaling
OSC:Vol1 and OSC:Vol2 together scales the output. The network reads a target's level from its
spectrogram, but on sounds unlike the synth's own it can miss by 10 dB or more, and every
spectral distance counts level. The answer's render is tried at a few gains around the target's
RMS level (equal RMS, then 6 and 12 dB below: where the spectra differ, spectral convergence
prefers a quieter answer) and the distance picks one; the volumes then move by that gain
(within their 0..100 range) and the patch is rendered again.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .profile import ParameterSet
from .tuning import OSC1_VOLUME, OSC2_VOLUME

TOLERANCE_DB = 1.0  # a gain this close to 1 leaves the patch as it is
# An answer that, at the most its oscillator volumes can add (:func:`headroom`), still plays this far
# below its target's RMS level is mute: no answer, however its spectrum's shape compares (v5's most
# confident answer was, for 56 of 400 held-out builtin notes at random keys, and the unscored match wrote it)
MUTE_BELOW_DB = 30.0
BELOW_RMS_DB = (0.0, -6.0, -12.0)  # gains tried, relative to matching the target's RMS

GainDistance = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (clip, gains (g,)) -> distances (g,)


def rms(audio: np.ndarray) -> np.ndarray:
    """Root mean square per row of (n, samples) (or of one clip), float64 (summed in float64
    without a float64 copy of the clips: a scored match levels a hundred renders at once)."""
    a = np.atleast_2d(np.asarray(audio))
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return np.sqrt(np.einsum("ij,ij->i", a, a, dtype=np.float64) / a.shape[1])


def best_gain(answer: np.ndarray, target: np.ndarray, distance_at_gains: GainDistance) -> float:
    """The gain for ``answer`` (one render) that ``distance_at_gains`` (to ``target``, e.g.
    :meth:`SpectralTarget.distance_at_gains <deepdiva.core.metrics.SpectralTarget.distance_at_gains>`)
    likes best among 1 (as it is) and :data:`BELOW_RMS_DB` relative to the RMS ratio; 1 for silence."""
    gains, distances = scored_gains(answer, target, distance_at_gains)
    return float(gains[int(np.argmin(distances))])


def scored_gains(answer: np.ndarray, target: np.ndarray,
                 distance_at_gains: GainDistance) -> tuple[np.ndarray, np.ndarray]:
    """The gains tried for ``answer`` (one render) and its distance at each: 1 (as it is) first,
    then :data:`BELOW_RMS_DB` relative to the RMS ratio to ``target``; only 1 when either is silent."""
    ratio = _rms_ratio(answer, target)
    gains = np.ones(1) if ratio is None else np.array([1.0, *(ratio * 10 ** (db / 20) for db in BELOW_RMS_DB)])
    return gains, distance_at_gains(np.asarray(answer, dtype=np.float32), gains)


def _rms_ratio(answer: np.ndarray, target: np.ndarray) -> float | None:
    """RMS of ``target`` over RMS of ``answer``; None when either is silent."""
    have, want = float(rms(answer)[0]), float(rms(target)[0])
    return want / have if have > 0 and want > 0 else None


def at_rms_of(clips: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``clips`` (n, samples) each scaled to ``target``'s RMS level, float32; a silent clip stays silent."""
    have = rms(clips)
    gains = np.where(have > 0, float(rms(target)[0]) / np.maximum(have, 1e-30), 1.0)
    return np.asarray(np.atleast_2d(clips), dtype=np.float32) * gains[:, None].astype(np.float32)


def headroom(pset: ParameterSet, params: np.ndarray) -> np.ndarray:
    """Per patch of ``params`` (n, k): the most :func:`with_gain` can raise its level, the gain at
    which its louder oscillator volume reaches the top of its range (1 for a set without volumes,
    inf for a patch whose volumes are both 0)."""
    columns = volume_columns(pset)
    rows = np.atleast_2d(np.asarray(params, dtype=np.float64))
    if not columns:
        return np.ones(len(rows))
    native = pset.from_normalised(rows)[:, columns]
    top = np.array([pset.parameters[j].high for j in columns])
    return np.min(np.where(native > 0, top / np.maximum(native, 1e-30), np.inf), axis=1)


def mute(pset: ParameterSet, params: np.ndarray, renders: np.ndarray, target: np.ndarray,
         below_db: float = MUTE_BELOW_DB) -> np.ndarray:
    """Per patch of ``params`` (n, k) with ``renders`` (n, samples): True where even raised by its
    :func:`headroom` it plays more than ``below_db`` under ``target``'s RMS level (always True for a
    silent render of an audible target; never for a silent target)."""
    want = float(rms(target)[0])
    reachable = rms(renders) * np.minimum(headroom(pset, params), 1e12)
    return reachable < want * 10 ** (-below_db / 20)


def volume_columns(pset: ParameterSet) -> list[int]:
    """The set's oscillator volume columns (none for a synth without the roles: amsynth)."""
    return [j for j in (pset.role_column(OSC1_VOLUME), pset.role_column(OSC2_VOLUME)) if j is not None]


def with_gain(pset: ParameterSet, params: np.ndarray, gain: float) -> np.ndarray:
    """``params`` (k,) with both oscillator volumes times ``gain``; unchanged within
    :data:`TOLERANCE_DB` or when the set has no oscillator volumes."""
    columns = volume_columns(pset)
    if not columns or not gain > 0 or abs(20 * np.log10(gain)) < TOLERANCE_DB:
        return np.asarray(params, dtype=np.float32)
    native = pset.from_normalised(np.asarray(params, dtype=np.float64)[None, :])
    for j in columns:
        p = pset.parameters[j]
        native[0, j] = np.clip(native[0, j] * gain, p.low, p.high)
    return pset.quantise(pset.to_normalised(native))[0]


def level_matched(pset: ParameterSet, params: np.ndarray, answer: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``params`` with both oscillator volumes scaled by the RMS ratio of ``target`` to ``answer``."""
    ratio = _rms_ratio(answer, target)
    return with_gain(pset, params, 1.0 if ratio is None else ratio)


def listening_gains(clips: list[np.ndarray], rms_db: float = -20.0, ceiling_db: float = -1.0) -> list[float]:
    """Gains that bring ``clips`` to one RMS level (``rms_db`` dBFS) for back-to-back listening.

    If that would push any peak over ``ceiling_db``, every gain comes down together, so the clips
    stay equally loud. A silent clip keeps gain 1.
    """
    levels = [float(rms(c)[0]) if len(c) else 0.0 for c in clips]
    peaks = [float(np.max(np.abs(c))) if len(c) else 0.0 for c in clips]
    wanted = 10.0 ** (rms_db / 20.0)
    gains = [wanted / level if level > 1e-7 else 1.0 for level in levels]
    loudest = max((g * p for g, p in zip(gains, peaks, strict=True)), default=0.0)
    ceiling = 10.0 ** (ceiling_db / 20.0)
    scale = min(1.0, ceiling / loudest) if loudest > 0 else 1.0
    return [g * scale for g in gains]
