"""VST rendering through DawDreamer with Debian's amsynth, and the optional RenderMan adapter."""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from deepdiva.core.errors import RenderError
from deepdiva.core.plugin_host import match_parameters
from deepdiva.core.profile import Parameter, ParameterSet, load_profile, parse_profile
from deepdiva.core.render import RenderSettings
from deepdiva.core.renderers import make_renderer
from deepdiva.core.renderman_renderer import MISSING, RenderManRenderer, parse_description
from deepdiva.core.vst_renderer import VstRenderer

AMSYNTH = os.environ.get("DEEPDIVA_AMSYNTH_VST", "/usr/lib/vst/amsynth_vst.so")
HAVE_DAWDREAMER = importlib.util.find_spec("dawdreamer") is not None

needs_amsynth = [
    pytest.mark.vst,
    pytest.mark.skipif(not HAVE_DAWDREAMER, reason="dawdreamer is not installed (pip install 'deepdiva[vst]')"),
    pytest.mark.skipif(not Path(AMSYNTH).exists(),
                       reason=f"amsynth VST not found at {AMSYNTH} (apt-get install amsynth)"),
]
SHORT = RenderSettings(note_length=0.8, render_length=1.0)


def patch(pset: ParameterSet, **native: float) -> np.ndarray:
    """The set's defaults with some parameters changed (profile units), normalised, shape (k,)."""
    values = pset.defaults_native()
    names = [p.name for p in pset.parameters]
    for name, value in native.items():
        values[names.index(name)] = value
    return pset.to_normalised(values[None, :])[0]


