"""High-level helpers: write_diva_preset (matcher/daemon), parse_params, rows and diffs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepdiva.core.errors import PresetError
from deepdiva.presets.diva import (
    diff_presets,
    load_base_preset,
    load_preset,
    located_set,
    parse_params,
    preset_meta,
    preset_rows,
    show_text,
    write_diva_preset,
)
from deepdiva.presets.h2p import read_h2p


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_diva_preset_into_a_folder(profile, tmp_path: Path) -> None:
    pset = profile.parameter_set("medium33")
    vector = np.linspace(0, 1, 33, dtype=np.float32)
    first = write_diva_preset(pset, vector, tmp_path, source="/sounds/My Kick.wav", distance=0.1234567)
    second = write_diva_preset(pset, vector[None, :], tmp_path, source="/sounds/My Kick.wav")
    assert (first.name, second.name) == ("My Kick.h2p", "My Kick (2).h2p")
    preset = read_h2p(first, profile)
    assert preset.meta["Author"] == "deepdiva"
    assert "My Kick.wav" in preset.meta["Description"] and "0.1235" in preset.meta["Description"]
    expected = pset.from_normalised(vector[None, :])[0]
    np.testing.assert_allclose(preset.native_values(pset), expected, atol=0.005)
    assert not preset.has_binary_tail


def test_write_diva_preset_names_and_base(profile, tmp_path: Path, factory_preset_path: Path) -> None:
    pset = profile.parameter_set("tiny11")
    vector = pset.defaults_normalised()
    assert write_diva_preset(pset, vector, tmp_path).name == "deepdiva.h2p"
    assert write_diva_preset(pset, vector, tmp_path, name="a/b").name == "a_b.h2p"
    out = write_diva_preset(pset, vector, tmp_path / "sub" / "given.h2p", base=factory_preset_path)
    written = read_h2p(out)
    assert written.get("PCore", "PSong") == "0" and written.meta["Usage"] == "mod wheel = darker"
    again = write_diva_preset(pset, vector, tmp_path / "sub" / "given.h2p", overwrite=True)
    assert again == out and "PSong" not in out.read_text("latin-1")


def test_placeholders_in_a_set_keep_the_base_value(profile, tmp_path: Path, factory_preset_path) -> None:
    pset = profile.parameter_set("big124")
    assert any(p.kind == "placeholder" for p in pset.parameters)
    out = write_diva_preset(pset, np.full(len(pset), 0.5), tmp_path, base=factory_preset_path)
    assert read_h2p(out).get("OSC", "TMmode") == read_h2p(factory_preset_path).get("OSC", "TMmode")


@pytest.mark.parametrize("vector,message", [
    (np.full(33, np.nan), "NaN"),
    (np.full(32, 0.5), "expected 33 values"),
    (np.full((2, 33), 0.5), "expected 33 values"),
])
def test_write_diva_preset_errors_leave_nothing(profile, tmp_path: Path, vector, message: str) -> None:
    with pytest.raises(PresetError, match=message) as info:
        write_diva_preset(profile.parameter_set("medium33"), vector, tmp_path / "out")
    assert "out" in str(info.value)
    assert files_in(tmp_path) == []


def test_truncated_base_is_refused(profile, tmp_path: Path, base_preset_path: Path) -> None:
    data = base_preset_path.read_bytes()
    bad = tmp_path / "cut.h2p"
    bad.write_bytes(data[:data.index(b"#cm=VCF1")])
    out = tmp_path / "out"
    with pytest.raises(PresetError, match="truncated"):
        write_diva_preset(profile.parameter_set("medium33"), np.full(33, 0.5), out, base=bad)
    assert not out.exists()


def test_parse_params(profile, tmp_path: Path) -> None:
    pset = profile.parameter_set("medium33")
    assert parse_params('{"ENV1:Atk": 0.25, "34": 1, "vcf1:freq": 0}', pset) == {33: 0.25, 34: 1.0, 148: 0.0}
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"Vibrato": 0.5}))
    assert parse_params(f"@{path}", pset) == {89: 0.5}
    with pytest.raises(PresetError, match="ambiguous"):
        parse_params('{"Attack": 0.5}', pset)


@pytest.mark.parametrize("text,message", [
    ('{"FX1:Module": 0.5}', "not in parameter set medium33"),
    ('{"Nope": 0.5}', "unknown diva parameter 'Nope'"),
    ('{"ENV1:Atk": 1.5}', r"must be in \[0, 1\]"),
    ('{"ENV1:Atk": NaN}', "finite number"),
    ('{"ENV1:Atk": "0.5"}', "finite number"),
    ('{"ENV1:Atk": true}', "finite number"),
    ('[0.5]', "JSON object"),
    ('{}', "JSON object"),
    ('{"ENV1:Atk": ', "not valid JSON"),
    ("@/nonexistent/p.json", "cannot read"),
])
def test_parse_params_errors(profile, text: str, message: str) -> None:
    with pytest.raises(PresetError, match=message):
        parse_params(text, profile.parameter_set("medium33"))


def test_rows_and_diff(profile, factory_preset_path: Path) -> None:
    base = load_base_preset(profile)
    brighton = load_preset(factory_preset_path, profile)
    rows = preset_rows(base, located_set(profile))
    assert len(rows) == sum(1 for p in profile.parameters if p.location)
    module = next(r for r in rows if r["location"] == "FX1:Module")
    assert (module["text"], module["native"], module["normalised"]) == ("Chorus1", 0.0, 0.0)
    assert next(r for r in rows if r["location"] == "VCA1:Offset")["normalised"] is None  # placeholder
    result = diff_presets(base, brighton, profile.parameter_set("medium33"))
    attack = next(r for r in result["params"] if r["location"] == "ENV1:Atk")
    assert (attack["a"], attack["b"], attack["b_normalised"]) == ("1.00", "6.00", 0.06)
    assert {m["key"] for m in result["meta"]} == {"Author", "Categories", "Usage", "Features", "Character"}
    assert diff_presets(base, base, located_set(profile))["params"] == []


def test_show_json_is_valid(profile) -> None:
    data = json.loads(show_text("base", "tiny11", as_json=True))
    assert data["meta"]["Author"] == "DeepDiva" and len(data["params"]) == 11


def test_preset_meta() -> None:
    assert preset_meta() == {"Author": "deepdiva", "Description": preset_meta()["Description"]}
    assert preset_meta("/a/b/kick.wav", 0.5)["Description"].endswith("from kick.wav, match distance 0.5")
