"""CC map: which MIDI CC carries which synth parameter, and the learn sheet for the user.

The shipped map comes from the profile's ``cc`` fields (the Diva profile maps its medium33
parameters); a user TOML overrides it::

    [cc]
    "VCF1:Freq" = 74      # move a parameter to another CC
    "OSC:VtoD" = false    # stop sending a parameter

Keys are anything :meth:`Profile.find` accepts (``SECTION:Key``, an id, a unique name).
A parameter on CC 0-31 is *high resolution*: in 14-bit mode it is sent as MSB on CC n and
LSB on CC n+32, in 7-bit mode as one CC n. Everything here is pure (no MIDI I/O).
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.atomic import write_atomic
from ..core.errors import ConfigError, ParameterValueError, ProfileError
from ..core.profile import Parameter, ParameterSet, Profile, load_profile

MODES = ("7bit", "14bit")
MAX_CC = 119  # 120-127 are channel mode messages
MAX_14BIT_MSB = 31
LSB_OFFSET = 32

RESERVED_CCS: dict[int, str] = {
    0: "bank select MSB",
    1: "Diva's ModWhl",
    2: "Diva's CtrlA",
    6: "data entry MSB",
    11: "Diva's CtrlB",
    32: "bank select LSB",
    38: "data entry LSB",
    **{n: "a pedal (64-69)" for n in range(64, 70)},
    **{n: "(N)RPN selection (98-101)" for n in range(98, 102)},
}

SHEET_FORMATS = ("csv", "md")
SHEET_COLUMNS = ("cc", "lsb_14bit", "section", "label", "name", "range", "id")


@dataclass(frozen=True)
class CCAssignment:
    """One parameter on one CC."""

    parameter: Parameter
    cc: int

    @property
    def high_res(self) -> bool:
        """Whether 14-bit mode sends this one as MSB + LSB."""
        return self.cc <= MAX_14BIT_MSB

    @property
    def lsb(self) -> int | None:
        return self.cc + LSB_OFFSET if self.high_res else None

    @property
    def control(self) -> str:
        """What the user clicks in Diva, e.g. ``VCF1 Freq (Frequency)``."""
        p = self.parameter
        where = f"{p.section} {p.key}" if p.section and p.key else f"#{p.id}"
        return f"{where} ({p.name})"


class CCMap:
    """The CC assignments of one profile, ordered by CC, validated on construction."""

    def __init__(self, profile: Profile, assignments: Sequence[CCAssignment], source: str = "profile") -> None:
        self.profile = profile
        self.source = source
        self.assignments = tuple(sorted(assignments, key=lambda a: a.cc))
        _validate(self.assignments, source)
        self._by_id = {a.parameter.id: a for a in self.assignments}

    def __len__(self) -> int:
        return len(self.assignments)

    def __iter__(self) -> Iterator[CCAssignment]:
        return iter(self.assignments)

    def __repr__(self) -> str:
        return f"CCMap({self.profile.name!r}, {len(self)} CCs from {self.source})"

    def get(self, parameter: Parameter | int) -> CCAssignment | None:
        pid = parameter.id if isinstance(parameter, Parameter) else int(parameter)
        return self._by_id.get(pid)

    def as_dict(self) -> dict[str, int]:
        """``{"SECTION:Key": cc}`` (the override format)."""
        return {a.parameter.location or str(a.parameter.id): a.cc for a in self.assignments}


def _validate(assignments: Sequence[CCAssignment], source: str) -> None:
    used: dict[int, CCAssignment] = {}
    for a in assignments:
        name = a.parameter.location or a.parameter.name
        if isinstance(a.cc, bool) or not isinstance(a.cc, int) or not 0 <= a.cc <= MAX_CC:
            raise ConfigError(f"{source}: CC for {name!r} must be an integer 0-{MAX_CC} "
                              f"(120-127 are channel mode messages), got {a.cc!r}")
        if a.cc in RESERVED_CCS:
            raise ConfigError(f"{source}: CC {a.cc} for {name!r} is reserved for {RESERVED_CCS[a.cc]}; "
                              "pick another CC")
        if a.parameter.kind == "placeholder":
            raise ConfigError(f"{source}: {name!r} is a placeholder parameter and cannot be sent")
        if a.cc in used:
            other = used[a.cc].parameter.location or used[a.cc].parameter.name
            raise ConfigError(f"{source}: CC {a.cc} is assigned to both {other!r} and {name!r}")
        used[a.cc] = a
    for a in assignments:
        msb = a.cc - LSB_OFFSET
        if 0 <= msb <= MAX_14BIT_MSB and msb in used:
            name = a.parameter.location or a.parameter.name
            other = used[msb].parameter.location or used[msb].parameter.name
            raise ConfigError(f"{source}: CC {a.cc} for {name!r} is the 14-bit LSB of CC {msb} ({other!r}); "
                              "pick another CC")


def load_cc_map(profile: Profile | str = "diva",
                overrides: Mapping[str, object] | str | Path | None = None) -> CCMap:
    """The profile's CC map with user overrides (a ``[cc]`` mapping or a TOML file holding one)."""
    prof = load_profile(profile) if isinstance(profile, str) else profile
    table, source = _override_table(overrides)
    by_id = {p.id: CCAssignment(p, p.cc) for p in prof.parameters if p.cc is not None}
    if not table:
        return CCMap(prof, list(by_id.values()), f"{prof.name} profile")
    for ref, value in table.items():
        try:
            param = prof.find(ref)
        except ProfileError as exc:
            raise ConfigError(f"{source}: [cc] key {ref!r}: {exc}") from None
        if value is False:
            by_id.pop(param.id, None)
        elif isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: [cc] {ref!r} must be a CC number 0-{MAX_CC} or false, got {value!r}")
        else:
            by_id[param.id] = CCAssignment(param, value)
    return CCMap(prof, list(by_id.values()), source)


