"""Reading preset files: one place that turns OS errors and bad numbers into clear PresetErrors."""

from __future__ import annotations

import math
from pathlib import Path

from ..core.errors import PresetError
from ..core.limits import MAX_PRESET_BYTES


def read_preset_bytes(path: Path, kind: str) -> bytes:
    """The bytes of a preset file; ``kind`` names the format in errors (e.g. "a .h2p preset file").

    Files over ``MAX_PRESET_BYTES`` are refused after reading one byte more than that, whatever
    their size says (a device or a growing file has none worth trusting).
    """
    try:
        with path.open("rb") as f:
            data = f.read(MAX_PRESET_BYTES + 1)
    except FileNotFoundError:
        raise PresetError(f"{path}: no such preset file") from None
    except IsADirectoryError:
        raise PresetError(f"{path}: is a folder, not {kind}") from None
    except OSError as exc:
        raise PresetError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_PRESET_BYTES:
        raise PresetError(f"{path}: larger than {MAX_PRESET_BYTES / 1e6:g} MB, too large for {kind} (a Diva "
                          "preset is a few tens of KB, an amsynth bank ~170 KB); check that this is the "
                          "right file")
    return data


def parse_number(text: str, what: str, where: str) -> float:
    """A finite float from a preset's text; ``what`` (``NAME=RAW``) and ``where`` name it in errors."""
    try:
        value = float(text)
    except ValueError:
        raise PresetError(f"{where}: {what} is not a number") from None
    if not math.isfinite(value):
        raise PresetError(f"{where}: {what} is not a finite number")
    return value
