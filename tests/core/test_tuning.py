"""Tuning restated for the pitch heard: the same sound at another key; unheard tuning tidied."""

from __future__ import annotations

import numpy as np
import pytest

from deepdiva.core.level import with_gain
from deepdiva.core.pitch import detect_pitch
from deepdiva.core.profile import load_profile
from deepdiva.core.render import RenderSettings
from deepdiva.core.renderers import make_renderer
from deepdiva.core.tuning import octaves_moved, on_harmonics, pitch_repairs, relative_to_pitch, steady, tidy

SHORT = RenderSettings(note_length=0.3, render_length=0.4)
DIVA = load_profile("diva")
TUNE1_ID, TUNE2_ID, VOL2_ID = (DIVA.role(r) for r in ("osc1_octave", "osc2_tune", "osc2_volume"))


@pytest.fixture(scope="module")
def pset():
    return load_profile("diva").parameter_set("medium33")


def patch(pset, **native: float) -> np.ndarray:
    values = pset.defaults_native()
    for pid, value in native.items():
        values[pset.ids.index(int(pid.lstrip("p")))] = value
    return pset.to_normalised(values[None, :])


def test_an_octave_in_the_tuning_moves_into_the_note_and_sounds_the_same(pset) -> None:
    renderer = make_renderer("builtin", pset, SHORT)
    x = patch(pset, **{f"p{TUNE1_ID}": 12.0, f"p{TUNE2_ID}": 19.0, f"p{VOL2_ID}": 40.0})
    restated, ok = relative_to_pitch(pset, x, np.array([48.0]), np.array([60.0]))
    native = pset.from_normalised(restated)[0]
    assert ok[0]
    assert native[pset.ids.index(TUNE1_ID)] == 0.0 and native[pset.ids.index(TUNE2_ID)] == pytest.approx(7.0, abs=1e-4)
    np.testing.assert_allclose(renderer.render(restated, 60.0), renderer.render(x, 48.0), atol=2e-3)  # float32 tuning


def test_shifts_that_tune1_cannot_carry_are_flagged(pset) -> None:
    x = np.repeat(patch(pset), 3, axis=0)
    _, ok = relative_to_pitch(pset, x, np.array([48.0, 48.0, 48.0]), np.array([55.0, 84.0, np.nan]))
    # a fifth is not an octave step; three octaves leave Tune1's range; unpitched rows are kept
    assert ok.tolist() == [False, False, True]


def test_unpitched_rows_are_restated_for_the_default_note(pset) -> None:
    x = patch(pset, **{f"p{TUNE2_ID}": 0.0, f"p{VOL2_ID}": 50.0})
    restated, ok = relative_to_pitch(pset, x, np.array([60.0]), np.array([np.nan]))
    native = pset.from_normalised(restated)[0]
    assert ok[0] and native[pset.ids.index(TUNE1_ID)] == 12.0 and native[pset.ids.index(TUNE2_ID)] == pytest.approx(12.0)


def test_tidy_resets_the_tuning_of_a_silent_oscillator_only(pset) -> None:
    loud = patch(pset, **{f"p{TUNE2_ID}": -13.5, f"p{VOL2_ID}": 30.0})
    silent = patch(pset, **{f"p{TUNE2_ID}": -13.5, f"p{VOL2_ID}": 1.0})
    assert pset.from_normalised(tidy(pset, loud))[0, pset.ids.index(TUNE2_ID)] == pytest.approx(-13.5, abs=1e-4)
    assert pset.from_normalised(tidy(pset, silent))[0, pset.ids.index(TUNE2_ID)] == 0.0
    np.testing.assert_array_equal(tidy(pset, silent[0]).shape, silent[0].shape)


def test_on_harmonics_moves_oscillator_2_to_the_nearest_harmonic(pset) -> None:
    from deepdiva.core.tuning import on_harmonics

    for tune2, expected in ((3.2, 0.0), (5.8, 0.0), (14.9, 12.0), (17.5, 19.02), (-7.0, 0.0), (29.0, 27.86)):
        x = patch(pset, **{f"p{TUNE2_ID}": tune2, f"p{VOL2_ID}": 50.0})
        native = pset.from_normalised(on_harmonics(pset, x))[0]
        assert native[pset.ids.index(TUNE2_ID)] == pytest.approx(expected, abs=0.01)
        np.testing.assert_array_equal(np.delete(on_harmonics(pset, x), pset.ids.index(TUNE2_ID), axis=1),
                                      np.delete(x, pset.ids.index(TUNE2_ID), axis=1))


