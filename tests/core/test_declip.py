"""Clipped takes: the flat tops read where they can only be clipping, and filled in closer to the wave."""

from __future__ import annotations

from dataclasses import replace

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


def stereo_take(rate: int, hot_db: float = 3.0) -> np.ndarray:
    """Half a second of nothing, then a pluck at A3 in the left channel ``hot_db`` into full scale
    and one at E4 in the right one, 10 dB under it: only the left one clips when recorded."""
    left = harmonic_note(220.0, sr=rate) * np.float32(10 ** (hot_db / 20))
    right = harmonic_note(330.0, sr=rate) * np.float32(10 ** (-10 / 20))
    pause = np.zeros((rate // 2, 2), np.float32)
    return np.concatenate([pause, np.stack([left, right], axis=1)])


@pytest.mark.parametrize("rate", [SR, 48000])
def test_a_stereo_take_clipped_in_one_channel_is_restored_channel_by_channel(rate: int, tmp_path) -> None:
    """Where one channel clips and the other does not, the mono mix has no flat tops: read from the
    mix the take counted as not clipped. Its channels are kept and each restored on its own, then
    mixed: closer to the take as it would have been recorded than the mix restored (that is, left)."""
    take = stereo_take(rate)
    path = tmp_path / "hot-left.wav"
    sf.write(path, np.clip(take, -1.0, 1.0), rate, subtype="PCM_16")
    clip = audio.read_audio(path)
    assert clip.channels is not None and clip.channels.shape == (take.shape[0], 2)
    np.testing.assert_allclose(clip.samples, clip.channels.mean(axis=1), atol=1e-7)
    ready = prepare_take(clip)
    as_mixed = prepare_take(replace(clip, channels=None))
    truth = prepare_take(AudioClip(take.mean(axis=1), rate, "as it was"))
    assert as_mixed.restored == 0 and ready.restored > 1000
    assert error_db(ready.note, truth.note) < error_db(as_mixed.note, truth.note) - 10


def test_channels_are_kept_only_when_one_clips_and_the_take_is_short(tmp_path, monkeypatch) -> None:
    """A stereo take that does not clip is mixed and forgotten; so is one longer than
    ``CHANNELS_KEPT_SAMPLES``, restored from its mix as a mono take is (both channels clipped
    together here: the mix is flat where they are). A recording in memory keeps its channels too."""
    take = stereo_take(SR)
    quiet, hot = tmp_path / "quiet.wav", tmp_path / "hot.wav"
    sf.write(quiet, take / np.abs(take).max() / 2, SR, subtype="PCM_16")
    both_hot = np.clip(np.stack([take[:, 0], take[:, 0]], axis=1), -1.0, 1.0)
    sf.write(hot, both_hot, SR, subtype="PCM_16")
    assert audio.read_audio(quiet).channels is None
    assert audio.read_audio(hot).channels is not None
    recorded = audio.mix_down(np.clip(take, -1.0, 1.0), SR, "recording")
    assert recorded.channels is not None and prepare_take(recorded).restored > 1000
    monkeypatch.setattr(audio, "CHANNELS_KEPT_SAMPLES", take.size - 1)
    long = audio.read_audio(hot)
    assert long.channels is None and prepare_take(long).restored > 1000
