"""``deepdiva serve``: the daemon composed from its parts and run until SIGINT/SIGTERM.

Inputs (drop folder, OSC over UDP/TCP, the recorder) only submit jobs; one worker runs the match
function; outputs (preset folder, MIDI CC, OSC replies) read the outcome. MIDI and recording are
optional: when their modules or devices fail, the daemon runs without them and says why.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.atomic import is_transient
from ..core.audio import DEFAULT_MAX_SECONDS, AudioClip, prepare_take, read_audio
from ..core.errors import ConfigError, DeepDivaError, RenderError
from ..core.filenames import printable
from ..core.limits import MAX_CANDIDATES, MAX_REFINE_SECONDS
from ..core.pitch import detect_pitch
from ..core.profile import ParameterSet, load_profile
from ..presets.diva import write_diva_preset
from ..presets.folders import preset_location, safe_name
from ..presets.formats import preset_format
from ..presets.match_job import open_input, preset_target
from .config import BY_KEY, DaemonConfig
from .jobs import Busy, Job, JobQueue, MatchFn, Outcome, Worker, new_job_id
from .journal import Journal
from .osc_server import ERROR, OscApp, Reply, SlipTcpServer, UdpReplier, UdpServer, max_bytes, send_outcome
from .watcher import DoneSet, DropFolder, finish_drop_job
from .web_guard import Guard, is_loopback, lan_address, load_token, machine_names

if TYPE_CHECKING:
    from ..core.matcher import Matcher
    from .web import WebPage

log = logging.getLogger(__name__)

Accepted = Callable[[Job, int], None]

MAX_TCP_RATE = 192000  # the TCP frame limit allows max_buffer_seconds at up to this rate


# --------------------------------------------------------------------------- match functions

def params_dict(parameter_set: ParameterSet, normalised: np.ndarray) -> dict[str, dict[str, Any]]:
    """``{location: {id, normalised, value}}`` as in ``Match.as_dict``."""
    native = parameter_set.from_normalised(np.asarray(normalised, dtype=np.float64)[None, :])[0]
    return {(p.location or str(p.id)): {"id": p.id, "normalised": round(float(u), 6),
                                        "value": p.format_native(float(v))}
            for p, u, v in zip(parameter_set.parameters, normalised, native, strict=True)}


def matcher_match(matcher: Any, refine_seconds: float = 0.0, preview: bool = True,
                  max_seconds: float = DEFAULT_MAX_SECONDS, candidates: int = 1, score: bool = True,
                  keep_target: bool = False) -> MatchFn:
    """The real job: read and validate the audio, run the matcher, write the preset (in the format of
    the model's synth) into the stage. ``keep_target``: the result also carries the prepared note
    (``target_audio``, samples in memory) for the web page's listening; it is written, as FLAC in
    the result archive, only after the reply."""
    from ..presets.match_job import match_clip

    suffix = preset_format(matcher.parameter_set.profile.name).suffix

    def run(job: Job) -> dict[str, Any]:
        clip = read_audio(job.audio, max_seconds)
        clip = clip.named(job.source)
        refine = refine_seconds if job.refine_seconds is None else job.refine_seconds
        report = match_clip(matcher, clip, Path(job.stage) / f"{job.name}{suffix}", preview=preview,
                            refine_seconds=refine, candidates=candidates if job.candidates is None else job.candidates,
                            score=score)
        out = report.as_dict(matcher)
        if keep_target:
            out["target_audio"] = report.target
        out["sample_rate"] = matcher.sample_rate
        out["normalised"] = [float(v) for v in report.match.params]
        return out

    return run


def dry_run_match(parameter_set: ParameterSet | None = None, max_seconds: float = DEFAULT_MAX_SECONDS,
                  keep_target: bool = False) -> MatchFn:
    """No model: read, validate and prepare the audio like a match (a quiet take raised, a clipped
    one restored: reported as a match reports them), then write the base preset (and with
    ``keep_target`` the prepared note, as :func:`matcher_match`).

    For checking a set-up (drop folder, OSC, MIDI) before a model is installed, and for tests
    and benchmarks of the daemon's plumbing.
    """
    pset = parameter_set or load_profile("diva").parameter_set("medium33")
    defaults = pset.defaults_normalised()

    def run(job: Job) -> dict[str, Any]:
        clip = read_audio(job.audio, max_seconds)
        take = prepare_take(clip.named(job.source))
        note = take.note
        pitch = detect_pitch(note, 44100)  # prepare_take's default rate; shown, so a set-up check also checks the input
        preset = write_diva_preset(pset, defaults, preset_target(Path(job.stage) / f"{job.name}.h2p"),
                                   source=printable(job.source), overwrite=True)
        return {"source": job.source, "preset": str(preset), "preview": None, "distance": float("nan"),
                "dry_run": True, **pitch.as_dict(), "params": params_dict(pset, defaults),
                **take.as_dict(),  # the input's level, checked
                "normalised": [float(v) for v in defaults], "sample_rate": 44100,
                **({"target_audio": note} if keep_target else {})}

    return run


# --------------------------------------------------------------------------- optional parts

class MidiOut:
    """MIDI CC output if it can be had; otherwise ``problem`` says why it is off."""

    def __init__(self, config: DaemonConfig) -> None:
        self.sender: Any = None
        self.problem: str | None = None
        self.description = f"port {config.midi_port!r} ({config.midi_cc_mode})"
        if not config.midi_enabled:
            self.problem = "turned off (midi.enabled)"
            return
        try:
            from .midi import CCSender
        except Exception as exc:  # python-rtmidi missing or broken
            self._off(exc)
            return
        try:
            self.sender = CCSender.open(config.midi_port, mode=config.midi_cc_mode, strict=False,
                                        cc_map=config.midi_cc_map)
        except ConfigError as exc:
            raise ConfigError(f"midi.cc_map / midi.cc_mode: {exc}") from None
        except Exception as exc:
            self._off(exc)

    def describe(self) -> str:
        connected = getattr(self.sender, "connected", True)
        return self.description + ("" if connected else ", not connected yet: retrying")

    def _off(self, exc: Exception) -> None:
        self.problem = f"{type(exc).__name__}: {exc}"
        log.warning("MIDI output disabled: %s", self.problem)

    def send(self, parameter_set: ParameterSet, normalised: np.ndarray) -> None:
        if self.sender is None:
            raise DeepDivaError(f"MIDI output is off: {self.problem}")
        self.sender.send(parameter_set, np.asarray(normalised))

    def close(self) -> None:
        if self.sender is not None:
            try:
                self.sender.close()
            except Exception:
                log.exception("closing the MIDI port failed")


class Recorder:
    """One recording at a time, on its own thread; unavailable when ``daemon.recorder`` fails."""

    def __init__(self, device: str | int | None, probe_seconds: float) -> None:
        self.device = device
        self.probe_seconds = probe_seconds
        self.problem: str | None = None
        self._record: Callable[..., AudioClip] | None = None
        self._busy = threading.Lock()
        try:
            from .recorder import record

            self._record = record
        except Exception as exc:  # sounddevice / PortAudio missing
            self.problem = f"{type(exc).__name__}: {exc}"
            log.warning("recording disabled: %s", self.problem)

    @property
    def recording(self) -> bool:
        return self._busy.locked()

    def start(self, seconds: float, done: Callable[[AudioClip], None], failed: Callable[[str], None],
              started: Callable[[float], None] | None = None) -> None:
        """Record on a new thread; ``started`` runs first (before any ``done``/``failed``)."""
        if self._record is None:
            raise DeepDivaError(f"recording is unavailable: {self.problem}")
        if not self._busy.acquire(blocking=False):
            raise Busy("already recording; wait for the result")
        if started is not None:
            started(seconds)
        threading.Thread(target=self._run, args=(seconds, done, failed), name="deepdiva-record",
                         daemon=True).start()

    def _run(self, seconds: float, done: Callable[[AudioClip], None], failed: Callable[[str], None]) -> None:
        try:
            assert self._record is not None
            clip = self._record(seconds, self.device, probe_seconds=self.probe_seconds)
        except DeepDivaError as exc:
            failed(str(exc))
            return
        except Exception as exc:
            log.exception("recording failed")
            failed(f"recording failed: {type(exc).__name__}: {exc}")
            return
        finally:
            self._busy.release()
        done(clip)


# --------------------------------------------------------------------------- the service

class Service:
    """The daemon. ``match`` replaces the model (tests, benchmarks); ``dry_run`` uses :func:`dry_run_match`."""

    def __init__(self, config: DaemonConfig, match: MatchFn | None = None,
                 parameter_set: ParameterSet | None = None, dry_run: bool = False,
                 say: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._match = match
        self.parameter_set = parameter_set
        self.dry_run = dry_run
        self.say = say or (lambda text: None)
        self.started = time.monotonic()
        self.listeners: list[Callable[[Outcome], None]] = []
        self.model_name = "injected match function" if match is not None else "dry run (base preset)" if dry_run else ""
        self.restored = 0
        self.journal: Journal | None = None
        self.queue: JobQueue | None = None
        self.worker: Worker | None = None
        self.udp: UdpServer | None = None
        self.tcp: SlipTcpServer | None = None
        self.replier: UdpReplier | None = None
        self.watcher: DropFolder | None = None
        self.midi: MidiOut | None = None
        self.recorder: Recorder | None = None
        self.preset_folder: Path | None = None
        self.web: WebPage | None = None
        self.web_fingerprint: str | None = None
        self._last: tuple[np.ndarray, dict[str, Any]] | None = None
        self._matcher: Matcher | None = None  # the loaded model's (its synth: a plugin host), closed by stop()
        self._stopped = threading.Event()

    # ----------------------------------------------------------------- start / stop

    def start(self) -> Service:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        cfg = self.config
        match = self._match or self._load_match()
        self.preset_folder = preset_location(cfg.presets_folder, synth=self._parameter_set().profile.name).folder
        self.journal = Journal(cfg.queue_journal)
        self.queue = queue = JobQueue(self.journal, cfg.queue_size)
        done = DoneSet(self.journal.folder / "drop-done.jsonl")
        self.midi = MidiOut(cfg)
        self.recorder = Recorder(cfg.input_device, cfg.audio_probe_seconds)
        pending = [Job.from_record(r) for r in self.journal.pending()]
        self.journal.sweep([self.preset_folder] + [Path(j.preset_folder) for j in pending])
        self.restored = self.queue.restore(pending)

        def finish(job: Job, outcome: Outcome) -> None:
            if job.origin != "drop":
                return
            try:
                finish_drop_job(job, outcome, done)
            except Exception as exc:
                if self.watcher is not None and not is_transient(exc):  # else the worker runs it again
                    self.watcher.release(job.source, stuck=True)
                raise
            if self.watcher is not None:
                self.watcher.release(job.source)

        if cfg.drop_enabled:  # made (and told about restored jobs) before the worker can finish one
            self.watcher = DropFolder(cfg.drop_folder, self._submit_drop, done, cfg.drop_settle_seconds,
                                      cfg.drop_rescan_seconds, has_room=lambda: queue.has_room(0.5))
            self.watcher.adopt(j.source for j in pending if j.origin == "drop")
        self.worker = Worker(self.queue, self._opening(match), finish=finish, notify=self._notify,
                             retry=lambda job: job.origin == "drop",  # nobody waits: a full disk is waited out
                             started=self._started)
        if cfg.web_enabled:  # before the worker: the page hears of every job
            self._start_web()
        self.worker.start()
        if cfg.osc_enabled:
            self._start_osc()
        if self.watcher is not None:
            self.watcher.start()
        self._announce()

    def _opening(self, match: MatchFn) -> MatchFn:
        """``match`` reading each job's file as :func:`open_input` opens it: any name the OS allows,
        and a file a client named (not a drop-folder file) inside ``files.allowed_roots`` when opened."""
        roots = self.config.files_allowed_roots

        def run(job: Job) -> dict[str, Any]:
            checked = roots if job.kind == "file" and job.origin != "drop" else None
            with open_input(job.audio, checked) as name:
                return match(replace(job, audio=name))

        return run

    def _load_match(self) -> MatchFn:
        cfg = self.config
        if self.dry_run:
            return dry_run_match(self.parameter_set, keep_target=cfg.web_enabled)
        from ..core.matcher import Matcher

        try:
            bank = {"auto": None, "on": True}.get(cfg.model_bank, False)
            matcher = Matcher.load(cfg.model_path, bank=bank, say=log.info, synth=cfg.model_synth or None,
                                   plugin_path=cfg.model_plugin_path, workers=cfg.model_render_workers,
                                   refine=True)  # any OSC request may ask for a search
        except RenderError as exc:  # a synth that cannot play the model, a plugin that does not load
            raise ConfigError(f"model.synth / model.plugin_path (--synth / --plugin-path): {exc}") from None
        self._matcher = matcher
        self.parameter_set = matcher.parameter_set
        plugin = getattr(matcher.renderer, "plugin_path", None)
        self.model_name = (f"{cfg.model_path or 'the shipped model'}, rendered with {matcher.renderer.kind}"
                           + (f" ({Path(plugin).name})" if plugin else ""))
        if matcher.synth_note:
            self.say(f"note: {matcher.synth_note}")
        return matcher_match(matcher, cfg.model_refine_seconds, cfg.presets_preview,
                             candidates=cfg.model_candidates, score=cfg.model_score, keep_target=cfg.web_enabled)

    def _start_web(self) -> None:
        from .results import ResultArchive
        from .web import WebPage

        cfg = self.config
        assert self.journal is not None and self.queue is not None
        token = None if is_loopback(cfg.web_host) else load_token(self.journal.folder / "web-token")
        tls = None
        if cfg.web_tls == "on" or (cfg.web_tls == "auto" and not is_loopback(cfg.web_host)):
            tls = self._web_certificate()
        archive = ResultArchive(self.journal.folder / "results", cfg.web_history, self._parameter_set())
        web = WebPage(self, archive, Guard(cfg.web_host, cfg.web_port, token),
                      int(cfg.web_max_upload_mb * (1 << 20)), DEFAULT_MAX_SECONDS, tls)
        try:
            web.start(cfg.web_host, cfg.web_port)
        except OSError as exc:
            raise ConfigError(f"cannot serve the web page on {cfg.web_host}:{cfg.web_port}: {exc.strerror or exc} "
                              "(another program, or another deepdiva?); choose another with web.port "
                              "(--web-port) or turn it off with --no-web") from None
        self.web = web
        self.queue.watchers.append(web.job_queued)
        self.listeners.insert(0, web.job_ended)

    def _web_certificate(self) -> Any:
        """The page's TLS context from its self-signed certificate (made once, beside the journal)."""
        from .web_tls import ensure_certificate, fingerprint, server_context

        assert self.journal is not None
        host = self.config.web_host
        addresses = ["127.0.0.1"] + [a for a in (lan_address(), host) if a and a not in ("0.0.0.0", "::")]
        try:
            cert, key = ensure_certificate(self.journal.folder, sorted(machine_names() | {"localhost"}), addresses)
            context = server_context(cert, key)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot make the web page's HTTPS certificate in {self.journal.folder}: {exc}; "
                              "set web.tls = off (--web-tls off) to serve plain HTTP") from None
        self.web_fingerprint = fingerprint(cert)
        return context

    def _started(self, job: Job) -> None:
        if self.web is not None:
            self.web.job_started(job)

    def _start_osc(self) -> None:
        cfg = self.config
        self.replier = UdpReplier(cfg.osc_reply_port)
        app = OscApp(self, cfg.files_allowed_roots, cfg.audio_max_buffer_seconds, self.replier,
                     max_pending_bytes=int(cfg.osc_max_pending_mb * (1 << 20)))
        for kind, port, make in (("UDP", cfg.osc_port, lambda: UdpServer(cfg.osc_host, cfg.osc_port, app)),
                                 ("TCP", cfg.osc_tcp_port, lambda: SlipTcpServer(
                                     cfg.osc_host, cfg.osc_tcp_port, app,
                                     max_bytes(cfg.audio_max_buffer_seconds, MAX_TCP_RATE) + 4096,
                                     idle_seconds=cfg.osc_tcp_idle_seconds))):
            try:
                server = make()
            except OSError as exc:
                flag = "--port" if kind == "UDP" else "--tcp-port"
                raise ConfigError(f"cannot listen on {kind} {cfg.osc_host}:{port}: {exc.strerror or exc} "
                                  f"(another program, or another deepdiva?); choose another with "
                                  f"osc.{'port' if kind == 'UDP' else 'tcp_port'} ({flag})") from None
            server.start()
            if kind == "UDP":
                self.udp = server  # type: ignore[assignment]
            else:
                self.tcp = server  # type: ignore[assignment]

    def stop(self, timeout: float | None = None) -> bool:
        """Stop inputs, let the worker finish its current job (the rest stays journaled), close.

        Returns False if the current job was still running after ``timeout``.
        """
        if self._stopped.is_set():
            return True
        self._stopped.set()
        for part in (self.watcher, self.udp, self.tcp):
            if part is not None:
                part.stop()
        finished = True
        if self.worker is not None:
            if self.worker.current is not None:
                log.info("finishing the current job (%s) before exiting", printable(self.worker.current.source))
            finished = self.worker.stop(timeout)
        elif self.queue is not None:
            self.queue.close()
        if self.replier is not None:
            self.replier.close()
        if self.web is not None:
            self.web.stop()
        if self.midi is not None:
            self.midi.close()
        if self.journal is not None and finished:
            self.journal.close()
        if self._matcher is not None and finished:
            # its plugin host freed here, in the thread that stops the daemon: left to the garbage
            # collector, a DawDreamer engine was freed on whatever thread collected it, and one freed
            # on a worker thread hung the process (the engine waits for a thread that needs the GIL)
            self._matcher.close()
            self._matcher = None
        return finished

    def run(self, on_ready: Callable[[Service], None] | None = None) -> None:
        """Start, then serve until SIGINT/SIGTERM; a second signal exits at once (jobs stay journaled)."""
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            if stop.is_set():
                log.warning("second signal: exiting now; unfinished jobs stay in the journal")
                os._exit(130)
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in _stop_signals()}
        try:
            self.start()
            if on_ready is not None:
                on_ready(self)
            while not stop.wait(0.5):
                pass
            self.say("stopping: finishing the current job (Ctrl-C again to quit at once) ...")
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # ----------------------------------------------------------------- what the inputs call (Backend)

    def _new_job(self, kind: str, origin: str, audio: str, source: str, name: str,
                 refine: float | None = None, digest: str | None = None, job_id: str | None = None,
                 reply: Reply | None = None, candidates: int | None = None) -> Job:
        assert self.preset_folder is not None
        return Job(job_id or new_job_id(), kind, origin, audio, source, safe_name(printable(name)),
                   str(self.preset_folder), refine_seconds=refine, candidates=candidates, content_hash=digest,
                   reply=reply)

    def _submit_drop(self, path: Path, digest: str) -> str:
        assert self.queue is not None
        job = self._new_job("file", "drop", str(path), str(path), path.stem, digest=digest)
        self.queue.submit(job)
        return job.id

    def submit_file(self, path: Path, refine: float | None, reply: Reply,
                    accepted: Accepted | None = None, candidates: int | None = None) -> str:
        assert self.queue is not None
        job = self._new_job("file", "osc", str(path), str(path), path.stem, refine, reply=reply,
                            candidates=candidates)
        self.queue.submit(job, accepted=accepted)
        return job.id

    def submit_buffer(self, samples: np.ndarray, sample_rate: int, refine: float | None, reply: Reply | None,
                      source: str, accepted: Accepted | None = None, label: str = "buffer",
                      candidates: int | None = None) -> str:
        assert self.queue is not None and self.journal is not None
        job_id = new_job_id()
        name = f"{label} {time.strftime('%Y-%m-%d %H-%M-%S')} {job_id}"
        job = self._new_job("buffer", "osc" if label == "buffer" else label, str(self.journal.data_path(job_id)),
                            source, name, refine, job_id=job_id, reply=reply, candidates=candidates)
        journal = self.journal
        self.queue.submit(job, prepare=lambda j: journal.save_audio(j.id, samples, sample_rate), accepted=accepted)
        return job_id

    def upload_path(self, job_id: str, suffix: str) -> Path:
        """Where the page streams an upload: the journal's data folder (removed with its job)."""
        assert self.journal is not None
        return self.journal.data_path(job_id, suffix)

    def submit_upload(self, job_id: str, path: Path, source: str, refine: float | None,
                      candidates: int | None) -> int:
        """Queue an uploaded file (already in :meth:`upload_path`); returns its position."""
        assert self.queue is not None
        job = self._new_job("buffer", "web", str(path), source, Path(source).stem or "upload", refine,
                            job_id=job_id, candidates=candidates)
        return self.queue.submit(job)

    def page_state(self) -> dict[str, Any]:
        """What the web page shows on opening: the daemon's settings and the jobs not yet finished."""
        from .results import summary

        cfg = self.config
        current = self.worker.current if self.worker is not None else None
        jobs = ([summary(current, "matching")] if current is not None else []) + \
            [summary(j, "queued") for j in (self.queue.snapshot() if self.queue is not None else [])]
        midi = self.midi is not None and self.midi.sender is not None
        return {"daemon": {"model": self.model_name, "synth": self._parameter_set().profile.name,
                           "preset_folder": str(self.preset_folder), "midi": midi,
                           "midi_problem": None if midi or self.midi is None else self.midi.problem,
                           "refine_seconds": cfg.model_refine_seconds, "candidates": cfg.model_candidates,
                           "max_refine_seconds": MAX_REFINE_SECONDS, "max_candidates": MAX_CANDIDATES,
                           "max_upload_mb": cfg.web_max_upload_mb, "record_seconds": cfg.audio_record_seconds,
                           "max_record_seconds": BY_KEY["audio.record_seconds"].high},
                "jobs": jobs}

    def push_params(self, normalised: list[float]) -> int:
        """Send one answer's parameters as MIDI CC (the page's push button)."""
        if self.midi is None:
            raise DeepDivaError("MIDI output is off")
        params = np.asarray(normalised, dtype=np.float32)
        if len(params) != len(self._parameter_set().parameters):
            raise DeepDivaError("this result's parameters do not fit the model's synth")
        self.midi.send(self._parameter_set(), params)
        return len(params)

    def record(self, seconds: float | None, reply: Reply, started: Callable[[float], None] | None = None,
               refine: float | None = None, candidates: int | None = None) -> float:
        """Record ``seconds`` (None: ``audio.record_seconds``) on a thread, then queue the match."""
        assert self.recorder is not None
        length = seconds or self.config.audio_record_seconds
        if self.queue is not None and not self.queue.has_room():
            raise Busy("the job queue is full; record again after a result")

        def done(clip: AudioClip) -> None:
            try:
                # a recording's channels are kept when one clipped: restored one by one when read back
                samples = clip.samples if clip.channels is None else clip.channels
                self.submit_buffer(samples, clip.sample_rate, refine, reply, clip.source,
                                   label="recording", candidates=candidates)
            except Busy as exc:
                reply.send(ERROR, f"recorded, but {exc}")
            except DeepDivaError as exc:
                reply.send(ERROR, str(exc))

        self.recorder.start(length, done, lambda reason: reply.send(ERROR, reason), started)
        return length

    def push(self) -> int:
        if self._last is None:
            raise DeepDivaError("nothing to push: no match has finished yet")
        assert self.midi is not None
        params, _ = self._last
        self.midi.send(self._parameter_set(), params)
        return len(params)

    def status(self) -> dict[str, Any]:
        worker = self.worker
        last = worker.last if worker is not None else None
        state = ("recording" if self.recorder is not None and self.recorder.recording
                 else "matching" if worker is not None and worker.current is not None else "idle")
        distance = last.result.get("distance") if last is not None and last.ok and last.result else None
        return {"queued": len(self.queue) if self.queue is not None else 0, "state": state,
                "uptime": time.monotonic() - self.started,
                "completed": worker.completed if worker else 0, "failed": worker.failed if worker else 0,
                "last_preset": last.result["preset"] if last is not None and last.ok and last.result else "",
                "last_distance": float(distance) if isinstance(distance, int | float) else -1.0}

    # ----------------------------------------------------------------- outputs

    def _parameter_set(self) -> ParameterSet:
        if self.parameter_set is None:
            self.parameter_set = load_profile("diva").parameter_set("medium33")
        return self.parameter_set

    def _notify(self, outcome: Outcome) -> None:
        if outcome.ok and outcome.result and outcome.result.get("normalised"):
            params = np.asarray(outcome.result["normalised"], dtype=np.float32)
            self._last = (params, outcome.result)
            if self.midi is not None and self.midi.sender is not None:
                try:
                    self.midi.send(self._parameter_set(), params)
                except Exception as exc:
                    log.warning("MIDI send failed: %s", exc)
        if outcome.job.reply is not None:
            send_outcome(outcome.job.reply, outcome)
        for listener in list(self.listeners):
            listener(outcome)

    def describe(self) -> dict[str, Any]:
        """Where the daemon listens and writes (also printed at start)."""
        cfg = self.config
        return {
            "model": self.model_name,
            "udp": list(self.udp.address) if self.udp else None,
            "tcp": list(self.tcp.address) if self.tcp else None,
            "reply_port": cfg.osc_reply_port,
            "drop_folder": str(self.watcher.folder) if self.watcher else None,
            "preset_folder": str(self.preset_folder),
            "journal": str(cfg.queue_journal),
            "restored_jobs": self.restored,
            "midi": None if self.midi is None or self.midi.sender is None else self.midi.describe(),
            "midi_problem": self.midi.problem if self.midi is not None else None,
            "recording": self.recorder is not None and self.recorder.problem is None,
            "web": self.web.url() if self.web is not None else None,
        }

    def _announce(self) -> None:
        d = self.describe()
        cfg = self.config
        lines = [f"deepdiva serve: matching with {d['model']}"]
        if d["udp"]:
            lines.append(f"  OSC        udp {d['udp'][0]}:{d['udp'][1]}, tcp {d['tcp'][0]}:{d['tcp'][1]} "
                         f"(OSC 1.1 SLIP, for audio buffers); replies to port {cfg.osc_reply_port} "
                         "or the port sent with /deepdiva/hello")
            if cfg.osc_host not in ("127.0.0.1", "::1"):
                lines.append(f"  warning    listening on {cfg.osc_host}: other machines can send requests")
        else:
            lines.append("  OSC        off")
        lines.append(f"  drop       {d['drop_folder']} (results: done/, failed/)" if d["drop_folder"]
                     else "  drop       off")
        if d["web"]:
            lines.append(f"  web page   {d['web']}")
            if self.web_fingerprint:
                lines.append(f"  https      self-signed certificate (your browser asks once), SHA-256 "
                             f"{self.web_fingerprint}")
            if not is_loopback(cfg.web_host):
                lines.append(f"  warning    the web page listens on {cfg.web_host}: other machines on your "
                             "network can open it with the token in that URL")
        else:
            lines.append("  web page   off")
        lines.append(f"  presets -> {d['preset_folder']}")
        lines.append(f"  journal    {d['journal']}" + (f" ({d['restored_jobs']} unfinished jobs restored)"
                                                        if d["restored_jobs"] else ""))
        lines.append(f"  MIDI CC -> {d['midi']}" if d["midi"] else f"  MIDI       off: {d['midi_problem']}")
        assert self.recorder is not None
        lines.append("  record     " + (f"input {cfg.audio_input_device or 'default'}" if d["recording"]
                                        else f"unavailable: {self.recorder.problem}"))
        lines.append(f"  {preset_format(self._parameter_set().profile.name).hint}")
        lines.append("  Ctrl-C (SIGINT) or SIGTERM stops after the current job.")
        self.say("\n".join(lines))


def _stop_signals() -> list[signal.Signals]:
    sigs = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGBREAK"):
        sigs.append(signal.SIGBREAK)
    return sigs
