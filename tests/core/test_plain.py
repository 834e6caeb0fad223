"""Plain patches: the base preset with each oscillator setting and cutoff of the profile's table."""

from __future__ import annotations

import numpy as np
import pytest

from deepdiva.core.envelope import amp_envelope, knob
from deepdiva.core.errors import ProfileError
from deepdiva.core.level import at_rms_of
from deepdiva.core.matcher import Matcher
from deepdiva.core.metrics import SpectralTarget, multires_stft_distance
from deepdiva.core.plain import detuned_pairs, filter_sweeps, plain_patches
from deepdiva.core.profile import load_profile


@pytest.fixture(scope="module")
def medium33():
    return load_profile("diva").parameter_set("medium33")


def column(pset, location: str) -> int:
    return pset.columns[location]


def test_base_preset_first_then_every_setting_at_every_cutoff(medium33) -> None:
    patches = plain_patches(medium33, 57.0)
    native = medium33.from_normalised(patches.astype(np.float64))
    base = medium33.defaults_native()
    np.testing.assert_allclose(native[0], base, atol=1e-4)
    wave, width, cutoff = (column(medium33, c) for c in ("OSC:Wave1", "OSC:PW", "VCF1:Freq"))
    settings = {(round(r[wave]), round(r[width])) for r in native}
    assert settings == {(2, 50), (1, 50), (3, 0), (3, 50), (4, 50)}  # saw, triangle, square, pulse, noise
    # fixed cutoffs and an octave, two and three above A3; all else as the base preset
    lowpassed, highpassed, hiss, banded = native[:40], native[40:43], native[43:47], native[47:]
    assert {round(c) for c in lowpassed[:, cutoff]} == {147, 120, 100, 80, 60, 69, 81, 93}
    others = [j for j in range(len(base)) if j not in (wave, width, cutoff)]
    np.testing.assert_allclose(lowpassed[:, others], np.broadcast_to(base[others], (len(lowpassed), len(others))),
                               atol=1e-4)
    assert len(np.unique(patches, axis=0)) == len(patches) == 5 * 8 + 3 + 4 + 4
    # then saw, square and pulse high-passed two octaves above A3, its resonance off, the low-pass open
    highpass, resonance = column(medium33, "HPF:Freq"), column(medium33, "HPF:Res")
    assert [(round(r[wave]), round(r[width])) for r in highpassed] == [(2, 50), (3, 0), (3, 50)]
    np.testing.assert_allclose(highpassed[:, [highpass, resonance, cutoff]], [[81, 0, 147]] * 3, atol=0.5)
    # then the noise high-passed at fixed frequencies (1.3, 2.6, 5.3, 8.4 kHz, whatever the key)
    assert {round(r[wave]) for r in hiss} == {4}
    np.testing.assert_allclose(hiss[:, [highpass, resonance, cutoff]],
                               [[88, 0, 147], [100, 0, 147], [112, 0, 147], [120, 0, 147]], atol=0.5)
    # then the saw through a band: high-pass one or two octaves above A3, low-pass three or four
    assert {round(r[wave]) for r in banded} == {2}
    np.testing.assert_allclose(banded[:, [highpass, cutoff, resonance]],
                               [[69, 93, 0], [69, 105, 0], [81, 93, 0], [81, 105, 0]], atol=0.5)


def test_cutoffs_follow_the_key_and_stay_in_range(medium33) -> None:
    cutoff = column(medium33, "VCF1:Freq")
    low = medium33.from_normalised(plain_patches(medium33, 36.0).astype(np.float64))[:, cutoff]
    high = medium33.from_normalised(plain_patches(medium33, 130.0).astype(np.float64))[:, cutoff]
    assert {round(c) for c in low} == {147, 120, 100, 80, 60, 48, 72, 84}  # C2 + 24 = 60 is a fixed one already
    assert max(high) == 150.0 and min(low) >= 0.0


