"""Chords: three or four notes at once are read at their keys and matched as played; single notes,
two-note intervals and noise are no chords."""

from __future__ import annotations

import numpy as np
import pytest

from deepdiva.core.chord import Chord, ChordRenderer, detect_chord
from deepdiva.core.matcher import Matcher
from deepdiva.core.pitch import Pitch, detect_pitch, midi_to_hz, note_name

SR = 44100
T = np.arange(2 * SR) / SR


def saw(midi: float, top_hz: float = 8000.0) -> np.ndarray:
    """A band-limited saw (harmonics 1/k below ``top_hz``), peak 1."""
    f0 = float(midi_to_hz(midi))
    k = np.arange(1, int(top_hz // f0) + 1)
    wave = (np.sin(2 * np.pi * f0 * np.outer(T, k)) / k).sum(axis=1)
    return wave / np.max(np.abs(wave))


def chord(root: int, intervals: tuple[int, ...], top_hz: float = 8000.0) -> np.ndarray:
    """Saws at equal-tempered keys, summed, fading a little as a pad does."""
    audio = sum(saw(root + i, top_hz) for i in intervals) * np.exp(-0.3 * T)
    return (0.5 * audio / np.max(np.abs(audio))).astype(np.float32)


@pytest.mark.parametrize("root, intervals", [(48, (0, 4, 7)), (57, (0, 3, 7)), (55, (0, 4, 7, 10)), (62, (0, 5, 7)),
                                             (45, (0, 7, 16)), (64, (0, 3, 6)), (40, (0, 4, 7))])
def test_chords_are_read_at_their_keys(root: int, intervals: tuple[int, ...]) -> None:
    note = chord(root, intervals)
    found = detect_chord(note, SR, detect_pitch(note, SR))
    assert found is not None and found.intervals == intervals
    assert abs(found.root_midi - root) < 0.05 and found.names()[0] == note_name(root)
    assert found.describe() == " ".join(note_name(root + i) for i in intervals)


@pytest.mark.parametrize("midi", [33, 45, 52, 60, 69, 76, 84])
def test_single_notes_and_two_note_intervals_are_no_chords(midi: int) -> None:
    rng = np.random.default_rng(midi)
    single = chord(midi, (0,))
    fifth = chord(midi, (0, 7))  # also a synth note with oscillator 2 a fifth up: one key
    third = chord(midi, (0, 4))
    noise = (0.3 * rng.standard_normal(T.size)).astype(np.float32)
    for note in (single, fifth, third, noise):
        assert detect_chord(note, SR, detect_pitch(note, SR)) is None
    sine = (0.4 * np.sin(2 * np.pi * midi_to_hz(midi) * T)).astype(np.float32)
    assert detect_chord(sine, SR) is None


def test_a_clear_pitch_on_one_of_the_notes_or_with_a_partial_below_them_is_one_note() -> None:
    triad = chord(48, (0, 4, 7))
    assert detect_chord(triad, SR) is not None
    # a C major triad repeats at C1, two octaves below its root, where nothing sounds: a chord
    assert detect_chord(triad, SR, Pitch.from_hz(float(midi_to_hz(24)), 0.95)) is not None
    # read clearly at one of its notes, the other partials are that note's own
    assert detect_chord(triad, SR, Pitch.from_hz(float(midi_to_hz(48)), 0.95)) is None
    # with a partial of its own at the reading below them (a sitar's E2 whose 2nd, 3rd and 5th
    # harmonics read as E3 B3 G#4), one note; a faint one (a pad's sub-octave) does not count
    for level_db, one_note in ((-20.0, True), (-60.0, False)):
        low = 10 ** (level_db / 20) * np.max(np.abs(triad)) * np.sin(2 * np.pi * midi_to_hz(24) * T)
        found = detect_chord((triad + low).astype(np.float32), SR, Pitch.from_hz(float(midi_to_hz(24)), 0.95))
        assert (found is None) == one_note
    # an unclear reading tells nothing
    assert detect_chord(triad, SR, Pitch.from_hz(float(midi_to_hz(48)), 0.5)) is not None


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.load()


def test_a_chord_renderer_plays_each_patch_at_every_key_of_the_chord(matcher: Matcher) -> None:
    patch = matcher.parameter_set.defaults_normalised()[None, :]
    played = ChordRenderer(matcher.renderer, (0, 4, 7)).render(patch, 48.0)
    alone = sum(matcher.renderer.render(patch, 48.0 + i) for i in (0, 4, 7))
    np.testing.assert_allclose(played, alone, atol=1e-6)


def test_a_chord_is_matched_as_played_and_the_preset_played_from_its_lowest_note(matcher: Matcher,
                                                                                 monkeypatch) -> None:
    note = chord(55, (0, 4, 7))
    result = matcher.match(note)
    assert result.chord is not None and result.chord.intervals == (0, 4, 7)
    assert result.played.midi == 55 and result.keys() == ["G3", "B3", "D4"]
    report = result.as_dict(matcher.parameter_set)
    assert report["chord"] == ["G3", "B3", "D4"] and report["played_at"]["keys"] == ["G3", "B3", "D4"]
    assert report["note"] == "G3"
    # the answer's render plays the chord: each note's fundamental is there
    spectrum = np.abs(np.fft.rfft(result.audio[:SR] * np.hanning(SR)))
    for key in (55, 59, 62):
        hz = float(midi_to_hz(key))
        around = spectrum[int(hz * 0.9): int(hz * 1.1)]
        assert around.max() > 0.05 * spectrum.max(), key
    # ... and sounds closer than the same match of the chord as one note
    monkeypatch.setattr(Matcher, "chord_in", lambda self, note, pitch: None)
    single = matcher.match(note)
    assert single.chord is None and single.keys() == [note_name(single.played.midi)]
    assert result.distance < single.distance


def test_a_chords_preset_says_how_to_play_it(matcher: Matcher, tmp_path) -> None:
    from deepdiva.core.audio import AudioClip
    from deepdiva.presets.h2p import read_h2p
    from deepdiva.presets.match_job import match_clip

    report = match_clip(matcher, AudioClip(chord(48, (0, 3, 7)), SR, "pad.wav"), tmp_path, preview=False,
                        score=False)
    assert report.match.chord == Chord(report.match.chord.root_hz, (0, 3, 7))
    assert "played as the chord C3 D#3 G3" in read_h2p(report.preset).meta["Description"]


def test_a_chords_search_plays_every_candidate_as_the_chord(matcher: Matcher) -> None:
    note = chord(57, (0, 3, 7))
    result = matcher.match(note, refine_seconds=0.5, candidates=2)
    assert result.chord is not None and result.chord.intervals == (0, 3, 7)
    assert result.distance is not None and result.network_distance is not None
    assert result.distance <= result.network_distance  # never further than its start
    # the answer's render (the preview) is the chord: the same as rendering the preset at its three keys
    alone = sum(matcher.renderer.render(result.params[None, :], result.played.midi_float + i, result.note_length)
                for i in (0, 3, 7))[0]
    np.testing.assert_allclose(result.audio, alone, atol=1e-5)


def test_a_chord_in_noise_and_a_room_is_still_read_and_noisy_single_notes_are_not() -> None:
    rng = np.random.default_rng(3)
    tail = np.arange(SR) / SR
    room = rng.standard_normal(tail.size) * np.exp(-tail / 0.25)
    room[0] = 8.0
    for root, intervals in ((48, (0, 4, 7)), (57, (0, 3, 7))):
        dry = chord(root, intervals)
        wet = np.convolve(dry, room)[: dry.size]
        for take in (dry + 0.1 * np.sqrt(np.mean(dry**2)) * rng.standard_normal(dry.size), wet / np.abs(wet).max() * 0.5):
            take = take.astype(np.float32)
            found = detect_chord(take, SR, detect_pitch(take, SR))
            assert found is not None and found.intervals == intervals and round(found.root_midi) == root
        single = chord(root, (0,))
        noisy = (single + 0.3 * np.sqrt(np.mean(single**2)) * rng.standard_normal(single.size)).astype(np.float32)
        assert detect_chord(noisy, SR, detect_pitch(noisy, SR)) is None


def test_a_chord_renders_longer_as_its_synth_does_the_first_seconds_unchanged() -> None:
    """Previews as long as the take: the builtin synth and a chord on it render 4 s whose first 2 s
    are the 2 s render, held to the same note-off; a renderer that cannot says so (None)."""
    from deepdiva.core.builtin_renderer import BuiltinRenderer
    from deepdiva.core.profile import load_profile
    from deepdiva.core.render import Renderer

    pset = load_profile("diva").parameter_set("medium33")
    patch = pset.defaults_normalised()[None, :]
    for renderer in (BuiltinRenderer(pset), ChordRenderer(BuiltinRenderer(pset), (0, 4, 7))):
        longer = renderer.lengthened(4.0)
        assert longer is not None and longer.settings.render_length == 4.0
        short, long = renderer.render(patch, 48.0, 1.5)[0], longer.render(patch, 48.0, 1.5)[0]
        assert long.size == 2 * short.size and np.array_equal(long[: short.size], short)
    assert Renderer.lengthened(BuiltinRenderer(pset), 4.0) is None  # the base class: plugin hosts cannot
