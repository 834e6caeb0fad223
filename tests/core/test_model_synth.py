"""The card's synth section (written, read back, older cards) and which renderer may play a model."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from deepdiva.core.errors import ModelError, RenderError
from deepdiva.core.model_runtime import ModelCard
from deepdiva.core.model_synth import TrainedSynth, choose_synth, plugin_fits, renderer_for
from deepdiva.core.profile import load_profile

SHIPPED_CARD = Path(__file__).parents[2] / "models" / "deepdiva-medium33.json"
RENDER = {"sample_rate": 44100, "midi_pitch": 48, "velocity": 127, "note_length": 2.0, "render_length": 2.0}
DIVA_BUILTIN = TrainedSynth.of("diva", "builtin", "medium33", RENDER, (36, 84))
AMSYNTH_VST = TrainedSynth.of("amsynth", "vst", "small", RENDER, None, plugin_path="/usr/lib/vst/amsynth_vst.so")


@pytest.fixture()
def plugins(tmp_path: Path) -> dict[str, Path]:
    """Empty stand-ins named like plugins (the name rule looks at names only; loading is elsewhere)."""
    out = {"diva": tmp_path / "Diva.so", "amsynth": tmp_path / "amsynth_vst.so", "other": tmp_path / "Surge XT.so"}
    for path in out.values():
        path.write_bytes(b"")
    bundle = tmp_path / "Diva.vst3"
    bundle.mkdir()
    out["bundle"] = bundle
    return out


def shipped() -> dict:
    return json.loads(SHIPPED_CARD.read_text(encoding="utf-8"))


def test_the_shipped_card_names_the_builtin_synth_and_older_cards_read_the_same() -> None:
    data = shipped()
    assert data["synth"]["renderer"] == "builtin" and data["synth"]["plugin"] is None
    old = {k: v for k, v in data.items() if k != "synth"}  # a card written before the section
    assert ModelCard(old).synth == ModelCard(data).synth == DIVA_BUILTIN
    assert ModelCard(old).pitch_range == (36, 84) and ModelCard(old).n_samples == 88200


def test_the_section_round_trips_through_json() -> None:
    synth = TrainedSynth.of("amsynth", "vst", "small", RENDER, [40, 60], plugin_path="/x/amsynth_vst.so",
                            fixed={14: 0.5})
    again = TrainedSynth.from_dict(json.loads(json.dumps(synth.as_dict())))
    assert again == synth and again.plugin == "amsynth_vst.so" and again.synth_version == "1.13.2"
    assert again.fixed == {14: 0.5} and again.pitch_range == (40, 60)
    assert again.describe() == "amsynth 1.13.2 (plugin amsynth_vst.so, vst)"


@pytest.mark.parametrize(("change", "message"), [
    ({"renderer": "fm8"}, "synth.renderer 'fm8'"),
    ({"profile": "amsynth"}, "differs from profile 'diva'"),
    ({"pitch_range": "low"}, "malformed synth section"),
    ({"fixed": {"14": "loud"}}, "malformed synth section"),
])
def test_a_bad_synth_section_is_a_model_error(change: dict, message: str) -> None:
    data = copy.deepcopy(shipped())
    data["synth"].update(change)
    with pytest.raises(ModelError, match=message):
        ModelCard(data)
    del data["synth"]["render"]
    with pytest.raises(ModelError, match="synth lacks render"):
        ModelCard(data)


def test_the_card_names_its_synth_by_default(plugins: dict[str, Path]) -> None:
    assert choose_synth(DIVA_BUILTIN) == choose_synth(DIVA_BUILTIN, "builtin")
    assert choose_synth(DIVA_BUILTIN).note is None
    same = choose_synth(AMSYNTH_VST, plugin_path=plugins["amsynth"])
    assert same.kind == "vst" and same.plugin_path == plugins["amsynth"] and same.note is None


@pytest.mark.parametrize("plugin", ["diva", "bundle"])
def test_a_diva_model_of_the_builtin_synth_may_refine_on_a_real_diva(plugins: dict[str, Path], plugin: str) -> None:
    choice = choose_synth(DIVA_BUILTIN, "vst", plugins[plugin])
    assert choice.kind == "vst" and "trained on the builtin synth, a surrogate of Diva" in choice.note


@pytest.mark.parametrize(("trained", "synth", "plugin", "message"), [
    (DIVA_BUILTIN, "vst", "amsynth", "amsynth_vst.so is not a plugin for diva"),
    (DIVA_BUILTIN, "renderman", "other", "Surge XT.so is not a plugin for diva"),
    (AMSYNTH_VST, "builtin", None, "plays Diva parameters only"),
    (AMSYNTH_VST, "vst", "diva", "Diva.so is not a plugin for amsynth"),
    (AMSYNTH_VST, None, None, "needs the plugin file: pass --plugin-path"),
    (DIVA_BUILTIN, "builtin", "diva", "the builtin synth hosts no plugin"),
    (DIVA_BUILTIN, "fm8", None, "unknown renderer 'fm8'"),
])
def test_a_renderer_that_cannot_play_the_models_synth_is_refused(
        plugins: dict[str, Path], trained: TrainedSynth, synth: str | None, plugin: str | None, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        choose_synth(trained, synth, plugins[plugin] if plugin else None)


def test_a_missing_plugin_file_is_said(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="does not exist"):
        choose_synth(AMSYNTH_VST, "vst", tmp_path / "amsynth_vst.so")


def test_the_name_rule() -> None:
    diva, amsynth = load_profile("diva"), load_profile("amsynth")
    assert plugin_fits(diva, "/Library/Audio/Plug-Ins/VST3/Diva.vst3") and plugin_fits(diva, r"Diva(x64).dll")
    assert plugin_fits(amsynth, "/usr/lib/vst/amsynth_vst.so") and not plugin_fits(diva, "/usr/lib/vst/amsynth_vst.so")


def test_renderer_for_plays_the_cards_settings_and_fixed_values() -> None:
    data = shipped()
    data["synth"]["render"] = {**RENDER, "midi_pitch": 60, "render_length": 1.0, "note_length": 0.5}
    data["synth"]["fixed"] = {"14": 2.0}  # VCC:Trsp, outside medium33
    data["input"]["shape"] = [None, 128, 87, 2]  # the feature of a 1 s clip
    card = ModelCard(data)
    renderer = renderer_for(card)
    assert renderer.kind == "builtin" and renderer.settings.midi_pitch == 60 and renderer.fixed == {14: 2.0}
    assert renderer.render(card.parameter_set.defaults_normalised()).shape == (1, 44100)
    assert type(renderer_for(card, workers=2)).__name__ == "BuiltinRenderer"  # thread-safe: no process pool
    with pytest.raises(RenderError, match="workers must be >= 1"):
        renderer_for(card, workers=0)
