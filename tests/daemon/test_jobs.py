"""Job queue, worker and journal: busy when full, failures reported, exactly-once recovery.

Crashes are simulated in-process by stopping after each step of a job's life (match finished,
preset published, journal entry removed) and opening the journal again, the way a restarted
daemon does; ``test_service.py`` does the same with ``kill -9`` on a real process.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from daemon_helpers import wait_until, write_sine

from deepdiva.core.errors import AudioError, ConfigError, PresetError
from deepdiva.daemon import jobs as jobs_module
from deepdiva.daemon import journal as journal_module
from deepdiva.daemon.jobs import Busy, Job, JobQueue, Outcome, Worker, new_job_id
from deepdiva.daemon.journal import Journal, JournalError
from deepdiva.daemon.service import dry_run_match
from deepdiva.presets.h2p import read_h2p

SR = 44100


def tone(path: Path, seconds: float = 0.5, freq: float = 220.0) -> Path:
    return write_sine(path, freq, seconds, amplitude=0.5)


def make_job(audio: Path, presets: Path, origin: str = "osc") -> Job:
    return Job(new_job_id(), "file", origin, str(audio), str(audio), audio.stem, str(presets))


class Counting:
    """The fast real match function, counting its calls."""

    def __init__(self) -> None:
        self.inner = dry_run_match()
        self.calls = 0

    def __call__(self, job: Job) -> dict:
        self.calls += 1
        return self.inner(job)


def leftovers(*folders: Path) -> list[str]:
    """Temp and hidden files that must not survive a finished job."""
    found = []
    for folder in folders:
        found += [p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix in (".tmp", ".part")]
    return found


@pytest.fixture()
def dirs(tmp_path: Path) -> dict[str, Path]:
    d = {name: tmp_path / name for name in ("audio", "presets", "journal")}
    for p in d.values():
        p.mkdir()
    return d


def test_job_record_round_trip(dirs: dict[str, Path]) -> None:
    job = make_job(dirs["audio"] / "a.wav", dirs["presets"])
    job.reply = object()  # never journaled
    record = job.to_record()
    assert "reply" not in record
    assert Job.from_record(record) == job
    assert Job.from_record({**record, "added_later": 1}) == job  # newer journals stay readable


def test_full_queue_is_busy_and_journals_nothing(dirs: dict[str, Path]) -> None:
    journal = Journal(dirs["journal"])
    queue = JobQueue(journal, maxsize=2)
    audio = tone(dirs["audio"] / "a.wav")
    assert queue.submit(make_job(audio, dirs["presets"])) == 1
    assert queue.submit(make_job(audio, dirs["presets"])) == 2
    assert not queue.has_room()
    prepared = []
    with pytest.raises(Busy, match="queue is full"):
        queue.submit(make_job(audio, dirs["presets"]), prepare=prepared.append)
    assert prepared == []  # nothing written for a refused request
    assert len(list((dirs["journal"] / "jobs").glob("*.json"))) == 2
    assert len(queue) == 2
    assert queue.take(0) is not None
    assert queue.has_room()
    journal.close()


def test_worker_publishes_and_cleans_up(dirs: dict[str, Path]) -> None:
    journal = Journal(dirs["journal"])
    queue = JobQueue(journal, maxsize=4)
    seen: list[Outcome] = []
    done = threading.Event()
    worker = Worker(queue, dry_run_match(), notify=lambda o: (seen.append(o), done.set()))
    worker.start()
    queue.submit(make_job(tone(dirs["audio"] / "kick.wav"), dirs["presets"]))
    assert done.wait(30)
    worker.stop(30)
    (outcome,) = seen
    assert outcome.ok, outcome.error
    preset = Path(outcome.result["preset"])
    assert preset == dirs["presets"] / "kick.h2p"
    assert read_h2p(preset).meta  # a complete, readable preset
    assert len(outcome.result["normalised"]) == 33
    assert leftovers(dirs["presets"]) == []
    assert list((dirs["journal"] / "jobs").iterdir()) == []
    assert list((dirs["journal"] / "stage").iterdir()) == []
    journal.close()


def test_failures_are_reported_and_the_worker_carries_on(dirs: dict[str, Path]) -> None:
    journal = Journal(dirs["journal"])
    queue = JobQueue(journal, maxsize=8)
    fast = dry_run_match()

    def flaky(job: Job) -> dict:
        if job.name == "bug":
            raise ZeroDivisionError("oops")
        return fast(job)

    worker = Worker(queue, flaky)
    garbage = dirs["audio"] / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wav")
    silent = dirs["audio"] / "silent.wav"
    sf.write(silent, np.zeros(SR, dtype=np.float32), SR)
    jobs = [make_job(garbage, dirs["presets"]), make_job(silent, dirs["presets"]),
            make_job(tone(dirs["audio"] / "bug.wav"), dirs["presets"]),
            make_job(tone(dirs["audio"] / "fine.wav"), dirs["presets"])]
    outcomes = [worker.run_one(job) for job in jobs]
    assert [o.ok for o in outcomes] == [False, False, False, True]
    assert "not a readable audio file" in outcomes[0].error
    assert "silent" in outcomes[1].error
    assert outcomes[2].error.startswith("internal error: ZeroDivisionError")
    assert (worker.completed, worker.failed) == (1, 3)
    assert sorted(p.name for p in dirs["presets"].iterdir()) == ["fine.h2p"]
    journal.close()


def test_second_daemon_cannot_share_a_journal(dirs: dict[str, Path]) -> None:
    journal = Journal(dirs["journal"])
    with pytest.raises(ConfigError, match="in use by another"):
        Journal(dirs["journal"])
    journal.close()
    Journal(dirs["journal"]).close()  # free again


# --------------------------------------------------------------------------- crash recovery

def _accept(dirs: dict[str, Path], name: str = "snare") -> tuple[Journal, Job]:
    journal = Journal(dirs["journal"])
    queue = JobQueue(journal, maxsize=4)
    job = make_job(tone(dirs["audio"] / f"{name}.wav"), dirs["presets"])
    queue.submit(job)
    return journal, job


def _restart(dirs: dict[str, Path], match: Counting) -> list[Outcome]:
    """What the service does at start: read pending jobs, sweep, restore, work them off."""
    journal = Journal(dirs["journal"])
    pending = [Job.from_record(r) for r in journal.pending()]
    journal.sweep([dirs["presets"]])
    queue = JobQueue(journal, maxsize=4)
    queue.restore(pending)
    worker = Worker(queue, match)
    outcomes = []
    while (job := queue.take(0)) is not None:
        outcomes.append(worker.run_one(job))
    journal.close()
    return outcomes


def _presets(dirs: dict[str, Path]) -> list[str]:
    return sorted(p.name for p in dirs["presets"].glob("*.h2p"))


def test_crash_before_the_match_redoes_the_job(dirs: dict[str, Path]) -> None:
    journal, _ = _accept(dirs)
    journal.close()  # kill -9: the job was only accepted
    match = Counting()
    (outcome,) = _restart(dirs, match)
    assert outcome.ok and match.calls == 1
    assert _presets(dirs) == ["snare.h2p"]


def test_crash_after_the_match_or_during_publishing_redoes_the_match(dirs: dict[str, Path]) -> None:
    journal, job = _accept(dirs)
    journal.clear_stage(job.id)
    dry_run_match()(job)  # the staged preset exists, nothing is published yet
    (dirs["presets"] / f".deepdiva-{job.id}.h2p.part").write_bytes(b"half a pre")  # cut short by the kill
    journal.close()
    match = Counting()
    (outcome,) = _restart(dirs, match)
    assert outcome.ok and match.calls == 1
    assert _presets(dirs) == ["snare.h2p"]
    assert read_h2p(dirs["presets"] / "snare.h2p").meta
    assert leftovers(dirs["presets"]) == []


def test_crash_after_publishing_does_not_publish_twice(dirs: dict[str, Path]) -> None:
    journal, job = _accept(dirs)
    journal.clear_stage(job.id)
    published = journal.publish(job.id, dirs["presets"], dry_run_match()(job))
    journal.close()  # kill -9 after the commit, before the journal entry was removed
    assert _presets(dirs) == ["snare.h2p"]
    match = Counting()
    (outcome,) = _restart(dirs, match)
    assert outcome.ok and match.calls == 0
    assert outcome.result["preset"] == published["preset"]
    assert _presets(dirs) == ["snare.h2p"]  # no "snare (2).h2p"
    assert leftovers(dirs["presets"]) == []


def test_crash_after_completing_leaves_nothing_behind(dirs: dict[str, Path]) -> None:
    journal, job = _accept(dirs)
    journal.clear_stage(job.id)
    journal.publish(job.id, dirs["presets"], dry_run_match()(job))
    journal.complete(job.id)  # entry removed, but the crash came before the leftovers went
    (dirs["presets"] / f".deepdiva-{job.id}.h2p.part").touch()
    journal.close()
    match = Counting()
    assert _restart(dirs, match) == []
    assert match.calls == 0
    assert _presets(dirs) == ["snare.h2p"]
    assert leftovers(dirs["presets"]) == []
    assert list((dirs["journal"] / "stage").iterdir()) == []


def test_an_existing_preset_is_never_overwritten(dirs: dict[str, Path]) -> None:
    (dirs["presets"] / "snare.h2p").write_text("the user's own preset")
    journal, _ = _accept(dirs)
    journal.close()
    (outcome,) = _restart(dirs, Counting())
    assert Path(outcome.result["preset"]).name == "snare (2).h2p"
    assert (dirs["presets"] / "snare.h2p").read_text() == "the user's own preset"


def test_buffers_are_journaled_as_wav(dirs: dict[str, Path]) -> None:
    journal = Journal(dirs["journal"])
    queue = JobQueue(journal, maxsize=4)
    job_id = new_job_id()
    samples = (0.3 * np.sin(np.arange(SR) / 10)).astype(np.float32)
    job = Job(job_id, "buffer", "osc", str(journal.data_path(job_id)), "OSC buffer", f"buffer {job_id}",
              str(dirs["presets"]))
    queue.submit(job, prepare=lambda j: journal.save_audio(j.id, samples, SR))
    journal.close()
    stored, rate = sf.read(Path(job.audio), dtype="float32")
    assert rate == SR and np.array_equal(stored, samples)
    (outcome,) = _restart(dirs, Counting())
    assert outcome.ok
    assert not Path(job.audio).exists()  # the buffer goes with its job
    assert _presets(dirs) == [f"buffer {job_id}.h2p"]


def test_unreadable_journal_entries_are_set_aside(dirs: dict[str, Path]) -> None:
    (dirs["journal"] / "jobs").mkdir(parents=True)
    (dirs["journal"] / "jobs" / "000-broken.json").write_text("{not json")
    journal = Journal(dirs["journal"])
    assert journal.pending() == []
    assert (dirs["journal"] / "bad" / "000-broken.json").exists()
    journal.close()


def test_audio_errors_name_the_file(dirs: dict[str, Path]) -> None:
    job = make_job(dirs["audio"] / "missing.wav", dirs["presets"])
    job.stage = str(dirs["journal"] / "stage-x")
    with pytest.raises(AudioError, match="missing.wav"):
        dry_run_match()(job)


def _full_disk(monkeypatch: pytest.MonkeyPatch, mode: str) -> list[str]:
    """Journal writes opened with ``mode`` fail with ENOSPC; returns the paths tried."""
    tried: list[str] = []

    def open_or_full(path, m="r", *args, **kwargs):
        if m == mode:
            tried.append(str(path))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return open(path, m, *args, **kwargs)

    monkeypatch.setattr(journal_module, "open", open_or_full, raising=False)
    return tried


def test_a_full_journal_refuses_a_job_with_a_clear_error(dirs: dict[str, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal(dirs["journal"])
    queue = JobQueue(journal, maxsize=1)
    tried = _full_disk(monkeypatch, "xb")
    with pytest.raises(JournalError, match=r"the journal folder .*journal is full; free space there"):
        queue.submit(make_job(tone(dirs["audio"] / "a.wav"), dirs["presets"]))
    assert tried and list((dirs["journal"] / "jobs").iterdir()) == []  # no half-written record
    assert queue.has_room() and len(queue) == 0

    def write_part(path, *args, **kwargs):  # the header made it, the samples did not
        Path(path).write_bytes(b"RIFF")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(sf, "write", write_part)
    with pytest.raises(JournalError, match="is full"):
        queue.submit(make_job(dirs["audio"] / "a.wav", dirs["presets"]),
                     prepare=lambda j: journal.save_audio(j.id, np.zeros(100, np.float32), SR))
    assert list((dirs["journal"] / "data").iterdir()) == [] and queue.has_room()
    journal.close()


def test_a_passing_failure_waits_when_the_job_may_wait(dirs: dict[str, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs_module, "RETRY_FIRST", 0.1)
    journal = Journal(dirs["journal"])
    queue = JobQueue(journal, maxsize=4)
    fast, calls, seen = dry_run_match(), [], []

    def full_twice(job: Job) -> dict:
        calls.append(job.name)
        if job.name == "osc" or len(calls) <= 2:  # the stage is on a full disk
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), job.stage)
            except OSError:
                raise PresetError("cannot write x.h2p: No space left on device") from None
        return fast(job)

    worker = Worker(queue, full_twice, notify=seen.append, retry=lambda job: job.origin == "drop")
    worker.start()
    queue.submit(make_job(tone(dirs["audio"] / "dropped.wav"), dirs["presets"], origin="drop"))
    wait_until(lambda: seen, 30)
    assert calls == ["dropped"] * 3 and [o.ok for o in seen] == [True]  # reported once, when it finally ran
    assert (worker.completed, worker.failed) == (1, 0)
    assert worker.run_one(make_job(tone(dirs["audio"] / "osc.wav"), dirs["presets"])).error == \
        "cannot write x.h2p: No space left on device"  # a client waiting for a reply is told at once
    worker.stop(30)
    assert (worker.completed, worker.failed) == (1, 1)
    assert list((dirs["journal"] / "jobs").iterdir()) == []
    journal.close()


def test_a_finish_that_fails_for_now_runs_again_without_matching_again(dirs: dict[str, Path],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs_module, "RETRY_FIRST", 0.1)
    journal = Journal(dirs["journal"])
    queue = JobQueue(journal, maxsize=4)
    match, finished, seen = Counting(), [], []

    def finish(job: Job, outcome: Outcome) -> None:
        finished.append(outcome.ok)
        if len(finished) == 1:  # e.g. the done-set in the full journal folder
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    worker = Worker(queue, match, finish=finish, notify=seen.append, retry=lambda job: True)
    worker.start()
    queue.submit(make_job(tone(dirs["audio"] / "pad.wav"), dirs["presets"], origin="drop"))
    wait_until(lambda: seen, 30)
    worker.stop(30)
    assert match.calls == 1 and finished == [True, True] and len(seen) == 1
    assert seen[0].result["normalised"]  # the result of the one match, not a bare recovery
    assert sorted(p.name for p in dirs["presets"].iterdir()) == ["pad.h2p"]
    assert (worker.completed, worker.failed) == (1, 0)
    journal.close()


def test_alternatives_are_published_with_their_own_format(dirs: dict[str, Path]) -> None:
    """An amsynth match stages .bank files: its runners-up are published as '<name> alt 2.bank'."""
    journal = Journal(dirs["journal"])
    stage = journal.clear_stage("job1")
    (stage / "pad.bank").write_text("amSynth\nEOF\n")
    (stage / "pad alt 2.bank").write_text("amSynth\nEOF\n")
    out = journal.publish("job1", dirs["presets"], {"preset": str(stage / "pad.bank"),
                                                     "alternatives": [{"preset": str(stage / "pad alt 2.bank")}]})
    assert Path(out["preset"]).name == "pad.bank"
    assert Path(out["alternatives"][0]["preset"]).name == "pad alt 2.bank"
    journal.close()