def _power(x: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(x, 2048)[::512] * np.hanning(2048)
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2


def spectral_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of log-magnitude spectrograms (2048-point Hann, hop 512)."""
    return float(np.mean(np.abs(np.log(_power(a) + 1e-8) - np.log(_power(b) + 1e-8)))) / 2


def average_spectrum_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of the log of the time-averaged power spectra."""
    return float(np.mean(np.abs(np.log(_power(a).mean(0) + 1e-8) - np.log(_power(b).mean(0) + 1e-8))))


@pytest.fixture(scope="module")
def medium() -> ParameterSet:
    return load_profile("amsynth").parameter_set("medium")


@pytest.fixture(scope="module")
def large() -> ParameterSet:
    return load_profile("amsynth").parameter_set("large")


@pytest.fixture(scope="module")
def renderer(medium: ParameterSet):
    with VstRenderer(medium, plugin_path=AMSYNTH) as r:
        yield r


@pytest.fixture(scope="module")
def large_renderer(large: ParameterSet):
    with VstRenderer(large, plugin_path=AMSYNTH) as r:
        yield r


# -- with the real plugin ---------------------------------------------------------------------

class TestAmsynth:
    pytestmark = needs_amsynth

    def test_default_patch_shape_finite_and_sounding(self, renderer: VstRenderer, medium: ParameterSet) -> None:
        audio = renderer.render(medium.defaults_normalised()[None, :])
        assert audio.shape == (1, RenderSettings().n_samples) and audio.dtype == np.float32
        assert np.all(np.isfinite(audio))
        assert np.sqrt(np.mean(audio**2)) > 0.05

    def test_batch_shape_and_note_starts_at_sample_zero(self, renderer: VstRenderer, medium: ParameterSet) -> None:
        batch = np.stack([medium.defaults_normalised(), patch(medium, osc1_waveform=0, osc2_waveform=0)])
        audio = renderer.render(batch)
        assert audio.shape == (2, RenderSettings().n_samples)
        for row in audio:  # amsynth's shortest attack: the note begins at the first sample
            assert abs(row[0]) < 1e-3 and np.abs(row[:441]).max() > 0.05

    def test_different_patches_sound_different(self, renderer: VstRenderer, medium: ParameterSet) -> None:
        patches = [
            medium.defaults_normalised(),
            patch(medium, osc1_waveform=0, osc2_waveform=0),
            patch(medium, filter_cutoff=-0.3, filter_resonance=0.9),
            patch(medium, amp_attack=1.2),
            patch(medium, filter_type=1, filter_cutoff=0.8),
            patch(medium, osc2_range=2, osc_mix=0.8, osc1_waveform=1),
        ]
        audio = renderer.render(np.stack(patches))
        for i in range(len(audio)):
            for j in range(i):
                assert spectral_distance(audio[i], audio[j]) > 0.3, (i, j)

    def test_same_patch_twice_gives_the_same_audio(self, renderer: VstRenderer, medium: ParameterSet) -> None:
        rng = np.random.default_rng(3)
        waves = [p.name.endswith("waveform") for p in medium.parameters]
        patches = rng.random((6, len(medium))).astype(np.float32)
        patches[:, waves] = rng.choice([0.0, 0.25, 0.5], size=(6, sum(waves)))  # sine, pulse, saw
        first = renderer.render(patches)
        again = renderer.render(patches[::-1])[::-1]
        np.testing.assert_allclose(again, first, atol=1e-5)
        np.testing.assert_array_equal(renderer.render(patches[:1]), renderer.render(patches[:1]))

    def test_previous_patch_leaves_no_trace(self, large_renderer: VstRenderer, large: ParameterSet) -> None:
        # Each predecessor leaves state amsynth does not reset on a new note: a sawtooth LFO's
        # polarity (kept by the triangle LFO), its output limiter driven hard (a resonant filter
        # swept by a fast square LFO, found by a random search), a long reverb tail.
        predecessors = [
            patch(large, lfo_waveform=5, lfo_freq=3.0, freq_mod_amount=0.8, filter_mod_amount=0.5),
            patch(large, amp_attack=2.069, amp_decay=2.335, amp_sustain=0.961, amp_release=0.984,
                  osc1_waveform=1, filter_attack=1.604, filter_decay=1.4, filter_sustain=0.679,
                  filter_resonance=0.836, filter_env_amount=-2.975, filter_cutoff=-0.204,
                  osc2_detune=-0.978, osc2_waveform=1, master_vol=0.232, lfo_freq=7.17, lfo_waveform=1,
                  osc2_range=-1, osc_mix=0.968, freq_mod_amount=0.655, filter_mod_amount=0.844,
                  amp_mod_amount=0.563, osc_mix_mode=0.119, osc1_pulsewidth=0.216, reverb_wet=0.463,
                  reverb_roomsize=0.881, distortion_crunch=0.292, osc2_pitch=7, filter_slope=0,
                  freq_mod_osc=2),
            patch(large, amp_release=2.0, reverb_wet=1.0, reverb_roomsize=1.0),
        ]
        targets = [
            patch(large, lfo_waveform=2, lfo_freq=4.0, freq_mod_amount=0.3, filter_mod_amount=0.6,
                  amp_mod_amount=0.0),
            patch(large, filter_cutoff=0.78, filter_resonance=0.528, master_vol=0.836, lfo_freq=7.0,
                  freq_mod_amount=0.351, filter_mod_amount=0.304, reverb_wet=0.864, reverb_roomsize=0.772,
                  distortion_crunch=0.776, filter_type=1, filter_slope=0, osc_mix_mode=0.804),
        ]
        for target in targets:
            fresh = large_renderer.render(target[None, :])
            for before in predecessors:
                large_renderer.render(before[None, :])
                # ~3e-5 (-90 dB) remains after the loudest predecessor; a longer tail shrinks it
                np.testing.assert_allclose(large_renderer.render(target[None, :]), fresh, atol=1e-4)

    def test_noise_waveforms_keep_their_spectrum(self, renderer: VstRenderer, medium: ParameterSet) -> None:
        # amsynth's noise generator is process-wide: samples differ, the sound does not.
        noise = patch(medium, osc1_waveform=3, osc2_waveform=3)
        a, b = renderer.render(np.stack([noise, noise]))
        saw = renderer.render(medium.defaults_normalised()[None, :])[0]
        assert np.abs(a - b).max() > 0.01  # if this fails, amsynth's noise became resettable
        assert average_spectrum_distance(a, b) < 0.1 * average_spectrum_distance(a, saw)

    def test_fixed_parameters_are_held(self, medium: ParameterSet) -> None:
        master_vol = load_profile("amsynth").find("master_vol").id
        with VstRenderer(medium, SHORT, plugin_path=AMSYNTH, fixed={master_vol: 0.0}) as quiet:
            assert np.abs(quiet.render(medium.defaults_normalised()[None, :])).max() < 1e-6

    def test_make_renderer_and_close(self, medium: ParameterSet) -> None:
        r = make_renderer("vst", medium, SHORT, plugin_path=AMSYNTH)
        assert isinstance(r, VstRenderer) and r.render(medium.defaults_normalised()).shape == (1, SHORT.n_samples)
        r.close()
        with pytest.raises(RenderError, match="closed"):
            r.render(medium.defaults_normalised())

    def test_unloadable_file_is_a_render_error(self, medium: ParameterSet, tmp_path: Path) -> None:
        fake = tmp_path / "not_a_plugin.so"
        fake.write_bytes(b"\x7fELF but not really")
        with pytest.raises(RenderError, match="cannot load plugin .*not_a_plugin.so"):
            VstRenderer(medium, plugin_path=fake)

    def test_profile_that_does_not_match_the_plugin(self) -> None:
        diva = load_profile("diva").parameter_set("tiny11")
        with pytest.raises(RenderError, match=r"not found in amsynth_vst.so .*41 parameters"):
            VstRenderer(diva, plugin_path=AMSYNTH)

    def test_misspelt_plugin_name_lists_close_matches(self) -> None:
        import tomllib
        from importlib import resources

        data = tomllib.loads(resources.files("deepdiva.core.profiles").joinpath("amsynth.toml").read_text())
        next(p for p in data["param"] if p["name"] == "filter_cutoff")["plugin_name"] = "filter_cutof"
        pset = parse_profile(data, "edited amsynth").parameter_set("small")
        with pytest.raises(RenderError, match=r"'filter_cutof' \(close: 'filter_cutoff'"):
            VstRenderer(pset, plugin_path=AMSYNTH)


# -- without the plugin -----------------------------------------------------------------------

def _param(pid: int, name: str, plugin_name: str | None = None) -> Parameter:
    return Parameter(id=pid, name=name, kind="continuous", default=0.0, plugin_name=plugin_name)


def test_match_parameters_exact_then_ignoring_case_and_spacing() -> None:
    plugin = ["Cutoff", "VCF1: Resonance", "Main  Volume"]
    params = [_param(0, "VCF1: Resonance"), _param(1, "x", plugin_name="cutoff"), _param(2, "main volume")]
    assert match_parameters(params, plugin) == [1, 0, 2]


def test_match_parameters_reports_missing_with_close_matches() -> None:
    plugin = ["filter_cutoff", "filter_resonance", "amp_attack"]
    with pytest.raises(RenderError) as info:
        match_parameters([_param(0, "filter_cutof"), _param(1, "zzz")], plugin, "synth.so")
    text = str(info.value)
    assert "2 profile parameter(s) not found in synth.so (3 parameters)" in text
    assert "'filter_cutof' (close: 'filter_cutoff'" in text and "'zzz' (no close match)" in text


def test_match_parameters_refuses_two_parameters_on_one_slot() -> None:
    with pytest.raises(RenderError, match="same parameter"):
        match_parameters([_param(0, "a"), _param(1, "b", plugin_name="A")], ["a"])


@pytest.mark.parametrize("path, message", [
    (None, "needs the plugin file"),
    ("/nonexistent/synth.so", "does not exist"),
])
def test_plugin_path_errors(medium: ParameterSet, path: str | None, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        VstRenderer(medium, plugin_path=path)


def test_folder_is_not_a_plugin(medium: ParameterSet, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="is a folder"):
        VstRenderer(medium, plugin_path=tmp_path)


def test_missing_dawdreamer_says_how_to_install(medium: ParameterSet, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = tmp_path / "synth.so"
    plugin.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "dawdreamer", None)
    with pytest.raises(RenderError, match=r"DawDreamer is not installed; pip install 'deepdiva\[vst\]'"):
        VstRenderer(medium, plugin_path=plugin)


def test_settle_time_is_checked(medium: ParameterSet) -> None:
    with pytest.raises(RenderError, match="settle"):
        VstRenderer(medium, plugin_path=AMSYNTH, settle=0.0)


def test_renderman_missing_gives_the_clear_error(medium: ParameterSet, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "librenderman", None)
    with pytest.raises(RenderError) as info:
        make_renderer("renderman", medium, plugin_path=str(tmp_path / "synth.so"))
    assert str(info.value) == MISSING
    assert "not on PyPI" in MISSING and "https://github.com/fedden/RenderMan" in MISSING


class _FakeRenderMan:
    """The librenderman calls the adapter makes, recorded."""

    names = [p.name for p in load_profile("amsynth").parameters]

    def __init__(self, sr: int, buffer_size: int, fft_size: int) -> None:
        self.args = (sr, buffer_size, fft_size)
        self.overrides: dict[int, float] = {}
        self.calls: list[tuple] = []

    def load_plugin(self, path: str) -> bool:
        return path.endswith(".so")

    def get_plugin_parameters_description(self) -> str:
        return "".join(f"{i:3d}: {name}\n" for i, name in enumerate(self.names))

    def override_plugin_parameter(self, index: int, value: float) -> bool:
        self.overrides[index] = value
        return 0.0 <= value <= 1.0

    def render_patch(self, pitch: int, velocity: int, note_length: float, render_length: float) -> None:
        self.calls.append((pitch, velocity, note_length, render_length, dict(self.overrides)))

    def get_audio_frames(self) -> list[float]:
        cutoff = self.overrides[11]
        return [cutoff] * (int(self.args[0] * self.calls[-1][3]) + 300)  # RenderMan rounds up to buffers


def test_renderman_adapter_calls(medium: ParameterSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "librenderman", types.SimpleNamespace(RenderEngine=_FakeRenderMan))
    plugin = tmp_path / "amsynth_vst.so"
    plugin.write_bytes(b"")
    settings = RenderSettings(sample_rate=22050, note_length=0.5, render_length=1.0)
    r = make_renderer("renderman", medium, settings, plugin_path=str(plugin))
    assert isinstance(r, RenderManRenderer) and r._engine.args == (22050, 512, 512)
    batch = np.stack([patch(medium, filter_cutoff=-0.5), patch(medium, filter_cutoff=1.5)])
    audio = r.render(batch)
    assert audio.shape == (2, settings.n_samples) and audio.dtype == np.float32
    np.testing.assert_allclose(audio[:, 0], [0.0, 1.0])
    pitch, velocity, note, length, overrides = r._engine.calls[0]
    assert (pitch, velocity, note, length) == (48, 127, 0.5, 1.0)
    assert sorted(overrides) == list(range(41))  # every amsynth parameter, by name
    assert overrides[14] == pytest.approx(0.67)  # master_vol held at its default
    r.close()
    with pytest.raises(RenderError, match="closed"):
        r.render(batch)


def test_renderman_description_parsing() -> None:
    text = "  0: Output\n  1: VCF1: Cutoff\n  3: Tune\n"
    assert parse_description(text) == ["Output", "VCF1: Cutoff", "", "Tune"]
