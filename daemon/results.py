"""The last finished jobs, kept for listening and looking: the web page's history.

A job's preset and preview live in the preset folder, but what a person wants to compare (the
prepared target, every candidate's sound and parameters, the distance, the note) exists only
while the job runs. When a job finishes, :meth:`ResultArchive.add` keeps it under
``<journal>/results/<finished ns>-<id>/``: ``result.json``, ``target.flac`` and ``<rank>.flac``
(1 = the match, 2.. = runners-up), later ``<rank>.png`` (spectrograms, made on first request).
The folder appears by one rename, so a crash leaves a whole entry or none; only the newest
``keep`` entries stay. Failed jobs are kept too (their error, no audio).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import write_atomic, write_bytes_atomic
from ..core.filenames import printable
from ..core.metrics import spectral_convergence
from ..core.profile import ParameterSet
from .jobs import Job, Outcome

log = logging.getLogger(__name__)

RECORD = "result.json"
TARGET = "target"
TAKE_KEYS = ("raised_db", "restored_samples", "noise_floor_dbfs")  # MatchReport.as_dict: quiet, clipped, hiss
SUMMARY_KEYS = ("id", "state", "origin", "source", "name", "created", "finished", "error", "distance", "note")


def summary(job: Job, state: str, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a list shows of a job: ``id``, ``state`` (queued, matching, done, failed), where it came
    from, its name, when, and once done its distance and note."""
    record = record or {}
    return {"id": job.id, "state": state, "origin": job.origin, "source": printable(job.source),
            "name": job.name, "created": job.created, "finished": record.get("finished"),
            "error": record.get("error"), "distance": record.get("distance"),
            "note": (record.get("pitch") or {}).get("note")}


def brief(record: dict[str, Any]) -> dict[str, Any]:
    """The :func:`summary` part of a kept record (what lists and the event stream carry)."""
    return {k: record.get(k) for k in SUMMARY_KEYS}


