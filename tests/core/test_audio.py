"""Audio intake: formats, channel/rate handling, onset window, and one clear error per bad input."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepdiva.core import audio
from deepdiva.core.audio import AudioClip, find_onset, load_note, prepare_note, read_audio
from deepdiva.core.errors import AudioError
from deepdiva.core.limits import MAX_AUDIO_SAMPLES

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


def test_a_take_keeps_what_follows_its_note_window_raised_as_the_note_was() -> None:
    """A quiet 6 s take (-40 dBFS) after 0.5 s of silence: the note is the 2 s from its onset, and
    the 3 s after it (AFTER_SECONDS) are kept, raised by the same gain; a 2 s take keeps none."""
    t = np.arange(6 * SR) / SR
    quiet = (0.01 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    take = audio.prepare_take(AudioClip(np.concatenate([np.zeros(SR // 2, np.float32), quiet]), SR, "take"))
    assert take.raised_db > 0 and take.after.size == int(audio.AFTER_SECONDS * SR)
    gain = 10 ** (take.raised_db / 20)
    np.testing.assert_allclose(np.abs(take.after).max(), 0.01 * gain, rtol=0.02)
    assert audio.prepare_take(AudioClip(quiet[: 2 * SR], SR, "short")).after.size == 0


def test_onset_after_a_lead_in_of_hiss_and_the_lead_in_kept() -> None:
    """Half a second of hiss 25 dB under the note, then the note: the hiss is within 30 dB of the
    loudest frame, so the onset is found 10 dB above the hiss instead; prepare_take hands the hiss
    back as the lead-in. A steady quiet tone before the note (no hiss) moves nothing."""
    note = tone(1.5)
    hiss = (np.sqrt(np.mean(note ** 2)) * 10 ** (-25 / 20) * np.random.default_rng(0).standard_normal(SR // 2 + note.size))
    take = (np.concatenate([np.zeros(SR // 2, np.float32), note]) + hiss).astype(np.float32)
    assert SR // 2 - 0.01 * SR <= find_onset(take, SR) <= SR // 2
    ready = audio.prepare_take(AudioClip(take, SR, "take"))
    prepared, lead_in = ready.note, ready.lead_in
    np.testing.assert_array_equal(prepared, prepare_note(AudioClip(take, SR, "take")))
    assert SR // 2 - 0.01 * SR <= lead_in.size <= SR // 2 and np.abs(lead_in).max() < 0.1
    hum = np.concatenate([tone(0.5, amp=0.02), note])  # 28 dB under the note, but a tone: the note's own start
    assert find_onset(hum, SR) == 0
    assert audio.prepare_take(AudioClip(note, SR, "note")).lead_in.size == 0  # it starts at once


def test_a_quiet_take_is_raised_to_the_nominal_level_its_lead_in_with_it() -> None:
    """A note peaking under NOMINAL_PEAK_DBFS is raised to it, with what came before it; a louder
    take keeps its level."""
    note = tone(1.5, amp=0.005)  # -46 dBFS
    take = np.concatenate([np.float32(1e-4) * np.random.default_rng(1).standard_normal(SR // 2).astype(np.float32),
                           note])
    ready = audio.prepare_take(AudioClip(take, SR, "take"))
    assert ready.raised_db == pytest.approx(audio.NOMINAL_PEAK_DBFS - 20 * np.log10(0.005), abs=0.05)
    assert audio.peak_dbfs(ready.note) == pytest.approx(audio.NOMINAL_PEAK_DBFS, abs=0.01)
    gain = 10 ** (ready.raised_db / 20)
    assert SR // 2 - 0.01 * SR <= ready.lead_in.size <= SR // 2  # the take's opening, up to the note
    np.testing.assert_allclose(ready.lead_in, take[:ready.lead_in.size] * gain, rtol=1e-5)
    np.testing.assert_allclose(prepare_note(AudioClip(take, SR, "take")), ready.note)
    loud = audio.prepare_take(AudioClip(tone(1.5), SR, "loud"))
    assert loud.raised_db == 0.0 and np.abs(loud.note).max() == pytest.approx(0.5, abs=1e-3)


def test_notes_that_did_not_come_through_a_take_are_raised_by_the_same_rule() -> None:
    """raised_to_nominal: each quiet row to NOMINAL_PEAK_DBFS, louder and silent rows as they are,
    the input left alone; one note or a batch."""
    batch = np.stack([tone(1.0, amp=0.002), tone(1.0, amp=0.5), np.zeros(SR, np.float32)])
    before = batch.copy()
    out = audio.raised_to_nominal(batch)
    assert audio.peak_dbfs(out[0]) == pytest.approx(audio.NOMINAL_PEAK_DBFS, abs=0.01)
    np.testing.assert_array_equal(out[1:], batch[1:])
    np.testing.assert_array_equal(batch, before)
    np.testing.assert_allclose(audio.raised_to_nominal(batch[0]), out[0])
    assert audio.raise_db(batch[0]) == pytest.approx(audio.NOMINAL_PEAK_DBFS - 20 * np.log10(0.002), abs=0.05)
    assert audio.raise_db(batch[1]) == 0.0 and audio.raise_db(batch[2]) == 0.0


def test_a_dc_offset_the_take_opens_on_is_taken_out() -> None:
    """A cheap interface's DC offset: half a second of nothing but 0.05, then the note on top of it.
    Left in, the offset is within 30 dB of the note, so the note was found at the file's start (and
    its pitch missed). A note whose own waveform is asymmetric from its first sample keeps its mean."""
    note = tone(1.5)
    take = np.concatenate([np.zeros(SR // 2, np.float32), note]) + np.float32(0.05)
    ready = audio.prepare_take(AudioClip(take, SR, "take"))
    prepared, lead_in = ready.note, ready.lead_in
    assert SR // 2 - 0.01 * SR <= lead_in.size <= SR // 2
    start = int(np.argmax(np.abs(prepared) > 1e-3))  # the note, after the 5 ms kept before its onset
    assert 0 < start < 0.01 * SR and np.abs(prepared[:start]).max() < 1e-6  # the offset is gone
    np.testing.assert_allclose(prepared[start: start + SR], note[1: SR + 1], atol=1e-6)
    pulse = np.where((np.arange(SR) % 200) < 54, 0.5, -0.2).astype(np.float32)  # mean 0.17 from the start
    np.testing.assert_array_equal(audio.without_dc_offset(pulse, SR), pulse)


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


# --------------------------------------------------------------------------- hostile input (issue 14)

def write_mostly_silent(path: Path, sr: int, channels: int, seconds: float) -> None:
    """A tone's first second, then silence: a tiny FLAC that decodes to a huge array; written a
    second at a time so the test itself stays small."""
    with sf.SoundFile(path, "w", sr, channels, format="FLAC", subtype="PCM_16") as f:
        f.write(np.repeat(tone(1.0, sr)[:, None], channels, axis=1))
        silence = np.zeros((sr, channels), np.float32)
        for _ in range(int(seconds) - 1):
            f.write(silence)


# Runs read_audio in a child whose address space is capped at what it has after imports plus
# HEADROOM; prints one line per file: "ok <samples>" or "AudioError <message>". A MemoryError or
# a crash shows as a non-zero exit.
CHILD = """
import resource, sys
import numpy, soundfile
from deepdiva.core.audio import read_audio
from deepdiva.core.errors import AudioError

