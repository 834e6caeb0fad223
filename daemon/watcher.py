"""The drop folder: audio files put into it are matched once complete, then moved out.

Events (watchdog) are only hints. A file is *ready* when its size and mtime have not changed for
``settle_seconds``, on every OS: a close-write event (Linux) does not prove a file complete, as
many writers (DAWs exporting, copy tools) reopen the file for every chunk. Files moved in
(``x.wav.part`` -> ``x.wav``) are ready at once. Hidden and temporary names are ignored. The folder
is scanned at start and every ``rescan_seconds``. A content hash in a persisted done-set makes
processing idempotent: the same sound is never matched twice. Results: the preset in the preset
folder, the source moved to ``done/`` or to ``failed/`` with ``<name>.txt`` saying why; names
there are never overwritten. A failure that passes (disk full, too many open files) leaves the
file in the folder and tries it again later, with growing pauses.
"""

from __future__ import annotations

import errno
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

from ..core.atomic import is_transient, numbered, write_atomic
from ..core.errors import ConfigError, DeepDivaError
from ..core.filenames import NAME_MAX, printable
from ..presets.match_job import AUDIO_SUFFIXES
from .jobs import Busy, Job, Outcome, problem, retry_delay
from .journal import fsync_dir, linked_name
from .supervise import Supervised

log = logging.getLogger(__name__)

DONE, FAILED = "done", "failed"
TEMP_SUFFIXES = frozenset({".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".opdownload",
                           ".swp", ".lock", ".!qb", ".filepart"})
IGNORED_NAMES = frozenset({"desktop.ini", "thumbs.db", "icon\r"})
MOVED_SETTLE = 0.05  # a file renamed into the folder is complete; just let the rename land
EMPTY_FACTOR = 5  # an empty file waits longer: it is often created before its bytes arrive
NOTE_SUFFIX = ".txt"  # the reason beside a file in failed/ (or a duplicate in done/): <name>.txt
HANDLED, WAIT, RETRY = "handled", "wait", "retry"  # what became of a ready file


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
            line = json.dumps(entry, default=str).encode("utf-8") + b"\n"
            with open(self.path, "ab", buffering=0) as f:  # unbuffered: nothing left to flush after a failure
                end = f.tell()
                try:
                    if f.write(line) != len(line):
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
                    os.fsync(f.fileno())
                except OSError:  # disk full: a cut line would swallow the next entry appended
                    f.truncate(end)
                    raise
            self._items[digest] = entry


# --------------------------------------------------------------------------- moving files out

def claim(src: Path, folder: Path, note: bool = False) -> Path:
    """Give ``src`` a free name in ``folder`` (hard link; ``src`` stays until the caller unlinks it).

    With ``note`` the name leaves room for, and needs a free, ``<name>.txt`` beside it. If a crash
    came between link and unlink, the existing link is found and reused.
    """
    folder.mkdir(parents=True, exist_ok=True)
    existing = linked_name(src, folder)
    if existing is not None:
        return existing
    limit = NAME_MAX - len(NOTE_SUFFIX) if note else NAME_MAX
    n = 1
    while True:
        candidate = numbered(folder / src.name, n, limit)
        n += 1
        if candidate.exists() or note and _note_path(candidate).exists():
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
    return path.with_name(path.name + NOTE_SUFFIX)


def move_out(src: Path, folder: Path, note: str | None = None) -> Path:
    """Move ``src`` into ``folder`` under a free name, with an optional ``<name>.txt`` note beside it."""
    dest = claim(src, folder, note is not None)
    if note is not None and not _note_path(dest).exists():
        text = note.encode("utf-8", "backslashreplace")  # an unprintable name that slipped through must not lose it
        write_atomic(_note_path(dest), lambda tmp: tmp.write_bytes(text), overwrite=False)
    src.unlink(missing_ok=True)
    fsync_dir(src.parent)
    return dest


