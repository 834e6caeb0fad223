"""Render on worker processes, each hosting its own renderer: one plugin host per process.

Plugin hosts (``vst``, ``renderman``) are not thread-safe, so a search that should use every
core needs one host per process. :class:`RendererPool` starts ``workers`` processes, each with
its own renderer made by :func:`~deepdiva.core.renderers.make_renderer`, splits each batch's
rows over them and joins the audio in row order: the same audio as one renderer of that kind
(each plugin render is deterministic whatever was rendered before it).

Processes are *spawned*, never forked: JUCE (inside DawDreamer) and ``fork`` do not mix, and a
fresh interpreter inherits no big state and no TensorFlow. A worker gets its settings once and
then only parameter rows (numpy arrays, pickled: a 2 s note is 350 kB, well under the render's
cost). Any thread may call :meth:`RendererPool.render`: rows wait on one queue that a thread
per worker feeds to its process, so the refinement's threads can score one block while the
workers render the next.

Failures. Start-up errors (no plugin, a file that does not load, a profile that does not match)
are raised by the constructor as the first failing worker's :class:`RenderError`, before any
job. A worker that dies while rendering fails that render with a :class:`RenderError` and is
started again; if it cannot be, the pool refuses further renders with the reason. Workers stop
on :meth:`RendererPool.close`, when the pool is garbage collected, at interpreter exit, and on
their own when the parent's end of their pipe closes (the parent was killed): no orphans.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import weakref
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np

from .errors import DeepDivaError, RenderError
from .plugin_host import check_plugin_path
from .profile import ParameterSet
from .render import Renderer, RenderSettings
from .renderers import BACKENDS, make_renderer

START_SECONDS = 120.0  # a plugin that has not loaded by then (a dialog? a hang) is an error
STOP_SECONDS = 5.0


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs to make its renderer (pickled once, at its start)."""

    kind: str
    parameter_set: ParameterSet
    settings: RenderSettings
    plugin_path: str | None
    fixed: dict[int, float]


def pooled_renderer(kind: str, parameter_set: ParameterSet, settings: RenderSettings | None = None,
                    plugin_path: str | Path | None = None, fixed: Mapping[int, float] | None = None,
                    workers: int = 1) -> Renderer:
    """The renderer to search with on ``workers`` cores: a :class:`RendererPool` for plugin hosts
    when ``workers`` > 1, else the plain renderer (``builtin`` is thread-safe in-process: the
    refinement's threads already use every core with it)."""
    backend = BACKENDS.get(kind)
    if workers > 1 and backend is not None and backend.hosts_plugin:
        return RendererPool(kind, parameter_set, settings, plugin_path, fixed, workers)
    return make_renderer(kind, parameter_set, settings, plugin_path=None if plugin_path is None else str(plugin_path),
                         fixed=fixed)


