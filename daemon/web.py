"""The daemon's web page (aiohttp): drop or record a sound, watch the queue, hear and see results.

A job from the page is a job like any other: the upload is streamed into the journal's data
folder (size-capped, checked as audio, never written elsewhere) and submitted to the same queue
as OSC and drop-folder jobs; every job, whatever its origin, is announced to the page over
server-sent events (``/api/events``) when it is queued, starts and ends. Finished jobs are read
back from the :class:`~.results.ResultArchive`. The server runs its own asyncio loop on one
thread; anything that touches files or the CPU runs in the loop's executor, so the page never
delays the worker or OSC. Request rules (Host, token, Origin) are in :mod:`.web_guard`; the API
is described in the README (section "The web page"). HTTPS beyond loopback: :mod:`.web_tls`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from ..core.audio import open_checked
from ..core.errors import AudioError, DeepDivaError
from ..core.filenames import printable
from ..core.limits import MAX_CANDIDATES, MAX_REFINE_SECONDS
from ..presets.match_job import AUDIO_SUFFIXES
from .jobs import Busy, Job, Outcome, new_job_id
from .results import ResultArchive, brief, summary
from .web_guard import TOKEN_HEADER, Guard, lan_address

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("web_static")
PAGE_FILES = {"app.js": "text/javascript", "app.css": "text/css"}
CHUNK = 1 << 16
READ_TIMEOUT = 30.0  # seconds an upload may stall between chunks
MAX_UPLOADS = 4  # uploads streaming at once
MAX_LISTENERS = 32  # event streams at once
MAX_CONNECTIONS = 64  # open connections at once (pages, streams, uploads, idle keep-alives)
PING_SECONDS = 15.0
CSP = ("default-src 'self'; script-src 'self' blob:; worker-src 'self' blob:; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'")


class Backend(Protocol):
    """What the page needs of the daemon (:class:`~.service.Service`)."""

    def submit_upload(self, job_id: str, path: Path, source: str, refine: float | None,
                      candidates: int | None) -> int: ...
    def upload_path(self, job_id: str, suffix: str) -> Path: ...
    def page_state(self) -> dict[str, Any]: ...
    def push_params(self, normalised: list[float]) -> int: ...


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


class WebPage:
    """The page's server on its own thread. ``publish`` may be called from any thread."""

    def __init__(self, backend: Backend, archive: ResultArchive, guard: Guard, max_upload_bytes: int,
                 max_seconds: float, tls: ssl.SSLContext | None = None) -> None:
        self.backend = backend
        self.tls = tls
        self.archive = archive
        self.guard = guard
        self.max_upload_bytes = max_upload_bytes
        self.max_seconds = max_seconds
        self.address: tuple[str, int] = ("", 0)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="deepdiva-web", daemon=True)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._listeners: set[asyncio.Queue[str | None]] = set()
        self._uploads = 0
        self._pictures = threading.Lock()  # one spectrogram drawn at a time: the worker needs the CPU

    # ----------------------------------------------------------------- life

    def start(self, host: str, port: int) -> None:
        """Listen (raises OSError when the port is taken) and serve on the page's thread."""
        self._thread.start()
        try:
            self.address = self._call(self._listen(host, port))
        except BaseException:
            self.stop()
            raise

    def _call(self, coro: Awaitable[Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    async def _listen(self, host: str, port: int) -> tuple[str, int]:
        """Listen with aiohttp's connection handler behind a cap on open connections: past
        ``MAX_CONNECTIONS`` a new one gets a short 503 and is closed, so many idle or slow clients
        cannot use up the daemon's file descriptors (which OSC and the journal need too)."""
        self._runner = runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        server = runner.server
        assert server is not None

        def accept() -> asyncio.BaseProtocol:
            if len(server.connections) >= MAX_CONNECTIONS:
                return _TooMany()
            return server()

        self._listener = await asyncio.get_running_loop().create_server(accept, host, port, ssl=self.tls,
                                                                       reuse_address=True)
        chosen = int(self._listener.sockets[0].getsockname()[1])
        self.guard = replace(self.guard, port=chosen)  # the port chosen when 0 was asked for, before any request
        return host, chosen

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._call(self._close(), timeout=5.0)
        except (concurrent.futures.TimeoutError, RuntimeError):
            log.warning("the web page did not close in time")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)

    async def _close(self) -> None:
        for queue in list(self._listeners):
            self._end_stream(queue)
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self) -> str:
        host, port = self.address
        shown = host if host not in ("0.0.0.0", "::") else lan_address() or "127.0.0.1"
        shown = f"[{shown}]" if ":" in shown else shown
        token = f"/?token={self.guard.token}" if self.guard.token else "/"
        return f"{'https' if self.tls else 'http'}://{shown}:{port}{token}"

    # ----------------------------------------------------------------- events

    def publish(self, item: dict[str, Any]) -> None:
        """Tell every open page about a job (any thread)."""
        if not self._thread.is_alive():
            return
        data = json.dumps(item, default=str)
        self._loop.call_soon_threadsafe(self._fan_out, data)

    def _fan_out(self, data: str) -> None:
        for queue in list(self._listeners):
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:  # a page that does not read: cut it off, it reconnects and reloads
                self._end_stream(queue)

    def _end_stream(self, queue: asyncio.Queue[str | None]) -> None:
        """Make one event stream end: drop what it has not read, then the end mark."""
        self._listeners.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)

    def job_queued(self, job: Job) -> None:
        self.publish(summary(job, "queued"))

    def job_started(self, job: Job) -> None:
        self.publish(summary(job, "matching"))

    def job_ended(self, outcome: Outcome) -> None:
        """Keep the outcome in the archive (the worker's thread, before the job's stage is cleared)."""
        try:
            record = self.archive.add(outcome)
        except Exception as exc:  # the job is done and published: only the page's copy is lost
            log.warning("could not keep job %s for the page: %s", outcome.job.id, exc)
            record = {"finished": None, "error": outcome.error}
            record = summary(outcome.job, "done" if outcome.ok else "failed", record)
        self.publish(brief(record))

    # ----------------------------------------------------------------- the app

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guarded], client_max_size=1 << 16)
        r = app.router
        r.add_get("/", self._index)
        r.add_get("/static/{name}", self._static)
        r.add_get("/api/state", self._state)
        r.add_get("/api/events", self._events)
        r.add_post("/api/upload", self._upload)
        r.add_get("/api/results/{id}", self._result)
        r.add_get("/api/results/{id}/audio/{which}.wav", self._audio)
        r.add_get("/api/results/{id}/spectrogram/{rank}.png", self._spectrogram)
        r.add_get("/api/results/{id}/preset/{rank}", self._preset)
        r.add_post("/api/results/{id}/push/{rank}", self._push)
        return app

    @web.middleware
    async def _guarded(self, request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        token = (request.query.get("token") or request.headers.get(TOKEN_HEADER)
                 or request.cookies.get(self.guard.cookie))
        headers = {k.lower(): v for k, v in request.headers.items()}
        refused = self.guard.refusal(request.method, request.path, headers, token, request.scheme)
        if refused is not None:
            log.info("web: refused %s %s: %s", request.method, printable(request.path), refused)
            response: web.StreamResponse = _error(403, refused)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = _error(exc.status, exc.reason or "request refused")
            except DeepDivaError as exc:
                response = _error(400, str(exc))
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    async def _index(self, request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC / "index.html", headers={"Content-Type": "text/html; charset=utf-8"})
        if self.guard.token and request.query.get("token"):
            response.set_cookie(self.guard.cookie, self.guard.token, httponly=True, samesite="Strict", path="/")
        return response

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in PAGE_FILES:
            return _error(404, "no such file")
        return web.FileResponse(STATIC / name, headers={"Content-Type": f"{PAGE_FILES[name]}; charset=utf-8"})

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def _state(self, request: web.Request) -> web.Response:
        state = await self._run(self.backend.page_state)
        state["history"] = await self._run(self.archive.summaries)
        return web.json_response(state)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if len(self._listeners) >= MAX_LISTENERS:
            return _error(503, f"too many pages open ({MAX_LISTENERS}); close one")
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=256)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        self._listeners.add(queue)
        try:
            await response.write(b"retry: 2000\n\n")
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), PING_SECONDS)
                except TimeoutError:
                    await response.write(b": ping\n\n")
                    continue
                if data is None:
                    break
                await response.write(f"event: job\ndata: {data}\n\n".encode())
        except ConnectionResetError:  # the page went away
            pass
        finally:
            self._listeners.discard(queue)
        return response

    # ----------------------------------------------------------------- in

    async def _upload(self, request: web.Request) -> web.Response:
        name = printable(request.query.get("name") or "upload")[:200] or "upload"
        refine, candidates = _job_options(request.query)
        cap = self.max_upload_bytes
        if request.content_length is not None and request.content_length > cap:
            return _error(413, f"the file is {request.content_length / 2**20:.1f} MB, more than the limit of "
                               f"{cap / 2**20:g} MB (web.max_upload_mb)")
        if self._uploads >= MAX_UPLOADS:
            return _error(503, "too many uploads at once; try again in a moment")
        self._uploads += 1
        job_id = new_job_id()
        suffix = Path(name).suffix.lower()
        path = self.backend.upload_path(job_id, suffix if suffix in AUDIO_SUFFIXES else ".audio")
        leftover: Path | None = path  # removed unless a job takes it
        try:
            status = await self._receive(request, path, cap)
            if status is not None:
                return status
            try:
                await self._run(self._check_audio, path, name)
                position = await self._run(self.backend.submit_upload, job_id, path, name, refine, candidates)
            except Busy as exc:
                return _error(503, str(exc))
            except DeepDivaError as exc:
                return _error(400, str(exc))
            leftover = None  # the job owns it now
            return web.json_response({"id": job_id, "position": position}, status=202)
        finally:
            self._uploads -= 1
            if leftover is not None:
                leftover.unlink(missing_ok=True)

    async def _receive(self, request: web.Request, path: Path, cap: int) -> web.Response | None:
        """Stream the body into ``path``; an error response if it is too big, stalls or breaks off."""
        size = 0
        with open(path, "xb") as out:
            while True:
                try:
                    chunk = await asyncio.wait_for(request.content.readany(), READ_TIMEOUT)
                except TimeoutError:
                    return _error(408, f"the upload stalled for {READ_TIMEOUT:.0f} s; try again")
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    return _error(413, f"the file is larger than the limit of {cap / 2**20:g} MB (web.max_upload_mb)")
                await self._run(out.write, chunk)
        if size == 0:
            return _error(400, "the upload was empty: choose an audio file")
        return None

    def _check_audio(self, path: Path, name: str) -> None:
        """The header of an uploaded file, checked as every input is (rate, length, channels)."""
        try:
            with open_checked(path, self.max_seconds):
                pass
        except AudioError as exc:
            raise AudioError(str(exc).replace(str(path), name)) from None

    # ----------------------------------------------------------------- out

    async def _candidate(self, request: web.Request) -> dict[str, Any]:
        rank = request.match_info["rank"]
        found = await self._run(self.archive.candidate, request.match_info["id"], int(rank)) if rank.isdigit() else None
        if found is None:
            raise web.HTTPNotFound(reason=f"no such result, or it has no candidate {printable(rank)}")
        return found

    async def _result(self, request: web.Request) -> web.Response:
        detail = await self._run(self.archive.detail, request.match_info["id"])
        if detail is None:
            return _error(404, "no such result (finished jobs are kept up to web.history)")
        return web.json_response(detail)

    async def _audio(self, request: web.Request) -> web.StreamResponse:
        wav = await self._run(self.archive.listening, request.match_info["id"], request.match_info["which"])
        if wav is None:
            return _error(404, "no such sound for this result")
        return web.FileResponse(wav, headers={"Content-Type": "audio/wav", "Cache-Control": "private, max-age=3600"})

    async def _spectrogram(self, request: web.Request) -> web.Response:
        rank = request.match_info["rank"]
        if not rank.isdigit():
            return _error(404, "no such picture")

        def draw() -> bytes | None:
            with self._pictures:
                return self.archive.spectrogram(request.match_info["id"], int(rank))

        png = await self._run(draw)
        if png is None:
            return _error(404, "no picture: the target or this candidate's sound was not kept")
        return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    async def _preset(self, request: web.Request) -> web.StreamResponse:
        candidate = await self._candidate(request)
        path = Path(candidate.get("path") or "")
        if not path.is_file():
            return _error(404, f"the preset is no longer at {printable(str(path))} (moved or deleted)")
        filename = printable(path.name).replace('"', "'")
        return web.FileResponse(path, headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f"attachment; filename=\"{_ascii(filename)}\"; filename*=UTF-8''"
                                   f"{_quote(filename)}"})

    async def _push(self, request: web.Request) -> web.Response:
        candidate = await self._candidate(request)
        try:
            sent = await self._run(self.backend.push_params, candidate.get("normalised") or [])
        except DeepDivaError as exc:
            return _error(503, str(exc))
        return web.json_response({"sent": sent})


class _TooMany(asyncio.Protocol):
    """A connection past the cap: told so and closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        body = b'{"error": "too many connections to the deepdiva page; close some tabs and reload"}'
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        transport.close()


def _job_options(query: Any) -> tuple[float | None, int | None]:
    """``refine`` and ``candidates`` from the query (absent: the daemon's settings)."""
    try:
        refine = float(query["refine"]) if query.get("refine") not in (None, "") else None
        candidates = int(query["candidates"]) if query.get("candidates") not in (None, "") else None
    except ValueError:
        raise DeepDivaError("refine must be a number of seconds and candidates a whole number") from None
    if refine is not None and not 0.0 <= refine <= MAX_REFINE_SECONDS:
        raise DeepDivaError(f"refine must be between 0 and {MAX_REFINE_SECONDS:g} seconds")
    if candidates is not None and not 1 <= candidates <= MAX_CANDIDATES:
        raise DeepDivaError(f"candidates must be between 1 and {MAX_CANDIDATES}")
    if candidates is not None and candidates > 1 and not refine:
        raise DeepDivaError("more than one candidate needs refine seconds above 0: the runners-up come from the search")
    return refine, candidates


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii").replace("?", "_")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