def _reason_text(source: Path, reason: str, job_id: str | None = None) -> str:
    lines = [printable(reason), "", f"file: {printable(source.name)}",
             f"when: {time.strftime('%Y-%m-%d %H:%M:%S')}"]
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
    moved: bool  # renamed into the folder: complete
    digest: str | None = None
    attempts: int = 0  # failures that pass (disk full) so far
    retry_at: float = 0.0  # monotonic time before which it is not tried again


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
        self._thread = Supervised("deepdiva-drop", self._loop, self._stop)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        from watchdog.observers import Observer

        try:
            for sub in ("", DONE, FAILED):
                (self.folder / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the drop folder {printable(str(self.folder))}: "
                              f"{exc.strerror or exc}; set drop.folder (--drop-folder)") from None
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
        self._thread.join(timeout)

    def adopt(self, paths: Iterable[str | Path]) -> None:
        """Files whose jobs are already queued (restored from the journal)."""
        with self._lock:
            self._inflight.update(str(Path(p)) for p in paths)

    def release(self, path: str | Path, stuck: bool = False) -> None:
        """A submitted file's job has ended. ``stuck``: it could not be moved out; leave it alone
        until it changes."""
        key = str(Path(path))
        with self._lock:
            self._inflight.discard(key)
            if stuck:
                try:
                    st = os.stat(key)
                    self._given_up[key] = (st.st_size, st.st_mtime_ns)
                except OSError:
                    pass
        self._wake.set()

    @property
    def waiting(self) -> int:
        """Files seen but not yet handed to the queue."""
        with self._lock:
            return len(self._candidates)

    # ----------------------------------------------------------------- events

    def hint(self, path: str, moved: bool = False) -> None:
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
                self._candidates[key] = _Candidate(st.st_size, st.st_mtime_ns, now, moved)
            elif moved:
                c.moved = True
        self._wake.set()

    def scan(self) -> None:
        """Add every file in the folder (at start, periodically, and when events may be lost)."""
        now, wall = time.monotonic(), time.time()
        try:
            entries = list(os.scandir(self.folder))
        except OSError as exc:
            log.error("cannot read the drop folder %s: %s", printable(str(self.folder)), exc.strerror or exc)
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
            if now < c.retry_at:
                continue
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
            wait = MOVED_SETTLE if c.moved else self.settle * (EMPTY_FACTOR if st.st_size == 0 else 1)
            if now - c.since < wait:
                continue
            state = self._dispatch(path, c, st)
            if state == HANDLED:
                self._forget(key)
            elif state == WAIT:
                break  # the queue is full: keep the order, try again on the next tick
        with self._lock:
            return bool(self._candidates)

    def _forget(self, key: str) -> None:
        with self._lock:
            self._candidates.pop(key, None)

    def _dispatch(self, path: Path, c: _Candidate, st: os.stat_result) -> str:
        """Handle one ready file: HANDLED (submitted or moved out), WAIT (no room) or RETRY (later)."""
        key = str(path)
        try:
            if path.suffix.lower() not in AUDIO_SUFFIXES:
                kinds = ", ".join(sorted(s.lstrip(".") for s in AUDIO_SUFFIXES))
                self._fail(path, f"not an audio file ({printable(path.suffix) or 'no extension'}); "
                                 f"deepdiva reads {kinds}")
                return HANDLED
            if not self.has_room():
                return WAIT
            if c.digest is None:
                c.digest = file_hash(path)
            seen = self.done.get(c.digest)
            if seen is not None:
                dest = move_out(path, self.folder / DONE,
                                f"already matched: same content as {printable(str(seen.get('source')))} -> "
                                f"{printable(str(seen.get('preset')))}\n")
                log.info("%s: already matched (same content as %s); moved to %s", printable(path.name),
                         printable(str(seen.get("source"))), printable(str(dest)))
                return HANDLED
            with self._lock:
                self._inflight.add(key)
            try:
                self.submit(path, c.digest)
            except Busy:
                with self._lock:
                    self._inflight.discard(key)
                return WAIT
            except BaseException:
                with self._lock:
                    self._inflight.discard(key)
                raise
            return HANDLED
        except (OSError, DeepDivaError) as exc:
            return self._trouble(path, c, st, exc)

    def _trouble(self, path: Path, c: _Candidate, st: os.stat_result, exc: Exception) -> str:
        """A ready file that could not be handed over: later if the cause passes, else to failed/."""
        reason = problem(exc)
        if not is_transient(exc):
            try:
                self._fail(path, reason)
                return HANDLED
            except OSError as again:
                if not is_transient(again):
                    log.error("drop folder: cannot handle %s: %s; nor move it to failed/: %s; leaving it in "
                              "place", printable(path.name), reason, problem(again))
                    with self._lock:
                        self._given_up[str(path)] = (st.st_size, st.st_mtime_ns)
                    return HANDLED
                reason = problem(again)
        c.attempts += 1
        delay = retry_delay(c.attempts)
        c.retry_at = time.monotonic() + delay
        log.warning("drop folder: %s: %s; trying again in %.0f s", printable(path.name), reason, delay)
        return RETRY

    def _fail(self, path: Path, reason: str) -> None:
        dest = move_out(path, self.folder / FAILED, _reason_text(path, reason))
        log.warning("%s: %s; moved to %s", printable(path.name), reason, printable(str(dest)))


class _Handler:
    """watchdog callbacks -> :meth:`DropFolder.hint` (runs on the observer thread: keep it short)."""

    def __init__(self, drop: DropFolder) -> None:
        self.drop = drop

    def dispatch(self, event: Any) -> None:
        if event.is_directory:
            return
        kind = event.event_type
        if kind in ("created", "modified", "closed"):  # closed: a hint like any other, not proof
            self.drop.hint(os.fsdecode(event.src_path))
        elif kind == "moved":
            self.drop.hint(os.fsdecode(event.dest_path), moved=True)
