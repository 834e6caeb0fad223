"""u-he Diva ``.h2p`` presets: parse the text body, change values, keep every other byte.

A preset is held as its text lines (latin-1, so every byte round-trips, each line with its own
line ending) plus the binary tail that starts at the comment
``// Section for ugly compressed binary Data``. Values are found by module + key, never by
line number. Changing values drops the tail: it encodes the old values and Diva would prefer
it over the text.
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ..core.atomic import write_bytes_atomic
from ..core.errors import PresetError, ProfileError
from ..core.profile import Parameter, ParameterRangeWarning, ParameterSet, Profile
from .files import parse_number, read_preset_bytes
from .folders import make_dir

BINARY_MARKER = "// Section for ugly compressed binary Data"
_AUDIO_MAGIC = {b"RIFF": "a WAV (RIFF) audio file", b"fLaC": "a FLAC audio file",
                b"OggS": "an Ogg audio file", b"ID3": "an MP3 audio file", b"FORM": "an AIFF audio file"}
META_ORDER = ("Bank", "Author", "Description", "Usage", "Categories", "Features", "Character")
_LINE = re.compile(r"[^\n]*\n|[^\n]+$")
_META_KEY = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
_NUMBER = re.compile(r"^-?\d+(\.(\d*))?$")
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

Location = tuple[str, str]


def _content(line: str) -> str:
    return line.rstrip("\r\n")


def _ending(line: str) -> str:
    return line[len(_content(line)):]


class H2PPreset:
    """A parsed Diva preset. Immutable: ``with_values``/``with_meta`` return a new preset."""

    def __init__(self, lines: Iterable[str], tail: str = "", source: str = "<preset>") -> None:
        self.lines = tuple(lines)
        self.tail = tail
        self.source = source
        self.meta: dict[str, str] = {}
        self.header: dict[str, str] = {}
        self.mod_sources: tuple[str, ...] = ()
        self.mod_values: tuple[str, ...] = ()
        self._meta_span: tuple[int, int] | None = None
        self._index: dict[Location, int] = {}
        self._header_index: dict[str, int] = {}
        self._parse()

    # -- parsing ---------------------------------------------------------------------------
    def _fail(self, problem: str) -> PresetError:
        return PresetError(f"{self.source}: {problem}")

    def _parse(self) -> None:
        start = self._parse_meta()
        ms: list[str] = []
        mv: list[str] = []
        module: str | None = None
        for i in range(start, len(self.lines)):
            text = _content(self.lines[i])
            if text.startswith("#cm="):
                module = text[4:].strip()
                continue
            if module is None:
                if text.startswith("#") and "=" in text:
                    name, value = text[1:].split("=", 1)
                    if name in ("ms", "mv"):
                        (ms if name == "ms" else mv).append(value)
                    else:
                        self.header.setdefault(name, value)
                        self._header_index.setdefault(name, i)
                continue
            if "=" in text:
                key, _ = text.split("=", 1)
                self._index.setdefault((module, key.strip()), i)
        self.mod_sources, self.mod_values = tuple(ms), tuple(mv)
        self._validate()

    def _parse_meta(self) -> int:
        """Read the ``/*@Meta ... */`` block; returns the index of the first line after it."""
        first = next((i for i, line in enumerate(self.lines) if _content(line).strip()), None)
        if first is None or not _content(self.lines[first]).lstrip().startswith("/*"):
            return 0
        end = next((i for i in range(first, len(self.lines)) if _content(self.lines[i]).rstrip()
                    .endswith("*/")), None)
        if end is None:
            raise self._fail("truncated: the /*@Meta comment block is never closed")
        self._meta_span = (first, end + 1)
        key: str | None = None
        value: list[str] = []
        for line in self.lines[first + 1:end]:
            text = _content(line)
            if key is None:
                match = _META_KEY.match(text)
                key = match.group(1) if match else None
                value = []
                continue
            value.append(text)
            joined = "\n".join(value).strip()
            if len(joined) >= 2 and joined.startswith("'") and joined.endswith("'"):
                self.meta[key] = _decode_text(joined[1:-1])
                key = None
        return end + 1

    def _validate(self) -> None:
        am = self.header.get("AM")
        if am is None:
            raise self._fail("not a Diva preset: no '#AM=Diva' header line")
        if am.strip() != "Diva":
            raise self._fail(f"is a preset for {am.strip()!r}, not for Diva")
        if not self._index:
            raise self._fail("truncated: no '#cm=' module sections with values")
        last = _content(self.lines[-1])
        complete = "=" in last and last.split("=", 1)[1].strip() and not last.startswith("#cm=")
        if not self.tail and not self.lines[-1].endswith("\n") and not complete:
            raise self._fail(f"truncated: the file ends in the middle of a line ({last!r})")

    # -- queries -----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"H2PPreset({self.source!r}, {len(self._index)} values)"

    def keys(self) -> list[Location]:
        """Every (module, key) with a value, in file order."""
        return list(self._index)

    def __contains__(self, location: object) -> bool:
        return location in self._index

    @property
    def has_binary_tail(self) -> bool:
        return bool(self.tail)

    def get(self, section: str, key: str) -> str:
        """The raw value text of ``key`` in module ``section`` (quotes kept)."""
        try:
            return _content(self.lines[self._index[(section, key)]]).split("=", 1)[1]
        except KeyError:
            raise self._fail(f"has no value {section}:{key}") from None

    def native(self, parameter: Parameter) -> float:
        """The value of one profile parameter in profile units (label index for named choices)."""
        if parameter.section is None or parameter.key is None:
            raise self._fail(f"parameter {parameter.id} {parameter.name!r} has no place in a preset")
        return _parse_value(self.get(parameter.section, parameter.key), parameter, self.source)

    def native_values(self, parameter_set: ParameterSet) -> np.ndarray:
        """Native values (k,) of the parameters of ``parameter_set``, in set order."""
        return np.array([self.native(p) for p in parameter_set.parameters], dtype=np.float64)

    def native_by_id(self, profile: Profile) -> dict[int, float]:
        """Native values of every profile parameter this preset holds, by id."""
        return {p.id: self.native(p) for p in profile.parameters
                if p.location and (p.section, p.key) in self._index}

    def missing(self, profile: Profile) -> list[str]:
        """Locations of profile parameters this preset lacks (``"VCF1:Freq"``)."""
        return [p.location for p in profile.parameters
                if p.location and (p.section, p.key) not in self._index]

    def check_complete(self, profile: Profile) -> H2PPreset:
        """Raise :class:`PresetError` unless every located profile parameter is present."""
        gone = self.missing(profile)
        if gone:
            raise self._fail(f"truncated or incomplete: lacks {len(gone)} {profile.name} "
                             f"parameter(s), first {gone[0]}")
        return self

    # -- changes -------------------------------------------------------------------------------
    def with_values(self, profile: Profile, values: Mapping[int, object] | Mapping[str, object],
                    meta: Mapping[str, str] | None = None) -> H2PPreset:
        """A copy with profile parameters (keyed by id, location or name) set to native values.

        Each value is formatted like the line it replaces; discrete values snap to a step and
        out-of-range values are clipped with a :class:`ParameterRangeWarning`. The binary tail
        is dropped and ``#nv``/``#nm`` are made to match their lists.
        """
        lines = list(self.lines)
        for ref, value in values.items():
            param = self._resolve(profile, ref)
            index = self._index.get((param.section, param.key))  # type: ignore[arg-type]
            if index is None:
                raise self._fail(f"has no line for {param.location}; cannot set it")
            native = _conform(param, value, self.source)
            old = _content(lines[index])
            key, old_value = old.split("=", 1)
            lines[index] = f"{key}={_format_like(old_value, param, native)}{_ending(lines[index])}"
        header = dict(self.header)
        lines = self._fix_counts(lines, header)
        merged = self._merged_meta(meta) if meta else self.meta
        if meta:  # the meta block sits above every value line: its span in ``lines`` is unchanged
            lines = self._meta_lines(lines, merged)
        return self._edited(lines, header, merged)

    def _edited(self, lines: list[str], header: dict[str, str], meta: dict[str, str]) -> H2PPreset:
        """A copy holding ``lines``: this preset's with value lines changed in place and perhaps a
        new meta block (``meta``); the parse is carried over (line numbers below the meta block
        shifted) rather than done again, which took ~1 ms of every preset a match writes."""
        copy = H2PPreset.__new__(H2PPreset)
        shift = len(lines) - len(self.lines)  # only the meta block, above every parsed line, grows
        copy.lines, copy.tail, copy.source = tuple(lines), "", self.source
        copy.meta, copy.header = dict(meta), header
        copy.mod_sources, copy.mod_values = self.mod_sources, self.mod_values
        if self._meta_span is not None:
            copy._meta_span = (self._meta_span[0], self._meta_span[1] + shift)
        else:  # a new block at the top, then a blank line (see _meta_lines)
            copy._meta_span = (0, shift - 1) if shift else None
        copy._index = {at: i + shift for at, i in self._index.items()}
        copy._header_index = {name: i + shift for name, i in self._header_index.items()}
        return copy

    def with_meta(self, meta: Mapping[str, str]) -> H2PPreset:
        """A copy whose ``/*@Meta`` block has these keys set (others kept, new ones appended)."""
        return H2PPreset(self._meta_lines(list(self.lines), self._merged_meta(meta)), self.tail, self.source)

    def _merged_meta(self, meta: Mapping[str, str]) -> dict[str, str]:
        """This preset's meta with ``meta``'s keys set, each as it reads back from the file."""
        merged = dict(self.meta)
        for key, value in meta.items():
            merged = _meta_insert(merged, str(key), _decode_text(_encode_text(str(value))))
        return merged

    def _meta_lines(self, lines: list[str], merged: Mapping[str, str]) -> list[str]:
        """``lines`` (this preset's, or edited below its meta block) with the meta block ``merged``."""
        for key in merged:
            if not _META_KEY.match(f"{key}:"):
                raise self._fail(f"invalid meta key {key!r}")
        newline = (_ending(self.lines[0]) if self.lines else "") or "\n"
        block = ["/*@Meta" + newline, newline]
        for key, value in merged.items():
            block += [f"{key}:{newline}", f"'{_encode_text(value)}'{newline}", newline]
        block.append("*/" + newline)
        lo, hi = self._meta_span or (0, 0)
        rest = lines[hi:]
        if self._meta_span is None:
            rest = [newline, *rest]
        return [*lines[:lo], *block, *rest]

    def without_tail(self) -> H2PPreset:
        """A copy without the binary section, so Diva reads the text values."""
        return H2PPreset(self.lines, "", self.source)

    def to_bytes(self) -> bytes:
        return "".join(self.lines).encode("latin-1") + self.tail.encode("latin-1")

    def _resolve(self, profile: Profile, ref: int | str) -> Parameter:
        if isinstance(ref, bool) or not isinstance(ref, int | str | np.integer):
            raise self._fail(f"parameter key {ref!r} must be an id, SECTION:Key or a name")
        try:
            param = profile.find(int(ref) if isinstance(ref, np.integer) else ref)
        except ProfileError as exc:
            raise self._fail(str(exc)) from None
        if param.location is None:
            raise self._fail(f"parameter {param.id} {param.name!r} has no place in a preset")
        return param

    def _fix_counts(self, lines: list[str], header: dict[str, str]) -> list[str]:
        """``lines`` with ``#nm``/``#nv`` counting their lists (``header`` updated to match)."""
        for count, items in (("nm", self.mod_sources), ("nv", self.mod_values)):
            index = self._header_index.get(count)
            if index is not None and self.header[count].strip() != str(len(items)):
                lines[index] = f"#{count}={len(items)}" + (_ending(lines[index]) or "\n")
                header[count] = str(len(items))
        return lines


