"""Atomic file writes and never-overwrite naming: the one place deepdiva writes user files."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .filenames import NAME_MAX, fit_name

# Errors that pass when the machine recovers (space freed, files closed): worth retrying.
TRANSIENT_ERRNOS = frozenset(getattr(errno, name) for name in (
    "ENOSPC", "EDQUOT", "EMFILE", "ENFILE", "ENOMEM", "EAGAIN", "EBUSY", "ETIMEDOUT") if hasattr(errno, name))
DISK_FULL_ERRNOS = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT") if hasattr(errno, name))
TEMP_ROOM = 16  # what mkstemp adds to a prefix: "." + 8 random characters + ".tmp", and a spare byte or two


def unique_path(path: Path) -> Path:
    """``path`` if free, else ``stem (2).ext``, ``stem (3).ext``, ... (never overwrite)."""
    if not path.exists():
        return path
    n = 1
    while numbered(path, n).exists():
        n += 1
    return numbered(path, n)


def numbered(path: Path, n: int, limit: int = NAME_MAX) -> Path:
    """``path`` for n == 1, else ``stem (n).ext``; the stem is cut so the name takes at most ``limit`` bytes."""
    return path.with_name(fit_name(path.stem, path.suffix, f" ({n})" if n > 1 else "", limit))


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


def write_atomic(path: Path, write: Callable[[Path], object], overwrite: bool = True, private: bool = False) -> Path:
    """Call ``write(tmp)`` on a temp file beside ``path``, then move it into place.

    ``private``: the file stays readable by this user only (0600) from its first byte (secrets).

    With ``overwrite=False`` an existing file is never replaced: the result goes to the first
    free name of ``stem.ext``, ``stem (2).ext``, ... and claiming that name is atomic (a hard
    link fails if another writer got there first). The temp file is removed if anything fails,
    so no half-written file is ever left. Returns the path written.
    """
    path = Path(path)
    prefix = f".{fit_name(path.name, limit=NAME_MAX - TEMP_ROOM)}."
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        if not private:
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


def write_bytes_atomic(path: Path, data: bytes, overwrite: bool = True, private: bool = False) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_bytes(data), overwrite, private)


def write_json_atomic(path: Path, data: object, overwrite: bool = True) -> Path:
    text = json.dumps(data, indent=2) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` or an error it was raised from or during is an OS error that passes (disk full, ...)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in TRANSIENT_ERRNOS:
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in DISK_FULL_ERRNOS