def test_the_diva_roles_name_the_oscillator_controls() -> None:
    located = {role: DIVA.by_id(DIVA.role(role)).location
               for role in ("osc1_octave", "osc2_tune", "osc1_volume", "osc2_volume")}
    assert located == {"osc1_octave": "OSC:Tune1", "osc2_tune": "OSC:Tune2", "osc1_volume": "OSC:Vol1",
                       "osc2_volume": "OSC:Vol2"}
    assert [DIVA.by_id(i).location for i in DIVA.roles["modulation_depths"]][:2] == ["OSC:VtoD", "OSC:TM1Dpt"]
    assert [DIVA.by_id(i).location for i in DIVA.roles["pitch_modulation"]] == ["OSC:VtoD", "OSC:TM1Dpt", "OSC:TM2Dpt"]


def test_a_profile_without_roles_keeps_its_patches() -> None:
    """amsynth has no octave-step tuning or oscillator volumes: its ids 0-40 are other controls,
    which the tuning and level steps must not touch."""
    amsynth = load_profile("amsynth").parameter_set("large")
    assert amsynth.profile.roles == {}
    x = amsynth.quantise(np.random.default_rng(0).random((4, len(amsynth))).astype(np.float32))
    restated, ok = relative_to_pitch(amsynth, x, np.full(4, 60.0), np.full(4, 48.0))
    assert np.allclose(restated, x, atol=1e-6) and not ok.any()  # an octave off cannot be carried by anything
    assert np.array_equal(tidy(amsynth, x), x) and np.array_equal(on_harmonics(amsynth, x), x)
    assert np.array_equal(with_gain(amsynth, x[0], 2.0), x[0])
    assert steady(amsynth, x[0]) is None and octaves_moved(amsynth, x[0], 1) is None
    assert pitch_repairs(amsynth, x[0], 12.0).shape == (0, len(amsynth))


def test_repairs_bring_a_sharp_or_octave_high_answer_back_to_the_key(pset) -> None:
    renderer = make_renderer("builtin", pset, RenderSettings())

    def heard(x: np.ndarray) -> float:
        return detect_pitch(renderer.render(x[None, :], 50.0)[0], 44100).midi_float

    sharp = patch(pset, p104=1.0, p46=100.0)[0]  # ENV2 held at full sustain bends oscillator 1 a semitone up
    assert heard(sharp) == pytest.approx(51.0, abs=0.15)
    calm = steady(pset, sharp)
    assert calm is not None and pset.from_normalised(calm[None, :])[0, pset.ids.index(104)] == 0.0
    assert heard(calm) == pytest.approx(50.0, abs=0.1)
    assert steady(pset, calm) is None  # nothing left to calm
    high = patch(pset, **{f"p{TUNE1_ID}": 12.0})[0]  # oscillator 2 is silent in the base preset
    assert heard(high) == pytest.approx(62.0, abs=0.1)
    low = octaves_moved(pset, high, -1)
    assert low is not None and heard(low) == pytest.approx(50.0, abs=0.1)
    top = patch(pset, **{f"p{TUNE1_ID}": 24.0})[0]
    assert octaves_moved(pset, top, 1) is None and octaves_moved(pset, top, 0) is None  # past Tune1's range; no move
    both = patch(pset, p104=1.0, p46=100.0, **{f"p{TUNE1_ID}": 12.0})[0]  # sharp and an octave high, heard +13
    repairs = pitch_repairs(pset, both, heard(both) - 50.0)
    assert len(repairs) == 3  # calmed, moved down, both
    assert [round(heard(x) - 50.0) for x in repairs] == [12, 1, 0]
    assert len(pitch_repairs(pset, both, None)) == 1  # not heard: only calmed
