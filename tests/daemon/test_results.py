"""The result archive behind the web page's history: what a finished job leaves to listen to."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepdiva.core.level import rms
from deepdiva.core.profile import load_profile
from deepdiva.daemon.jobs import Job, Outcome
from deepdiva.daemon.results import ResultArchive

SR = 44100
PSET = load_profile("diva").parameter_set("medium33")


def tone(path: Path, hz: float, level: float) -> str:
    t = np.arange(2 * SR) / SR
    sf.write(path, (level * np.sin(2 * np.pi * hz * t)).astype(np.float32), SR, subtype="FLOAT")
    return str(path)


def finished(tmp_path: Path, job_id: str, alternatives: int = 2) -> Outcome:
    stage = tmp_path / f"stage-{job_id}"
    stage.mkdir()
    params = [0.5] * len(PSET.parameters)
    result = {"preset": str(tmp_path / "pad.h2p"), "preview": tone(stage / "pad.wav", 220, 0.02),
              "target_audio": sf.read(tone(stage / "target.wav", 220, 0.5), dtype="float32")[0], "sample_rate": SR, "distance": 1.25,
              "note": "A3", "midi_pitch": 57, "cents": 1.0, "hz": 220.1, "pitched": True,
              "played_at": {"note": "A3", "midi_pitch": 57, "cents": 1.0}, "normalised": params,
              "raised_db": 12.5, "restored_samples": 0, "noise_floor_dbfs": -71.2,
              "alternatives": [{"preset": str(tmp_path / f"pad alt {r}.h2p"),
                                "preview": tone(stage / f"alt{r}.wav", 330, 0.2 * r), "distance": 1.5 + r,
                                "normalised": [0.1 * r] * len(PSET.parameters)} for r in range(2, 2 + alternatives)]}
    job = Job(job_id, "buffer", "web", str(stage / "in.wav"), "pad.wav", "pad", str(tmp_path))
    return Outcome(job, True, result, None, 0.05)


def test_a_finished_job_is_kept_with_its_sounds(tmp_path: Path) -> None:
    archive = ResultArchive(tmp_path / "results", 10, PSET)
    archive.add(finished(tmp_path, "aaa"))
    detail = archive.detail("aaa")
    assert detail is not None and detail["pitch"]["note"] == "A3" and detail["distance"] == 1.25
    assert detail["take"] == {"raised_db": 12.5, "restored_samples": 0, "noise_floor_dbfs": -71.2}
    assert [c["rank"] for c in detail["candidates"]] == [1, 2, 3]
    assert all(c["audio"] for c in detail["candidates"])
    assert detail["candidates"][0]["convergence"] is not None
    assert {s["section"] for s in detail["sections"]} >= {"OSC", "VCF1", "ENV1"}
    assert sum(len(s["rows"]) for s in detail["sections"]) == len(PSET.parameters)
    assert detail["sections_by_rank"]["3"][0]["rows"][0]["normalised"] == pytest.approx(0.3, abs=0.01)
    # the target at 0.5 and the preview at 0.02 come out equally loud, and none clips
    heard = [sf.read(archive.listening("aaa", w))[0] for w in ("target", "1", "2", "3")]
    levels = [rms(a)[0] for a in heard]
    assert max(levels) / min(levels) == pytest.approx(1.0, abs=0.01)
    assert max(np.abs(a).max() for a in heard) <= 1.0
    assert archive.listening("aaa", "../result") is None and archive.listening("nope", "target") is None
    png = archive.spectrogram("aaa", 2)
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image as mpimg

    assert mpimg.imread(io.BytesIO(png)).shape[1] > 800  # three panels side by side
    assert archive.spectrogram("aaa", 9) is None


def test_history_is_the_newest_n_and_survives_a_restart(tmp_path: Path) -> None:
    archive = ResultArchive(tmp_path / "results", 2, PSET)
    for job_id in ("one", "two", "three"):
        archive.add(finished(tmp_path, job_id, alternatives=0))
    failed = Outcome(Job("four", "file", "drop", "x.wav", "x.wav", "x", str(tmp_path)), False, None,
                     "x.wav: not a readable audio file", 0.01)
    archive.add(failed)
    assert [s["id"] for s in archive.summaries()] == ["four", "three"]
    assert archive.summaries()[0]["error"] == "x.wav: not a readable audio file"
    (tmp_path / "results" / ".new-five").mkdir()  # an entry cut short by a crash
    again = ResultArchive(tmp_path / "results", 2, PSET)
    assert [s["id"] for s in again.summaries()] == ["four", "three"]
    assert not (tmp_path / "results" / ".new-five").exists()
    assert len([p for p in (tmp_path / "results").iterdir()]) == 2
    record = json.loads(next((tmp_path / "results").glob("*-three/result.json")).read_text())
    assert record["candidates"][0]["normalised"] == [0.5] * len(PSET.parameters)