with open("/proc/self/status") as status:
    size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (size + int(sys.argv[1]),) * 2)
for path in sys.argv[2:]:
    try:
        print("ok", read_audio(path).samples.size)
    except AudioError as exc:
        print("AudioError", exc)
"""
HEADROOM = 192 << 20  # the old whole-file read of the 30 s bomb needs 368 MB here


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
def test_decompression_bomb_is_refused_under_a_memory_limit(tmp_path: Path) -> None:
    bomb, wide = tmp_path / "bomb.flac", tmp_path / "wide.flac"
    write_mostly_silent(bomb, 384000, 8, 30)  # ~0.4 MB on disk, 92 million samples decoded
    write_mostly_silent(wide, 384000, 8, 10)  # 30.7 million: just inside MAX_AUDIO_SAMPLES
    run = subprocess.run([sys.executable, "-c", CHILD, str(HEADROOM), str(bomb), str(wide)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    refused, read = run.stdout.splitlines()
    assert refused.startswith(f"AudioError {bomb}: 30 s of 8-channel audio at 384000 Hz")
    assert "more than the limit of 32 million" in refused and "trim it" in refused
    assert read == f"ok {10 * 384000}"


@pytest.mark.parametrize("rate", [4000, 7999, 384001, 768000])
def test_sample_rate_outside_8k_384k_is_refused(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "odd.wav"
    sf.write(path, tone(0.5, rate, freq=1000.0), rate)
    with pytest.raises(AudioError, match=rf"odd.wav: the sample rate of {rate} Hz is outside 8000-384000 Hz"):
        read_audio(path)
    with pytest.raises(AudioError, match="is outside 8000-384000 Hz"):  # a buffer or a recording
        prepare_note(AudioClip(tone(0.5, rate, freq=1000.0), rate))


@pytest.mark.parametrize("rate", [8000, 384000])
def test_sample_rate_limits_themselves_are_accepted(tmp_path: Path, rate: int) -> None:
    path = tmp_path / "edge.wav"
    sf.write(path, tone(0.5, rate, freq=1000.0), rate)
    assert load_note(path).shape == (2 * SR,)


def test_frames_times_channels_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "MAX_AUDIO_SAMPLES", SR)
    mono, stereo = tmp_path / "mono.wav", tmp_path / "stereo.wav"
    sf.write(mono, tone(1.0), SR)
    sf.write(stereo, np.stack([tone(1.0)] * 2, axis=1), SR)
    assert read_audio(mono).samples.size == SR  # exactly at the cap
    with pytest.raises(AudioError, match=r"stereo.wav: 1 s of 2-channel audio at 44100 Hz is 0.1 million "
                                         r"samples, more than the limit .* trim it .* or save it as mono"):
        read_audio(stereo)


def test_resampling_beyond_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "MAX_AUDIO_SAMPLES", SR)
    clip = AudioClip(tone(1.5, 8000), 8000, "long buffer")  # 12000 samples, 66150 at 44.1 kHz
    with pytest.raises(AudioError, match=r"long buffer: 2 s of audio resampled to 44100 Hz is 0.1 million"):
        prepare_note(clip)
    assert prepare_note(AudioClip(tone(0.9, 8000), 8000)).shape == (2 * SR,)


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_multichannel_is_the_channel_mean_read_block_by_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              channels: int) -> None:
    monkeypatch.setattr(audio, "BLOCK", 6000)  # many blocks and a short last one
    data = (np.random.default_rng(channels).standard_normal((SR + 123, channels)) * 0.2).astype(np.float32)
    path = tmp_path / "multi.flac"
    sf.write(path, data, SR, subtype="PCM_24")
    whole, _ = sf.read(path, dtype="float32", always_2d=True)  # what read_audio did before blocks
    clip = read_audio(path)
    assert clip.samples.dtype == np.float32 and clip.sample_rate == SR
    np.testing.assert_array_equal(clip.samples, whole.mean(axis=1) if channels > 1 else whole[:, 0])


@pytest.mark.parametrize("channels", [2, 4])
def test_channels_that_cancel_in_the_mix_give_the_loudest_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture,
                                                                  channels: int) -> None:
    # a stereo take with one channel's polarity inverted mixed to silence: "the audio is silent"
    monkeypatch.setattr(audio, "BLOCK", 6000)  # decoded again block by block
    note = tone(1.0)
    data = np.stack([note, -0.9 * note] + [0.02 * note, -0.02 * note][: channels - 2], axis=1)
    path = tmp_path / "inverted.flac"
    sf.write(path, data, SR, subtype="PCM_24")
    with caplog.at_level(logging.WARNING, logger="deepdiva.core.audio"):
        clip = read_audio(path)
    whole, _ = sf.read(path, dtype="float32", always_2d=True)
    np.testing.assert_array_equal(clip.samples, whole[:, 0])
    assert "inverted.flac: the channels cancel when mixed to mono" in caplog.text and "channel 1 alone" in caplog.text
    assert load_note(path).shape == (2 * SR,)  # no longer refused as silent
    np.testing.assert_array_equal(audio.mix_down(data, SR).samples, data[:, 0])  # a recording, in memory


def test_channels_that_merely_differ_are_mixed(caplog: pytest.LogCaptureFixture) -> None:
    note = tone(1.0)
    hard_left = np.stack([note, np.zeros_like(note)], axis=1)  # the mix is 6 dB down
    unrelated = np.stack([note, tone(1.0, freq=331.0)], axis=1)  # 3 dB down
    with caplog.at_level(logging.WARNING, logger="deepdiva.core.audio"):
        for data in (hard_left, unrelated):
            np.testing.assert_allclose(audio.mix_down(data, SR).samples, data.mean(axis=1), atol=1e-7)
    assert "cancel" not in caplog.text
    assert not np.any(audio.mix_down(np.zeros((100, 2), np.float32), SR).samples)  # silence stays silence (refused later)


def test_cap_allows_ten_minutes_of_mono_and_six_of_stereo() -> None:
    assert 600 * SR <= MAX_AUDIO_SAMPLES and 6 * 60 * 2 * SR <= MAX_AUDIO_SAMPLES
