"""Dataset generation: layout, determinism, resume after a kill, workers, silence handling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deepdiva.core.errors import DatasetError
from deepdiva.core.render import RenderSettings
from deepdiva.training import dataset as dataset_module
from deepdiva.training.dataset import Chunk, Dataset, DatasetSpec, generate, is_silent, write_shard

SHORT = RenderSettings(note_length=0.25, render_length=0.25)


def spec(**kw) -> DatasetSpec:
    base = dict(parameter_set="tiny11", render=SHORT, sample_size=8, n_shards=3, seed=7)
    base.update(kw)
    return DatasetSpec(**base)


def shard_arrays(ds: Dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(ds.load_shard(s, "params")), np.asarray(ds.load_shard(s, "audio"))) for s in ds.shards]


def test_layout_and_manifest(tmp_path: Path) -> None:
    ds = generate(tmp_path / "ds", spec())
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["format"] == "deepdiva-dataset/1"
    assert manifest["parameter_ids"] == [33, 34, 35, 86, 87, 97, 98, 131, 132, 148, 149]
    assert len(ds) == 24 and ds.complete
    params, audio = shard_arrays(ds)[0]
    assert params.shape == (8, 11) and params.dtype == np.float32
    assert audio.shape == (8, SHORT.n_samples) and audio.dtype == np.float32
    assert 0.0 <= params.min() and params.max() <= 1.0
    # discrete parameters sit exactly on their steps
    pset = ds.parameter_set
    np.testing.assert_allclose(pset.quantise(params), params, atol=1e-6)
    assert not list((tmp_path / "ds").glob(".*tmp"))


def test_same_seed_same_data_and_other_seed_differs(tmp_path: Path) -> None:
    a = shard_arrays(generate(tmp_path / "a", spec()))
    b = shard_arrays(generate(tmp_path / "b", spec()))
    c = shard_arrays(generate(tmp_path / "c", spec(seed=8)))
    for (pa, xa), (pb, xb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(pa, pb)
        np.testing.assert_array_equal(xa, xb)
    assert not np.array_equal(a[0][0], c[0][0])


def test_two_workers_equal_one_worker(tmp_path: Path) -> None:
    one = shard_arrays(generate(tmp_path / "one", spec(n_shards=4), workers=1))
    two = shard_arrays(generate(tmp_path / "two", spec(n_shards=4), workers=2))
    for (p1, x1), (p2, x2) in zip(one, two, strict=True):
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_array_equal(x1, x2)


def test_rerun_with_other_settings_is_refused(tmp_path: Path) -> None:
    generate(tmp_path / "ds", spec())
    with pytest.raises(DatasetError, match="other settings"):
        generate(tmp_path / "ds", spec(seed=99))


def test_resume_after_kill_gives_identical_shards(tmp_path: Path) -> None:
    """Kill -9 a CLI run mid-way; rerunning completes it with the same shards as an uninterrupted run."""
    args = ["--data-path", str(tmp_path), "--random-parameters", "tiny11", "--sample-size", "16",
            "--nr-data-batches", "12", "--seed", "3", "--note-length-seconds", "0.5",
            "--render-length-seconds", "0.5"]
    cmd = [sys.executable, "-m", "deepdiva", "dataset", "generate", "--folder-name", "killed", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = tmp_path / "killed" / "manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if manifest.exists() and len(json.loads(manifest.read_text())["shards"]) >= 2:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(json.loads(manifest.read_text())["shards"])
    assert done_before < 12, "the run finished before it could be killed; make it longer"
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "deepdiva", "dataset", "generate", "--folder-name", "whole", *args],
                   check=True, stdout=subprocess.DEVNULL)
    killed, whole = Dataset.open(tmp_path / "killed"), Dataset.open(tmp_path / "whole")
    assert killed.complete and len(killed) == len(whole) == 12 * 16
    for (p1, x1), (p2, x2) in zip(shard_arrays(killed), shard_arrays(whole), strict=True):
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_array_equal(x1, x2)
    assert not list((tmp_path / "killed").glob(".*tmp"))


def test_rerun_removes_leftovers_of_a_killed_run(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    generate(folder, spec(n_shards=1))
    (folder / ".manifest.json.k1ll3d.tmp").write_text("{")  # killed inside write_json_atomic
    (folder / ".shard-00001.abc.tmp").mkdir()  # killed while writing shard 1
    (folder / ".shard-00001.abc.tmp" / "audio.npy").write_bytes(b"half")
    ds = generate(folder, spec(n_shards=2))
    assert ds.complete and len(ds) == 16
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "shard-00000", "shard-00001"]


def test_drop_silent_regenerates(tmp_path: Path) -> None:
    # Volume 1 and 2 vary: with both near zero a patch is silent.
    s = spec(parameter_set="97 98", sample_size=64, n_shards=1)
    kept = generate(tmp_path / "keep", s)
    dropped = generate(tmp_path / "drop", DatasetSpec(**{**s.__dict__, "drop_silent": True}))
    audio = np.asarray(dropped.load_shard(dropped.shards[0], "audio"))
    assert dropped.shards[0]["silent"] == int(is_silent(audio).sum())
    assert dropped.shards[0]["silent"] <= kept.shards[0]["silent"]


def test_nominal_level_raises_quiet_notes_as_a_match_would(tmp_path: Path) -> None:
    """--nominal-level: the same patches, each note peaking under -18 dBFS raised to it (louder ones
    as rendered), written so into the manifest."""
    from deepdiva.core.audio import NOMINAL_PEAK_DBFS, peak_dbfs

    s = spec(sample_size=32, n_shards=1, drop_silent=True)
    rendered = generate(tmp_path / "rendered", s)
    nominal = generate(tmp_path / "nominal", DatasetSpec(**{**s.__dict__, "nominal_level": True}))
    (p0, x0), (p1, x1) = shard_arrays(rendered)[0], shard_arrays(nominal)[0]
    np.testing.assert_array_equal(p0, p1)
    peaks = np.array([peak_dbfs(x) for x in x0])
    quiet = peaks < NOMINAL_PEAK_DBFS
    assert quiet.any() and (~quiet).any()
    np.testing.assert_allclose([peak_dbfs(x) for x in x1[quiet]], NOMINAL_PEAK_DBFS, atol=0.01)
    np.testing.assert_array_equal(x1[~quiet], x0[~quiet])
    np.testing.assert_allclose(x1[quiet] / np.abs(x1[quiet]).max(axis=1, keepdims=True),
                               x0[quiet] / np.abs(x0[quiet]).max(axis=1, keepdims=True), atol=1e-6)
    assert Dataset.open(tmp_path / "nominal").spec.nominal_level


def test_save_audio_writes_wavs(tmp_path: Path) -> None:
    import soundfile as sf

    ds = generate(tmp_path / "ds", spec(n_shards=1, sample_size=2, save_audio=True))
    wavs = sorted((ds.shard_dir(ds.shards[0]) / "wav").glob("*.wav"))
    assert len(wavs) == 2
    data, sr = sf.read(wavs[0], dtype="float32")
    assert sr == 44100
    np.testing.assert_array_equal(data, np.asarray(ds.load_shard(ds.shards[0], "audio"))[0])


def test_chunked_shard_equals_one_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deepdiva.core.renderers import make_renderer

    monkeypatch.setattr(dataset_module, "RENDER_CHUNK", 3)  # 8 rows: chunks of 3, 3, 2
    ds = generate(tmp_path / "ds", spec(n_shards=1, save_audio=True))
    params, audio = shard_arrays(ds)[0]
    whole = make_renderer("builtin", ds.parameter_set, SHORT).render(params)
    np.testing.assert_array_equal(audio, whole)
    assert len(list((ds.shard_dir(ds.shards[0]) / "wav").glob("*.wav"))) == 8


def test_write_shard_refuses_wrong_row_count(tmp_path: Path) -> None:
    chunk = Chunk(np.zeros((4, 11), np.float32), np.zeros((4, 100), np.float32))
    with pytest.raises(DatasetError, match="expected 6 rows"):
        write_shard(tmp_path, 0, [chunk], 6, 44100, False)
    with pytest.raises(DatasetError, match="expected 6 rows"):
        write_shard(tmp_path, 0, [chunk, chunk], 6, 44100, False)
    with pytest.raises(DatasetError, match="expected 4 rows"):
        write_shard(tmp_path, 0, [chunk, chunk], 4, 44100, False)  # a surplus chunk is an error too
    assert list(tmp_path.iterdir()) == []  # no shard, no temp folder left behind
    result = write_shard(tmp_path, 0, [chunk, chunk], 8, 44100, False)
    assert (result.name, result.n) == ("shard-00000", 8)
    assert np.load(tmp_path / "shard-00000" / "audio.npy").shape == (8, 100)


def test_bad_specs() -> None:
    with pytest.raises(DatasetError):
        spec(sample_size=0)
    with pytest.raises(DatasetError, match="base-preset"):
        spec(base_preset="x.h2p")
    with pytest.raises(DatasetError, match="path separator"):
        spec(file_prefix="a/b")


def test_open_rejects_non_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a deepdiva dataset"):
        Dataset.open(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        Dataset.open(tmp_path / "nope")


@pytest.mark.slow
def test_ray_local_cluster_equals_local(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    local = shard_arrays(generate(tmp_path / "local", spec()))
    on_ray = shard_arrays(generate(tmp_path / "ray", spec(), ray_address="local"))
    for (p1, x1), (p2, x2) in zip(local, on_ray, strict=True):
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_array_equal(x1, x2)


def test_rows_carry_the_note_they_were_played_at(tmp_path: Path) -> None:
    ds = generate(tmp_path / "notes", spec(pitch_range=(40, 70), n_shards=2, sample_size=16))
    from deepdiva.core.pitch import detect_pitch

    for shard in ds.shards:
        notes = ds.played_notes(shard)
        assert notes.shape == (16,) and notes.dtype == np.float32
        assert notes.min() >= 40 and notes.max() <= 70 and np.all(notes == np.round(notes))
    assert len(np.unique(np.concatenate([ds.played_notes(s) for s in ds.shards]))) > 5
    # a plain saw of the base preset played at a row's note is heard there
    pset = ds.parameter_set
    from deepdiva.core.renderers import make_renderer

    renderer = make_renderer("builtin", pset, RenderSettings())
    base = pset.defaults_normalised()[None, :]
    for key in (41.0, 57.0, 69.0):
        assert detect_pitch(renderer.render(base, key)[0], 44100).midi == key
    one = generate(tmp_path / "one", spec(n_shards=1))
    np.testing.assert_array_equal(one.played_notes(one.shards[0]), np.full(8, 48, np.float32))


def test_augmented_features_only_dataset_is_deterministic_and_restates_labels(tmp_path: Path) -> None:
    from deepdiva.training.augment import AugmentConfig
    from deepdiva.training.features_cache import CachedFeatures

    kw = dict(parameter_set="medium33", render=RenderSettings(), sample_size=40, n_shards=2, seed=3,
              pitch_range=(36, 84), augment=AugmentConfig().to_dict(), features=("mel_db_pitch",),
              keep_audio=False, prior="mixed")
    one = generate(tmp_path / "a", DatasetSpec(**kw))
    two = generate(tmp_path / "b", DatasetSpec(**kw), workers=2)
    for name in ("params", "notes", "pitch", "mel_db_pitch"):
        for s1, s2 in zip(one.shards, two.shards, strict=True):
            np.testing.assert_array_equal(one.load_shard(s1, name), two.load_shard(s2, name))
    shard = one.shard_dir(one.shards[0])
    assert not (shard / "audio.npy").exists()
    assert np.load(shard / "mel_db_pitch.npy").dtype == np.uint8
    notes = one.played_notes(one.shards[0])
    assert np.any(notes != np.round(notes))  # some notes played slightly out of tune
    store = CachedFeatures(one, "mel_db_pitch")
    x, y = store.get(np.arange(10))
    assert x.shape == (10, 128, 173, 2) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert store.exact.shape == (80,) and store.exact.mean() > 0.5
    other = generate(tmp_path / "c", DatasetSpec(**{**kw, "seed": 4}))
    assert not np.array_equal(one.load_shard(one.shards[0], "mel_db_pitch"),
                              other.load_shard(other.shards[0], "mel_db_pitch"))


def test_no_audio_needs_a_feature() -> None:
    with pytest.raises(DatasetError, match="--no-audio needs --feature"):
        spec(keep_audio=False)
    with pytest.raises(DatasetError, match="pitch-range"):
        spec(pitch_range=(80, 40))
