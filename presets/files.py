"""Reading preset files: one place that turns OS errors into clear PresetErrors."""

from __future__ import annotations

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
