"""File names: a printable form for any name the OS allows, derived names within 255 bytes."""

from __future__ import annotations

import json
import os

import pytest

from deepdiva.core.filenames import NAME_MAX, fit_name, name_size, printable, printable_data

LATIN1 = os.fsdecode(b"caf\xe9.wav")  # what os.listdir gives for a name that is not UTF-8


def test_printable_escapes_undecodable_bytes_and_control_characters() -> None:
    assert printable(LATIN1) == "caf\\xe9.wav"
    assert printable("a\nb\tc\x1b.wav") == "a\\nb\\tc\\x1b.wav"
    assert printable("\ud800") == "\\ud800"  # a lone surrogate of another kind (Windows names)
    for fine in ("kick.wav", "Café 音.wav", ""):
        assert printable(fine) == fine
    for shown in (printable(LATIN1), printable("\ud800x")):
        shown.encode("utf-8")  # never fails


def test_printable_data_makes_every_string_printable() -> None:
    data = {"source": LATIN1, "results": [{"preset": f"/p/{LATIN1}"}], "distance": 0.5, "ok": None}
    shown = printable_data(data)
    assert shown == {"source": "caf\\xe9.wav", "results": [{"preset": "/p/caf\\xe9.wav"}], "distance": 0.5,
                     "ok": None}
    json.dumps(shown, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("stem,suffix,tag", [
    ("a" * 249, ".wav", " (2)"),
    ("音" * 83, ".h2p", " alt 10"),
    (os.fsdecode(b"\xe9" * 251), ".wav", " (12)"),
    ("x", "." + "y" * 260, " (3)"),  # a suffix that leaves no room is cut like the stem
])
def test_fit_name_keeps_the_tag_and_fits(stem: str, suffix: str, tag: str) -> None:
    name = fit_name(stem, suffix, tag)
    assert name_size(name) <= NAME_MAX and tag in name
    if len(suffix) < 10:
        assert name.endswith(tag + suffix) and stem.startswith(name[: -len(tag + suffix)])
    assert fit_name("kick", ".wav", " (2)") == "kick (2).wav"  # short names are left alone


def test_fit_name_never_splits_a_character() -> None:
    for limit in range(20, 40):
        name = fit_name("音" * 30, ".wav", limit=limit)
        assert name_size(name) <= limit and set(name[:-4]) == {"音"}
        name.encode("utf-8")


def test_name_size_counts_bytes_on_disk() -> None:
    assert name_size("音") == 3 and name_size(LATIN1) == 8 and name_size("a" * 253) == 253
