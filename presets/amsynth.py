"""amsynth presets: the single-preset file amsynth imports, and one-preset banks.

Two text formats, both ``<parameter> name value`` lines of stored values (the profile's units):

- ``.amSynthPreset`` (amsynth's Import/Export Preset): first line ``amSynth1.0preset``, then
  ``<preset> <name> NAME`` and the parameter lines;
- ``.bank`` (what amsynth lists from ``~/.local/share/amsynth/banks``): first line ``amSynth``,
  one or more presets as above, last line ``EOF``.

The suffix of the path picks the format when writing. Like amsynth, the reader fills parameters
a file leaves out with their defaults and clamps values to the parameter's range.

``deepdiva match`` writes one one-preset bank per match into amsynth's banks folder
(``presets.folders.amsynth_banks_dir``): amsynth lists every bank file there, by its file name up
to the first dot, and reads the folder when it starts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.atomic import write_bytes_atomic
from ..core.errors import ParameterValueError, PresetError
from ..core.profile import Parameter, ParameterSet, Profile, load_profile
from .files import parse_number, read_preset_bytes
from .folders import make_dir

PRESET_HEADER = "amSynth1.0preset"
BANK_HEADER = "amSynth"
PRESET_SUFFIX = ".amSynthPreset"
BANK_SUFFIX = ".bank"
BANKS_HINT = ("amsynth reads its banks folder when it starts: restart amsynth (or reload the plugin in "
              "your host) to see the new bank in its bank menu.")
_PRESET = "<preset> <name>"
_PARAMETER = "<parameter>"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class AmsynthPreset:
    """A preset's name and its stored values by amsynth parameter name."""

    name: str
    values: Mapping[str, float] = field(default_factory=dict)

    def native_by_id(self, profile: Profile | None = None) -> dict[int, float]:
        """Every profile parameter's value (defaults where the file has none), clamped to range."""
        profile = profile or load_profile("amsynth")
        return {p.id: _clamp(p, self.values.get(_key(p), p.default)) for p in _stored(profile)}

    def native_values(self, parameter_set: ParameterSet) -> np.ndarray:
        """The set's values in profile units, shape (k,)."""
        by_id = self.native_by_id(parameter_set.profile)
        return np.array([by_id[i] for i in parameter_set.ids], dtype=np.float64)

    def normalised(self, parameter_set: ParameterSet) -> np.ndarray:
        """The set's values normalised to [0, 1], shape (k,) float32."""
        return parameter_set.to_normalised(self.native_values(parameter_set)[None, :])[0]


def preset_from_normalised(parameter_set: ParameterSet, normalised: np.ndarray, name: str = "deepdiva",
                           fixed: Mapping[int, float] | None = None) -> AmsynthPreset:
    """A preset with the set at ``normalised`` (k,) and every other parameter at ``fixed`` or default."""
    try:
        values = parameter_set.vector(normalised)
    except ParameterValueError as exc:
        raise PresetError(f"{exc}; nothing written") from None
    profile = parameter_set.profile
    native = dict(zip(parameter_set.ids, parameter_set.from_normalised(values[None, :])[0], strict=True))
    fixed = dict(fixed or {})
    stored = {}
    for p in _stored(profile):
        stored[_key(p)] = float(native.get(p.id, fixed.get(p.id, p.default)))
    return AmsynthPreset(clean_name(name), stored)


def clean_name(name: str) -> str:
    """A preset name amsynth reads back unchanged: one line, single spaces."""
    if _CONTROL.search(name or ""):
        raise PresetError(f"preset name {name!r} contains line breaks or control characters")
    text = " ".join(str(name).split())
    if not text:
        raise PresetError("a preset needs a non-empty name")
    if _PARAMETER in text.split():
        raise PresetError(f"preset name {name!r} cannot contain the word {_PARAMETER}")
    return text


def format_amsynth(preset: AmsynthPreset, profile: Profile | None = None, bank: bool = False) -> str:
    """The file text: every profile parameter in amsynth's order, in stored units."""
    profile = profile or load_profile("amsynth")
    known = {_key(p): p for p in _stored(profile)}
    unknown = sorted(set(preset.values) - set(known))
    if unknown:
        raise PresetError(f"{profile.name} has no parameter(s) {unknown}; nothing written")
    lines = [BANK_HEADER if bank else PRESET_HEADER, f"{_PRESET} {clean_name(preset.name)}"]
    for key, p in known.items():
        value = preset.values.get(key, p.default)
        if not math.isfinite(value):
            raise PresetError(f"{key} = {value} is not a finite number; nothing written")
        lines.append(f"{_PARAMETER} {key} {_format_value(p, _clamp(p, value))}")
    if bank:
        lines.append("EOF")
    return "\n".join(lines) + "\n"