class RendererPool(Renderer):
    """``workers`` processes, each with a renderer of ``kind``; thread-safe; see the module doc."""

    thread_safe = True

    def __init__(self, kind: str, parameter_set: ParameterSet, settings: RenderSettings | None = None,
                 plugin_path: str | Path | None = None, fixed: Mapping[int, float] | None = None,
                 workers: int = 2) -> None:
        super().__init__(parameter_set, settings, fixed)
        backend = BACKENDS.get(kind)
        if backend is None:
            make_renderer(kind, parameter_set)  # raises the registry's "unknown renderer" error
        elif backend.hosts_plugin:
            plugin_path = check_plugin_path(plugin_path)  # the common mistake, said without a process
        if int(workers) < 1:
            raise RenderError(f"a renderer pool needs at least one worker, not {workers}")
        self.kind = kind
        self.workers = int(workers)
        spec = WorkerSpec(kind, parameter_set, self.settings, None if plugin_path is None else str(plugin_path),
                          self.fixed)
        self._crew = _Crew(spec, self.workers)
        self._finalizer = weakref.finalize(self, self._crew.shutdown)

    def pids(self) -> list[int | None]:
        """The worker processes' ids (``None`` for one being restarted)."""
        return [w.process.pid if w.process is not None else None for w in self._crew.workers]

    def _render_native(self, native: np.ndarray, notes: np.ndarray, note_lengths: np.ndarray) -> np.ndarray:
        n = len(native)
        if n == 0:
            self._crew.check()
            return np.zeros((0, self.settings.n_samples), dtype=np.float32)
        parts = np.array_split(np.arange(n), min(self.workers, n))
        futures = self._crew.submit([(native[p], notes[p], note_lengths[p]) for p in parts])
        try:
            return np.concatenate([f.result() for f in futures])
        finally:
            for f in futures:
                f.cancel()  # the parts not started when another failed

    def close(self) -> None:
        """Stop the workers; rendering afterwards raises :class:`RenderError`."""
        self._finalizer()

    def __enter__(self) -> RendererPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Task = tuple[Future[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


class _Crew:
    """The workers, one feeding thread each and the task queue they share. The threads hold this,
    never the pool, so an unreferenced pool is collected and its finalizer stops them."""

    def __init__(self, spec: WorkerSpec, count: int) -> None:
        self.tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.closed = False
        self.broken: str | None = None
        self.workers = [_Worker(spec, i) for i in range(count)]
        for w in self.workers:
            w.start()
        try:
            for w in self.workers:
                w.wait_ready()
        except BaseException:
            self.closed = True
            for w in self.workers:
                w.kill()
            raise
        self.threads = [threading.Thread(target=self._feed, args=(w,), daemon=True,
                                         name=f"deepdiva-render-feed-{w.index}") for w in self.workers]
        for t in self.threads:
            t.start()

    def check(self) -> None:
        if self.closed:
            raise RenderError("this renderer is closed")
        if self.broken is not None:
            raise RenderError(self.broken)

    def submit(self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[Future[np.ndarray]]:
        futures: list[Future[np.ndarray]] = [Future() for _ in parts]
        with self.lock:  # not after shutdown's stop marks, where no thread would take them
            self.check()
            for future, part in zip(futures, parts, strict=True):
                self.tasks.put((future, part))
        return futures

    def _feed(self, worker: _Worker) -> None:
        while (task := self.tasks.get()) is not None:
            future, part = task
            if not future.set_running_or_notify_cancel():
                continue
            if self.broken is not None:
                future.set_exception(RenderError(self.broken))
                continue
            try:
                future.set_result(worker.render(*part))
            except RenderError as exc:  # the renderer's own error: the worker is fine
                future.set_exception(exc)
            except Exception as exc:  # it died, or its pipe failed: a fresh worker replaces it
                why = str(exc) if isinstance(exc, _Died) else (
                    f"renderer worker {worker.index} failed: {type(exc).__name__}: {exc}")
                restarting = not self.closed
                future.set_exception(RenderError(f"{why}; {'it is being restarted' if restarting else 'closing'}"))
                worker.kill()
                if restarting:
                    self._restart(worker)
        worker.stop()

    def _restart(self, worker: _Worker) -> None:
        try:
            worker.start()
            worker.wait_ready()
        except Exception as exc:  # whatever it is, no thread may die of it: queued parts would wait forever
            worker.kill()
            self.broken = (f"renderer worker {worker.index} stopped and could not be started again ({exc}); "
                           "make a new renderer")

    def shutdown(self) -> None:
        with self.lock:
            self.closed = True
            for _ in self.workers:
                self.tasks.put(None)
        for t, w in zip(self.threads, self.workers, strict=True):
            if t is threading.current_thread():
                continue
            t.join(STOP_SECONDS)
            if t.is_alive():  # busy with a render that hangs: its thread sees the worker die, then stops
                w.interrupt()
                t.join(STOP_SECONDS)
        while True:  # parts queued behind the stop marks by a render that raced shutdown: none can
            try:
                task = self.tasks.get_nowait()
            except queue.Empty:
                break
            if task is not None and task[0].set_running_or_notify_cancel():
                task[0].set_exception(RenderError("this renderer is closed"))


class _Died(Exception):
    """A worker process ended while it had work."""


class _Worker:
    """One spawned process with one renderer and the pipe to it; used by one thread at a time."""

    def __init__(self, spec: WorkerSpec, index: int) -> None:
        self.spec, self.index = spec, index
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: Connection | None = None

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, self.spec), daemon=True,
                                       name=f"deepdiva-render-{self.index}")
        self.process.start()
        theirs.close()  # the child's end lives only in the child: its death ends our reads
        self.conn = ours

    def _receive(self, timeout: float | None, doing: str) -> tuple[str, object]:
        assert self.process is not None and self.conn is not None
        ready = wait([self.conn, self.process.sentinel], timeout)
        if self.conn in ready:
            try:
                return self.conn.recv()
            except (EOFError, OSError):
                pass
        elif not ready:
            self.kill()
            raise RenderError(f"renderer worker {self.index} did not answer within {timeout:g} s while {doing}")
        self.process.join(STOP_SECONDS)
        raise _Died(f"renderer worker {self.index} (pid {self.process.pid}) stopped while {doing} "
                    f"({_exit_reason(self.process.exitcode)})")

    def wait_ready(self) -> None:
        """Wait for the renderer to be made; its error (or the process's end) as a RenderError."""
        try:
            status, payload = self._receive(START_SECONDS, "starting")
        except _Died as died:
            self.kill()
            raise RenderError(f"{died} (its output says why: a plugin that crashes as it loads, or a "
                              "script that starts a pool outside `if __name__ == '__main__':`)") from None
        if status != "ready":
            self.kill()
            raise RenderError(str(payload))

    def render(self, native: np.ndarray, notes: np.ndarray, note_lengths: np.ndarray) -> np.ndarray:
        assert self.conn is not None
        try:
            self.conn.send(("render", native, notes, note_lengths))
        except OSError:
            pass  # a dead worker: _receive says how it ended
        status, payload = self._receive(None, "rendering")
        if status != "ok":
            raise RenderError(str(payload))
        assert isinstance(payload, np.ndarray)
        return payload

    def stop(self) -> None:
        """Ask the worker to close its renderer and exit; kill it if it does not."""
        if self.conn is not None and self.process is not None and self.process.is_alive():
            try:
                self.conn.send(("stop",))
            except OSError:
                pass
            self.process.join(STOP_SECONDS)
        self.kill()

    def interrupt(self) -> None:
        """Kill the process, leaving the pipe to the thread that may be waiting on it."""
        process = self.process
        if process is not None and process.is_alive():
            process.kill()

    def kill(self) -> None:
        """Kill the process (if alive) and close the pipe."""
        process, conn, self.process, self.conn = self.process, self.conn, None, None
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(STOP_SECONDS)
            if process.exitcode is not None:
                process.close()
        if conn is not None:
            conn.close()


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, DeepDivaError) else f"renderer worker failed: {type(exc).__name__}: {exc}"


def _serve(conn: Connection, spec: WorkerSpec) -> None:
    """A worker's life: make the renderer, then render what arrives until told to stop or the
    parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    os.dup2(2, 1)  # plugins chatter on stdout; the parent's stdout may be --json output
    try:
        renderer = make_renderer(spec.kind, spec.parameter_set, spec.settings, plugin_path=spec.plugin_path,
                                 fixed=spec.fixed)
    except Exception as exc:
        conn.send(("error", _message(exc)))
        return
    conn.send(("ready", None))
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message[0] != "render":
                break
            try:
                reply: tuple[str, object] = ("ok", renderer._render_native(*message[1:]))
            except Exception as exc:
                reply = ("error", _message(exc))
            try:
                conn.send(reply)
            except OSError:
                break
    finally:
        renderer.close()
