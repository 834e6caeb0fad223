"""Pitch detection on synthetic notes: sines, saws and squares at many notes, and unpitched noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from deepdiva.core.pitch import (
    DEFAULT_MIDI,
    FRAME,
    SIEVE_SAMPLES,
    Pitch,
    Spectrum,
    common_multiple,
    detect_pitch,
    detect_pitches,
    fold_octaves,
    fundamental_below,
    harmonic_multiple,
    inharmonic_partial,
    midi_to_hz,
    note_name,
    octave_above,
    partials_fundamental,
    repeats_at,
    yin_periods,
)

SR = 44100
T = np.arange(2 * SR) / SR


def tone(kind: str, midi: float, amplitude: float = 0.4) -> np.ndarray:
    f0 = float(midi_to_hz(midi))
    if kind == "sine":
        wave = np.sin(2 * np.pi * f0 * T)
    else:  # band-limited additive saw or square, harmonics below 12 kHz
        k = np.arange(1, int(12000 // f0) + 1)
        if kind == "square":
            k = k[k % 2 == 1]
        wave = (np.sin(2 * np.pi * f0 * np.outer(T, k)) / k).sum(axis=1)
    return (amplitude * wave / np.max(np.abs(wave))).astype(np.float32)


YIN_REFERENCE = Path(__file__).parents[1] / "data" / "yin-librosa-0.11.npz"
YIN_SEARCHES = ((30.0, 2600.0), (26.0, 2300.0))  # (fmin, fmax) of detection's first and second search


def _yin_frames() -> np.ndarray:
    """Frames at 22,050 Hz of notes (sine, saw, square from A0 to E7, a piano-like one, saws in noise),
    noise and silence."""
    rng = np.random.default_rng(3)
    notes = [tone(kind, midi)[::2] for kind in ("sine", "saw", "square") for midi in (21, 40, 57.3, 81, 100)]
    notes += [0.3 * rng.standard_normal(T.size // 2).astype(np.float32), np.zeros(T.size // 2, np.float32),
              stretched(45.0, 2e-4)[::2]]
    notes += [(tone("saw", midi)[::2] + noise * rng.standard_normal(T.size // 2)).astype(np.float32)
              for midi in (33, 52, 69) for noise in (0.05, 0.1, 0.2)]  # troughs about YIN's threshold
    return np.concatenate([n[: 8 * FRAME].reshape(-1, FRAME) for n in notes])


def test_yin_periods_are_librosas_yin() -> None:
    """core.pitch writes librosa.yin's steps out (importing librosa cost a match over a second); its
    periods are librosa 0.11's to the last bits, over notes, noise and silence, in both searches
    detection runs. The reference periods are librosa's, kept in tests/data (importing and compiling
    librosa took 40 s of the suite): ``python tests/core/test_pitch.py`` writes them again."""
    frames, reference = _yin_frames(), np.load(YIN_REFERENCE)
    for i, (fmin, fmax) in enumerate(YIN_SEARCHES):
        np.testing.assert_allclose(yin_periods(frames, SR // 2, fmin, fmax), reference[f"search{i}"], rtol=1e-12)


@pytest.mark.parametrize("kind", ["sine", "saw", "square"])
@pytest.mark.parametrize("midi", [28, 36, 48, 57.3, 69, 81, 91, 94.3, 96])  # 94.3, 96: came out an octave low
def test_detects_note_and_cents(kind: str, midi: float) -> None:
    pitch = detect_pitch(tone(kind, midi), SR)
    assert pitch.pitched
    assert pitch.midi == round(midi)
    assert pitch.cents == pytest.approx(100 * (midi - round(midi)), abs=5)
    assert pitch.hz == pytest.approx(float(midi_to_hz(midi)), rel=0.005)


def test_other_sample_rates_and_quiet_takes() -> None:
    for rate in (22050, 48000, 96000):
        t = np.arange(rate) / rate
        note = (0.01 * np.sin(2 * np.pi * 261.63 * t)).astype(np.float32)  # -40 dBFS
        assert detect_pitch(note, rate).name == "C4"


def test_noise_bursts_are_unpitched_and_played_at_the_default_note() -> None:
    rng = np.random.default_rng(3)
    for decay in (2.0, 8.0, 30.0):
        burst = (0.3 * rng.standard_normal(T.size) * np.exp(-decay * T)).astype(np.float32)
        pitch = detect_pitch(burst, SR)
        assert not pitch.pitched and pitch.hz is None
        assert pitch.midi == DEFAULT_MIDI and pitch.cents == 0.0 and pitch.name == "unpitched"
    assert not detect_pitch(np.zeros(T.size, np.float32), SR).pitched


def test_noisy_and_reverberant_notes_keep_their_pitch() -> None:
    rng = np.random.default_rng(4)
    note = tone("saw", 64) + 0.02 * rng.standard_normal(T.size).astype(np.float32)  # ~25 dB SNR
    room = rng.standard_normal(SR // 2) * np.exp(-np.arange(SR // 2) / (0.15 * SR))
    wet = np.convolve(note, room / np.sqrt(np.sum(room**2)))[: T.size].astype(np.float32)
    assert detect_pitch(note, SR).name == "E4"
    assert detect_pitch(note + 0.5 * wet, SR).name == "E4"


def test_octave_slips_fold_onto_the_lowest_common_pitch() -> None:
    frames = np.array([55.1, 55.1, 43.1, 43.0, 43.1, 55.1, 43.1])  # an organ whose 2nd harmonic wins some frames
    np.testing.assert_allclose(fold_octaves(frames), [43.1, 43.1, 43.1, 43.0, 43.1, 43.1, 43.1])
    fifths = np.array([50.0, 57.0, 50.0, 57.0])  # not octaves: left alone
    np.testing.assert_array_equal(fold_octaves(fifths), fifths)


def test_batch_equals_one_by_one_and_names() -> None:
    notes = np.stack([tone("saw", 45), tone("sine", 72), tone("square", 33)])
    batch = detect_pitches(notes, SR)
    assert batch == [detect_pitch(n, SR) for n in notes]
    assert [p.name for p in batch] == ["A2", "C5", "A1"]
    assert note_name(69) == "A4" and note_name(48) == "C3" and note_name(61) == "C#4"
    assert Pitch.from_hz(440.0).as_dict() == {"note": "A4", "midi_pitch": 69, "cents": 0.0, "hz": 440.0,
                                              "pitched": True}


def test_repeats_at_tells_a_note_from_the_octave_below() -> None:
    clarity, semitones = repeats_at(np.stack([tone("saw", 67), tone("saw", 55), tone("saw", 67.3)]), SR,
                                    float(midi_to_hz(67)))
    assert clarity[0] > 0.95 and semitones[0] == pytest.approx(0.0, abs=0.05)
    assert clarity[1] < 0.0  # a saw's half period correlates at -0.5
    assert clarity[2] > 0.9 and semitones[2] == pytest.approx(0.3, abs=0.1)  # found within 3 %, where it is
    assert repeats_at(np.zeros((1, SR), dtype=np.float32), SR, 440.0)[0][0] == 0.0


def test_yins_octave_slips_in_noise_are_read_at_the_period_the_note_repeats_at() -> None:
    rng = np.random.default_rng(0)

    def noisy(midi: float, snr_db: float) -> np.ndarray:
        clean = tone("saw", midi).astype(np.float64)
        return (clean + rng.standard_normal(clean.size) * np.std(clean) * 10 ** (-snr_db / 20)).astype(np.float32)

    for midi, snr in ((74, 6.0), (86, 10.0), (55, 10.0)):
        assert detect_pitch(noisy(midi, snr), SR).midi == midi
    low = tone("saw", 62)[None, :]
    assert octave_above(low, SR, float(midi_to_hz(62))) is None  # a saw's half period correlates at -0.5
    assert octave_above(tone("saw", 74)[None, :], SR, float(midi_to_hz(62))) == pytest.approx(
        float(midi_to_hz(74)), rel=0.003)


def test_a_strong_second_harmonic_keeps_its_fundamental() -> None:
    f0 = float(midi_to_hz(43))  # an organ-like G2: the octave above louder than the fundamental
    amplitudes = {1: 0.3, 2: 1.0, 3: 0.2, 4: 0.5, 6: 0.25}
    wave = sum(a * np.sin(2 * np.pi * k * f0 * T) for k, a in amplitudes.items())
    note = (0.4 * wave / np.max(np.abs(wave))).astype(np.float32)
    assert detect_pitch(note, SR).midi == 43
    assert octave_above(note[None, :], SR, f0) is None


# partial levels (dB) of an amsynth lead, peaking at the 6th: a resonant band-pass
BRIGHT_DB = (-10.3, -5.0, -2.7, -1.4, -0.3, 0.0, -0.4, -1.4, -2.8, -4.8, -7.1, -8.6, -10.3, -12.4, -14.8, -17.6)


def bright(f0: float) -> np.ndarray:
    """A note whose upper partials dominate (:data:`BRIGHT_DB`)."""
    wave = sum(10 ** (db / 20) * np.sin(2 * np.pi * k * f0 * T) for k, db in enumerate(BRIGHT_DB, start=1))
    return (0.4 * wave / np.max(np.abs(wave))).astype(np.float32)


@pytest.mark.parametrize(("hz", "read_as"), [(893.6, 3), (700.0, 2)])
def test_a_note_whose_upper_partials_dominate_is_not_read_at_a_fraction_of_its_pitch(hz: float, read_as: int) -> None:
    # YIN at the analysis rate read the amsynth lead at 894 Hz (A5 + 26 c) as D4, a third of it,
    # and the same spectrum at 700 Hz an octave low
    note = bright(hz)
    assert detect_pitch(note, SR).hz == pytest.approx(hz, rel=0.003)
    assert harmonic_multiple(note, SR, hz / read_as) == read_as
    assert harmonic_multiple(note, SR, hz) == 1


def test_the_sieve_keeps_notes_that_sound_on_every_harmonic() -> None:
    f0 = float(midi_to_hz(45))
    clarinet = sum(np.sin(2 * np.pi * k * f0 * T) / k for k in (1, 3, 5, 7, 9))  # odd harmonics only
    assert harmonic_multiple(clarinet.astype(np.float32), SR, f0) == 1
    assert detect_pitch((0.4 * clarinet / np.max(np.abs(clarinet))).astype(np.float32), SR).midi == 45
    sub = bright(440.0) + 0.05 * np.sin(2 * np.pi * 220.0 * T).astype(np.float32)  # a sub-octave at about -26 dB
    assert harmonic_multiple(sub, SR, 220.0) == 1
    assert detect_pitch(sub, SR).midi == 57


@pytest.mark.parametrize("kind", ["sine", "saw", "square"])
@pytest.mark.parametrize("midi", [98, 100, 101, 103, 106, 108])
def test_notes_above_c7_up_to_c8_are_read_at_their_pitch(kind: str, midi: int) -> None:
    # YIN searches periods up to 2.6 kHz at a 22 kHz analysis rate, so a piccolo's or a flute's G7
    # (3.1 kHz) came out as G6 and its C8 as F6 (two and three periods), and E7-F7 (periods shorter
    # than the first search's) unpitched
    pitch = detect_pitch(tone(kind, midi), SR)
    assert pitch.pitched and pitch.midi == midi
    assert abs(pitch.cents) < 5
    assert harmonic_multiple(tone("sine", midi), SR, float(midi_to_hz(midi)) / 3) == 3  # nothing on F6's 2nd, 4th


@pytest.mark.parametrize("kind", ["sine", "saw", "square"])
@pytest.mark.parametrize("midi", [21, 22])
def test_a0_and_a_sharp_0_are_read_below_the_first_search(kind: str, midi: int) -> None:
    # YIN's first search stops at B0 (30 Hz): a sub-bass or a piano's lowest keys were unpitched
    pitch = detect_pitch(tone(kind, midi), SR)
    assert pitch.pitched and pitch.midi == midi
    assert abs(pitch.cents) < 5


def test_below_a0_is_unpitched() -> None:
    assert not detect_pitch(tone("saw", 19), SR).pitched  # G0, 24.5 Hz


def test_above_c8_or_without_a_harmonic_series_above_c7_is_unpitched() -> None:
    assert not detect_pitch(tone("sine", 111), SR).pitched  # D#8: above the range
    # noise through a resonance at D7, 100 Hz wide: YIN reads 2.3 kHz about as clearly as it reads a
    # breathy voice (clarity 0.83), and above C7 only a clearly periodic note with harmonic partials counts
    b, a = scipy.signal.iirpeak(2300.0, 23.0, fs=SR)
    hiss = scipy.signal.lfilter(b, a, np.random.default_rng(5).standard_normal(2 * SR))
    assert not detect_pitch((0.3 * hiss / np.abs(hiss).max()).astype(np.float32), SR).pitched


@pytest.mark.parametrize("hz", [6000.0, 8000.0, 10000.0, 12000.0, 15000.0, 18000.0])
def test_a_tone_above_c8_is_unpitched_not_read_at_a_fraction_of_it(hz: float) -> None:
    """YIN reads a 6 kHz sine at 2 kHz (every third period) and a 15 kHz one at 1 kHz; saved as 16-bit
    samples, their quantisation noise put weak peaks at every harmonic of the reading."""
    sine = np.round(0.5 * np.sin(2 * np.pi * hz * T) * 32767) / 32767
    assert not detect_pitch(sine.astype(np.float32), SR).pitched
    spectrum = Spectrum.of(sine[:SIEVE_SAMPLES].astype(np.float32), SR)
    assert common_multiple(spectrum, hz / 3) == 3 and common_multiple(spectrum, hz) == 1


def test_common_multiple_is_one_for_notes_heard_at_their_reading() -> None:
    for note in (tone("saw", 45), tone("square", 60), tone("sine", 84), stretched(52.0, 2e-4)):
        hz = detect_pitch(note, SR).hz
        assert hz is not None and common_multiple(Spectrum.of(note[:SIEVE_SAMPLES], SR), hz) == 1
    saw = tone("saw", 76)  # E5 read an octave low: its partials are on every second harmonic
    assert common_multiple(Spectrum.of(saw[:SIEVE_SAMPLES], SR), float(midi_to_hz(76)) / 2) == 2


def stretched(midi: float, stiffness: float, seconds: float = 2.0) -> np.ndarray:
    """A piano-like note: partial k at k f0 sqrt(1 + B k^2), each dying away faster than the last."""
    f0 = float(midi_to_hz(midi))
    t = np.arange(int(seconds * SR)) / SR
    k = np.arange(1, 40)
    k = k[k * f0 * np.sqrt(1 + stiffness * k * k) < 12000]
    partials = k * f0 * np.sqrt(1 + stiffness * k * k)
    wave = (np.sin(2 * np.pi * np.outer(t, partials)) / k * np.exp(-np.outer(t, 1.5 + 0.3 * k))).sum(axis=1)
    return (0.4 * wave / np.max(np.abs(wave))).astype(np.float32)


@pytest.mark.parametrize("midi", [40.37, 52.81, 64.2, 70.55])
def test_the_cents_of_a_clear_note_come_from_its_partials(midi: float) -> None:
    # YIN's period alone was up to 2 c off on such saws; the partials' frequencies are exact
    pitch = detect_pitch(tone("saw", midi), SR)
    assert pitch.midi == round(midi)
    assert pitch.cents == pytest.approx(100 * (midi - round(midi)), abs=0.3)


@pytest.mark.parametrize("midi", [48, 60, 72])
def test_a_piano_like_note_is_read_at_its_first_partial_not_sharp(midi: float) -> None:
    # a stiff string's upper partials are stretched sharp and pull YIN's period with them (4-6 c
    # here, 12-23 c on FluidR3's pianos); the note is tuned by its lowest partials
    stiffness = 3e-4
    first = float(midi_to_hz(midi)) * np.sqrt(1 + stiffness)
    pitch = detect_pitch(stretched(midi, stiffness), SR)
    assert pitch.hz is not None
    assert 1200 * np.log2(pitch.hz / first) == pytest.approx(0.0, abs=1.0)


def test_partials_that_are_no_single_notes_leave_yins_reading() -> None:
    f0 = 220.0
    spread = np.array([0.0, 14.0, -12.0, 9.0, -15.0, 11.0])  # cents: a cluster, no harmonic series
    partials = f0 * np.arange(1, 7) * 2 ** (spread / 1200)
    segment = np.sin(2 * np.pi * np.outer(T[:SIEVE_SAMPLES], partials)).sum(axis=1)
    assert partials_fundamental(Spectrum.of(segment, SR), f0) is None
    sine = np.sin(2 * np.pi * 233.3 * T[:SIEVE_SAMPLES])
    assert partials_fundamental(Spectrum.of(sine, SR), 232.0) == pytest.approx(233.3, abs=0.01)
    assert partials_fundamental(Spectrum.of(np.zeros(SIEVE_SAMPLES), SR), 232.0) is None


def test_a_note_whose_first_frames_read_a_harmonic_is_heard_at_the_majoritys_pitch() -> None:
    # an amsynth D#3 whose attack sounds its 3rd harmonic for a few frames was heard unpitched
    # (the frames' pitches spread over 19 semitones); most frames agree on the note
    note = tone("saw", 51)
    attack = int(0.2 * SR)  # 3 of the 11 frames
    note[:attack] = 0.4 * np.sin(2 * np.pi * 3 * float(midi_to_hz(51)) * T[:attack])
    pitch = detect_pitch(note, SR)
    assert pitch.pitched and pitch.name == "D#3"
    wobble = note.copy()  # no majority: a third each at three pitches stays unpitched
    third = int(0.2 * SR)
    wobble[third:2 * third] = tone("saw", 58)[third:2 * third]
    wobble[2 * third:] = tone("saw", 65)[2 * third:]
    assert not detect_pitch(wobble, SR).pitched


def music_box(f0: float, seconds: float = 1.5) -> np.ndarray:
    """A struck comb tooth: a strong first mode and inharmonic higher ones (ratios and levels read
    off FluidR3's music box), each dying away faster than the last."""
    t = np.arange(int(seconds * SR)) / SR
    modes = [(1.0, -1.0, 1.0), (3.98, -13.0, 0.5), (10.39, -14.0, 0.3), (21.67, 0.0, 0.2)]
    wave = sum(10 ** (db / 20) * np.sin(2 * np.pi * r * f0 * t + r) * np.exp(-t / tau) for r, db, tau in modes)
    return (0.2 * wave).astype(np.float32)


@pytest.mark.parametrize("hz", [196.0, 220.0, 261.63])
def test_an_inharmonic_note_is_read_at_its_lowest_partial(hz: float) -> None:
    # YIN's period is a compromise of partials that share none: it read these 52-54 c sharp
    pitch = detect_pitch(music_box(hz), SR)
    assert pitch.hz is not None
    assert 1200 * np.log2(pitch.hz / hz) == pytest.approx(0.0, abs=1.0)


def test_only_partials_off_the_harmonics_move_the_reading() -> None:
    box = Spectrum.of(music_box(220.0)[:SIEVE_SAMPLES], SR)
    assert inharmonic_partial(box, 226.0) == pytest.approx(220.0, abs=0.1)
    assert inharmonic_partial(box, 250.0) is None  # the lowest partial lies too far from the reading
    saw = Spectrum.of(tone("saw", 57)[:SIEVE_SAMPLES], SR)  # a harmonic series: nothing to move
    assert inharmonic_partial(saw, 220.0) is None
    assert inharmonic_partial(Spectrum.of(np.zeros(SIEVE_SAMPLES), SR), 220.0) is None


def lead(f0: float, levels: dict[int, float]) -> np.ndarray:
    """A bright lead: harmonic k at ``levels[k]`` dB, every other at -35 dB."""
    k = np.arange(1, int(12000 // f0) + 1)
    gains = 10 ** (np.array([levels.get(int(i), -35.0) for i in k]) / 20)
    wave = (gains * np.sin(2 * np.pi * f0 * np.outer(T, k))).sum(axis=1)
    return (0.3 * wave / np.max(np.abs(wave))).astype(np.float32)


def test_a_note_read_at_an_upper_partial_above_the_range_is_found_below_it() -> None:
    # its 4th harmonic dominates and ends YIN's first dip: read at 2.2 kHz, above FMAX_HZ, the note
    # was heard unpitched (an amsynth D#5 lead, matched as a C3 noise)
    pitch = detect_pitch(lead(554.37, {1: -18.0, 2: -18.0, 3: -40.0, 4: 0.0}), SR)
    assert pitch.pitched and pitch.name == "C#5"
    assert abs(pitch.cents) < 1.0
    saw = Spectrum.of(tone("saw", 57)[:SIEVE_SAMPLES], SR)  # read at its own fundamental: nothing below
    assert fundamental_below(saw, 220.0) is None
    high = Spectrum.of(np.sin(2 * np.pi * 3000.0 * T[:SIEVE_SAMPLES]), SR)  # a sine above the range stays there
    assert fundamental_below(high, 3000.0) is None


if __name__ == "__main__":  # write the YIN reference periods with librosa (test extra)
    import librosa

    np.savez(YIN_REFERENCE, **{f"search{i}": (SR // 2) / librosa.yin(
        _yin_frames(), fmin=fmin, fmax=fmax, sr=SR // 2, frame_length=FRAME, hop_length=FRAME, center=False)[:, 0]
        for i, (fmin, fmax) in enumerate(YIN_SEARCHES)})
    print(YIN_REFERENCE)
