"""The job journal: accepted jobs survive a crash and finish exactly once after a restart.

Layout of the journal folder::

    jobs/<accepted ns>-<id>.json   one file per accepted job (fsynced before it is acknowledged)
    data/<id>.wav                  audio that exists nowhere else (OSC buffers, recordings)
    stage/<id>/                    what the match writes (the preset, a preview)
    lock                           held by the running daemon

The commit point of a job is a hard link. Its preset is copied to a fixed hidden name in the
preset folder (``.deepdiva-<id>.h2p.part``, fsynced), then linked to the first free ``name.h2p``
/ ``name (2).h2p``. A ``.part`` file with two links therefore proves the preset was published: a
restart finds it and neither matches nor publishes again; without it the match is simply redone.
Completing a job makes the preset folder durable, then removes the job file (fsynced), the
leftovers (``.part``, stage, data) last. Five fsyncs per job: two to accept it and one to publish
before the reply, two to complete after it. Nothing here knows what a job means: records are dicts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import is_disk_full, link_unique
from ..core.errors import ConfigError, DeepDivaError, PresetError
from ..core.filenames import fit_name, printable

log = logging.getLogger(__name__)

PART_PREFIX = ".deepdiva-"


class JournalError(DeepDivaError):
    """The journal folder cannot be written (full, gone, no permission)."""


def fsync_dir(folder: Path) -> None:
    """Make a rename/link/unlink in ``folder`` durable (a no-op where folders cannot be opened)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def linked_name(path: Path, folder: Path) -> Path | None:
    """Another name of ``path``'s file (same inode) in ``folder``, if ``path`` has more than one link."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if st.st_nlink < 2:
        return None
    with os.scandir(folder) as entries:
        for entry in entries:
            if Path(entry.path) == path or not entry.is_file(follow_symlinks=False):
                continue
            other = entry.stat(follow_symlinks=False)
            if (other.st_ino, other.st_dev) == (st.st_ino, st.st_dev):
                return Path(entry.path)
    return None


class Journal:
    """One daemon's journal folder (locked while open)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()
        self.jobs_dir = self.folder / "jobs"
        self.data_dir = self.folder / "data"
        self.stage_root = self.folder / "stage"
        try:
            for d in (self.jobs_dir, self.data_dir, self.stage_root):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the journal folder {self.folder}: {exc.strerror or exc}; "
                              "set queue.journal (--journal-dir)") from None
        self._lock_file = _lock(self.folder / "lock")
        self._files: dict[str, Path] = {}

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # ----------------------------------------------------------------- accepting

    def stage_dir(self, job_id: str) -> Path:
        return self.stage_root / job_id

    def data_path(self, job_id: str, suffix: str = ".wav") -> Path:
        """Where audio that exists nowhere else is kept: ``data/<id><suffix>`` (an upload keeps its type)."""
        return self.data_dir / f"{job_id}{suffix}"

    def save_audio(self, job_id: str, samples: np.ndarray, sample_rate: int) -> Path:
        """Keep audio that exists nowhere else (a buffer, a recording) as a float32 wav."""
        import soundfile as sf

        path = self.data_path(job_id)  # its job is journaled after this: no job, no use, swept
        try:
            sf.write(path, np.asarray(samples, dtype=np.float32), int(sample_rate), subtype="FLOAT", format="WAV")
            fsync_file(path)
            fsync_dir(self.data_dir)
        except (OSError, RuntimeError) as exc:  # soundfile reports a failed write as a RuntimeError
            path.unlink(missing_ok=True)
            raise self._error(exc) from None
        return path

    def add(self, job_id: str, record: dict[str, Any]) -> None:
        """Journal an accepted job (durable when this returns).

        Written in place, not renamed: a file cut short by a crash belongs to a request that was
        never acknowledged, and :meth:`pending` sets it aside.
        """
        path = self.jobs_dir / f"{time.time_ns():020d}-{job_id}.json"
        try:
            with open(path, "xb") as f:
                f.write(json.dumps(record, default=str).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            fsync_dir(self.jobs_dir)
        except OSError as exc:
            path.unlink(missing_ok=True)  # not acknowledged: nothing may be left to restore
            raise self._error(exc) from None
        self._files[job_id] = path

    def _error(self, exc: Exception) -> JournalError:
        """The clear error for an OS error while writing the journal (what a client is told)."""
        if isinstance(exc, OSError) and is_disk_full(exc):
            return JournalError(f"the journal folder {printable(str(self.folder))} is full; free space there "
                                "and try again")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return JournalError(f"cannot write to the journal folder {printable(str(self.folder))}: "
                            f"{printable(reason)}; check it (queue.journal, --journal-dir)")

    def pending(self) -> list[dict[str, Any]]:
        """Journaled jobs not yet completed, oldest first; unreadable files are set aside in ``bad/``."""
        records = []
        for path in sorted(self.jobs_dir.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                    raise ValueError("not a job record")
            except (OSError, ValueError) as exc:
                bad = self.folder / "bad"
                bad.mkdir(exist_ok=True)
                log.error("journal entry %s is unreadable (%s); moved to %s", path.name, exc, bad)
                os.replace(path, bad / path.name)
                continue
            self._files[record["id"]] = path
            records.append(record)
        return records

    # ----------------------------------------------------------------- staging and publishing

    def clear_stage(self, job_id: str) -> Path:
        """An empty stage folder for a (re)run of the match."""
        stage = self.stage_dir(job_id)
        shutil.rmtree(stage, ignore_errors=True)
        try:
            stage.mkdir(parents=True)
        except OSError as exc:
            raise self._error(exc) from None
        return stage

    def published(self, job_id: str, folder: Path) -> Path | None:
        """The preset a job published before a crash, if it got that far."""
        return linked_name(folder / f"{PART_PREFIX}{job_id}.h2p.part", folder)

    def publish(self, job_id: str, folder: Path, result: dict[str, Any]) -> dict[str, Any]:
        """Copy the staged preset (and preview) into ``folder`` under free names, exactly once.

        A preview is only published with its preset: a crash between the two loses the preview.
        So are the search's alternatives (``<preset> alt 2.h2p`` or ``.bank``, ...), if the match made any.
        """
        staged = Path(result["preset"])
        try:
            folder.mkdir(parents=True, exist_ok=True)
            preset = _publish_file(staged, folder, f"{job_id}.h2p", staged.name)
        except OSError as exc:
            raise PresetError(f"cannot write the preset into {printable(str(folder))}: "
                              f"{exc.strerror or exc}") from None
        out = dict(result, preset=str(preset))
        out["preview"] = self._publish_extra(result.get("preview"), folder, f"{job_id}.wav",
                                             fit_name(preset.stem, ".wav"))
        alternatives = []
        for rank, alt in enumerate(result.get("alternatives") or [], start=2):
            tag = f" alt {rank}"
            path = self._publish_extra(alt["preset"], folder, f"{job_id}.alt{rank}.h2p",
                                       fit_name(preset.stem, Path(alt["preset"]).suffix, tag))  # .h2p, .bank
            if path is not None:
                wav = self._publish_extra(alt.get("preview"), folder, f"{job_id}.alt{rank}.wav",
                                          fit_name(preset.stem, ".wav", tag))
                alternatives.append(dict(alt, preset=path, preview=wav))
        if "alternatives" in result:
            out["alternatives"] = alternatives
        return out

    @staticmethod
    def _publish_extra(staged: str | None, folder: Path, part_name: str, name: str) -> str | None:
        """A preview or an alternative: published if possible, else only logged (the preset matters)."""
        if not staged:
            return None
        try:
            return str(_publish_file(Path(staged), folder, part_name, name))
        except OSError as exc:
            log.warning("could not write %s into %s: %s", name, folder, exc)
            return None

    # ----------------------------------------------------------------- completing

    def complete(self, job_id: str, folder: Path | None = None) -> None:
        """Forget a finished (or failed) job: its journal entry first, then its leftovers."""
        if folder is not None and folder.is_dir():
            fsync_dir(folder)  # the published names first: if they were lost, the job must stay
        path = self._files.pop(job_id, None)
        if path is not None:
            path.unlink(missing_ok=True)
            fsync_dir(self.jobs_dir)
        if folder is not None:
            for part in folder.glob(f"{PART_PREFIX}{job_id}.*.part"):  # preset, preview, alternatives
                part.unlink(missing_ok=True)
        shutil.rmtree(self.stage_dir(job_id), ignore_errors=True)
        for data in self.data_dir.glob(f"{job_id}.*"):  # a buffer's .wav, an upload's own type
            data.unlink(missing_ok=True)

    def sweep(self, folders: list[Path]) -> int:
        """Remove leftovers of jobs that are no longer journaled; returns how many."""
        live = set(self._files)
        removed = 0
        for folder in dict.fromkeys(folders):
            if not folder.is_dir():
                continue
            for path in folder.glob(f"{PART_PREFIX}*.part*"):
                if _job_id_of(path.name) not in live:
                    path.unlink(missing_ok=True)
                    removed += 1
        for path in list(self.stage_root.iterdir()) + list(self.data_dir.iterdir()):
            if path.name.split(".", 1)[0] not in live:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                removed += 1
        return removed


def _publish_file(src: Path, folder: Path, part_name: str, name: str) -> Path:
    part = folder / f"{PART_PREFIX}{part_name}.part"
    done = linked_name(part, folder)
    if done is not None:
        return done
    data = src.read_bytes()
    with open(part, "wb") as f:  # only one link: an unpublished leftover of ours, safe to rewrite
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return link_unique(part, folder / name)  # made durable by complete(), before the job is forgotten


def _job_id_of(name: str) -> str:
    return name[len(PART_PREFIX):].split(".", 1)[0]


def _lock(path: Path):
    """An exclusive lock on ``path`` for this process (released by the OS if it dies)."""
    handle = open(path, "a+b")  # noqa: SIM115 - held open for the daemon's lifetime
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ConfigError(f"the journal {path.parent} is in use by another 'deepdiva serve'; stop that one "
                          "or give this one its own --journal-dir") from None
    return handle
