"""Diva .h2p: parse, byte-exact round trips, value formatting, meta, and one error per bad input."""

from __future__ import annotations

import math
import os
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepdiva.core.errors import PresetError
from deepdiva.core.profile import ParameterRangeWarning
from deepdiva.presets.h2p import BINARY_MARKER, H2PPreset, parse_h2p, read_h2p, write_h2p

REFERENCES = ["MS-Rev1_deepdiva.h2p", "HS-Brighton.h2p"]


def body_lines(data: bytes) -> list[bytes]:
    """The text lines of a .h2p file from ``#AM=Diva`` up to the binary section."""
    lines = data.split(BINARY_MARKER.encode())[0].split(b"\n")
    return lines[lines.index(b"#AM=Diva"):]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(params=REFERENCES)
def reference(request, data_dir: Path) -> Path:
    return data_dir / request.param


# --------------------------------------------------------------------------- reading

def test_parses_meta_header_and_sections(factory_preset_path: Path) -> None:
    preset = read_h2p(factory_preset_path)
    assert preset.meta["Author"] == "Howard Scarr"
    assert preset.meta["Features"] == "Poly, Percussive, Slow Release"
    assert preset.header["AM"] == "Diva" and preset.header["Vers"] == "10001"
    assert len(preset.mod_sources) == 24 and preset.mod_sources[:2] == ("none", "ModWhl")
    assert preset.mod_values == ("Gate", "Env1")
    assert preset.get("VCF1", "Freq") == "147.00"
    assert preset.get("FX2", "Module") == "'Plate2'"
    assert preset.keys()[0] == ("main", "CcOp") and ("PCore", "PSong") in preset
    assert preset.has_binary_tail


def test_values_by_profile_id(base_preset_path: Path, profile) -> None:
    preset = read_h2p(base_preset_path, profile)
    pset = profile.parameter_set("33 86 148 178 217")
    assert preset.native_values(pset).tolist() == [1.0, 0.0, 147.0, 0.0, 3.0]  # Chorus1, Delay2
    by_id = preset.native_by_id(profile)
    assert len(by_id) == sum(1 for p in profile.parameters if p.location)
    assert by_id == {p.id: p.default for p in profile.parameters if p.location}


# --------------------------------------------------------------------------- round trips

def test_unchanged_round_trip_is_byte_exact(reference: Path, tmp_path: Path) -> None:
    data = reference.read_bytes()
    assert parse_h2p(data).to_bytes() == data
    written = write_h2p(read_h2p(reference), tmp_path / "copy.h2p")
    assert written.read_bytes() == data


def test_rewrite_without_changes_keeps_body_and_values(reference: Path, profile, tmp_path: Path) -> None:
    original = read_h2p(reference)
    rewritten = original.with_values(profile, {})
    out = write_h2p(rewritten, tmp_path / "x.h2p")
    again = read_h2p(out, profile)
    assert body_lines(out.read_bytes()) == body_lines(reference.read_bytes())
    assert again.native_by_id(profile) == original.native_by_id(profile)
    assert not again.has_binary_tail and b"$$$$" not in out.read_bytes()


def test_writing_medium33_changes_exactly_those_lines(reference: Path, profile, tmp_path: Path) -> None:
    pset = profile.parameter_set("medium33")
    original = read_h2p(reference)
    before = original.native_values(pset)
    target = np.where(pset.from_normalised(np.full((1, 33), 0.37))[0] == before, 0.9, 0.37)
    native = pset.from_normalised(target[None, :])[0]
    assert (native != before).all()
    out = write_h2p(original.with_values(profile, dict(zip(pset.ids, native, strict=True))),
                    tmp_path / "m.h2p")
    old_lines, new_lines = body_lines(reference.read_bytes()), body_lines(out.read_bytes())
    assert len(old_lines) == len(new_lines)
    written = read_h2p(out, profile)
    changed_locations = {(s, k) for s, k in written.keys() if written.get(s, k) != original.get(s, k)}
    assert changed_locations == {(p.section, p.key) for p in pset.parameters}
    assert sum(a != b for a, b in zip(old_lines, new_lines, strict=True)) == 33
    np.testing.assert_allclose(written.native_values(pset), native, atol=0.005)
    data = out.read_bytes()
    assert BINARY_MARKER.encode() not in data and b"$$$$" not in data and b"\0" not in data


