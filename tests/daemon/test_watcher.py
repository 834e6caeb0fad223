"""The drop folder with a real watchdog observer: complete files only, moves, idempotence, bursts."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from daemon_helpers import wait_until as wait_for
from daemon_helpers import write_sine

from deepdiva.core.errors import PresetError
from deepdiva.daemon import jobs, journal
from deepdiva.daemon.config import build_config
from deepdiva.daemon.jobs import Job, Outcome
from deepdiva.daemon.service import Service, dry_run_match
from deepdiva.daemon.watcher import DONE, FAILED, claim, is_candidate_name, move_out

SR = 44100
AUDIO_NAMES = (".wav", ".flac", ".aiff")


def tone_bytes(tmp: Path, freq: float, seconds: float = 0.3) -> bytes:
    path = write_sine(tmp / f".tone-{freq}.wav", freq, seconds)
    data = path.read_bytes()
    path.unlink()
    return data


class Drop:
    """A running service (drop folder only) in a temp folder."""

    def __init__(self, root: Path, **overrides) -> None:
        self.root = root
        self.drop = root / "drop"
        self.presets = root / "presets"
        self.journal = root / "journal"
        self.outcomes: list[Outcome] = []
        self.overrides = {"drop.folder": str(self.drop), "presets.folder": str(self.presets),
                          "queue.journal": str(self.journal), "osc.enabled": False, "midi.enabled": False,
                          "drop.settle_seconds": 0.3, "drop.rescan_seconds": 2.0, **overrides}
        self.service: Service | None = None

    def start(self, match: Callable[[Job], dict] | None = None) -> Drop:
        self.service = Service(build_config({}, self.overrides), match=match or dry_run_match())
        self.service.listeners.append(self.outcomes.append)
        self.service.start()
        return self

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()

    def waiting(self) -> list[str]:
        return sorted(p.name for p in self.drop.iterdir() if p.is_file())

    def presets_named(self) -> list[str]:
        return sorted(p.name for p in self.presets.glob("*.h2p")) if self.presets.exists() else []

    def folder(self, name: str) -> list[str]:
        return sorted(p.name for p in (self.drop / name).iterdir())

    def settled(self) -> bool:
        svc = self.service
        assert svc is not None and svc.queue is not None and svc.watcher is not None
        return (not any(n for n in self.waiting() if is_candidate_name(n)) and len(svc.queue) == 0
                and svc.worker.current is None and svc.watcher.waiting == 0
                and svc.worker.completed + svc.worker.failed == len(self.outcomes))  # every outcome told


@pytest.fixture()
def drop(tmp_path: Path) -> Iterator[Drop]:
    d = Drop(tmp_path)
    yield d
    d.stop()


def test_candidate_names() -> None:
    assert is_candidate_name("kick.wav") and is_candidate_name("Kick 01.WAV")
    for name in (".hidden.wav", "kick.wav.part", "kick.wav.crdownload", "x.tmp", "~$doc.wav", "kick.wav~",
                 "Thumbs.db", "desktop.ini", "kick.download"):
        assert not is_candidate_name(name), name


def test_file_written_in_place_is_matched_and_moved(drop: Drop) -> None:
    drop.start()
    (drop.drop / "kick.wav").write_bytes(tone_bytes(drop.root, 110))
    wait_for(lambda: drop.folder(DONE) == ["kick.wav"] and drop.waiting() == [], what="kick.wav moved to done/")
    assert drop.presets_named() == ["kick.h2p"]


def test_partial_download_is_matched_after_the_rename(drop: Drop) -> None:
    drop.start()
    part = drop.drop / "pad.wav.part"
    data = tone_bytes(drop.root, 330)
    with open(part, "wb") as f:  # a slow download: half now, the rest later
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(0.8)  # longer than settle_seconds: a .part file must still be left alone
        f.write(data[len(data) // 2:])
    assert drop.presets_named() == [] and drop.waiting() == ["pad.wav.part"]
    os.replace(part, drop.drop / "pad.wav")
    wait_for(lambda: drop.folder(DONE) == ["pad.wav"], what="pad.wav in done/")
    assert drop.presets_named() == ["pad.h2p"]


def test_files_present_at_start_are_processed_hidden_ones_ignored(drop: Drop) -> None:
    drop.drop.mkdir(parents=True)
    for i in range(3):
        (drop.drop / f"old{i}.wav").write_bytes(tone_bytes(drop.root, 200 + 50 * i))
    (drop.drop / ".secret.wav").write_bytes(tone_bytes(drop.root, 500))
    (drop.drop / "song.wav.crdownload").write_bytes(b"partial")
    drop.start()
    wait_for(lambda: len(drop.folder(DONE)) == 3 and len(drop.waiting()) == 2, what="3 files moved to done/")
    assert drop.presets_named() == ["old0.h2p", "old1.h2p", "old2.h2p"]
    assert drop.waiting() == [".secret.wav", "song.wav.crdownload"]


def test_same_content_is_never_matched_twice_even_after_a_restart(tmp_path: Path) -> None:
    data = tone_bytes(tmp_path, 440)
    first = Drop(tmp_path).start()
    try:
        (first.drop / "a.wav").write_bytes(data)
        wait_for(lambda: first.folder(DONE) == ["a.wav"], what="a.wav done")
    finally:
        first.stop()
    second = Drop(tmp_path).start()  # the done-set is persisted
    try:
        (second.drop / "copy of a.wav").write_bytes(data)
        wait_for(lambda: "copy of a.wav.txt" in second.folder(DONE) and second.waiting() == [],
                 what="the duplicate in done/")
        assert second.presets_named() == ["a.h2p"]
        note = (second.drop / DONE / "copy of a.wav.txt").read_text()
        assert "already matched" in note and "a.wav" in note
        assert second.outcomes == []
    finally:
        second.stop()


def test_bad_files_go_to_failed_with_a_reason_and_names_never_clash(drop: Drop) -> None:
    drop.start()
    for round_ in range(2):
        (drop.drop / "bad.wav").write_bytes(b"RIFF\x00\x00garbage" * (round_ + 1))
        wait_for(lambda: not (drop.drop / "bad.wav").exists(), what="bad.wav moved")
    (drop.drop / "notes.txt").write_text("not audio")
    # wait for the exact listing: a reason file is written atomically, so a count alone can catch
    # its temporary name
    expected = ["bad (2).wav", "bad (2).wav.txt", "bad.wav", "bad.wav.txt", "notes.txt", "notes.txt.txt"]
    wait_for(lambda: drop.folder(FAILED) == expected, what="3 failures + reasons")
    assert "not a readable audio file" in (drop.drop / FAILED / "bad.wav.txt").read_text()
    assert "not an audio file" in (drop.drop / FAILED / "notes.txt.txt").read_text()
    assert drop.presets_named() == []


def test_claim_reuses_a_link_left_by_a_crash(tmp_path: Path) -> None:
    src = tmp_path / "x.wav"
    src.write_bytes(b"x")
    done = tmp_path / "done"
    first = claim(src, done)  # crash after the link, before the unlink
    assert claim(src, done) == first
    assert move_out(src, done) == first and not src.exists()
    assert sorted(p.name for p in done.iterdir()) == ["x.wav"]


def test_burst_of_200_files_with_20_malformed(drop: Drop) -> None:
    drop.start()
    began = time.monotonic()
    malformed = {}
    for i in range(200):
        if i % 10 == 3:
            kind = i // 10 % 5
            name = f"bad{i:03d}" + (".txt" if kind == 4 else ".wav")
            content = [b"", b"RIFF" + bytes(40), os.urandom(2000), _silent_wav(drop.root), b"text"][kind]
            malformed[name] = content
            (drop.drop / name).write_bytes(content)
        else:
            (drop.drop / f"good{i:03d}{AUDIO_NAMES[i % 3]}").write_bytes(_tone_file(drop.root, i))
    wait_for(lambda: len(drop.folder(DONE)) == 180 and len(drop.folder(FAILED)) == 40 and drop.settled(),
             timeout=240, what="180 done and 20 failed")
    elapsed = time.monotonic() - began
    assert drop.presets_named() == sorted(f"good{i:03d}.h2p" for i in range(200) if i % 10 != 3)
    failed = drop.folder(FAILED)
    for name in malformed:
        assert name in failed and f"{name}.txt" in failed
        assert (drop.drop / FAILED / f"{name}.txt").read_text().strip()
    assert drop.waiting() == []
    assert drop.service.worker.alive
    print(f"200-file burst: {elapsed:.1f} s")


def _tone_file(tmp: Path, i: int) -> bytes:
    fmt = {0: "WAV", 1: "FLAC", 2: "AIFF"}[i % 3]
    path = tmp / f".t{i}.{fmt.lower()}"
    t = np.arange(int(0.25 * SR)) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * (100 + 7 * i) * t)).astype(np.float32), SR, format=fmt)
    data = path.read_bytes()
    path.unlink()
    return data


def _silent_wav(tmp: Path) -> bytes:
    path = tmp / ".silent.wav"
    sf.write(path, np.zeros(SR // 4, dtype=np.float32), SR)
    data = path.read_bytes()
    path.unlink()
    return data


def test_any_name_the_os_allows_is_matched_or_failed_with_its_reason(drop: Drop) -> None:
    drop.drop.mkdir(parents=True)
    latin1, broken = os.fsdecode(b"caf\xe9.wav"), os.fsdecode(b"bad\xff.wav")
    long_good, long_bad = "g" * 249 + ".wav", "音" * 83 + ".wav"  # 253 bytes each: legal, at the limit
    try:
        (drop.drop / latin1).write_bytes(tone_bytes(drop.root, 300))
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    (drop.drop / long_good).write_bytes(tone_bytes(drop.root, 350))
    (drop.drop / broken).write_bytes(b"RIFF not audio")
    (drop.drop / long_bad).write_bytes(b"RIFF not audio either")
    drop.start()
    wait_for(lambda: len(drop.folder(DONE)) == 2 and len(drop.folder(FAILED)) == 4 and drop.settled(),
             what="2 done, 2 failed with reasons")
    assert drop.waiting() == [] and drop.folder(DONE) == sorted([latin1, long_good])
    assert drop.presets_named() == sorted(["caf_xe9.h2p", "g" * 100 + ".h2p"])
    cut = "音" * 82 + ".wav"  # room for "<name>.txt" beside it
    assert drop.folder(FAILED) == sorted([broken, broken + ".txt", cut, cut + ".txt"])
    note = (drop.drop / FAILED / (broken + ".txt")).read_text(encoding="utf-8")
    assert "not a readable audio file" in note and "file: bad\\xff.wav" in note
    assert f"file: {long_bad}" in (drop.drop / FAILED / (cut + ".txt")).read_text(encoding="utf-8")
    assert all(len(os.fsencode(n)) <= 255 for n in drop.folder(FAILED))


def test_a_writer_that_reopens_the_file_for_every_chunk_makes_one_job(tmp_path: Path) -> None:
    data = tone_bytes(tmp_path, 260, seconds=1.0)
    drop = Drop(tmp_path, **{"drop.settle_seconds": 1.2}).start()  # longer than the writer's pauses
    try:
        target = drop.drop / "export.wav"
        chunks = np.array_split(np.frombuffer(data, np.uint8), 6)
        for i, chunk in enumerate(chunks):  # as DAWs and copy tools do: open, write, close, wait
            with open(target, "ab") as f:
                f.write(chunk.tobytes())
            if i < len(chunks) - 1:
                time.sleep(0.5)
        wait_for(lambda: drop.folder(DONE) == ["export.wav"] and drop.settled(), what="export.wav done")
        time.sleep(0.5)
        assert len(drop.outcomes) == 1 and drop.outcomes[0].ok
        assert (drop.drop / DONE / "export.wav").read_bytes() == data  # the whole file, matched once
        assert drop.folder(FAILED) == [] and drop.presets_named() == ["export.h2p"]
    finally:
        drop.stop()


def test_a_full_journal_keeps_the_file_and_tries_again_until_space_returns(
        drop: Drop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "RETRY_FIRST", 0.2)
    full, tries = threading.Event(), []
    full.set()

    def open_or_full(path, mode="r", *args, **kwargs):
        if mode == "xb" and full.is_set():  # a job record: the disk is full
            tries.append(path)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(journal, "open", open_or_full, raising=False)
    drop.start()
    (drop.drop / "kick.wav").write_bytes(tone_bytes(drop.root, 110))
    wait_for(lambda: len(tries) >= 3, what="three tries while the journal is full")
    assert drop.waiting() == ["kick.wav"] and drop.folder(FAILED) == [] and drop.outcomes == []
    assert list((drop.journal / "jobs").iterdir()) == []  # nothing half-written is left to restore
    full.clear()  # space returns: no restart needed
    wait_for(lambda: drop.folder(DONE) == ["kick.wav"] and drop.settled(), what="kick.wav done")
    assert len(drop.outcomes) == 1 and drop.presets_named() == ["kick.h2p"]
    assert drop.service.worker.completed == 1 and drop.service.worker.failed == 0


def test_a_disk_full_while_matching_keeps_the_file_until_space_returns(
        drop: Drop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "RETRY_FIRST", 0.2)
    fast, calls = dry_run_match(), []

    def full_twice(job: Job) -> dict:
        calls.append(job.id)
        if len(calls) <= 2:  # writing the preset into the stage (journal folder) fails
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), job.stage)
            except OSError:
                raise PresetError("cannot write the preset: No space left on device") from None
        return fast(job)

    drop.start(full_twice)
    (drop.drop / "pad.wav").write_bytes(tone_bytes(drop.root, 440))
    wait_for(lambda: drop.folder(DONE) == ["pad.wav"] and drop.settled(), what="pad.wav done")
    assert len(calls) == 3 and len(set(calls)) == 1  # one job, run again: not a new job per try
    assert len(drop.outcomes) == 1 and drop.outcomes[0].ok and drop.folder(FAILED) == []
    assert drop.presets_named() == ["pad.h2p"]
    assert (drop.service.worker.completed, drop.service.worker.failed) == (1, 0)
