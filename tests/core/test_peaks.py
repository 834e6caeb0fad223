"""core.peaks.find_peaks gives scipy.signal.find_peaks's peaks for a height and a prominence."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks as scipy_find_peaks

from deepdiva.core.peaks import find_peaks


def _signals() -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    t = np.linspace(0, 1, 3000)
    spectrum_like = 20 * np.log10(np.abs(np.fft.rfft(np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(t.size)))
                                  + 1e-30)
    steps = np.repeat(rng.integers(0, 5, 400), rng.integers(1, 4, 400)).astype(np.float64)  # flat tops, ties
    return [spectrum_like, steps, rng.standard_normal(2000), np.zeros(50), np.array([1.0, 2.0]),
            np.array([0.0, 1.0, 1.0, 1.0, 0.0]), np.array([3.0, 1.0, 3.0, 1.0, 3.0])]


@pytest.mark.parametrize("height_below, prominence", [(15.0, 10.0), (50.0, 10.0), (1e9, 0.0), (2.0, 1.0)])
def test_the_peaks_are_scipys(height_below: float, prominence: float) -> None:
    for x in _signals():
        height = float(x.max()) - height_below
        expected = scipy_find_peaks(x, height=height, prominence=prominence)[0]
        np.testing.assert_array_equal(find_peaks(x, height, prominence), expected)