def test_crlf_and_non_utf8_bytes_survive(base_preset_path: Path, profile) -> None:
    data = base_preset_path.read_bytes().replace(b"'DeepDiva'", b"'Caf\xe9 \xff'")
    body, tail = data.split(BINARY_MARKER.encode())
    crlf = body.replace(b"\n", b"\r\n") + BINARY_MARKER.encode() + tail
    preset = parse_h2p(crlf)
    assert preset.to_bytes() == crlf
    assert preset.meta["Author"].startswith("Caf")
    changed = preset.with_values(profile, {"ENV1:Atk": 12.5}).to_bytes()
    assert b"\nAtk=12.50\r\n" in changed and b"'Caf\xe9 \xff'" in changed


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 100), st.floats(-30, 30), st.integers(-3, 23))
def test_written_values_read_back(atk: float, tune: float, sync: int) -> None:
    base = _base()
    profile = _profile()
    preset = base.with_values(profile, {"ENV1:Atk": atk, "OSC:Tune2": tune, 55: sync})
    again = parse_h2p(preset.to_bytes())
    half_step = 0.005 + 1e-9  # two decimals: 0.125 is stored as 0.12
    assert math.isclose(again.native(profile.find("ENV1:Atk")), atk, abs_tol=half_step)
    assert math.isclose(again.native(profile.find("OSC:Tune2")), tune, abs_tol=half_step)
    assert again.get("LFO1", "Sync") == str(sync)
    # writing what was read back changes nothing
    same = again.with_values(profile, {"ENV1:Atk": again.native(profile.find("ENV1:Atk"))})
    assert same.to_bytes() == again.to_bytes()


def _base() -> H2PPreset:
    from deepdiva.presets.diva import load_base_preset

    return load_base_preset()


def _profile():
    from deepdiva.core.profile import load_profile

    return load_profile("diva")


# --------------------------------------------------------------------------- formatting

@pytest.mark.parametrize("ref,value,line", [
    ("ENV1:Atk", 37.126, b"\nAtk=37.13\n"),          # 2 decimals like the base line
    ("LFO1:Sync", 7, b"\nSync=7\n"),                  # integers stay integers
    ("OSC:Wave1", 3, b"\nWave1=3.00\n"),              # an integer kind written as 2.00 keeps decimals
    ("VCF1:Model", 2.4, b"\nModel=2\n"),              # continuous with an integer line: integer
    ("FX1:Module", 2, b"\nModule='Plate1'\n"),        # labels keep quotes
    ("FX1:Module", "Delay1", b"\nModule='Delay1'\n"),
    ("OSC:Tune1", -12, b"\nTune1=-12.00\n"),
    ("LFO1:Rate", -0.001, b"\nRate=0.00\n"),          # no negative zero
])
def test_values_formatted_like_the_line_they_replace(profile, ref: str, value, line: bytes) -> None:
    assert line in _base().with_values(profile, {ref: value}).to_bytes()


def test_out_of_range_values_are_clipped_with_a_warning(profile) -> None:
    with pytest.warns(ParameterRangeWarning, match="ENV1:Atk"):
        data = _base().with_values(profile, {"ENV1:Atk": 150}).to_bytes()
    assert b"\nAtk=100.00\n" in data
    assert b"\nSync=2\n" in _base().with_values(profile, {55: 2.4}).to_bytes()  # snaps to a step


def test_nv_matches_mv_lines(base_preset_path: Path, profile) -> None:
    data = base_preset_path.read_bytes().replace(b"#nv=2\n", b"#nv=3\n")
    preset = parse_h2p(data)
    assert preset.to_bytes() == data  # unchanged presets stay byte-exact
    fixed = preset.with_values(profile, {33: 5.0}).to_bytes()
    assert b"\n#nv=2\n" in fixed and fixed.count(b"\n#mv=") == 2


# --------------------------------------------------------------------------- meta

