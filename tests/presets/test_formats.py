"""Preset formats by synth: the file a match writes for a Diva or an amsynth model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepdiva.core.errors import PresetError
from deepdiva.core.pitch import Pitch
from deepdiva.core.profile import load_profile
from deepdiva.presets.amsynth import read_amsynth
from deepdiva.presets.formats import preset_format
from deepdiva.presets.h2p import read_h2p


def test_targets_take_a_file_of_the_format_or_name_one_in_a_folder(tmp_path: Path) -> None:
    diva, amsynth = preset_format("diva"), preset_format("amsynth")
    assert diva.target(tmp_path, source="/x/kick.wav") == tmp_path / "kick.h2p"
    assert diva.target(tmp_path / "a.H2P") == tmp_path / "a.H2P"
    assert amsynth.target(tmp_path, name="snare") == tmp_path / "snare.bank"
    assert amsynth.target(tmp_path / "a.amSynthPreset") == tmp_path / "a.amSynthPreset"
    assert amsynth.target(tmp_path / "a.h2p") == tmp_path / "a.h2p" / "deepdiva.bank"  # a folder named a.h2p
    with pytest.raises(PresetError, match="cannot write presets of the 'surge' synth"):
        preset_format("surge")


def write(fmt: str, set_name: str, path: Path, fixed: dict[int, float]) -> tuple[Path, np.ndarray]:
    pset = load_profile(fmt).parameter_set(set_name)
    params = np.full(len(pset), 0.25, dtype=np.float32)
    return preset_format(fmt).write(pset, params, path, source="kick.wav", distance=0.5,
                                    pitch=Pitch.from_hz(440.0), fixed=fixed), params


def test_amsynth_writes_a_bank_with_the_fixed_values_and_never_overwrites(tmp_path: Path) -> None:
    profile = load_profile("amsynth")
    first, params = write("amsynth", "small", tmp_path / "kick.bank", {14: 0.3})  # master_vol, outside small
    second, _ = write("amsynth", "small", tmp_path / "kick.bank", {14: 0.3})
    assert first.read_bytes().startswith(b"amSynth\n") and second.name == "kick (2).bank"
    preset = read_amsynth(first, profile)
    assert preset.name == "kick" and preset.native_by_id(profile)[14] == pytest.approx(0.3)
    np.testing.assert_allclose(preset.normalised(profile.parameter_set("small")), params, atol=1e-6)


def test_diva_writes_the_base_preset_with_the_fixed_values(tmp_path: Path) -> None:
    profile = load_profile("diva")
    path, _ = write("diva", "medium33", tmp_path / "kick.h2p", {14: 2.0})  # VCC:Trsp, outside medium33
    preset = read_h2p(path, profile)
    assert preset.native_by_id(profile)[14] == 2.0 and "match distance 0.5" in preset.meta["Description"]
