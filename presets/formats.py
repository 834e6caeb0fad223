"""Preset formats by synth profile: the file a match of a model of that synth writes, and what
the user is told about seeing it in the synth.

- ``diva``: a ``.h2p`` preset (the shipped base preset with the answer's values);
- ``amsynth``: a one-preset ``.bank`` (amsynth lists banks, not single presets), or a
  ``.amSynthPreset`` when the output path asks for one.

Where the files go by default is :func:`~deepdiva.presets.folders.preset_location` for the same
profile name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..core.chord import Chord
from ..core.errors import PresetError
from ..core.pitch import Pitch
from ..core.profile import ParameterSet
from .amsynth import BANK_SUFFIX, BANKS_HINT, PRESET_SUFFIX, write_amsynth_preset
from .diva import RESCAN_HINT, load_base_preset, write_diva_preset
from .folders import preset_target


class PresetWriter(Protocol):
    def __call__(self, parameter_set: ParameterSet, normalised: np.ndarray, path: Path, *,
                 source: str | None, distance: float | None, pitch: Pitch | None,
                 fixed: Mapping[int, float], chord: Chord | None = None) -> Path: ...


@dataclass(frozen=True)
class PresetFormat:
    """How presets of one profile are written; the first suffix is the default."""

    profile: str
    suffixes: tuple[str, ...]
    hint: str  # how the synth shows a new preset
    write: PresetWriter  # never overwrites: returns the path written (``name (2).ext`` if taken)

    @property
    def suffix(self) -> str:
        return self.suffixes[0]

    def target(self, out: str | Path, name: str | None = None, source: str | Path | None = None) -> Path:
        """``out`` itself when it ends in one of the suffixes, else ``out/<name or source stem><suffix>``."""
        return preset_target(out, self.suffixes, name, source)


def _write_diva(parameter_set: ParameterSet, normalised: np.ndarray, path: Path, *, source: str | None,
                distance: float | None, pitch: Pitch | None, fixed: Mapping[int, float],
                chord: Chord | None = None) -> Path:
    profile = parameter_set.profile
    base = load_base_preset(profile).with_values(profile, dict(fixed)) if fixed else None
    return write_diva_preset(parameter_set, normalised, path, base=base, source=source, distance=distance, pitch=pitch,
                             chord=chord)


def _write_amsynth(parameter_set: ParameterSet, normalised: np.ndarray, path: Path, *, source: str | None,
                   distance: float | None, pitch: Pitch | None, fixed: Mapping[int, float],
                   chord: Chord | None = None) -> Path:
    return write_amsynth_preset(path, parameter_set, normalised, fixed=fixed)


FORMATS: dict[str, PresetFormat] = {
    "diva": PresetFormat("diva", (".h2p",), RESCAN_HINT, _write_diva),
    "amsynth": PresetFormat("amsynth", (BANK_SUFFIX, PRESET_SUFFIX), BANKS_HINT, _write_amsynth),
}


def preset_format(profile: str) -> PresetFormat:
    """The preset format of a synth profile (``diva``, ``amsynth``)."""
    try:
        return FORMATS[profile]
    except KeyError:
        raise PresetError(f"deepdiva cannot write presets of the {profile!r} synth; "
                          f"it writes {', '.join(FORMATS)} presets") from None