def _meta_insert(meta: dict[str, str], key: str, value: str) -> dict[str, str]:
    """Set ``key``; a new key goes before the first existing key that u-he lists after it."""
    if key in meta or key not in META_ORDER:
        return {**meta, key: value}
    rank = META_ORDER.index(key)
    items = list(meta.items())
    at = next((i for i, (k, _) in enumerate(items) if k in META_ORDER and META_ORDER.index(k) > rank),
              len(items))
    return dict([*items[:at], (key, value), *items[at:]])


def _decode_text(raw: str) -> str:
    """Meta text from the file (held as latin-1): UTF-8 if it is, else Windows-1252/latin-1."""
    data = raw.encode("latin-1")
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return raw


def _encode_text(text: str) -> str:
    """Meta text for the file: one line, no single quotes, UTF-8 bytes held as latin-1."""
    clean = " ".join(text.replace("'", "`").split())
    return clean.encode("utf-8").decode("latin-1")


def _parse_value(raw: str, param: Parameter, source: str) -> float:
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
        if param.labels is not None:
            lowered = [label.lower() for label in param.labels]
            if text.lower() in lowered:
                return float(lowered.index(text.lower()))
            raise PresetError(f"{source}: {param.location}={raw!r} is not one of "
                              f"{', '.join(param.labels)}")
    return parse_number(text, f"{param.location}={raw!r}", source)