def test_sets_without_a_parameter_and_profiles_without_the_table(medium33) -> None:
    tiny = load_profile("diva").parameter_set("tiny11")  # no OSC:PW: square and pulse are one patch
    assert len(plain_patches(tiny, 57.0)) == 4 * 8  # nor the high-pass: its high-passed waves are rows already
    # there, and no band (it needs both filters)
    amsynth = load_profile("amsynth").parameter_set("medium")
    np.testing.assert_allclose(plain_patches(amsynth, 57.0), amsynth.defaults_normalised()[None, :], atol=1e-6)


def test_a_broken_table_is_a_profile_error(medium33, monkeypatch) -> None:
    table = dict(medium33.profile.meta["plain"], oscillators=[{"OSC:NoSuchKnob": 1}])
    monkeypatch.setitem(medium33.profile.meta, "plain", table)
    with pytest.raises(ProfileError, match="NoSuchKnob"):
        plain_patches(medium33, 57.0)
    monkeypatch.setitem(medium33.profile.meta, "plain", dict(table, oscillators=[{"OSC:Wave1": "saw"}]))
    with pytest.raises(ProfileError, match=r"\[plain\]"):
        plain_patches(medium33, 57.0)


def additive(note: int, harmonic_amplitude, seconds: float = 2.0, sr: int = 44100) -> np.ndarray:
    """A band-limited wave made here (not by any synth): harmonics below 16 kHz, at 0.4 peak."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 440.0 * 2 ** ((note - 69) / 12)
    k = np.arange(1, int(16000 // f0) + 1)
    y = (np.sin(2 * np.pi * f0 * np.outer(t, k)) * harmonic_amplitude(k)).sum(axis=1)
    return (0.4 * y / np.abs(y).max()).astype(np.float32)


def test_a_square_note_is_matched_by_a_square_in_tune() -> None:
    """The network answers plain waves poorly; a scored match now finds the plain patch that plays one."""
    matcher = Matcher.load()
    pset = matcher.parameter_set
    square = additive(45, lambda k: np.where(k % 2 == 1, 1.0 / k, 0.0))
    match = matcher.match(square)
    native = dict(zip([p.location for p in pset.parameters], match.native, strict=True))
    assert (round(native["OSC:Wave1"]), round(native["OSC:PW"]), native["OSC:Tune1"]) == (3, 0, 0)
    assert match.played.midi == 45
    alone = Matcher(matcher.model, matcher.renderer, matcher.threads, bank=matcher.bank)
    alone.plain_options = lambda note, key, envelope=None: pset.defaults_normalised()[None, :]  # the base preset only, as before
    assert match.distance < 0.7 * alone.match(square).distance


def test_a_bright_note_with_a_weak_fundamental_is_matched_by_a_high_passed_wave(medium33, monkeypatch) -> None:
    """A lead as other synths band-pass it (fundamental 24 dB under flat upper harmonics, made here by
    numpy): no low-passed wave has its shape; the high-passed saw does."""
    matcher = Matcher.load()
    pset = matcher.parameter_set
    lead = additive(81, lambda k: np.where(k == 1, 0.06, 1.0 / np.sqrt(k)))
    match = matcher.match(lead)
    native = dict(zip([p.location for p in pset.parameters], match.native, strict=True))
    assert native["HPF:Freq"] >= 81 + 12 and match.played.midi == 81
    table = {k: v for k, v in medium33.profile.meta["plain"].items() if k not in ("highpassed", "bandpassed")}
    monkeypatch.setitem(medium33.profile.meta, "plain", table)  # the table without them (the bands high-pass too)
    assert match.distance < 0.8 * matcher.match(lead).distance


def test_a_hiss_above_a_few_kilohertz_is_matched_by_high_passed_noise(medium33, monkeypatch) -> None:
    """A hi-hat made here by numpy (white noise through a 4th-order high-pass at 6 kHz, dying away):
    the noise through a low-pass keeps everything below it; through the high-pass it does not."""
    from scipy.signal import butter, sosfilt

    matcher = Matcher.load()
    t = np.arange(2 * 44100) / 44100
    hiss = sosfilt(butter(4, 6000, "highpass", fs=44100, output="sos"), np.random.default_rng(0).standard_normal(len(t)))
    hat = (0.3 * hiss * np.exp(-t / 0.12) / np.abs(hiss).max()).astype(np.float32)
    match = matcher.match(hat)
    native = dict(zip([p.location for p in matcher.parameter_set.parameters], match.native, strict=True))
    assert not match.pitch.pitched and round(native["OSC:Wave1"]) == 4 and native["HPF:Freq"] >= 100
    table = {k: v for k, v in medium33.profile.meta["plain"].items() if k != "noise_highpassed"}
    monkeypatch.setitem(medium33.profile.meta, "plain", table)  # the table without it, as before
    assert match.distance < 0.85 * matcher.match(hat).distance


def test_a_note_whose_partials_peak_in_a_band_is_matched_by_a_band_passed_wave(medium33, monkeypatch) -> None:
    """A reed-like G2 (made here by numpy): its partials peak around the 5th harmonic over a weak
    fundamental, as a bassoon's do; the saw through a band two to three octaves above the key has
    that shape, no low- or high-passed wave does. (v3 needed the band-passed plain patch to answer
    it; v5's own answers have that shape, 1.51 against v3's 1.54 with it, so the plain patches'
    part is checked on their own.)"""
    matcher = Matcher.load()
    pset = matcher.parameter_set
    reed = additive(43, lambda k: np.exp(-0.5 * ((k - 5) / 1.5) ** 2) + 0.02 / k)
    match = matcher.match(reed)
    native = dict(zip([p.location for p in pset.parameters], match.native, strict=True))
    assert native["HPF:Freq"] >= 43 + 12 and native["VCF1:Freq"] <= 43 + 48 and match.played.midi == 43

    def closest_plain() -> float:
        options = matcher.plain_options(reed, 43.0)
        return float(multires_stft_distance(at_rms_of(matcher.renderer.render(options, 43.0), reed), reed).min())

    with_band = closest_plain()
    table = {k: v for k, v in medium33.profile.meta["plain"].items() if k != "bandpassed"}
    monkeypatch.setitem(medium33.profile.meta, "plain", table)  # the table without them, as before
    assert with_band < 0.85 * closest_plain()
    assert match.distance <= matcher.match(reed).distance + 1e-9


def test_filter_sweeps_close_the_low_pass_as_the_note_fades(medium33) -> None:
    saw = plain_patches(medium33, 48.0)[0]  # the base preset: a saw, its low-pass open (147)
    sweeps = filter_sweeps(medium33, saw, 0.4)
    native = medium33.from_normalised(sweeps.astype(np.float64))
    c = {name: column(medium33, name) for name in ("VCF1:Freq", "VCF1:FMDpt", "ENV2:Atk", "ENV2:Dec", "ENV2:Sus")}
    times = [0.15, 0.3, 0.6, 1.0, 2.0]  # x the note's decay
    np.testing.assert_allclose(native[:, c["VCF1:Freq"]], np.repeat([135, 123, 111], 5), atol=0.01)
    np.testing.assert_allclose(native[:, c["VCF1:FMDpt"]], np.repeat([24, 48, 72], 5), atol=0.01)
    assert (native[:, c["ENV2:Atk"]] == 0).all() and (native[:, c["ENV2:Sus"]] == 0).all()
    np.testing.assert_allclose(native[:, c["ENV2:Dec"]], [knob(0.4 * t) for t in times] * 3, atol=0.01)
    others = [j for j in range(len(saw)) if j not in c.values()]
    np.testing.assert_allclose(sweeps[:, others], np.broadcast_to(saw[others], (15, len(others))), atol=1e-6)
    tiny = load_profile("diva").parameter_set("tiny11")  # no filter envelope in the set
    assert filter_sweeps(tiny, tiny.defaults_normalised(), 0.4).shape == (0, len(tiny))
    amsynth = load_profile("amsynth").parameter_set("medium")
    assert filter_sweeps(amsynth, amsynth.defaults_normalised(), 0.4).shape == (0, len(amsynth))


def test_a_broken_sweep_is_a_profile_error(medium33, monkeypatch) -> None:
    table = medium33.profile.meta["plain"]
    monkeypatch.setitem(medium33.profile.meta, "plain", dict(table, sweep=dict(table["sweep"], depth="VCF1:Nope")))
    with pytest.raises(ProfileError, match="Nope"):
        filter_sweeps(medium33, medium33.defaults_normalised(), 0.4)
    monkeypatch.setitem(medium33.profile.meta, "plain", dict(table, sweep_times=["slow"]))
    with pytest.raises(ProfileError, match=r"\[plain\]"):
        filter_sweeps(medium33, medium33.defaults_normalised(), 0.4)


def test_a_pluck_whose_top_fades_first_is_answered_with_a_sweep() -> None:
    matcher = Matcher.load()
    pset = matcher.parameter_set
    c = {name: column(pset, name) for name in ("VCF1:Freq", "VCF1:FMDpt", "ENV2:Atk", "ENV2:Dec", "ENV2:Sus",
                                               "ENV1:Atk", "ENV1:Dec", "ENV1:Sus")}
    still = pset.defaults_native()
    still[[c["VCF1:Freq"], c["ENV1:Atk"], c["ENV1:Dec"], c["ENV1:Sus"]]] = 70, 0, knob(0.5), 0
    fading = still.copy()
    fading[[c["VCF1:Freq"], c["VCF1:FMDpt"], c["ENV2:Atk"], c["ENV2:Dec"], c["ENV2:Sus"]]] = 46, 48, 0, knob(0.25), 0
    still_x, fading_x = pset.quantise(pset.to_normalised(np.array([still, fading])))
    for target_x, swept in ((fading_x, True), (still_x, False)):
        note = matcher.renderer.render(target_x[None, :], 48.0)[0]
        envelope = amp_envelope(note, matcher.sample_rate)
        assert envelope is not None and envelope.dies_away
        pitch = matcher.detect(note[None, :])[0]
        audio = matcher.renderer.render(still_x[None, :], 48.0)[0]
        chosen, _ = matcher._swept(still_x, audio, note, 48.0, pitch, SpectralTarget(note), None, envelope)
        depth = pset.from_normalised(chosen[None, :].astype(np.float64))[0, c["VCF1:FMDpt"]]
        assert (depth > 0) == swept  # the still pluck keeps its own patch: no sweep is closer to it


def test_detuned_pairs_double_a_silent_oscillator_or_detune_the_one_heard(medium33) -> None:
    c = {name: column(medium33, name) for name in ("OSC:Tune1", "OSC:Tune2", "OSC:Vol1", "OSC:Vol2", "OSC:Wave1",
                                                   "OSC:Wave2", "OSC:Shape1", "OSC:Shape2")}
    detunes = np.array([3, 4, 5, 6, 8, 10, 12, 15, 18, 22, 27, 33, 40, 50])
    one = medium33.defaults_native()  # the base preset: oscillator 2 silent
    one[[c["OSC:Tune1"], c["OSC:Wave1"], c["OSC:Shape1"], c["OSC:Vol1"]]] = 12, 3, 6.5, 70
    pairs, shifts = detuned_pairs(medium33, medium33.to_normalised(one[None])[0])
    native = medium33.from_normalised(pairs.astype(np.float64))
    np.testing.assert_allclose(shifts, -detunes / 200)  # the note played half the detune flat: centred
    np.testing.assert_allclose(native[:, c["OSC:Tune2"]], 12 + detunes / 100, atol=1e-3)
    for to, source in (("OSC:Wave2", "OSC:Wave1"), ("OSC:Shape2", "OSC:Shape1"), ("OSC:Vol2", "OSC:Vol1")):
        np.testing.assert_allclose(native[:, c[to]], one[c[source]], atol=1e-3)
    two = one.copy()  # oscillator 2 heard a fifth up: it keeps its own settings and moves
    two[[c["OSC:Tune2"], c["OSC:Wave2"], c["OSC:Vol2"]]] = 7, 1, 40
    native = medium33.from_normalised(detuned_pairs(medium33, medium33.to_normalised(two[None])[0])[0].astype(np.float64))
    np.testing.assert_allclose(native[:, c["OSC:Tune2"]], 7 + detunes / 100, atol=1e-3)
    assert (native[:, c["OSC:Wave2"]] == 1).all() and np.allclose(native[:, c["OSC:Vol2"]], 40)
    amsynth = load_profile("amsynth").parameter_set("medium")  # a profile without the table's entries
    assert detuned_pairs(amsynth, amsynth.defaults_normalised())[0].shape == (0, len(amsynth))


def test_a_broken_pair_is_a_profile_error(medium33, monkeypatch) -> None:
    table = medium33.profile.meta["plain"]
    monkeypatch.setitem(medium33.profile.meta, "plain", dict(table, pair={"OSC:Wave2": "OSC:Nope"}))
    with pytest.raises(ProfileError, match="Nope"):
        detuned_pairs(medium33, medium33.defaults_normalised())
    monkeypatch.setitem(medium33.profile.meta, "plain", dict(table, detunes=["wide"]))
    with pytest.raises(ProfileError, match=r"\[plain\]"):
        detuned_pairs(medium33, medium33.defaults_normalised())


def test_two_detuned_saws_are_answered_as_a_pair_centred_on_the_note() -> None:
    matcher = Matcher.load()
    pset = matcher.parameter_set
    c = {name: column(pset, name) for name in ("OSC:Tune1", "OSC:Tune2", "OSC:Vol1", "OSC:Vol2")}
    pair = pset.defaults_native()
    pair[[c["OSC:Tune2"], c["OSC:Vol2"]]] = 0.15, 50  # a second saw 15 cents sharp
    note = matcher.renderer.render(pset.to_normalised(pair[None]), 48.0)[0]
    result = matcher.match(note)
    answer = pset.from_normalised(result.params[None].astype(np.float64))[0]
    assert answer[c["OSC:Vol2"]] > 0.25 * answer[c["OSC:Vol1"]]
    assert answer[c["OSC:Tune2"]] - answer[c["OSC:Tune1"]] == pytest.approx(0.15, abs=0.001)
    # played 7.5 c below the pair's centre as heard, so its oscillators sit where the target's do
    assert result.played.cents == pytest.approx(result.pitch.cents - 7.5, abs=0.01)
    assert result.played.midi_float == pytest.approx(48.0, abs=0.02)
    single = matcher.renderer.render(pset.defaults_normalised()[None], result.pitch.midi_float)
    assert result.distance < 0.6 * SpectralTarget(note).distance(single)[0]


def test_a_detuned_pair_at_the_top_of_the_range_detunes_flat(medium33) -> None:
    tune2, volume2 = column(medium33, "OSC:Tune2"), column(medium33, "OSC:Vol2")
    top = medium33.defaults_native()
    top[[tune2, volume2]] = 30, 50  # oscillator 2 at the top of its range, heard
    pairs, shifts = detuned_pairs(medium33, medium33.to_normalised(top[None])[0])
    native = medium33.from_normalised(pairs.astype(np.float64))
    assert (native[:, tune2] < 30).all() and (shifts > 0).all()  # flatter, the note played sharp
    np.testing.assert_allclose(native[:, tune2], 30 - 200 * shifts / 100, atol=1e-3)


def test_a_broken_band_is_a_profile_error_and_no_bands_none(medium33, monkeypatch) -> None:
    table = medium33.profile.meta["plain"]
    monkeypatch.setitem(medium33.profile.meta, "plain", dict(table, bands_above_key=[[12]]))
    with pytest.raises(ProfileError, match="bands"):
        plain_patches(medium33, 57.0)
    without = {k: v for k, v in table.items() if k not in ("bands_above_key", "highpass")}
    monkeypatch.setitem(medium33.profile.meta, "plain", without)  # no bands (and no high-pass frequency: the
    assert len(plain_patches(medium33, 57.0)) == 5 * 8 + 3 + 1  # high-passed settings keep the base preset's,
    # the noise's one row)
