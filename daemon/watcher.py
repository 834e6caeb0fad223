"""The drop folder: audio files put into it are matched once complete, then moved out.

Events (watchdog) are only hints. A file is *ready* when its size and mtime have not changed for
``settle_seconds`` (right away after a close-write event, which only Linux has); files moved in
(``x.wav.part`` -> ``x.wav``) are ready at once. Hidden and temporary names are ignored. The folder
is scanned at start and every ``rescan_seconds``. A content hash in a persisted done-set makes
processing idempotent: the same sound is never matched twice. Results: the preset in the preset
folder, the source moved to ``done/`` or to ``failed/`` with ``<name>.txt`` saying why; names
there are never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.atomic import numbered, write_atomic
from ..core.errors import ConfigError
from ..presets.match_job import AUDIO_SUFFIXES
from .jobs import Busy, Job, Outcome
from .journal import fsync_dir, linked_name

log = logging.getLogger(__name__)

DONE, FAILED = "done", "failed"
TEMP_SUFFIXES = frozenset({".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".opdownload",
                           ".swp", ".lock", ".!qb", ".filepart"})
IGNORED_NAMES = frozenset({"desktop.ini", "thumbs.db", "icon\r"})
CLOSE_SETTLE = 0.05  # after close-write: just long enough to see a writer that reopens at once
EMPTY_FACTOR = 5  # an empty file waits longer: it is often created before its bytes arrive


def is_candidate_name(name: str) -> bool:
    """False for hidden, temporary and system files that must never be touched."""
    lower = name.lower()
    return not (name.startswith((".", "~$")) or name.endswith("~") or lower in IGNORED_NAMES
                or os.path.splitext(lower)[1] in TEMP_SUFFIXES)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DoneSet:
    """Content hashes of matched drop-folder files, persisted as fsynced JSON lines."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    self._items[entry["hash"]] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash

    def __contains__(self, digest: object) -> bool:
        return digest in self._items

    def __len__(self) -> int:
        return len(self._items)

    def get(self, digest: str) -> dict[str, Any] | None:
        return self._items.get(digest)

    def add(self, digest: str, **info: Any) -> None:
        entry = {"hash": digest, "time": time.time(), **info}
        with self._lock:
            if digest in self._items:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, default=str) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self._items[digest] = entry


# --------------------------------------------------------------------------- moving files out

def claim(src: Path, folder: Path, companion: Callable[[Path], Path] | None = None) -> Path:
    """Give ``src`` a free name in ``folder`` (hard link; ``src`` stays until the caller unlinks it).

    ``companion`` maps a candidate to a file that must also be free (the reason ``.txt``). If a
    crash came between link and unlink, the existing link is found and reused.
    """
    folder.mkdir(parents=True, exist_ok=True)
    existing = linked_name(src, folder)
    if existing is not None:
        return existing
    n = 1
    while True:
        candidate = numbered(folder / src.name, n)
        n += 1
        if candidate.exists() or companion is not None and companion(candidate).exists():
            continue
        try:
            os.link(src, candidate)
        except FileExistsError:
            continue
        except OSError:  # no hard links here (FAT, some shares): a checked rename instead
            os.rename(src, candidate)
        fsync_dir(folder)
        return candidate


def _note_path(path: Path) -> Path:
    return path.with_name(path.name + ".txt")


def move_out(src: Path, folder: Path, note: str | None = None) -> Path:
    """Move ``src`` into ``folder`` under a free name, with an optional ``<name>.txt`` note beside it."""
    dest = claim(src, folder, _note_path if note is not None else None)
    if note is not None and not _note_path(dest).exists():
        write_atomic(_note_path(dest), lambda tmp: tmp.write_text(note, encoding="utf-8"), overwrite=False)
    src.unlink(missing_ok=True)
    fsync_dir(src.parent)
    return dest


def _reason_text(source: Path, reason: str, job_id: str | None = None) -> str:
    lines = [reason, "", f"file: {source.name}", f"when: {time.strftime('%Y-%m-%d %H:%M:%S')}"]
    if job_id:
        lines.append(f"job: {job_id}")
    return "\n".join(lines) + "\n"


