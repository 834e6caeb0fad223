"""Peaks of a 1-D signal by height and prominence: ``scipy.signal.find_peaks`` for those two conditions.

The same steps as scipy's (local maxima, a flat top's middle sample standing for it; then the
height; then each peak's prominence: how far it stands above the higher of the lowest points
between it and the nearest higher sample on either side, or the signal's end), tested to give
scipy's peaks (tests/core/test_peaks.py). Written out because importing ``scipy.signal`` (which
imports ``scipy.stats``) took ~1 s of a one-file ``deepdiva match``, for this one function.
"""

from __future__ import annotations

import numpy as np

from .numba_cache import cached_njit


def find_peaks(x: np.ndarray, height: float, prominence: float) -> np.ndarray:
    """The indices of the peaks of ``x`` (1-D) at least ``height`` high and ``prominence`` prominent,
    in order: ``scipy.signal.find_peaks(x, height=height, prominence=prominence)[0]``."""
    return _peaks(np.ascontiguousarray(x, dtype=np.float64), float(height), float(prominence))


@cached_njit(nogil=True)
def _peaks(x: np.ndarray, height: float, prominence: float) -> np.ndarray:  # pragma: no cover (compiled)
    found = np.empty(x.shape[0] // 2 + 1, dtype=np.int64)
    count = 0
    last = x.shape[0] - 1
    i = 1
    while i < last:
        if x[i - 1] < x[i]:
            ahead = i + 1
            while ahead < last and x[ahead] == x[i]:
                ahead += 1
            if x[ahead] < x[i]:
                peak = (i + ahead - 1) // 2
                if x[peak] >= height and _prominence(x, peak) >= prominence:
                    found[count] = peak
                    count += 1
                i = ahead
        i += 1
    return found[:count].copy()


@cached_njit(nogil=True, inline="always")
def _prominence(x: np.ndarray, peak: int) -> float:  # pragma: no cover (compiled)
    top = x[peak]
    left_min = top
    i = peak
    while i >= 0 and x[i] <= top:
        left_min = min(left_min, x[i])
        i -= 1
    right_min = top
    i = peak
    while i < x.shape[0] and x[i] <= top:
        right_min = min(right_min, x[i])
        i += 1
    return top - max(left_min, right_min)
