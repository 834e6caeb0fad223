"""Atomic writes with names at the file system's limit, and which OS errors pass."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from deepdiva.core.atomic import is_transient, numbered, write_bytes_atomic
from deepdiva.core.errors import PresetError
from deepdiva.core.filenames import NAME_MAX, name_size


@pytest.mark.parametrize("stem", ["a" * 249, "音" * 83])
def test_a_legal_253_byte_name_is_written_and_never_overwritten(tmp_path: Path, stem: str) -> None:
    target = tmp_path / f"{stem}.h2p"
    assert name_size(target.name) == 253
    first = write_bytes_atomic(target, b"one", overwrite=False)  # its temp name is longer than 255 bytes
    second = write_bytes_atomic(target, b"two", overwrite=False)  # and "<name> (2).h2p" too
    assert first == target and first.read_bytes() == b"one"
    assert second != first and second.read_bytes() == b"two" and second.name.endswith(" (2).h2p")
    assert name_size(second.name) <= NAME_MAX
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])  # no temp left


def test_numbered_names_stay_distinct_when_cut() -> None:
    path = Path("/x") / ("b" * 251 + ".wav")
    names = {numbered(path, n).name for n in range(1, 30)}
    assert len(names) == 29 and all(name_size(n) <= NAME_MAX for n in names)
    assert all(name_size(numbered(path, n, NAME_MAX - 4).name) <= NAME_MAX - 4 for n in range(1, 30))


def test_transient_errors_are_found_behind_user_errors() -> None:
    def wrapped(code: int) -> Exception:
        try:
            try:
                raise OSError(code, os.strerror(code))
            except OSError:
                raise PresetError("cannot write x.h2p") from None  # as the preset writers do
        except PresetError as exc:
            return exc

    assert is_transient(OSError(errno.ENOSPC, "full")) and is_transient(wrapped(errno.ENOSPC))
    assert is_transient(wrapped(errno.EMFILE))
    assert not is_transient(wrapped(errno.EACCES)) and not is_transient(PresetError("bad"))
    assert not is_transient(FileNotFoundError(errno.ENOENT, "gone"))


def test_a_private_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    from deepdiva.core import atomic

    secret = write_bytes_atomic(tmp_path / "token", b"s3cret", private=True)
    plain = write_bytes_atomic(tmp_path / "plain", b"x")
    assert secret.read_bytes() == b"s3cret" and secret.stat().st_mode & 0o777 == 0o600
    assert plain.stat().st_mode & 0o777 == 0o666 & ~atomic._UMASK  # plain files follow the umask
