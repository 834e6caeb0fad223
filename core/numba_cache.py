"""Where numba caches deepdiva's compiled kernels: the user cache, never the installed package.

numba's default (``cache=True``) writes ``__pycache__/*.nbi|nbc`` beside the module. In an
installed deepdiva that folder survives ``pip uninstall`` and then shadows a later editable
install of the same package; on a read-only (system) install nothing can be cached at all.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``NUMBA_CACHE_DIR`` when the user set one, else ``<user cache dir>/deepdiva/numba``."""
    from platformdirs import user_cache_path

    chosen = os.environ.get("NUMBA_CACHE_DIR")
    return Path(chosen) if chosen else user_cache_path("deepdiva") / "numba"


def writable_dir(path: Path) -> bool:
    """True when ``path`` exists (created if needed) and a file can be written in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


@cache
def cache_dir() -> Path | None:
    """The writable cache folder for this process, or None (logged once) when there is none."""
    path = default_cache_dir()
    if writable_dir(path):
        return path
    log.warning("numba cache disabled: %s is not writable, so the builtin synth compiles again in "
                "every process (several seconds); set NUMBA_CACHE_DIR to a writable folder to keep it", path)
    return None


def cached_njit(**options: Any) -> Callable[[Callable], Any]:
    """``numba.njit(**options)`` with its on-disk cache in :func:`cache_dir` (or no cache).

    numba picks a function's cache folder when the decorator runs, from ``numba.config.CACHE_DIR``
    (read from ``NUMBA_CACHE_DIR`` when numba is imported, which another package may already have done),
    so the setting is applied around the decoration only and restored afterwards.
    """
    import numba
    from numba import njit

    config: Any = numba.config  # its settings are set at run time, unknown to type checkers

    def decorate(func: Callable) -> Any:
        path = cache_dir()
        if path is None:
            return njit(cache=False, **options)(func)
        before = config.CACHE_DIR
        config.CACHE_DIR = str(path)
        try:
            return njit(cache=True, **options)(func)
        finally:
            config.CACHE_DIR = before

    return decorate