def parse_amsynth(text: str, profile: Profile | None = None, source: str = "<text>",
                  index: int = 0) -> AmsynthPreset:
    """Parse a ``.amSynthPreset`` file or preset ``index`` of a ``.bank`` file."""
    profile = profile or load_profile("amsynth")
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    header = lines[0] if lines else ""
    if header not in (PRESET_HEADER, BANK_HEADER):
        raise PresetError(f"{source}: not an amsynth preset or bank (the first line is {header[:40]!r}, "
                          f"expected {PRESET_HEADER!r} or {BANK_HEADER!r})")
    presets: list[tuple[str, dict[str, float]]] = []
    known = {_key(p) for p in _stored(profile)}
    for number, line in enumerate(lines[1:], start=2):
        if not line or line == "EOF":
            continue
        if line.startswith(_PRESET):
            presets.append((line[len(_PRESET):].strip(), {}))
        elif line.startswith(_PARAMETER):
            if not presets:
                raise PresetError(f"{source}:{number}: a parameter before any {_PRESET} line")
            parsed = _parse_parameter(line, known, f"{source}:{number}")
            if parsed is not None:
                presets[-1][1][parsed[0]] = parsed[1]
        else:
            raise PresetError(f"{source}:{number}: unexpected line {line[:60]!r}")
    if not presets:
        raise PresetError(f"{source}: contains no preset")
    if not 0 <= index < len(presets):
        raise PresetError(f"{source}: has {len(presets)} preset(s); there is no preset {index}")
    name, values = presets[index]
    return AmsynthPreset(name, values)


def read_amsynth(path: str | Path, profile: Profile | None = None, index: int = 0) -> AmsynthPreset:
    """Read a ``.amSynthPreset`` file, or preset ``index`` of a ``.bank`` file."""
    path = Path(path)
    data = read_preset_bytes(path, "an amsynth preset")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_amsynth(text, profile, str(path), index)


def write_amsynth(preset: AmsynthPreset, path: str | Path, profile: Profile | None = None,
                  overwrite: bool = False) -> Path:
    """Write atomically; a ``.bank`` path gets a one-preset bank, any other a ``.amSynthPreset``.

    Never replaces a file unless ``overwrite`` (``name (2).amSynthPreset`` instead); returns the
    path written.
    """
    path = Path(path)
    bank = path.suffix.lower() == BANK_SUFFIX
    if not bank and path.suffix.lower() != PRESET_SUFFIX.lower():
        path = path.with_name(path.name + PRESET_SUFFIX)
    if path.is_dir():
        raise PresetError(f"{path}: is a folder; give a preset file name")
    data = format_amsynth(preset, profile, bank).encode("utf-8")
    make_dir(path.parent)
    try:
        return write_bytes_atomic(path, data, overwrite=overwrite)
    except OSError as exc:
        raise PresetError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_amsynth_preset(path: str | Path, parameter_set: ParameterSet, normalised: np.ndarray,
                         name: str | None = None, fixed: Mapping[int, float] | None = None,
                         overwrite: bool = False) -> Path:
    """Normalised set values -> an amsynth preset file (other parameters fixed or default)."""
    path = Path(path)
    stem = path.name.removesuffix(PRESET_SUFFIX).removesuffix(BANK_SUFFIX) or "deepdiva"
    preset = preset_from_normalised(parameter_set, normalised, name or stem, fixed)
    return write_amsynth(preset, path, parameter_set.profile, overwrite)


def _stored(profile: Profile) -> list[Parameter]:
    return [p for p in profile.parameters if p.kind != "placeholder"]


def _key(parameter: Parameter) -> str:
    return parameter.key or parameter.name


def _clamp(parameter: Parameter, value: float) -> float:
    steps = parameter.steps
    if steps is not None:
        return float(steps[np.abs(steps - value).argmin()])
    return float(min(max(value, parameter.low), parameter.high))


def _format_value(parameter: Parameter, value: float) -> str:
    if parameter.discrete:
        return str(int(round(value)))
    text = np.format_float_positional(np.float32(value), unique=True, trim="-")
    return "0" if text in ("-0", "0") else text


def _parse_parameter(line: str, known: set[str], where: str) -> tuple[str, float] | None:
    parts = line.split()
    if len(parts) != 3:
        raise PresetError(f"{where}: expected '{_PARAMETER} name value', got {line[:60]!r}")
    _, name, raw = parts
    if name == "unused":  # old files; amsynth skips these too
        return None
    if name not in known:
        raise PresetError(f"{where}: unknown amsynth parameter {name!r}")
    return name, parse_number(raw, f"{name}={raw!r}", where)