def test_meta_author_and_description(base_preset_path: Path, profile) -> None:
    preset = read_h2p(base_preset_path).with_values(
        profile, {33: 2}, meta={"Author": "deepdiva", "Description": "from kick.wav, distance 0.25"})
    data = preset.to_bytes()
    assert b"Author:\n'deepdiva'\n" in data
    assert b"Description:\n'from kick.wav, distance 0.25'\n" in data
    again = parse_h2p(data)
    assert again.meta == {"Author": "deepdiva", "Description": "from kick.wav, distance 0.25",
                          "Categories": "Other:Initialize, Other:Templates"}
    assert list(again.meta) == ["Author", "Description", "Categories"]  # u-he's order


def test_meta_text_is_one_line_without_quotes(profile) -> None:
    preset = _base().with_meta({"Description": "it's\nnew: Grüße"})
    assert parse_h2p(preset.to_bytes()).meta["Description"] == "it`s new: Grüße"


def test_meta_block_added_when_missing(base_preset_path: Path) -> None:
    data = base_preset_path.read_bytes()
    bare = parse_h2p(data[data.index(b"#AM=Diva"):])
    assert bare.meta == {}
    again = parse_h2p(bare.with_meta({"Author": "deepdiva"}).to_bytes())
    assert again.meta == {"Author": "deepdiva"} and again.get("ENV1", "Atk") == "1.00"


def _parsed_state(preset: H2PPreset) -> tuple:
    return (preset.lines, preset.tail, preset.meta, list(preset.meta), preset.header, preset.mod_sources,
            preset.mod_values, preset.keys(), [preset.get(*at) for at in preset.keys()],
            [preset.lines[preset._header_index[name]] for name in preset.header])


@pytest.mark.parametrize("meta", [{}, {"Description": "played at A4, it's\nnew: Grüße"},
                                  {"Usage": "x", "Character": "y", "Author": "deepdiva"}])
@pytest.mark.parametrize("bare", [False, True], ids=["meta block", "no meta block"])
def test_edited_preset_is_what_its_bytes_parse_to(base_preset_path: Path, profile, meta: dict, bare: bool) -> None:
    """with_values carries its parse over instead of parsing again: the same as parsing its bytes."""
    data = base_preset_path.read_bytes().replace(b"#nv=2\n", b"#nv=3\n")  # a count fixed too
    preset = parse_h2p(data[data.index(b"#AM=Diva"):] if bare else data)
    for values in ({"ENV1:Atk": 12.5, "OSC:Tune2": -7}, {33: 2}):
        preset = preset.with_values(profile, values, meta=meta)
        assert _parsed_state(preset) == _parsed_state(parse_h2p(preset.to_bytes()))
        assert _parsed_state(preset.with_meta({"Bank": "b"})) == _parsed_state(
            parse_h2p(preset.with_meta({"Bank": "b"}).to_bytes()))


# --------------------------------------------------------------------------- writing

def test_never_overwrites_unless_asked(base_preset_path: Path, profile, tmp_path: Path) -> None:
    preset = read_h2p(base_preset_path)
    paths = [write_h2p(preset, tmp_path / "name.h2p") for _ in range(3)]
    assert [p.name for p in paths] == ["name.h2p", "name (2).h2p", "name (3).h2p"]
    changed = preset.with_values(profile, {33: 9})
    assert write_h2p(changed, tmp_path / "name.h2p", overwrite=True) == tmp_path / "name.h2p"
    assert read_h2p(tmp_path / "name.h2p").get("ENV1", "Atk") == "9.00"
    assert write_h2p(preset, tmp_path / "plain").name == "plain.h2p"
    assert files_in(tmp_path) == ["name (2).h2p", "name (3).h2p", "name.h2p", "plain.h2p"]  # no temp files


def test_failed_write_leaves_no_file(base_preset_path: Path, tmp_path: Path, monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    monkeypatch.setattr(os, "link", boom)
    with pytest.raises(PresetError, match="No space left"):
        write_h2p(read_h2p(base_preset_path), tmp_path / "x.h2p")
    assert files_in(tmp_path) == []


def test_writing_onto_a_folder_fails(base_preset_path: Path, tmp_path: Path) -> None:
    (tmp_path / "d.h2p").mkdir()
    with pytest.raises(PresetError, match="is a folder"):
        write_h2p(read_h2p(base_preset_path), tmp_path / "d.h2p")


# --------------------------------------------------------------------------- bad input

def _cut_before(data: bytes, marker: bytes) -> bytes:
    return data[:data.index(marker)]


def _wav_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "a.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\1" * 800)
    return path.read_bytes()