def _override_table(overrides: Mapping[str, object] | str | Path | None) -> tuple[dict, str]:
    if overrides is None:
        return {}, "profile"
    if isinstance(overrides, Mapping):
        return dict(overrides), "[cc] settings"
    path = Path(overrides)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: CC map file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML CC map ({exc})") from None
    table = data.get("cc")
    if not isinstance(table, dict):
        raise ConfigError(f'{path}: no [cc] table; write e.g.  [cc]  "VCF1:Freq" = 74')
    return table, str(path)


# --------------------------------------------------------------------------- encoding

def spread(step: int, n_steps: int, levels: int = 128) -> int:
    """Value for step ``step`` of ``n_steps``: the centre of its equal band of ``levels`` values."""
    return min(levels - 1, int((step + 0.5) * levels / n_steps))


def encode_value(assignment: CCAssignment, value: float, mode: str = "7bit") -> list[tuple[int, int]]:
    """One normalised value -> ``[(cc, data), ...]``: one pair, or MSB then LSB in 14-bit mode."""
    if mode not in MODES:
        raise ConfigError(f"MIDI mode must be one of {', '.join(MODES)}, got {mode!r}")
    wide = mode == "14bit" and assignment.high_res
    levels = 16384 if wide else 128
    x = min(max(float(value), 0.0), 1.0)
    steps = assignment.parameter.steps
    if steps is not None and len(steps) > 1:
        data = spread(int(round(x * (len(steps) - 1))), len(steps), levels)
    else:
        data = int(round(x * (levels - 1)))
    if wide:
        return [(assignment.cc, data >> 7), (assignment.cc + LSB_OFFSET, data & 0x7F)]
    return [(assignment.cc, data)]


def encode(cc_map: CCMap, parameter_set: ParameterSet, normalised: np.ndarray,
           mode: str = "7bit") -> list[tuple[int, int]]:
    """Normalised parameters (k,) -> ``[(cc, data), ...]`` in the set's order; unmapped ones skipped."""
    values = np.asarray(normalised, dtype=np.float64).reshape(-1)
    if values.size != len(parameter_set):
        raise ParameterValueError(f"expected {len(parameter_set)} normalised values for "
                                  f"{parameter_set.describe()}, got shape {np.shape(normalised)}")
    if not np.all(np.isfinite(values)):
        raise ParameterValueError("normalised parameters contain NaN or infinite values")
    out: list[tuple[int, int]] = []
    for param, value in zip(parameter_set.parameters, values, strict=True):
        assignment = cc_map.get(param)
        if assignment is not None:
            out.extend(encode_value(assignment, value, mode))
    return out


def unmapped(cc_map: CCMap, parameter_set: ParameterSet) -> list[Parameter]:
    """Parameters of the set that have no CC (they are not sent)."""
    return [p for p in parameter_set.parameters if cc_map.get(p) is None]


# --------------------------------------------------------------------------- learn sheet

def sheet_rows(cc_map: CCMap) -> list[dict[str, str]]:
    """One row per CC: what the user MIDI-learns in Diva."""
    rows = []
    for a in cc_map:
        p = a.parameter
        rows.append({"cc": str(a.cc), "lsb_14bit": str(a.lsb) if a.lsb is not None else "",
                     "section": p.section or "", "label": p.key or "", "name": p.name,
                     "range": p.describe_range(), "id": str(p.id)})
    return rows


def learn_sheet(cc_map: CCMap, fmt: str = "csv") -> str:
    """The learn sheet as CSV or Markdown text."""
    rows = sheet_rows(cc_map)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=SHEET_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    if fmt == "md":
        lines = [f"# deepdiva MIDI learn sheet ({cc_map.profile.name}, {len(rows)} CCs)", "",
                 "Right-click each control in Diva, choose MIDI Learn, then send its CC "
                 "(`deepdiva midi learn` does it one by one). `14-bit LSB`: only used in 14-bit mode.", "",
                 "| CC | 14-bit LSB | Section | Label | Name | Range | Id |",
                 "|---:|---:|---|---|---|---|---:|"]
        for r in rows:
            cells = [r[c].replace("|", "\\|") for c in SHEET_COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    raise ConfigError(f"learn sheet format must be one of {', '.join(SHEET_FORMATS)}, got {fmt!r}")


def write_learn_sheet(cc_map: CCMap, path: str | Path, fmt: str | None = None) -> Path:
    """Write the sheet atomically; the format follows the suffix (``.md``) unless given."""
    path = Path(path)
    fmt = fmt or ("md" if path.suffix.lower() in (".md", ".markdown") else "csv")
    text = learn_sheet(cc_map, fmt)
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
