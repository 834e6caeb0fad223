"""Reading preset files: one place that turns OS errors and bad numbers into clear PresetErrors."""

from __future__ import annotations

import math
from pathlib import Path

from ..core.errors import PresetError


def read_preset_bytes(path: Path, kind: str) -> bytes:
    """The bytes of a preset file; ``kind`` names the format in errors (e.g. "a .h2p preset file")."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PresetError(f"{path}: no such preset file") from None
    except IsADirectoryError:
        raise PresetError(f"{path}: is a folder, not {kind}") from None
    except OSError as exc:
        raise PresetError(f"{path}: cannot read: {exc.strerror or exc}") from None


def parse_number(text: str, what: str, where: str) -> float:
    """A finite float from a preset's text; ``what`` (``NAME=RAW``) and ``where`` name it in errors."""
    try:
        value = float(text)
    except ValueError:
        raise PresetError(f"{where}: {what} is not a number") from None
    if not math.isfinite(value):
        raise PresetError(f"{where}: {what} is not a finite number")
    return value