def _conform(param: Parameter, value: object, source: str) -> float:
    """Check a native value's type, NaN and range; discrete values snap to the nearest step."""
    where = f"{source}: value for {param.location}"
    if isinstance(value, str) and param.labels is not None and value in param.labels:
        return float(param.labels.index(value))
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PresetError(f"{where} must be a number, got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise PresetError(f"{where} is {number}, not a finite number")
    if param.kind == "placeholder":
        return number
    steps = param.steps
    low, high = (float(steps.min()), float(steps.max())) if steps is not None else (param.low, param.high)
    if not low - 1e-9 <= number <= high + 1e-9:
        warnings.warn(f"{where} {number:g} outside {param.describe_range()} clipped",
                      ParameterRangeWarning, stacklevel=3)
    number = min(max(number, low), high)
    if steps is not None:
        number = float(steps[np.abs(steps - number).argmin()])
    return number


def _format_like(old: str, param: Parameter, value: float) -> str:
    """Format ``value`` like the value text it replaces (quotes, decimals, integer)."""
    text = old.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        inner = text[1:-1]
        if param.labels is not None:
            return f"'{param.labels[int(round(value))]}'"
        return f"'{_format_like(inner, param, value)}'"
    if param.labels is not None and not _NUMBER.match(text):
        return param.labels[int(round(value))]
    match = _NUMBER.match(text)
    if match is None:
        decimals = 0 if param.discrete else 2
    else:
        decimals = len(match.group(2) or "") if match.group(1) else 0
    if decimals == 0:
        return str(int(round(value)))
    out = f"{value:.{decimals}f}"
    return out[1:] if out.startswith("-") and float(out) == 0 else out


def parse_h2p(data: bytes, source: str = "<bytes>") -> H2PPreset:
    """Parse the bytes of a ``.h2p`` file; :class:`PresetError` if it is not a Diva preset."""
    if not data.strip():
        raise PresetError(f"{source}: is empty, not a Diva .h2p preset")
    for magic, what in _AUDIO_MAGIC.items():
        if data.startswith(magic):
            raise PresetError(f"{source}: is {what}, not a Diva .h2p preset")
    text = data.decode("latin-1")
    lines = _LINE.findall(text)
    cut = next((i for i, line in enumerate(lines)
                if line.startswith(BINARY_MARKER) or line.startswith("$$$$")), len(lines))
    body, tail = lines[:cut], "".join(lines[cut:])
    if _BINARY.search("".join(body)):
        raise PresetError(f"{source}: holds binary data, not a Diva .h2p preset (text) file")
    if not body:
        raise PresetError(f"{source}: truncated: no text before the binary section")
    return H2PPreset(body, tail, source)


def read_h2p(path: str | Path, profile: Profile | None = None) -> H2PPreset:
    """Read and parse a ``.h2p`` file; with ``profile``, also check no parameter is missing."""
    path = Path(path)
    data = read_preset_bytes(path, "a .h2p preset file")
    preset = parse_h2p(data, str(path))
    return preset.check_complete(profile) if profile is not None else preset


def write_h2p(preset: H2PPreset, path: str | Path, overwrite: bool = False) -> Path:
    """Write atomically; never replaces a file unless ``overwrite`` (``name (2).h2p`` instead).

    Returns the path actually written.
    """
    path = Path(path)
    if path.suffix.lower() != ".h2p":
        path = path.with_name(path.name + ".h2p")
    if path.is_dir():
        raise PresetError(f"{path}: is a folder; give a .h2p file name")
    data = preset.to_bytes()
    make_dir(path.parent)
    try:
        return write_bytes_atomic(path, data, overwrite=overwrite)
    except OSError as exc:
        raise PresetError(f"cannot write {path}: {exc.strerror or exc}") from None