class ResultArchive:
    """The newest ``keep`` outcomes on disk, with their audio; thread-safe."""

    def __init__(self, folder: str | Path, keep: int, parameter_set: ParameterSet) -> None:
        self.folder = Path(folder)
        self.keep = keep
        self.parameter_set = parameter_set
        self._lock = threading.Lock()
        self._entries: dict[str, Path] = {}  # id -> folder, oldest first
        self._briefs: dict[str, dict[str, Any]] = {}  # id -> brief(record): lists without reading files
        self.folder.mkdir(parents=True, exist_ok=True)
        for leftover in self.folder.glob(".new-*"):  # an entry cut short by a crash
            shutil.rmtree(leftover, ignore_errors=True)
        for entry in sorted(p for p in self.folder.iterdir() if p.is_dir() and (p / RECORD).is_file()):
            job_id = entry.name.split("-", 1)[-1]
            self._entries[job_id] = entry
            record = self.record(job_id)
            if record is None:
                self._entries.pop(job_id)
                continue
            self._briefs[job_id] = brief(record)
        self._prune()

    # ----------------------------------------------------------------- writing

    def add(self, outcome: Outcome) -> dict[str, Any]:
        """Keep ``outcome`` (call before the job's stage is cleared); returns its record."""
        job = outcome.job
        record = self._record(outcome)
        new = self.folder / f".new-{job.id}"
        shutil.rmtree(new, ignore_errors=True)
        new.mkdir()
        try:
            if outcome.ok and outcome.result is not None:
                self._keep_audio(outcome.result, record, new)
            (new / RECORD).write_text(json.dumps(record, default=str), encoding="utf-8")
            final = self.folder / f"{time.time_ns():020d}-{job.id}"
            os.replace(new, final)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        with self._lock:
            self._entries[job.id] = final
            self._briefs[job.id] = brief(record)
            self._prune()
        return record

    def _record(self, outcome: Outcome) -> dict[str, Any]:
        job, result = outcome.job, outcome.result or {}
        record: dict[str, Any] = summary(job, "done" if outcome.ok else "failed",
                                         {"finished": time.time(), "error": outcome.error})
        record["seconds"] = round(outcome.seconds, 4)
        if not outcome.ok:
            return record
        distance = result.get("distance")
        record["distance"] = distance if isinstance(distance, int | float) and np.isfinite(distance) else None
        if result.get("pitched") is not None:
            record["pitch"] = {k: result.get(k) for k in ("note", "midi_pitch", "cents", "hz", "pitched")}
            record["note"] = result.get("note") if result.get("pitched") else None
        record["played_at"] = result.get("played_at")
        record["take"] = {k: result.get(k) for k in TAKE_KEYS}  # what was done to the take before matching
        record["chord"] = result.get("chord")
        record["preset"] = result.get("preset")
        record["sample_rate"] = int(result.get("sample_rate") or 44100)
        match = {"preset": result.get("preset"), "distance": record["distance"], "preview": result.get("preview"),
                 "normalised": result.get("normalised")}
        candidates = [{"rank": rank, "distance": c.get("distance"), "path": c.get("preset"),
                       "preview": c.get("preview"), "normalised": c.get("normalised") or []}
                      for rank, c in enumerate([match, *(result.get("alternatives") or [])], start=1)]
        record["candidates"] = candidates
        return record

    def _keep_audio(self, result: dict[str, Any], record: dict[str, Any], folder: Path) -> None:
        """Copy the target and each candidate's preview as 16-bit FLAC; measure spectral convergence."""
        import soundfile as sf

        target = result.get("target_audio")  # the prepared note, in memory: written here, after the reply
        if target is not None:
            sf.write(folder / f"{TARGET}.flac", _clip(target), record["sample_rate"], subtype="PCM_16")
        for candidate in record["candidates"]:
            audio = _read(candidate.pop("preview", None))
            candidate["audio"] = audio is not None
            if audio is None:
                continue
            sf.write(folder / f"{candidate['rank']}.flac", _clip(audio), record["sample_rate"], subtype="PCM_16")
            if target is not None:
                n = min(len(target), len(audio))
                candidate["convergence"] = round(float(spectral_convergence(audio[:n], target[:n])[0]), 4)

    def _prune(self) -> None:
        while len(self._entries) > self.keep:
            job_id = next(iter(self._entries))
            self._briefs.pop(job_id, None)
            shutil.rmtree(self._entries.pop(job_id), ignore_errors=True)

    # ----------------------------------------------------------------- reading

    def summaries(self) -> list[dict[str, Any]]:
        """The kept jobs, newest first, as :func:`summary` shapes them."""
        with self._lock:
            return [dict(self._briefs[job_id]) for job_id in reversed(self._entries) if job_id in self._briefs]

    def record(self, job_id: str) -> dict[str, Any] | None:
        folder = self._folder(job_id)
        if folder is None:
            return None
        try:
            return json.loads((folder / RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def detail(self, job_id: str) -> dict[str, Any] | None:
        """The record for the page: candidates without paths' folders, parameters grouped by section."""
        record = self.record(job_id)
        if record is None:
            return None
        out = {k: v for k, v in record.items() if k != "candidates"}
        out["candidates"] = []
        out["sections_by_rank"] = {}
        for c in record.get("candidates", []):
            out["candidates"].append({"rank": c["rank"], "distance": c.get("distance"),
                                      "convergence": c.get("convergence"),
                                      "file": Path(c["path"]).name if c.get("path") else None,
                                      "path": c.get("path"), "audio": bool(c.get("audio"))})
            out["sections_by_rank"][str(c["rank"])] = self.sections(c.get("normalised") or [])
        out["sections"] = out["sections_by_rank"].get("1", [])
        return out

    def sections(self, normalised: list[float]) -> list[dict[str, Any]]:
        """Parameters as rows grouped by the synth's sections, in the profile's order."""
        pset = self.parameter_set
        if len(normalised) != len(pset.parameters):
            return []
        values = np.asarray(normalised, dtype=np.float64)
        native = pset.from_normalised(values[None, :])[0]
        groups: dict[str, list[dict[str, Any]]] = {}
        for p, u, v in zip(pset.parameters, values, native, strict=True):
            groups.setdefault(p.section or "other", []).append(
                {"location": p.location or str(p.id), "name": p.name, "value": p.format_native(float(v)),
                 "normalised": round(float(u), 4)})
        return [{"section": name, "rows": rows} for name, rows in groups.items()]

    def candidate(self, job_id: str, rank: int) -> dict[str, Any] | None:
        return _candidate(self.record(job_id) or {}, rank)

    def listening(self, job_id: str, which: str) -> Path | None:
        """A 16-bit wav of the kept sound ``which`` (``"target"`` or a rank) at the level shared by the target and every candidate
        (:func:`~deepdiva.core.level.listening_gains`), made once; None when it was not kept."""
        import soundfile as sf

        from ..core.level import listening_gains

        folder, record = self._folder(job_id), self.record(job_id)
        if folder is None or record is None:
            return None
        names = [TARGET] + [str(c["rank"]) for c in record.get("candidates", [])]
        if which not in names:
            return None
        wav = folder / f"listen-{which}.wav"
        if wav.is_file():
            return wav
        clips = {n: _read(folder / f"{n}.flac") for n in names}
        kept = {n: c for n, c in clips.items() if c is not None}
        if which not in kept:
            return None
        gains = dict(zip(kept, listening_gains(list(kept.values())), strict=True))
        heard = _clip(kept[which] * gains[which])
        return write_atomic(wav, lambda tmp: sf.write(tmp, heard, _rate(record), subtype="PCM_16", format="WAV"))

    def spectrogram(self, job_id: str, rank: int) -> bytes | None:
        """Target | candidate ``rank`` | difference as PNG, made once and kept beside the audio."""
        folder, record = self._folder(job_id), self.record(job_id)
        if folder is None or record is None:
            return None
        cached = folder / f"{rank}.png"
        if cached.is_file():
            return cached.read_bytes()
        target, candidate = _read(folder / f"{TARGET}.flac"), _read(folder / f"{rank}.flac")
        if target is None or candidate is None:
            return None
        from ..training.plots import comparison_png

        pitch = record.get("pitch") or {}
        note = f"{pitch.get('note')} ({pitch.get('cents'):+.0f} cents)" if pitch.get("pitched") else "unpitched"
        if record.get("chord"):
            note = "the chord " + " ".join(record["chord"])
        distance = (_candidate(record, rank) or {}).get("distance")
        label = "match" if rank == 1 else f"runner-up {rank}"
        png = comparison_png(target, candidate, _rate(record),
                             (f"target, {note}",
                              f"{label}, distance {distance:.3f}" if isinstance(distance, float) else label))
        try:
            write_bytes_atomic(cached, png)
        except OSError as exc:  # pruned meanwhile, or a full disk: still answer
            log.debug("could not keep %s: %s", cached, exc)
        return png

    def _folder(self, job_id: str) -> Path | None:
        with self._lock:
            return self._entries.get(job_id)


def _candidate(record: dict[str, Any], rank: int) -> dict[str, Any] | None:
    return next((c for c in record.get("candidates", []) if c["rank"] == rank), None)


def _rate(record: dict[str, Any]) -> int:
    return int(record.get("sample_rate") or 44100)


def _read(path: str | Path | None) -> np.ndarray | None:
    """Mono float32 samples of an audio file we wrote, or None if it is gone or unreadable."""
    if not path:
        return None
    import soundfile as sf

    try:
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError):
        return None
    return data.mean(axis=1)


def _clip(audio: np.ndarray) -> np.ndarray:
    return np.clip(audio, -1.0, 1.0)
