"""High-level Diva preset helpers: the shipped base preset, tables and diffs for the CLI, and
:func:`write_diva_preset` for the matcher and daemon."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.chord import Chord
from ..core.errors import ParameterValueError, PresetError, ProfileError
from ..core.pitch import Pitch
from ..core.profile import ParameterRangeWarning, ParameterSet, Profile, load_profile
from ..core.tuning import FINE_TUNE_DECIMALS, FINE_TUNE_ID
from .folders import preset_target
from .h2p import H2PPreset, parse_h2p, read_h2p, write_h2p

BASE_REF = "base"
AUTHOR = "deepdiva"
RESCAN_HINT = "Diva does not watch its folders: use 'Rescan Folders' in Diva's preset menu to see it."

PresetRef = str | Path | H2PPreset


@cache
def _base_bytes(name: str) -> bytes:
    return resources.files("deepdiva.presets.data").joinpath(name).read_bytes()


def base_preset_name(profile: Profile | None = None) -> str:
    profile = profile or load_profile("diva")
    return str(profile.meta.get("base_preset", "MS-Rev1_deepdiva.h2p"))


def load_base_preset(profile: Profile | None = None) -> H2PPreset:
    """The base preset shipped with deepdiva (every value a render assumes)."""
    return _parsed_base(base_preset_name(profile))


@cache
def _parsed_base(name: str) -> H2PPreset:
    # H2PPreset is immutable (with_values returns a new one), so one parse serves every match.
    return parse_h2p(_base_bytes(name), f"base ({name})")


def load_preset(ref: PresetRef, profile: Profile | None = None) -> H2PPreset:
    """A preset from a path, the word ``base`` or an already parsed preset; checks that no
    parameter of ``profile`` is missing (a truncated file)."""
    profile = profile or load_profile("diva")
    if isinstance(ref, H2PPreset):
        return ref.check_complete(profile)
    if str(ref) == BASE_REF:
        return load_base_preset(profile)
    return read_h2p(Path(ref).expanduser(), profile)


def located_set(profile: Profile) -> ParameterSet:
    """Every parameter of ``profile`` that has a place in a preset file."""
    return ParameterSet(profile, "located", tuple(p.id for p in profile.parameters if p.location))


def resolve_set(profile: Profile, spec: str | None) -> ParameterSet:
    """A named set or ids (``"33 34 35"``); ``None`` means every located parameter."""
    return located_set(profile) if spec is None else profile.parameter_set(spec)


def preset_rows(preset: H2PPreset, parameter_set: ParameterSet) -> list[dict]:
    """One dict per parameter: id, location, name, text, native, normalised, range, in_range."""
    rows = []
    for p in parameter_set.parameters:
        present = p.location is not None and (p.section, p.key) in preset
        native = preset.native(p) if present else None
        normalised = in_range = None
        if native is not None and p.kind != "placeholder":
            single = ParameterSet(parameter_set.profile, p.name, (p.id,))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ParameterRangeWarning)
                normalised = round(float(single.to_normalised(np.array([[native]]))[0, 0]), 6)
            in_range = not caught
        rows.append({
            "id": p.id, "location": p.location, "name": p.name,
            "text": preset.get(p.section, p.key).strip().strip("'") if present else None,  # type: ignore[arg-type]
            "native": native, "normalised": normalised, "range": p.describe_range(), "in_range": in_range,
        })
    return rows


def diff_presets(a: H2PPreset, b: H2PPreset, parameter_set: ParameterSet) -> dict:
    """Parameters whose native values differ, and meta keys whose texts differ."""
    params = []
    for ra, rb in zip(preset_rows(a, parameter_set), preset_rows(b, parameter_set), strict=True):
        if ra["native"] != rb["native"]:
            params.append({"id": ra["id"], "location": ra["location"], "name": ra["name"],
                           "a": ra["text"], "b": rb["text"], "a_native": ra["native"],
                           "b_native": rb["native"], "a_normalised": ra["normalised"],
                           "b_normalised": rb["normalised"]})
    keys = list(dict.fromkeys([*a.meta, *b.meta]))
    meta = [{"key": k, "a": a.meta.get(k), "b": b.meta.get(k)} for k in keys if a.meta.get(k) != b.meta.get(k)]
    return {"a": a.source, "b": b.source, "set": parameter_set.name, "params": params, "meta": meta}


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table with columns as wide as their widest cell."""
    cells = [[str(h) for h in headers], *[["-" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


def _norm_text(row: dict, key: str = "normalised") -> str:
    value = row[key]
    if value is None:
        return "-"
    return f"{value:.4f}" + ("" if row.get("in_range", True) is not False else " (out of range)")


def show_text(ref: PresetRef, set_spec: str | None = None, as_json: bool = False) -> str:
    """``deepdiva preset show``: a table (or JSON) of a preset's parameter values."""
    profile = load_profile("diva")
    preset = load_preset(ref, profile)
    pset = resolve_set(profile, set_spec)
    rows = preset_rows(preset, pset)
    if as_json:
        return json.dumps({"file": preset.source, "meta": preset.meta, "set": pset.name,
                           "params": rows}, indent=2)
    lines = [f"{preset.source}", *[f"  {k}: {v}" for k, v in preset.meta.items()], ""]
    table = format_table(("id", "location", "name", "value", "normalised", "range"),
                         [(r["id"], r["location"], r["name"], r["text"], _norm_text(r), r["range"])
                          for r in rows])
    return "\n".join(lines) + table


def diff_text(a: PresetRef, b: PresetRef, set_spec: str | None = None, as_json: bool = False) -> str:
    """``deepdiva preset diff``: the parameters (and meta) that differ between two presets."""
    profile = load_profile("diva")
    result = diff_presets(load_preset(a, profile), load_preset(b, profile), resolve_set(profile, set_spec))
    if as_json:
        return json.dumps(result, indent=2)
    out = [f"a: {result['a']}", f"b: {result['b']}"]
    if not result["params"] and not result["meta"]:
        return "\n".join([*out, "no differences"])
    for m in result["meta"]:
        out.append(f"meta {m['key']}: {m['a']!r} -> {m['b']!r}")
    if result["params"]:
        out.append(f"{len(result['params'])} parameter(s) differ:")
        out.append(format_table(
            ("id", "location", "name", "a", "b", "a norm", "b norm"),
            [(r["id"], r["location"], r["name"], r["a"], r["b"], _norm_text(r, "a_normalised"),
              _norm_text(r, "b_normalised")) for r in result["params"]]))
    return "\n".join(out)


def parse_params(text: str, parameter_set: ParameterSet) -> dict[int, float]:
    """``{"ENV1:Atk": 0.2, "34": 0.5, "Cutoff": 1}`` (or ``@file.json``) -> {id: normalised}.

    Keys are ids, locations or names resolved by the profile; each must be in the set and each
    value a number in [0, 1].
    """
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PresetError(f"--params: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PresetError(f"--params: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict) or not data:
        raise PresetError('--params: expected a JSON object like {"ENV1:Atk": 0.2}')
    out: dict[int, float] = {}
    for key, value in data.items():
        try:
            param = parameter_set.profile.find(key)
        except ProfileError as exc:
            raise PresetError(f"--params: {exc}") from None
        if param.id not in parameter_set.ids:
            raise PresetError(f"--params: {key!r} ({param.location or param.name}, id {param.id}) is "
                              f"not in parameter set {parameter_set.name}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise PresetError(f"--params: value for {key!r} must be a finite number, got {value!r}")
        if not 0.0 <= value <= 1.0:
            raise PresetError(f"--params: normalised value for {key!r} must be in [0, 1], got {value}")
        out[param.id] = float(value)
    return out


def normalised_to_native(parameter_set: ParameterSet, values: Mapping[int, float]) -> dict[int, float]:
    """Normalised values of some parameters of a set -> native values (discrete ones quantised)."""
    ids = tuple(i for i in parameter_set.ids if i in values)
    if not ids:
        return {}
    # the whole set (every match writes one) keeps its cached codec; a subset builds its own
    subset = parameter_set if ids == tuple(parameter_set.ids) else ParameterSet(parameter_set.profile, "subset", ids)
    native = subset.from_normalised(np.array([[values[i] for i in ids]], dtype=np.float64))[0]
    return {i: float(v) for i, v in zip(ids, native, strict=True)
            if parameter_set.profile.by_id(i).kind != "placeholder"}


def preset_meta(source: str | Path | None = None, distance: float | None = None,
                pitch: Pitch | None = None, chord: Chord | None = None) -> dict[str, str]:
    """Meta for a written preset: Author deepdiva, Description naming the source, the key it was
    matched at ("played at A4", or "played as the chord C3 E3 G3") and the distance."""
    text = f"made by deepdiva {__version__}"
    if source is not None:
        text += f" from {Path(source).name}"
    if chord is not None:
        text += f", played as the chord {chord.describe()}"
    elif pitch is not None:
        text += f", played at {pitch.name}" if pitch.pitched else ", unpitched"
    if distance is not None and math.isfinite(distance):
        text += f", match distance {float(distance):.4g}"
    return {"Author": AUTHOR, "Description": text}


def pitch_values(pitch: Pitch | None) -> dict[int, float]:
    """The master fine tune (VCC:FTun, cents) that makes a preset matched at ``pitch`` sound at
    the target's exact pitch when its key is played; nothing for unpitched sounds."""
    if pitch is None or not pitch.pitched:
        return {}
    return {FINE_TUNE_ID: round(float(pitch.cents), FINE_TUNE_DECIMALS)}


def target_path(out: str | Path, name: str | None = None, source: str | Path | None = None) -> Path:
    """``out`` itself when it ends in ``.h2p``, else ``out/<name or source stem>.h2p``."""
    return preset_target(out, (".h2p",), name, source)


def write_values(values: Mapping[int, float], out: str | Path, *, base: PresetRef | None = None,
                 name: str | None = None, source: str | Path | None = None,
                 distance: float | None = None, overwrite: bool = False,
                 profile: Profile | None = None, pitch: Pitch | None = None, chord: Chord | None = None) -> Path:
    """Write a preset: ``base`` with ``{id: native}`` changed; returns the path written."""
    profile = profile or load_profile("diva")
    base_preset = load_preset(BASE_REF if base is None else base, profile)
    preset = base_preset.with_values(profile, values, meta=preset_meta(source, distance, pitch, chord))
    return write_h2p(preset, target_path(out, name, source), overwrite=overwrite)


def write_diva_preset(parameter_set: ParameterSet, normalised: np.ndarray, out: str | Path,
                      name: str | None = None, base: PresetRef | None = None,
                      source: str | Path | None = None, distance: float | None = None,
                      overwrite: bool = False, pitch: Pitch | None = None, chord: Chord | None = None) -> Path:
    """Write the preset for one normalised vector (k,) of ``parameter_set``.

    ``out`` is a ``.h2p`` path or a folder (file name from ``name``, else the source's stem);
    ``base`` defaults to the shipped base preset. Never overwrites unless ``overwrite``. ``pitch``:
    the key the patch was matched at; its cents go into the master fine tune and its name into
    the description (``chord``: the chord it was matched as, named there instead).
    """
    try:
        vector = parameter_set.vector(normalised)
        native = normalised_to_native(parameter_set, dict(zip(parameter_set.ids, vector.tolist(), strict=True)))
    except ParameterValueError as exc:
        raise PresetError(f"cannot write {out}: {exc}") from None
    return write_values({**pitch_values(pitch), **native}, out, base=base, name=name, source=source,
                        distance=distance, overwrite=overwrite, profile=parameter_set.profile, pitch=pitch,
                        chord=chord)


def write_from_json(params: str, out: str | Path, base: PresetRef = BASE_REF, set_spec: str = "medium33",
                    overwrite: bool = False) -> Path:
    """``deepdiva preset write``: base + JSON normalised values -> a new preset file."""
    profile = load_profile("diva")
    pset = profile.parameter_set(set_spec)
    native = normalised_to_native(pset, parse_params(params, pset))
    return write_values(native, out, base=base, overwrite=overwrite, profile=profile)
