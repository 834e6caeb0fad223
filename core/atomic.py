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
    n = 1
    while numbered(path, n).exists():
        n += 1
    return numbered(path, n)


def numbered(path: Path, n: int) -> Path:
    """``path`` for n == 1, else ``stem (n).ext``."""
    return path if n == 1 else path.with_name(f"{path.stem} ({n}){path.suffix}")


def link_unique(src: Path, target: Path) -> Path:
    """Hard-link ``src`` to the first free name of ``target``, ``target (2)``, ...; never overwrites.

    Claiming the name is atomic: the link fails if another writer got there first.
    """
    n = 1
    while True:
        candidate = numbered(target, n)
        try:
            os.link(src, candidate)
            return candidate
        except FileExistsError:
            n += 1


def write_atomic(path: Path, write: Callable[[Path], object], overwrite: bool = True) -> Path:
    """Call ``write(tmp)`` on a temp file beside ``path``, then move it into place.

    With ``overwrite=False`` an existing file is never replaced: the result goes to the first
    free name of ``stem.ext``, ``stem (2).ext``, ... and claiming that name is atomic (a hard
    link fails if another writer got there first). The temp file is removed if anything fails,
    so no half-written file is ever left. Returns the path written.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files
        if overwrite:
            os.replace(tmp, path)
            return path
        return link_unique(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask() is process-wide, so calling it later could race with threads.
_UMASK = _read_umask()


def write_bytes_atomic(path: Path, data: bytes, overwrite: bool = True) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_bytes(data), overwrite)


def write_json_atomic(path: Path, data: object, overwrite: bool = True) -> Path:
    text = json.dumps(data, indent=2) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite)
