"""Loudness of an answer: both oscillator volumes scaled so a patch plays as loud as its target.

The synth's oscillators feed its filters linearly (until the drive stage saturates), so scaling
OSC:Vol1 and OSC:Vol2 together scales the output. The network reads a target's level from its
spectrogram, but on sounds unlike the synth's own it can miss by 10 dB or more, and every
spectral distance counts level. One render tells the answer's level; the volumes are then moved
by the ratio of the two RMS levels (within the volumes' 0..100 range).
"""

from __future__ import annotations

import numpy as np

from .profile import ParameterSet
from .tuning import VOL1_ID, VOL2_ID

TOLERANCE_DB = 1.0  # closer than this: left as it is


def rms(audio: np.ndarray) -> np.ndarray:
    """Root mean square per row of (n, samples) (or of one clip), float64."""
    a = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    return np.sqrt(np.mean(a * a, axis=1))


def level_matched(pset: ParameterSet, params: np.ndarray, answer: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``params`` (k,) with both oscillator volumes scaled by the RMS ratio of ``target`` to
    ``answer`` (its render); unchanged within :data:`TOLERANCE_DB`, for a silent answer, or when
    the set has no oscillator volumes."""
    columns = [pset.ids.index(pid) for pid in (VOL1_ID, VOL2_ID) if pid in pset.ids]
    have, want = float(rms(answer)[0]), float(rms(target)[0])
    if not columns or have <= 0 or want <= 0 or abs(20 * np.log10(want / have)) < TOLERANCE_DB:
        return np.asarray(params, dtype=np.float32)
    native = pset.from_normalised(np.asarray(params, dtype=np.float64)[None, :])
    for j in columns:
        p = pset.parameters[j]
        native[0, j] = np.clip(native[0, j] * want / have, p.low, p.high)
    return pset.to_normalised(native)[0]