BAD_FILES = {
    "empty": (lambda d, t: b"", "empty"),
    "no sections": (lambda d, t: _cut_before(d, b"#cm=main"), "no '#cm="),
    "no #AM": (lambda d, t: d.replace(b"#AM=Diva\n", b""), "#AM=Diva"),
    "cut in meta": (lambda d, t: d[:40], "never closed"),
    "cut mid-line": (lambda d, t: _cut_before(d, b"Freq=147.00") + b"Fre", "middle of a line"),
    "cut at key": (lambda d, t: _cut_before(d, b"Freq=147.00") + b"Freq=", "middle of a line"),
    "binary garbage": (lambda d, t: np.random.default_rng(1).bytes(3000), "binary data"),
    "wav": (lambda d, t: _wav_bytes(t), "WAV"),
    "text file": (lambda d, t: b"just some notes\nabout a sound\n", "#AM=Diva"),
    "zebra": (lambda d, t: d.replace(b"#AM=Diva", b"#AM=Zebra2"), "Zebra2"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_one_line_naming_the_file(case: str, base_preset_path: Path, tmp_path: Path) -> None:
    make, message = BAD_FILES[case]
    path = tmp_path / "bad.h2p"
    path.write_bytes(make(base_preset_path.read_bytes(), tmp_path))
    with pytest.raises(PresetError, match=message) as info:
        read_h2p(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_cut_at_a_line_boundary_is_found_with_the_profile(base_preset_path: Path, profile,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "cut.h2p"
    path.write_bytes(_cut_before(base_preset_path.read_bytes(), b"Freq=147.00"))
    read_h2p(path)  # parses: the text itself looks fine
    with pytest.raises(PresetError, match=r"truncated .* first VCF1:Freq"):
        read_h2p(path, profile)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="no such preset"):
        read_h2p(tmp_path / "nope.h2p")
    with pytest.raises(PresetError, match="is a folder"):
        read_h2p(tmp_path)


def test_bad_value_text_in_file(base_preset_path: Path, profile) -> None:
    preset = parse_h2p(base_preset_path.read_bytes().replace(b"Atk=1.00\nDec=100", b"Atk=fast\nDec=100"), "f.h2p")
    with pytest.raises(PresetError, match=r"f.h2p: ENV1:Atk='fast' is not a number"):
        preset.native(profile.find("ENV1:Atk"))
    preset = parse_h2p(base_preset_path.read_bytes().replace(b"'Chorus1'", b"'Flanger'"), "f.h2p")
    with pytest.raises(PresetError, match="not one of Chorus1"):
        preset.native(profile.find("FX1:Module"))


@pytest.mark.parametrize("values,message", [
    ({"Nope": 1.0}, "unknown diva parameter 'Nope'"),
    ({17: 1.0}, "has no place in a preset"),
    ({999: 1.0}, "no parameter with id 999"),
    ({33: float("nan")}, "ENV1:Atk is nan"),
    ({33: math.inf}, "not a finite number"),
    ({33: "fast"}, "must be a number, got str"),
    ({33: None}, "must be a number, got NoneType"),
    ({33: True}, "must be a number, got bool"),
    ({178: "Flanger1"}, "must be a number"),
    ({3.5: 1.0}, "must be an id"),
])
def test_bad_values_raise(profile, values: dict, message: str) -> None:
    with pytest.raises(PresetError, match=message) as info:
        _base().with_values(profile, values)
    assert "base (MS-Rev1_deepdiva.h2p)" in str(info.value)


def test_missing_location_cannot_be_set(base_preset_path: Path, profile) -> None:
    data = base_preset_path.read_bytes().replace(b"Atk=1.00\nDec=100", b"Dec=100")
    with pytest.raises(PresetError, match="no line for ENV1:Atk"):
        parse_h2p(data).with_values(profile, {33: 1.0})
