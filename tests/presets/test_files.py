"""Preset file reading: the size cap every preset reader goes through (issue 14)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from deepdiva.core.errors import PresetError
from deepdiva.core.limits import MAX_PRESET_BYTES
from deepdiva.presets.amsynth import read_amsynth
from deepdiva.presets.h2p import BINARY_MARKER, read_h2p


def padded_h2p(base: bytes, size: int) -> bytes:
    """A valid .h2p of exactly ``size`` bytes: the base preset's text padded with harmless lines."""
    body = base.split(BINARY_MARKER.encode())[0]
    pad = size - len(body)
    return body + b"x=1\n" * (pad // 4) + b"\n" * (pad % 4)


def test_a_preset_at_the_cap_is_read(base_preset_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.h2p"
    path.write_bytes(padded_h2p(base_preset_path.read_bytes(), MAX_PRESET_BYTES))
    assert read_h2p(path).header["AM"] == "Diva"


def test_a_valid_preset_over_the_cap_is_refused(base_preset_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "huge.h2p"
    path.write_bytes(padded_h2p(base_preset_path.read_bytes(), MAX_PRESET_BYTES + 1))
    with pytest.raises(PresetError, match=r"huge.h2p: larger than 1 MB, too large for a .h2p preset file"):
        read_h2p(path)


@pytest.mark.parametrize("reader,kind", [(read_h2p, "a .h2p preset file"), (read_amsynth, "an amsynth preset")])
def test_a_huge_file_is_refused_without_reading_it(tmp_path: Path, reader, kind: str) -> None:
    path = tmp_path / "huge"
    with path.open("wb") as f:
        f.truncate(200_000_000)  # sparse: 200 MB that take no disk
    tracemalloc.start()
    try:
        with pytest.raises(PresetError, match=f"larger than 1 MB, too large for {kind}") as info:
            reader(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert peak < 3 * MAX_PRESET_BYTES
