"""File names as the OS gives them: shown safely, and names derived from them kept within limits.

A POSIX file name is any bytes; Python hands the ones that are not UTF-8 over as lone surrogates
(``os.fsdecode``), which every strict encoder (UTF-8 output, JSON consumers, OSC, preset text)
refuses. :func:`printable` is the form for people and protocols; the path itself stays as given
for opening the file. :func:`fit_name` keeps a derived name (temp file, ``name (2).h2p``,
``name alt 2.h2p``, ``name.txt``) within the 255 bytes most file systems allow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

NAME_MAX = 255  # bytes per name: ext4, APFS, NTFS (255 UTF-16 units, never fewer than UTF-8 bytes)
MIN_STEM = 8  # a suffix is kept only when this many bytes of the stem can stay with it

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match[0]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode
        return f"\\x{code - 0xDC00:02x}"
    if code >= 0xD800:
        return f"\\u{code:04x}"
    return _ESCAPES.get(ch, f"\\x{code:02x}")


def printable(text: str) -> str:
    """``text`` with undecodable bytes and control characters written as escapes (``caf\\xe9.wav``).

    Safe for any UTF-8 encoder and on one line; use it for messages, logs, replies, preset text.
    """
    return _UNPRINTABLE.sub(_escape, text)


def printable_data(data: object) -> object:
    """``data`` (dicts, lists, strings, numbers) with every string made :func:`printable`."""
    if isinstance(data, str):
        return printable(data)
    if isinstance(data, Mapping):
        return {printable(str(k)): printable_data(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [printable_data(v) for v in data]
    return data


def name_size(name: str) -> int:
    """Bytes ``name`` takes on disk (an undecodable byte counts as the one byte it is)."""
    return len(os.fsencode(name))


def fit_name(stem: str, suffix: str = "", tag: str = "", limit: int = NAME_MAX) -> str:
    """``stem + tag + suffix``, with ``stem`` cut (whole characters, from the end) to fit ``limit`` bytes.

    The ``tag`` (what makes a derived name distinct: `` (2)``, `` alt 2``) always stays; so does the
    ``suffix``, unless it leaves less than :data:`MIN_STEM` bytes, then it is cut as part of the stem.
    """
    if name_size(stem + tag + suffix) <= limit:
        return stem + tag + suffix
    if limit - name_size(tag + suffix) < MIN_STEM:
        stem, suffix = stem + suffix, ""
    return _cut(stem, limit - name_size(tag + suffix)) + tag + suffix


def _cut(text: str, room: int) -> str:
    size = 0
    for i, ch in enumerate(text):
        size += name_size(ch)
        if size > room:
            return text[:i]
    return text


def inside_roots(real: Path, roots: Sequence[str | os.PathLike[str]]) -> bool:
    """Whether the resolved path ``real`` lies inside one of ``roots`` (each resolved first; a
    root that cannot be resolved allows nothing)."""
    for root in roots:
        try:
            if real.is_relative_to(Path(root).expanduser().resolve()):
                return True
        except (OSError, RuntimeError):  # symlink loops, unreadable folders
            continue
    return False