def finish_drop_job(job: Job, outcome: Outcome, done: DoneSet) -> None:
    """The durable end of a drop-folder job: remember its hash, move the source out.

    Idempotent: after a crash it may run again for the same job.
    """
    src = Path(job.source)
    if outcome.ok:
        if job.content_hash:
            done.add(job.content_hash, source=src.name, preset=outcome.result["preset"] if outcome.result else None)
        if src.exists():
            move_out(src, src.parent / DONE)
    elif src.exists():
        move_out(src, src.parent / FAILED, _reason_text(src, outcome.error or "failed", job.id))


# --------------------------------------------------------------------------- the watcher

@dataclass
class _Candidate:
    size: int
    mtime_ns: int
    since: float  # monotonic time the (size, mtime) was first seen
    quick: bool  # closed after writing, or renamed in: complete
    digest: str | None = None


Submit = Callable[[Path, str], Any]


class DropFolder:
    """Watches one folder; calls ``submit(path, content_hash)`` for each complete new audio file.

    ``submit`` raises :class:`Busy` when the queue is full; the file then stays a candidate and
    is tried again. ``has_room`` lets the watcher leave space in the queue for interactive
    requests. Call :meth:`release` when a submitted file's job has finished.
    """

    def __init__(self, folder: str | Path, submit: Submit, done: DoneSet, settle_seconds: float = 1.0,
                 rescan_seconds: float = 30.0, has_room: Callable[[], bool] = lambda: True) -> None:
        self.folder = Path(folder).expanduser().resolve()
        self.submit = submit
        self.done = done
        self.settle = settle_seconds
        self.rescan = rescan_seconds
        self.has_room = has_room
        self._candidates: dict[str, _Candidate] = {}
        self._inflight: set[str] = set()
        self._given_up: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._observer: Any = None
        self._thread = threading.Thread(target=self._loop, name="deepdiva-drop", daemon=True)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        from watchdog.observers import Observer

        try:
            for sub in ("", DONE, FAILED):
                (self.folder / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the drop folder {self.folder}: {exc.strerror or exc}; "
                              "set drop.folder (--drop-folder)") from None
        self._observer = Observer()
        self._observer.schedule(_Handler(self), str(self.folder), recursive=False)
        self._observer.daemon = True
        self._observer.start()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def adopt(self, paths: Iterable[str | Path]) -> None:
        """Files whose jobs are already queued (restored from the journal)."""
        with self._lock:
            self._inflight.update(str(Path(p)) for p in paths)

    def release(self, path: str | Path) -> None:
        with self._lock:
            self._inflight.discard(str(Path(path)))
        self._wake.set()

    @property
    def waiting(self) -> int:
        """Files seen but not yet handed to the queue."""
        with self._lock:
            return len(self._candidates)

    # ----------------------------------------------------------------- events

    def hint(self, path: str, quick: bool = False) -> None:
        """An event says ``path`` changed; it becomes (or stays) a candidate."""
        p = Path(path)
        if p.parent != self.folder or not is_candidate_name(p.name):
            return
        try:
            st = p.stat()
        except OSError:
            return
        if not p.is_file():
            return
        now = time.monotonic()
        key = str(p)
        with self._lock:
            if key in self._inflight:
                return
            c = self._candidates.get(key)
            if c is None or (c.size, c.mtime_ns) != (st.st_size, st.st_mtime_ns):
                self._candidates[key] = _Candidate(st.st_size, st.st_mtime_ns, now, quick)
            elif quick:
                c.quick = True
        self._wake.set()

    def scan(self) -> None:
        """Add every file in the folder (at start, periodically, and when events may be lost)."""
        now, wall = time.monotonic(), time.time()
        try:
            entries = list(os.scandir(self.folder))
        except OSError as exc:
            log.error("cannot read the drop folder %s: %s", self.folder, exc)
            return
        with self._lock:
            for entry in entries:
                if not is_candidate_name(entry.name) or entry.path in self._inflight or entry.path in self._candidates:
                    continue
                try:
                    if not entry.is_file():
                        continue
                    st = entry.stat()
                except OSError:
                    continue
                if self._given_up.get(entry.path) == (st.st_size, st.st_mtime_ns):
                    continue
                age = max(0.0, wall - st.st_mtime)  # an old file has been stable all along
                self._candidates[entry.path] = _Candidate(st.st_size, st.st_mtime_ns, now - min(age, 1e6), False)
        self._wake.set()

    # ----------------------------------------------------------------- the settle loop

    def _loop(self) -> None:
        next_scan = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_scan:
                self.scan()
                next_scan = now + self.rescan
            try:
                busy = self._settle(now)
            except Exception:  # never let one odd file stop the watcher
                log.exception("drop folder: unexpected error")
                busy = True
            tick = min(0.25, max(0.02, self.settle / 4)) if busy else max(0.02, next_scan - time.monotonic())
            self._wake.wait(tick)
            self._wake.clear()

    def _settle(self, now: float) -> bool:
        """Hand ready candidates over; True while some are still waiting."""
        with self._lock:
            items = list(self._candidates.items())
        for key, c in items:
            if self._stop.is_set():
                break
            path = Path(key)
            try:
                st = path.stat()
            except OSError:
                self._forget(key)
                continue
            if (st.st_size, st.st_mtime_ns) != (c.size, c.mtime_ns):
                with self._lock:
                    self._candidates[key] = _Candidate(st.st_size, st.st_mtime_ns, now, False)
                continue
            wait = CLOSE_SETTLE if c.quick else self.settle * (EMPTY_FACTOR if st.st_size == 0 else 1)
            if now - c.since < wait:
                continue
            if self._dispatch(path, c, st):
                self._forget(key)
            else:
                break  # the queue is full: keep the order, try again on the next tick
        with self._lock:
            return bool(self._candidates)

    def _forget(self, key: str) -> None:
        with self._lock:
            self._candidates.pop(key, None)

    def _dispatch(self, path: Path, c: _Candidate, st: os.stat_result) -> bool:
        """Handle one ready file; False when it must wait for room in the queue."""
        key = str(path)
        try:
            if path.suffix.lower() not in AUDIO_SUFFIXES:
                kinds = ", ".join(sorted(s.lstrip(".") for s in AUDIO_SUFFIXES))
                self._fail(path, f"not an audio file ({path.suffix or 'no extension'}); deepdiva reads {kinds}")
                return True
            if not self.has_room():
                return False
            if c.digest is None:
                c.digest = file_hash(path)
            seen = self.done.get(c.digest)
            if seen is not None:
                dest = move_out(path, self.folder / DONE,
                                f"already matched: same content as {seen.get('source')} -> {seen.get('preset')}\n")
                log.info("%s: already matched (same content as %s); moved to %s", path.name, seen.get("source"), dest)
                return True
            with self._lock:
                self._inflight.add(key)
            try:
                self.submit(path, c.digest)
            except Busy:
                with self._lock:
                    self._inflight.discard(key)
                return False
            except BaseException:
                with self._lock:
                    self._inflight.discard(key)
                raise
            return True
        except OSError as exc:
            log.error("drop folder: cannot handle %s: %s; leaving it in place", path.name, exc)
            with self._lock:
                self._given_up[key] = (st.st_size, st.st_mtime_ns)
            return True

    def _fail(self, path: Path, reason: str) -> None:
        dest = move_out(path, self.folder / FAILED, _reason_text(path, reason))
        log.warning("%s: %s; moved to %s", path.name, reason, dest)


class _Handler:
    """watchdog callbacks -> :meth:`DropFolder.hint` (runs on the observer thread: keep it short)."""

    def __init__(self, drop: DropFolder) -> None:
        self.drop = drop

    def dispatch(self, event: Any) -> None:
        if event.is_directory:
            return
        kind = event.event_type
        if kind in ("created", "modified"):
            self.drop.hint(os.fsdecode(event.src_path))
        elif kind == "closed":
            self.drop.hint(os.fsdecode(event.src_path), quick=True)
        elif kind == "moved":
            self.drop.hint(os.fsdecode(event.dest_path), quick=True)
