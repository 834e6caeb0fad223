"""The builtin synth: shapes, determinism, every medium33 parameter audible, band-limiting,
release, bounded output for any parameter vector, and the renderer wrapper."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import stft
from scipy.signal.windows import blackmanharris

from deepdiva.core import builtin_synth as bs
from deepdiva.core.builtin_renderer import BuiltinRenderer
from deepdiva.core.errors import RenderError
from deepdiva.core.profile import load_profile
from deepdiva.core.render import RenderSettings
from deepdiva.core.renderers import make_renderer

SR = 44100


@pytest.fixture(scope="module")
def medium33():
    return load_profile("diva").parameter_set("medium33")


@pytest.fixture(scope="module")
def defaults(medium33) -> np.ndarray:
    return medium33.defaults_native()


def patch(base: np.ndarray, **values: float) -> np.ndarray:
    """A copy of ``base`` with columns set by builtin_synth constant name (VCF_FREQ=60, ...)."""
    p = base.copy()
    for name, value in values.items():
        p[getattr(bs, name)] = value
    return p


def log_spectral_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Multi-resolution STFT distance: mean |log magnitude difference| over three window sizes."""
    total = 0.0
    for n in (256, 1024, 4096):
        mags = [np.abs(stft(x, nperseg=n, noverlap=3 * n // 4)[2]) for x in (a, b)]
        total += float(np.mean(np.abs(np.log(mags[0] + 1e-5) - np.log(mags[1] + 1e-5))))
    return total / 3


def inharmonic_db(y: np.ndarray, f0: float, fmax: float = 15000.0, sr: int = SR) -> float:
    """Energy in bins away from the harmonics of f0 relative to the harmonics, below fmax."""
    seg = y[int(0.3 * sr):int(0.3 * sr) + 32768].astype(np.float64)
    spec = np.abs(np.fft.rfft(seg * blackmanharris(len(seg)))) ** 2
    f = np.fft.rfftfreq(len(seg), 1 / sr)
    h = f / f0
    near = np.abs(h - np.round(h)) * f0 < 8 * sr / len(seg)
    band = (f > 20) & (f < fmax)
    return 10 * np.log10(spec[band & ~near].sum() / spec[band & near & (np.round(h) >= 1)].sum())


def render(p: np.ndarray, **settings) -> np.ndarray:
    return bs.render_batch(np.atleast_2d(p), **settings)[0]


# ------------------------------------------------------------------------------------------------
# Tables and scales
# ------------------------------------------------------------------------------------------------

def test_columns_and_ranges_match_the_profile(medium33):
    assert bs.PARAM_IDS == medium33.ids
    assert [getattr(bs, name) for name in bs.COLUMN_NAMES] == list(range(bs.N_PARAMS))
    for j, param in enumerate(medium33.parameters):
        steps = param.steps
        low, high = (steps.min(), steps.max()) if steps is not None else (param.low, param.high)
        assert (bs.PARAM_LOW[j], bs.PARAM_HIGH[j]) == (low, high), param.location


def test_parameter_scales():
    assert bs.env_time(0) == pytest.approx(0.001)
    assert bs.env_time(50) == pytest.approx(0.1)
    assert bs.env_time(100) == pytest.approx(10.0)
    assert bs.lfo_hz(-2, 0.0, SR) == pytest.approx(1.0)       # Sync "1 s", Rate 0
    assert bs.lfo_hz(-3, 1.0, SR) == pytest.approx(20.0)      # "0.1 s", one octave up
    assert bs.lfo_hz(4, 0.0, SR) == pytest.approx(2.0)        # 1/4 at 120 BPM
    assert bs.lfo_hz(-3, 5.0, SR) == bs.MAX_LFO_HZ
    assert len(bs.SYNC_TABLE) == 27 and bs.SYNC_TABLE[4 + 3][0] == "1/4"
    assert bs.exp2_fast(-3.7) == pytest.approx(2 ** -3.7, rel=1e-5)
    assert bs.tan_fast(0.45 * np.pi) == pytest.approx(np.tan(0.45 * np.pi), rel=5e-3)


# ------------------------------------------------------------------------------------------------
# Output contract
# ------------------------------------------------------------------------------------------------

def test_shape_dtype_and_settings(medium33):
    settings = RenderSettings(sample_rate=22050, note_length=0.25, render_length=0.5)
    renderer = make_renderer("builtin", medium33, settings)
    audio = renderer.render(np.random.default_rng(0).random((3, 33), dtype=np.float32))
    assert audio.shape == (3, 11025) and audio.dtype == np.float32
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    assert renderer.render(medium33.defaults_normalised()).shape == (1, 11025)


def test_deterministic_and_independent_of_the_batch(medium33):
    x = medium33.from_normalised(np.random.default_rng(1).random((6, 33)))
    x[2, bs.WAVE1], x[2, bs.VOL1] = 4, 100                    # a noise patch
    x[3, bs.LFO2_WAVE], x[3, bs.VCF_MOD2] = 6, 60              # random-hold LFO patch
    first = bs.render_batch(x)
    assert np.array_equal(first, bs.render_batch(x))
    assert np.array_equal(first[2], bs.render_batch(x[2:3])[0])
    assert np.array_equal(first[::-1], bs.render_batch(x[::-1]))
    other = x[2].copy()
    other[bs.VCF_FREQ] += 1e-3                                 # another patch, other noise
    assert not np.array_equal(render(other)[:2000], first[2][:2000])


def test_parallel_kernel_matches_serial(medium33):
    x = medium33.from_normalised(np.random.default_rng(2).random((4, 33)))
    assert np.array_equal(bs.render_batch(x, parallel=True), bs.render_batch(x))


def test_velocity_zero_is_silence_and_velocity_is_otherwise_unrouted(defaults):
    assert not render(defaults, velocity=0).any()
    assert np.array_equal(render(defaults, velocity=1), render(defaults, velocity=127))


def test_pitch_follows_the_note_and_tune1(defaults):
    sine = patch(defaults, WAVE1=1, SHAPE1=1, VCF_FREQ=150, HPF_RES=0)  # Shape 1: pure sine
    for pitch, tune, expected in ((57, 0, 220.0), (57, 12, 440.0), (48, -12, 65.41)):
        y = render(patch(sine, TUNE1=tune), midi_pitch=pitch, render_length=1.0, note_length=1.0)
        spec = np.abs(np.fft.rfft(y[SR // 4:] * np.hanning(len(y) - SR // 4)))
        peak = np.fft.rfftfreq(len(y) - SR // 4, 1 / SR)[np.argmax(spec)]
        assert peak == pytest.approx(expected, abs=2.0)


def test_rejects_bad_native_input(defaults):
    with pytest.raises(RenderError):
        bs.render_batch(np.zeros((2, 5)))
    with pytest.raises(RenderError):
        bs.render_batch(patch(defaults, VCF_FREQ=np.nan)[None])


# ------------------------------------------------------------------------------------------------
# Every medium33 parameter is audible
# ------------------------------------------------------------------------------------------------

# A patch where most parameters have something to act on: sustain below peak, a pulse wave, a
# closed-ish resonant filter with modulation, osc 2 and vibrato present.
PROBE = dict(ENV1_DEC=45, ENV1_SUS=50, VCF_FREQ=85, VCF_RES=40, HPF_FREQ=45, VOL2=40, VIBRATO=40,
             TUNE2_MOD=3, VCF_MOD2=20, VCF_MOD=30, WAVE1=3, TUNE2=7)
# Extra settings for parameters the probe leaves (nearly) inaudible.
PROBE_EXTRA = {
    "ENV2_REL": dict(ENV2_SUS=60, ENV1_DEC=70, VCF_MOD=60),   # heard after note-off only
    "WAVE2": dict(VOL1=0, VOL2=100),
    "SHAPE2": dict(VOL1=0, VOL2=100),
    "HPF_MOD": dict(HPF_MOD=0, ENV2_SUS=50),
    "HPF_RES": dict(HPF_FREQ=70),
}


@pytest.mark.parametrize("column", range(bs.N_PARAMS), ids=lambda j: str(bs.PARAM_IDS[j]))
def test_every_parameter_audibly_changes_the_sound(column, medium33, defaults):
    base = patch(patch(defaults, **PROBE), **PROBE_EXTRA.get(bs.COLUMN_NAMES[column], {}))
    norm = np.tile(medium33.to_normalised(base[None, :]), (5, 1))
    norm[:, column] = np.linspace(0, 1, 5)
    sweep = np.repeat(base[None, :], 5, axis=0)
    sweep[:, column] = medium33.from_normalised(norm)[:, column]
    audio = bs.render_batch(sweep, note_length=1.2, render_length=1.6)
    distance = max(log_spectral_distance(audio[0], audio[i]) for i in range(1, 5))
    assert distance > 0.05, f"{medium33.parameters[column].location} barely changes the sound ({distance:.3f})"


# ------------------------------------------------------------------------------------------------
# Signal quality
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("wave, limit_db", [(1, -80.0), (2, -45.0), (3, -45.0)])
def test_oscillators_are_band_limited(defaults, wave, limit_db):
    """At pitch 48, energy between the harmonics (aliases) stays far below them up to 15 kHz."""
    y = render(patch(defaults, WAVE1=wave, VCF_FREQ=150, HPF_RES=0), render_length=1.2, note_length=1.2)
    assert inharmonic_db(y, 440 * 2 ** ((48 - 69) / 12)) < limit_db


def test_band_limiting_beats_a_naive_saw_at_high_pitch(defaults):
    pitch = 84
    f0 = 440 * 2 ** ((pitch - 69) / 12)
    y = render(patch(defaults, VCF_FREQ=150, HPF_RES=0), midi_pitch=pitch, render_length=1.2, note_length=1.2)
    naive = 1 - 2 * ((np.arange(len(y)) * f0 / SR) % 1.0)
    assert inharmonic_db(y, f0) < inharmonic_db(naive, f0) - 20


def test_release_after_note_length(defaults):
    held = patch(defaults, ENV1_DEC=60, VCF_FREQ=150)  # sustain 100; release time = decay (0.25 s)
    y = render(held, note_length=1.0, render_length=2.0)

    def rms(start: float, stop: float) -> float:
        return float(np.sqrt(np.mean(y[int(start * SR):int(stop * SR)] ** 2)))

    before = rms(0.9, 1.0)
    assert rms(1.0, 1.02) > 0.5 * before            # no click: the note fades
    assert rms(1.45, 1.5) < 0.3 * before            # ... with the envelope's time constant
    assert rms(1.9, 2.0) < 0.03 * before
    assert np.array_equal(y[:SR], render(held, note_length=1.5, render_length=2.0)[:SR])
    full = render(held)                              # note held for the whole render: no release
    assert np.sqrt(np.mean(full[-4410:] ** 2)) == pytest.approx(before, rel=0.05)


def test_extreme_corners_are_finite_and_bounded(medium33):
    rng = np.random.default_rng(3)
    corners = rng.integers(0, 2, size=(120, 33)).astype(np.float32)
    extremes = np.vstack([corners, np.zeros((1, 33)), np.ones((1, 33)), rng.random((80, 33))])
    audio = make_renderer("builtin", medium33).render(extremes)
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0


@pytest.mark.parametrize("sample_rate, pitch", [(8000, 127), (8000, 0), (192000, 127), (22050, 60)])
def test_extreme_settings_are_finite_and_bounded(medium33, sample_rate, pitch):
    rng = np.random.default_rng(sample_rate + pitch)
    x = medium33.from_normalised(np.vstack([rng.integers(0, 2, size=(20, 33)), rng.random((20, 33))]))
    audio = bs.render_batch(x, sample_rate=sample_rate, midi_pitch=pitch, note_length=0.05, render_length=0.3)
    assert audio.shape == (40, round(0.3 * sample_rate))
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0


@pytest.mark.slow
def test_fuzz_ten_thousand_random_patches(medium33):
    rng = np.random.default_rng(4)
    renderer = BuiltinRenderer(medium33)
    for _ in range(20):
        audio = renderer.render(rng.random((500, 33), dtype=np.float32))
        assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0


# ------------------------------------------------------------------------------------------------
# The renderer wrapper
# ------------------------------------------------------------------------------------------------

def test_renderer_subset_equals_medium33_with_defaults(medium33):
    tiny = load_profile("diva").parameter_set("tiny11")
    x = np.random.default_rng(5).random((2, 11), dtype=np.float32)
    full = np.tile(medium33.defaults_normalised(), (2, 1))
    full[:, [medium33.ids.index(i) for i in tiny.ids]] = x
    settings = RenderSettings(render_length=0.5, note_length=0.5)
    assert np.allclose(BuiltinRenderer(tiny, settings).render(x), BuiltinRenderer(medium33, settings).render(full))


def test_renderer_uses_fixed_values_outside_the_set():
    tiny = load_profile("diva").parameter_set("tiny11")
    settings = RenderSettings(render_length=0.5, note_length=0.5)
    x = tiny.defaults_normalised()[None, :]
    plain = BuiltinRenderer(tiny, settings).render(x)
    swept = BuiltinRenderer(tiny, settings, fixed={151: -100.0, 148: 60.0})  # 148 is in the set: ignored
    assert not np.allclose(plain, swept.render(x))
    assert swept.medium33_template()[bs.VCF_MOD] == -100.0


def test_renderer_refuses_parameters_it_cannot_play():
    diva = load_profile("diva")
    with pytest.raises(RenderError, match="medium33"):
        BuiltinRenderer(diva.parameter_set("big124"))
    with pytest.raises(RenderError, match="medium33"):
        make_renderer("builtin", diva.parameter_set([148, 36]))
