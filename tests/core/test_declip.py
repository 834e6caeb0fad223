"""Clipped takes: the flat tops read where they can only be clipping, and filled in closer to the wave."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from deepdiva.core import audio
from deepdiva.core.audio import AudioClip, prepare_take
from deepdiva.core.declip import clipped_runs, restored

SR = 44100


def harmonic_note(f0: float = 220.0, seconds: float = 2.0, sr: int = SR) -> np.ndarray:
    """Eleven harmonics dying away: a plucked note, peaking at 1.0."""
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(np.sin(2 * np.pi * k * f0 * t + k) / k for k in range(1, 12)) * np.exp(-t)
    return (wave / np.abs(wave).max()).astype(np.float32)


def error_db(answer: np.ndarray, truth: np.ndarray) -> float:
    """The answer's error at its best gain, dB under the truth."""
    gain = np.dot(answer, truth) / np.dot(answer, answer)
    return float(20 * np.log10(np.linalg.norm(gain * answer - truth) / np.linalg.norm(truth)))


@pytest.mark.parametrize("f0", [55.0, 220.0, 880.0])
def test_a_take_clipped_3_db_into_full_scale_is_restored(f0: float) -> None:
    truth = harmonic_note(f0) * np.float32(10 ** (3 / 20))
    clipped = np.clip(truth, -1.0, 1.0)
    runs = clipped_runs(clipped)
    assert runs is not None
    mask = np.zeros(clipped.size, dtype=bool)
    for start, end in zip(*runs, strict=True):
        mask[start:end] = True
    np.testing.assert_array_equal(mask, np.abs(truth) >= 1.0)
    fixed = restored(clipped, mask)
    assert np.abs(fixed).max() == pytest.approx(1.0, abs=1e-6)  # back at the level it was clipped at
    assert error_db(clipped, truth) > -26
    assert error_db(fixed, truth) < -45  # the clipped take is 25 dB from the wave, the restored one 45+


def test_natural_peaks_and_square_waves_are_not_clipping() -> None:
    """A full-scale sine's peak sits at its exact maximum for one sample, or for a few in a 16-bit
    file of a low note (E1 here): not three runs of three. A digital square wave is all flat tops:
    not clipping to repair either."""
    t = np.arange(2 * SR) / SR
    assert clipped_runs(np.sin(2 * np.pi * 41.2 * t).astype(np.float32)) is None
    as_16_bit = np.round(np.sin(2 * np.pi * 41.2 * t) * 32767) / 32768
    assert clipped_runs(as_16_bit.astype(np.float32)) is None
    assert clipped_runs(np.sign(np.sin(2 * np.pi * 110 * t)).astype(np.float32)) is None
    flat_below_full_scale = np.clip(harmonic_note() * 2, -1, 1) * np.float32(0.5)  # clipped on purpose, then mixed
    assert clipped_runs(flat_below_full_scale) is None and clipped_runs(flat_below_full_scale * 2) is not None
    assert clipped_runs(np.zeros(100, np.float32)) is None and clipped_runs(np.zeros(0, np.float32)) is None


def test_a_run_across_the_scans_blocks_is_one_run() -> None:
    take = (0.3 * np.sin(np.arange(100) * 2 * np.pi / 7)).astype(np.float32)
    for start in (10, 30, 50):
        take[start: start + 4] = 1.0
    take[60:70] = -1.0
    runs = clipped_runs(take, block=32)  # the run at 30-34 straddles the border at 32
    assert runs is not None
    np.testing.assert_array_equal(runs[0], [10, 30, 50, 60])
    np.testing.assert_array_equal(runs[1], [14, 34, 54, 70])


@pytest.mark.parametrize("rate", [SR, 48000])
def test_prepare_take_restores_a_clipped_recording_at_its_own_rate(rate: int, tmp_path, monkeypatch) -> None:
    """A 16-bit file of a note clipped 3 dB into full scale, half a second after the take starts, at
    44.1 kHz and at 48 kHz (restored before it is resampled, where the flat tops are exact): the
    prepared note is closer to the note as it would have been recorded (a float file, not clipped)
    than the clipped note prepared without restoring, and peaks where the take was clipped."""
    take = np.concatenate([np.zeros(rate // 2, np.float32), harmonic_note(220.0, sr=rate) * np.float32(10 ** (3 / 20))])
    path = tmp_path / "hot.wav"
    sf.write(path, np.clip(take, -1.0, 1.0), rate, subtype="PCM_16")
    ready = prepare_take(audio.read_audio(path))
    truth = prepare_take(AudioClip(take, rate, "as it was"))
    assert ready.restored > 100 and truth.restored == 0
    assert np.abs(ready.note).max() == pytest.approx(1.0, abs=2e-3)
    monkeypatch.setattr(audio, "clipped_runs", lambda samples: None)
    as_clipped = prepare_take(audio.read_audio(path))
    assert as_clipped.restored == 0
    assert error_db(ready.note, truth.note) < error_db(as_clipped.note, truth.note) - 10
