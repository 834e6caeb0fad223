"""Atomic file writes and never-overwrite naming: the one place deepdiva writes user files."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def unique_path(path: Path) -> Path:
    """``path`` if free, else ``stem (2).ext``, ``stem (3).ext``, ... (never overwrite)."""
    if not path.exists():
        return path
    n = 2
    while True:
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
        if not candidate.exists():
            return candidate
        n += 1


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temp file beside ``path``, then rename it into place.

    The temp file is removed if ``write`` fails, so no half-written file is ever left.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_json_atomic(path: Path, data: object) -> Path:
    text = json.dumps(data, indent=2) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
