"""amsynth preset files: write, read back, amsynth's own files, bad input."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from deepdiva.core.errors import PresetError
from deepdiva.core.profile import ParameterSet, Profile, load_profile
from deepdiva.presets.amsynth import (
    AmsynthPreset,
    format_amsynth,
    parse_amsynth,
    preset_from_normalised,
    read_amsynth,
    write_amsynth,
    write_amsynth_preset,
)

FACTORY_BANKS = Path("/usr/share/amsynth/banks")
AMSYNTH = os.environ.get("DEEPDIVA_AMSYNTH_VST", "/usr/lib/vst/amsynth_vst.so")


@pytest.fixture(scope="module")
def amsynth() -> Profile:
    return load_profile("amsynth")


@pytest.fixture(scope="module")
def medium(amsynth: Profile) -> ParameterSet:
    return amsynth.parameter_set("medium")


def random_patch(pset: ParameterSet, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(len(pset)).astype(np.float32)


def test_round_trip_keeps_the_set_and_the_rest(tmp_path: Path, amsynth: Profile, medium: ParameterSet) -> None:
    values = random_patch(medium)
    reverb = amsynth.find("reverb_wet").id
    path = write_amsynth_preset(tmp_path / "matched", medium, values, name="Matched bass",
                                fixed={reverb: 0.25})
    assert path == tmp_path / "matched.amSynthPreset"
    preset = read_amsynth(path)
    assert preset.name == "Matched bass"
    np.testing.assert_allclose(preset.normalised(medium), medium.quantise(values[None, :])[0], atol=1e-6)
    by_id = preset.native_by_id()
    assert by_id[reverb] == 0.25
    assert by_id[amsynth.find("master_vol").id] == pytest.approx(0.67)  # default


def test_file_is_what_amsynth_exports(tmp_path: Path, amsynth: Profile, medium: ParameterSet) -> None:
    path = write_amsynth_preset(tmp_path / "p.amSynthPreset", medium, medium.defaults_normalised())
    lines = path.read_text().splitlines()
    assert lines[0] == "amSynth1.0preset" and lines[1] == "<preset> <name> p"
    assert [line.split()[1] for line in lines[2:]] == [p.name for p in amsynth.parameters]
    assert "<parameter> filter_cutoff 1.5" in lines and "<parameter> osc1_waveform 2" in lines
    assert all(line.startswith("<parameter> ") and "e" not in line.split()[2] for line in lines[2:])


def test_bank_suffix_writes_a_one_preset_bank(tmp_path: Path, medium: ParameterSet) -> None:
    values = random_patch(medium, 1)
    path = write_amsynth_preset(tmp_path / "deepdiva.bank", medium, values, name="one")
    text = path.read_text()
    assert text.startswith("amSynth\n<preset> <name> one\n") and text.endswith("\nEOF\n")
    np.testing.assert_allclose(read_amsynth(path).normalised(medium), medium.quantise(values[None, :])[0],
                               atol=1e-6)


def test_never_overwrites_unless_asked(tmp_path: Path, medium: ParameterSet) -> None:
    first = write_amsynth_preset(tmp_path / "x.amSynthPreset", medium, random_patch(medium, 1))
    second = write_amsynth_preset(tmp_path / "x.amSynthPreset", medium, random_patch(medium, 2))
    assert second == tmp_path / "x (2).amSynthPreset"
    assert read_amsynth(first).normalised(medium)[0] == pytest.approx(random_patch(medium, 1)[0], abs=1e-6)
    again = write_amsynth_preset(first, medium, random_patch(medium, 3), overwrite=True)
    assert again == first and not (tmp_path / "x (3).amSynthPreset").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x (2).amSynthPreset", "x.amSynthPreset"]


def test_missing_parameters_default_and_values_clamp_like_amsynth(amsynth: Profile) -> None:
    text = ("amSynth1.0preset\n<preset> <name> odd  one\n<parameter> filter_resonance 1.5\n"
            "<parameter> osc2_range 2.6\n<parameter> unused 0\n")
    preset = parse_amsynth(text)
    assert preset.name == "odd  one"
    by_id = preset.native_by_id(amsynth)
    assert by_id[amsynth.find("filter_resonance").id] == pytest.approx(0.97)
    assert by_id[amsynth.find("osc2_range").id] == 3
    assert by_id[amsynth.find("filter_cutoff").id] == 1.5


@pytest.mark.skipif(not FACTORY_BANKS.is_dir(), reason="amsynth's factory banks are not installed")
def test_reads_amsynth_factory_banks(amsynth: Profile) -> None:
    bank = FACTORY_BANKS / "BriansBank01.amSynth.bank"
    first = read_amsynth(bank)
    assert first.name == "basic11" and first.values["filter_env_amount"] == pytest.approx(11.84)
    assert len(first.values) == 36  # written before amsynth had 41 parameters: the rest default
    assert first.native_by_id(amsynth)[amsynth.find("filter_kbd_track").id] == 1.0
    last = read_amsynth(bank, index=127)
    assert last.name and read_amsynth(bank, index=5).name != first.name
    with pytest.raises(PresetError, match="has 128 preset"):
        read_amsynth(bank, index=128)
    for path in sorted(FACTORY_BANKS.iterdir())[:5]:
        read_amsynth(path).normalised(amsynth.parameter_set("all"))


@pytest.mark.parametrize("text, message", [
    ("[Diva]\nfoo=1\n", "not an amsynth preset"),
    ("", "not an amsynth preset"),
    ("amSynth1.0preset\n", "contains no preset"),
    ("amSynth1.0preset\n<parameter> amp_attack 1\n", "before any"),
    ("amSynth1.0preset\n<preset> <name> a\n<parameter> wobble 1\n", "unknown amsynth parameter 'wobble'"),
    ("amSynth1.0preset\n<preset> <name> a\n<parameter> amp_attack fast\n", "amp_attack=.fast. is not a number"),
    ("amSynth1.0preset\n<preset> <name> a\n<parameter> amp_attack nan\n", "not a finite"),
    ("amSynth1.0preset\n<preset> <name> a\n<parameter> amp_attack\n", "expected"),
    ("amSynth1.0preset\n<preset> <name> a\nhello\n", "unexpected line"),
])
def test_bad_files(text: str, message: str) -> None:
    with pytest.raises(PresetError, match=message):
        parse_amsynth(text, source="bad.amSynthPreset")


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="no such preset file"):
        read_amsynth(tmp_path / "missing.amSynthPreset")
    with pytest.raises(PresetError, match="is a folder"):
        read_amsynth(tmp_path)


@pytest.mark.parametrize("values, message", [
    (np.zeros(3), "expected 16 values"),
    (np.full(16, np.nan), "NaN"),
])
def test_bad_values_write_nothing(tmp_path: Path, medium: ParameterSet, values: np.ndarray, message: str) -> None:
    with pytest.raises(PresetError, match=message):
        write_amsynth_preset(tmp_path / "x", medium, values)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["two\nlines", "", "   ", "a <parameter> b"])
def test_bad_names(medium: ParameterSet, name: str) -> None:
    with pytest.raises(PresetError):
        preset_from_normalised(medium, medium.defaults_normalised(), name=name)


def test_unknown_parameter_or_folder_is_not_written(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="no parameter"):
        format_amsynth(AmsynthPreset("x", {"cutoff": 1.0}))
    folder = tmp_path / "dir.amSynthPreset"
    folder.mkdir()
    with pytest.raises(PresetError, match="is a folder"):
        write_amsynth(AmsynthPreset("x", {}), folder)


@pytest.mark.vst
@pytest.mark.skipif(importlib.util.find_spec("dawdreamer") is None or not Path(AMSYNTH).exists(),
                    reason="needs dawdreamer and the amsynth VST")
def test_preset_renders_like_the_vector_it_came_from(tmp_path: Path, medium: ParameterSet) -> None:
    from deepdiva.core.render import RenderSettings
    from deepdiva.core.vst_renderer import VstRenderer

    values = random_patch(medium, 4)
    waves = [p.name.endswith("waveform") for p in medium.parameters]
    values[waves] = 0.5  # saw: amsynth's noise waveforms are not repeatable
    path = write_amsynth_preset(tmp_path / "r", medium, values)
    with VstRenderer(medium, RenderSettings(note_length=0.5, render_length=0.6), plugin_path=AMSYNTH) as r:
        direct, from_file = r.render(np.stack([values, read_amsynth(path).normalised(medium)]))
    np.testing.assert_allclose(from_file, direct, atol=1e-4)
