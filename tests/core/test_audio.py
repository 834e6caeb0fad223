"""Audio intake: formats, channel/rate handling, onset window, and one clear error per bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepdiva.core.audio import find_onset, load_note, read_audio
from deepdiva.core.errors import AudioError

SR = 44100


def tone(seconds: float, sr: int = SR, freq: float = 220.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("FLAC", "flac"), ("AIFF", "aiff"), ("OGG", "ogg")])
def test_reads_common_formats(tmp_path: Path, fmt: str, ext: str) -> None:
    path = tmp_path / f"x.{ext}"
    sf.write(path, tone(1.0), SR, format=fmt)
    note = load_note(path)
    assert note.shape == (2 * SR,) and note.dtype == np.float32


@pytest.mark.parametrize("seconds", [0.5, 2.0, 6.0])
def test_lengths_give_two_seconds(tmp_path: Path, seconds: float) -> None:
    path = tmp_path / "x.wav"
    sf.write(path, tone(seconds), SR)
    note = load_note(path)
    assert note.shape == (2 * SR,)
    if seconds < 2:
        assert np.all(note[int(seconds * SR) + 10:] == 0)


def test_stereo_48k_is_mixed_and_resampled(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    left = tone(1.0, 48000, 440.0)
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 48000)
    note = load_note(path)
    assert note.shape == (2 * SR,)
    spectrum = np.abs(np.fft.rfft(note[:SR]))
    assert abs(np.argmax(spectrum) * SR / SR - 440) <= 2  # bin spacing 1 Hz over 1 s
    assert 0.2 < np.max(np.abs(note)) < 0.3  # half of 0.5: one silent channel


def test_onset_skips_leading_silence(tmp_path: Path) -> None:
    audio = np.concatenate([np.zeros(SR // 2, np.float32), tone(1.0)])
    onset = find_onset(audio, SR)
    assert SR // 2 - 0.01 * SR <= onset <= SR // 2
    path = tmp_path / "x.wav"
    sf.write(path, audio, SR)
    note = load_note(path)
    assert np.max(np.abs(note[:1000])) > 0.1


def test_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio")
    with pytest.raises(AudioError, match="not a readable audio file"):
        load_note(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such audio file"):
        load_note(tmp_path / "nope.wav")


def test_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), SR)
    with pytest.raises(AudioError, match=r"the audio file is empty \(0 samples\)"):
        load_note(path)
    path.write_bytes(b"")  # no header at all
    with pytest.raises(AudioError, match=r"the file is empty \(0 bytes\)"):
        load_note(path)


def test_silence(tmp_path: Path) -> None:
    path = tmp_path / "quiet.wav"
    sf.write(path, tone(1.0, amp=1e-4), SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="silent"):
        load_note(path)


def test_nan(tmp_path: Path) -> None:
    audio = tone(1.0)
    audio[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, audio, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_note(path)


def test_too_long(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, tone(3.0), SR)
    with pytest.raises(AudioError, match="longer than the limit"):
        load_note(path, max_seconds=2.5)


def test_clipping_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "hot.wav"
    sf.write(path, np.clip(tone(1.0, amp=2.0), -1, 1), SR, subtype="FLOAT")
    with caplog.at_level(logging.WARNING):
        load_note(path)
    assert "clipped" in caplog.text


def test_read_audio_keeps_rate(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    sf.write(path, tone(0.5, 22050), 22050)
    clip = read_audio(path)
    assert clip.sample_rate == 22050 and clip.samples.ndim == 1
