"""Jobs, the bounded job queue and the one worker thread that runs the match.

Inputs call :meth:`JobQueue.submit` (journal, then enqueue; :class:`Busy` when full) and return
at once; the :class:`Worker` takes jobs one by one, calls the injected ``match`` function
(``job -> result dict``, writing its preset into ``job.stage``), publishes the preset through
the journal (the commit), runs the durable ``finish`` hook, then ``notify`` (replies, MIDI) and
last completes the journal entry. A job restored after a crash goes through the same steps; the
journal makes the ones already done idempotent. A job that fails for a reason that passes (disk
full) and may wait (nobody waits for its reply) stays journaled and runs again later.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..core.atomic import is_disk_full, is_transient
from ..core.errors import DeepDivaError
from ..core.filenames import printable
from .journal import Journal
from .supervise import Supervised

log = logging.getLogger(__name__)

KINDS = ("file", "buffer")
RETRY_FIRST = 1.0  # seconds before the first retry after a failure that passes; doubles each time
RETRY_MAX = 60.0


def retry_delay(attempt: int) -> float:
    """Seconds to wait before try ``attempt + 1`` (``attempt`` >= 1 failures so far)."""
    return min(RETRY_MAX, RETRY_FIRST * 2.0 ** (max(1, attempt) - 1))


def problem(exc: BaseException) -> str:
    """One printable line saying what went wrong: a user error's message, or the OS's reason and file."""
    if not isinstance(exc, OSError):
        return printable(str(exc))
    name = exc.filename
    where = "" if name is None else ": " + printable(os.fsdecode(name) if isinstance(name, bytes) else str(name))
    hint = "; free space there and try again" if is_disk_full(exc) else ""
    return f"{exc.strerror or type(exc).__name__}{where}{hint}"


def new_job_id() -> str:
    return secrets.token_hex(6)


@dataclass
class Job:
    """One sound to match.

    ``audio`` is the file the match reads (the user's file, or the journaled copy of a buffer);
    ``source`` is what to call it in messages and preset meta; ``name`` is the preset's file stem;
    ``stage`` is the folder the match writes into (set when the job is accepted). ``reply`` is
    where results go (not journaled: after a restart nobody is waiting).
    """

    id: str
    kind: str
    origin: str
    audio: str
    source: str
    name: str
    preset_folder: str
    stage: str = ""
    refine_seconds: float | None = None
    candidates: int | None = None  # > 1: also publish the search's runners-up; None: the configured number
    content_hash: str | None = None
    created: float = field(default_factory=time.time)
    reply: Any = field(default=None, compare=False, repr=False)

    def to_record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "reply"}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        known = {f.name for f in fields(cls)} - {"reply"}
        return cls(**{k: v for k, v in record.items() if k in known})


class Busy(DeepDivaError):
    """The queue is full: the request was not accepted (nothing was journaled)."""


@dataclass(frozen=True)
class Outcome:
    """What became of a job: ``result`` (with the published preset path) or ``error``."""

    job: Job
    ok: bool
    result: dict[str, Any] | None
    error: str | None
    seconds: float
    retry_in: float | None = None  # failed for now: runs again in this many seconds (still journaled)


MatchFn = Callable[[Job], dict[str, Any]]
Hook = Callable[[Job, Outcome], None]


class JobQueue:
    """A bounded FIFO of journaled jobs (restored jobs may exceed the bound)."""

    def __init__(self, journal: Journal, maxsize: int) -> None:
        self.journal = journal
        self.maxsize = maxsize
        self._items: deque[Job] = deque()
        self._later: list[tuple[float, int, Job]] = []  # (monotonic due time, order, job), a heap
        self._order = itertools.count()
        self._reserved = 0
        self._cv = threading.Condition()
        self._closed = False
        self.watchers: list[Callable[[Job], None]] = []  # told of each job once it is queued

    def __len__(self) -> int:
        with self._cv:
            return len(self._items)

    def has_room(self, share: float = 1.0) -> bool:
        """Whether a submit would be accepted while using at most ``share`` of the capacity."""
        with self._cv:
            return len(self._items) + self._reserved < max(1, int(self.maxsize * share))

    def submit(self, job: Job, prepare: Callable[[Job], object] | None = None,
               accepted: Callable[[Job, int], None] | None = None) -> int:
        """Journal and enqueue ``job``; returns its position (1 = next). Raises :class:`Busy`.

        ``prepare`` runs after a slot is reserved and before journaling (e.g. saving a buffer),
        so nothing is written for a request that is turned away. ``accepted`` runs once the job
        is journaled and before the worker can see it, so an acknowledgement always precedes
        the result.
        """
        with self._cv:
            if self._closed:
                raise Busy("the daemon is shutting down")
            if len(self._items) + self._reserved >= self.maxsize:
                raise Busy(f"the job queue is full ({self.maxsize} jobs waiting); try again after a result")
            self._reserved += 1
        try:
            job.stage = str(self.journal.stage_dir(job.id))
            if prepare is not None:
                prepare(job)
            self.journal.add(job.id, job.to_record())
        except BaseException:
            with self._cv:
                self._reserved -= 1
            raise
        if accepted is not None:
            with self._cv:
                position = len(self._items) + 1
            try:
                accepted(job, position)
            except Exception:  # a failed acknowledgement must not lose a journaled job
                log.exception("acknowledging job %s failed", job.id)
        with self._cv:
            self._reserved -= 1
            self._items.append(job)
            self._cv.notify()
            position = len(self._items)
        self._tell(job)
        return position

    def _tell(self, job: Job) -> None:
        for watcher in list(self.watchers):
            try:
                watcher(job)
            except Exception:  # an observer (the web page's feed) must not lose a job
                log.exception("telling about job %s failed", job.id)

    def restore(self, jobs: Iterable[Job]) -> int:
        """Put journaled jobs back (after a restart), ignoring the bound."""
        with self._cv:
            n = 0
            for job in jobs:
                job.stage = str(self.journal.stage_dir(job.id))
                self._items.append(job)
                n += 1
            self._cv.notify_all()
            return n

    def defer(self, job: Job, seconds: float) -> None:
        """Put a journaled job back at the end of the queue after ``seconds``."""
        with self._cv:
            heapq.heappush(self._later, (time.monotonic() + seconds, next(self._order), job))
            self._cv.notify()

    def take(self, timeout: float | None = None) -> Job | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while True:
                now = time.monotonic()
                while self._later and self._later[0][0] <= now:
                    self._items.append(heapq.heappop(self._later)[2])
                if self._items or self._closed:
                    return self._items.popleft() if self._items else None
                waits = [t - now for t in (deadline, self._later[0][0] if self._later else None) if t is not None]
                if deadline is not None and now >= deadline:
                    return None
                self._cv.wait(min(waits) if waits else None)

    def snapshot(self) -> list[Job]:
        with self._cv:
            return list(self._items)

    def close(self) -> None:
        """Refuse new jobs and wake the worker; queued jobs stay journaled for the next start."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()


class Worker:
    """The single thread that runs matches, one job at a time."""

    def __init__(self, queue: JobQueue, match: MatchFn, finish: Hook | None = None,
                 notify: Callable[[Outcome], None] | None = None,
                 retry: Callable[[Job], bool] | None = None,
                 started: Callable[[Job], None] | None = None) -> None:
        """``retry(job)``: whether a job may wait out a failure that passes (disk full) instead of failing;
        ``started(job)`` is told when a job starts matching."""
        self.queue = queue
        self.journal = queue.journal
        self.match = match
        self.finish = finish
        self.notify = notify
        self.retry = retry or (lambda job: False)
        self.started = started
        self.completed = 0
        self.failed = 0
        self._attempts: dict[str, int] = {}
        self._published: dict[str, dict[str, Any]] = {}  # results of jobs whose finish must run again
        self.last: Outcome | None = None
        self.current: Job | None = None
        self._stop = threading.Event()
        self._thread = Supervised("deepdiva-worker", self._run, self._stop)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Finish the current job, leave the rest journaled; True when the thread has ended."""
        self._stop.set()
        self.queue.close()
        self._thread.join(timeout)
        return not self._thread.alive

    @property
    def alive(self) -> bool:
        return self._thread.alive

    def _run(self) -> None:
        while not self._stop.is_set():
            job = self.queue.take(timeout=0.5)
            if job is None:
                continue
            self.run_one(job)

    def run_one(self, job: Job) -> Outcome:
        """Match, publish, finish, notify, complete: the whole life of one job.

        Only a job's final outcome is counted and reported: one that is tried again later
        (``Outcome.retry_in``) is neither.
        """
        began = time.perf_counter()
        folder = Path(job.preset_folder)
        self.current = job
        if self.started is not None:
            try:
                self.started(job)
            except Exception:
                log.exception("telling that job %s started failed", job.id)
        passing = False
        try:
            published = self.journal.published(job.id, folder)
            if published is not None:  # committed before a crash: neither match nor publish again
                result = self._published.pop(job.id, None) or {
                    "source": job.source, "preset": str(published), "recovered": True}
            else:
                job.stage = str(self.journal.clear_stage(job.id))  # the journal owns where matches write
                result = self.journal.publish(job.id, folder, self.match(job))
            outcome = Outcome(job, True, result, None, time.perf_counter() - began)
        except (DeepDivaError, OSError) as exc:  # OSError: the machine (disk, files), not a bug
            passing = is_transient(exc)
            outcome = Outcome(job, False, None, problem(exc), time.perf_counter() - began)
        except Exception as exc:  # a bug must not kill the worker: report it and carry on
            log.exception("job %s (%s) failed", job.id, printable(job.source))
            outcome = Outcome(job, False, None, f"internal error: {type(exc).__name__}: {printable(str(exc))}",
                              time.perf_counter() - began)
        if passing and self.retry(job):
            return self._later(job, outcome)
        if self.finish is not None:
            try:
                self.finish(job, outcome)
            except Exception as exc:
                if is_transient(exc) and self.retry(job):
                    if outcome.ok and outcome.result is not None:  # published: finish it, never match again
                        self._published[job.id] = outcome.result
                    return self._later(job, Outcome(job, False, None, problem(exc), outcome.seconds))
                log.exception("finishing job %s failed", job.id)
        self._attempts.pop(job.id, None)
        if outcome.ok and outcome.result is not None:
            self.completed += 1
            log.info("%s -> %s (%.0f ms)", printable(job.source), printable(str(outcome.result["preset"])),
                     outcome.seconds * 1000)
        else:
            self.failed += 1
            log.warning("job %s failed: %s", job.id, outcome.error)
        self.last = outcome
        self.current = None  # before the replies: whoever hears of the result sees an idle worker
        if self.notify is not None:  # the preset is durable already: answer before tidying up
            try:
                self.notify(outcome)
            except Exception:
                log.exception("reporting job %s failed", job.id)
        try:
            self.journal.complete(job.id, folder)
        except OSError:  # stays journaled: the next start finishes it (publishing is idempotent)
            log.exception("could not complete journal entry of job %s", job.id)
        return outcome

    def _later(self, job: Job, outcome: Outcome) -> Outcome:
        """Keep a job journaled and run it again after a pause that grows with each try."""
        attempts = self._attempts[job.id] = self._attempts.get(job.id, 0) + 1
        delay = retry_delay(attempts)
        log.warning("job %s (%s): %s; trying again in %.0f s", job.id, printable(job.source), outcome.error, delay)
        self.current = None
        self.queue.defer(job, delay)
        return replace(outcome, retry_in=delay)
