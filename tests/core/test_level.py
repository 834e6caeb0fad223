"""Level matching: oscillator volumes scaled so a patch plays as loud as its target."""

from __future__ import annotations

import numpy as np
import pytest

from deepdiva.core.level import at_rms_of, headroom, level_matched, mute, rms, volume_columns
from deepdiva.core.profile import load_profile
from deepdiva.core.render import RenderSettings
from deepdiva.core.renderers import make_renderer

VOL1_ID, VOL2_ID = (load_profile("diva").role(r) for r in ("osc1_volume", "osc2_volume"))


@pytest.fixture(scope="module")
def renderer():
    return make_renderer("builtin", load_profile("diva").parameter_set("medium33"),
                         RenderSettings(note_length=0.5, render_length=0.5))


def test_a_quieter_target_turns_the_oscillators_down(renderer) -> None:
    pset = renderer.parameter_set
    x = pset.defaults_normalised()
    loud = renderer.render(x[None, :])[0]
    target = 0.25 * loud  # 12 dB quieter
    y = level_matched(pset, x, loud, target)
    native = pset.from_normalised(y[None, :])[0]
    base = pset.defaults_native()
    for pid in (VOL1_ID, VOL2_ID):
        j = pset.ids.index(pid)
        assert native[j] == pytest.approx(0.25 * base[j], abs=0.01)
    again = renderer.render(y[None, :])[0]
    assert abs(20 * np.log10(rms(again)[0] / rms(target)[0])) < 1.0


def test_close_enough_or_silent_answers_are_left_alone(renderer) -> None:
    pset = renderer.parameter_set
    x = pset.defaults_normalised()
    audio = renderer.render(x[None, :])[0]
    np.testing.assert_array_equal(level_matched(pset, x, audio, 1.05 * audio), x)
    np.testing.assert_array_equal(level_matched(pset, x, np.zeros_like(audio), audio), x)


def test_an_answer_no_volume_setting_makes_heard_is_mute(renderer) -> None:
    pset = renderer.parameter_set
    vol1, vol2 = volume_columns(pset)
    loud = pset.defaults_normalised()  # oscillator 1 at 50 of 100, oscillator 2 off: 6 dB to spare
    quiet = loud.copy()
    quiet[vol1] = 0.01  # the same sound 34 dB quieter, with 40 dB to spare
    off = loud.copy()
    off[[vol1, vol2]] = 0.0
    patches = np.stack([loud, quiet, off])
    np.testing.assert_allclose(headroom(pset, patches), [2.0, 100.0, np.inf])
    renders = renderer.render(patches)
    assert 20 * np.log10(rms(renders[1])[0] / rms(renders[0])[0]) == pytest.approx(-34.0, abs=0.5)
    # as loud as the loud patch: the quiet one plays 34 dB under it, but its volume can make that up
    np.testing.assert_array_equal(mute(pset, patches, renders, renders[0]), [False, False, True])
    # 40 dB louder: at full volume both stay 34 dB under
    np.testing.assert_array_equal(mute(pset, patches, renders, 100 * renders[0]), [True, True, True])
    np.testing.assert_array_equal(mute(pset, patches, renders, 20 * renders[0]), [False, False, True])
    np.testing.assert_array_equal(mute(pset, patches, renders, np.zeros_like(renders[0])), [False, False, False])


def test_listening_gains_make_clips_equally_loud_without_clipping() -> None:
    from deepdiva.core.level import listening_gains, rms

    t = np.arange(44100) / 44100
    quiet, loud, spiky = 0.01 * np.sin(440 * t), 0.8 * np.sin(220 * t), np.zeros(44100)
    spiky[::4410] = 1.0  # low RMS, high peaks: it decides the common ceiling
    gains = listening_gains([quiet, loud, spiky])
    levels = [rms(g * c)[0] for g, c in zip(gains, (quiet, loud, spiky), strict=True)]
    assert max(levels) / min(levels) < 1.0001
    assert max(np.abs(g * c).max() for g, c in zip(gains, (quiet, loud, spiky), strict=True)) <= 10 ** (-1 / 20) + 1e-9
    assert listening_gains([np.zeros(100)]) == [1.0]


def test_at_rms_of_brings_each_clip_to_the_targets_level_and_leaves_silence() -> None:
    t = np.arange(4410) / 44100
    target = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    clips = np.stack([0.8 * target, 0.01 * np.sign(target), np.zeros_like(target)])
    out = at_rms_of(clips, target)
    assert out.dtype == np.float32
    np.testing.assert_allclose(rms(out[:2]), rms(target)[0], rtol=1e-5)
    assert not out[2].any()
