"""Augmentation: deterministic under a seed, shapes kept, each change does what it says."""

from __future__ import annotations

import numpy as np
import pytest

from deepdiva.core.errors import DatasetError
from deepdiva.training.augment import AugmentConfig, augment_audio, draw_performance

SR = 44100


def notes(n: int = 6) -> np.ndarray:
    t = np.arange(SR) / SR
    return np.stack([(0.5 * np.sin(2 * np.pi * (110 + 30 * i) * t) * np.exp(-3 * t)).astype(np.float32)
                     for i in range(n)])


def test_same_seed_same_result_other_seed_differs() -> None:
    cfg = AugmentConfig()
    a = augment_audio(cfg, np.random.default_rng(1), notes(), SR)
    b = augment_audio(cfg, np.random.default_rng(1), notes(), SR)
    c = augment_audio(cfg, np.random.default_rng(2), notes(), SR)
    np.testing.assert_array_equal(a, b)
    assert a.shape == notes().shape and a.dtype == np.float32 and np.isfinite(a).all()
    assert not np.array_equal(a, c)
    keys = np.array([40, 50, 60])
    np.testing.assert_array_equal(draw_performance(cfg, np.random.default_rng(5), keys, 2.0)[0],
                                  draw_performance(cfg, np.random.default_rng(5), keys, 2.0)[0])


def test_off_changes_nothing_but_the_onset_cut() -> None:
    x = notes()
    np.testing.assert_array_equal(augment_audio(AugmentConfig.off(), np.random.default_rng(0), x, SR), x)
    played, lengths = draw_performance(AugmentConfig.off(), np.random.default_rng(0), np.array([48, 60]), 2.0)
    np.testing.assert_array_equal(played, [48, 60])
    np.testing.assert_array_equal(lengths, [2.0, 2.0])


def test_each_change_alone() -> None:
    x = notes(4)
    only = {**{k: 0.0 for k in AugmentConfig().to_dict() if k.startswith("p_")}, "p_audio": 1.0}
    noisy = augment_audio(AugmentConfig(**{**only, "p_noise": 1.0}), np.random.default_rng(0), x, SR)
    assert np.abs(noisy[:, -100:]).max() > 0  # noise fills the decayed tail
    roomy = augment_audio(AugmentConfig(**{**only, "p_reverb": 1.0}), np.random.default_rng(0), x, SR)
    assert not np.allclose(roomy, x)
    clipped = augment_audio(AugmentConfig(**{**only, "p_clip": 1.0}), np.random.default_rng(0), x, SR)
    assert np.abs(clipped).max() == pytest.approx(1.0)
    detuned, short = draw_performance(AugmentConfig(**{**only, "p_detune": 1.0, "p_short_note": 1.0}),
                                      np.random.default_rng(0), np.array([48] * 50), 2.0)
    assert np.all(np.abs(detuned - 48) <= 0.3) and np.any(detuned != 48)
    assert np.all((short >= 0.15) & (short <= 1.8))
    with pytest.raises(DatasetError):
        AugmentConfig(p_noise=1.5)
