"""Give memory freed by Python back to the operating system.

Audio chunks arrive as many ~8-64 KB byte strings; glibc keeps the heap they were freed from,
so without a trim the daemon's resident size stays at its peak long after unfinished buffers
were dropped. ``malloc_trim`` exists only in glibc; elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.cache
def _malloc_trim():  # type: ignore[no-untyped-def]
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return None


def release_free_memory() -> bool:
    """Return free heap pages to the OS; True when the C library could be asked to."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
