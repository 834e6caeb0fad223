"""deepdiva build-model: the recipe, the state file, and a build killed in every stage that ends
exactly as an uninterrupted one (tiny: builtin synth, 200 patches, 2 epochs of 2 batches)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from deepdiva.cli import cli
from deepdiva.core.errors import ConfigError
from deepdiva.training.build import STAGE_NAMES, BuildConfig, eta, eval_data_specs, train_data_spec
from deepdiva.training.train import committed_checkpoint

TINY = ["--samples", "200", "--shard-size", "100", "--eval-samples", "16", "--epochs", "2",
        "--epoch-size", "128", "--loss-weights", "equal"]
NAME = "diva-medium33"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


# --------------------------------------------------------------------------- fast: settings, recipe, state

def test_defaults_are_the_shipped_models_recipe() -> None:
    cfg = BuildConfig()
    train = train_data_spec(cfg)
    assert (train.sample_size, train.n_shards, train.seed, train.pitch_range) == (5000, 48, 3, (36, 84))
    assert (train.prior, train.features, train.keep_audio, train.drop_silent) == ("mixed", ("mel_db_pitch",), False, True)
    assert train.augment is not None
    evals = eval_data_specs(cfg)
    assert list(evals) == ["eval-notes", "eval-medium33"]
    notes, one = evals["eval-notes"], evals["eval-medium33"]
    assert (notes.seed, notes.pitch_range, notes.sample_size, notes.prior) == (1002, (36, 84), 1000, "uniform")
    assert (one.seed, one.pitch_range, one.render.midi_pitch) == (1001, None, 48)
    assert (cfg.model, cfg.epochs, cfg.epoch_size, cfg.loss, cfg.loss_weights, cfg.decode) == (
        "cnn3", 10, 40_000, "mae", "sensitivity", "median")


def test_samples_round_up_to_whole_shards_and_one_note_stays_in_range() -> None:
    spec = train_data_spec(BuildConfig(samples=1001, shard_size=500))
    assert (spec.sample_size, spec.n_shards) == (500, 3)
    assert train_data_spec(BuildConfig(samples=30)).n_shards == 1
    assert eval_data_specs(BuildConfig(pitch_range=(60, 72)))["eval-medium33"].render.midi_pitch == 60


@pytest.mark.parametrize(("settings", "message"), [
    ({"renderer": "vst"}, "needs --plugin-path"),
    ({"name": "a/b"}, "--name"),
    ({"samples": 0}, "--samples"),
    ({"model": "big"}, "unknown model"),
])
def test_bad_settings_are_refused_before_anything_runs(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BuildConfig(**settings)


def test_a_folder_that_is_no_build_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["build-model", *TINY, "--out", str(tmp_path), "--restart"])
    assert result.exit_code == 2 and "not empty" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_restart_removes_what_the_build_made_and_nothing_else(tmp_path: Path) -> None:
    from deepdiva.training.build import Build

    old = Build(tmp_path, BuildConfig(samples=10, name="old"))
    old.open()
    for made in (tmp_path / "data" / "train", tmp_path / "runs" / "old", tmp_path / "eval"):
        made.mkdir(parents=True)
    (tmp_path / "old.onnx").write_text("model")
    (tmp_path / ".build.json.x1.tmp").write_text("a kill left this")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"other settings \(name, samples\)"):
        Build(tmp_path, BuildConfig(samples=20)).open()
    new = Build(tmp_path, BuildConfig(samples=20))
    new.open(restart=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build.json", "notes.txt"]
    assert new.state["settings"]["samples"] == 20 and new.state["stages"] == {}


def test_eta() -> None:
    assert eta(10.0, 2, 3) == "ETA 15 s"
    assert eta(600.0, 1, 2) == "ETA 20 min"
    assert eta(5.0, 0, 3) == ""


def test_committed_checkpoint_is_the_one_history_records(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / "last.keras").write_text("epoch 1")
    (ckpt / "last-0002.keras").write_text("epoch 2")  # saved, killed before history.json recorded it
    assert committed_checkpoint(tmp_path, 1).read_text() == "epoch 1"
    assert not (ckpt / "last-0002.keras").exists()
    (ckpt / "last-0002.keras").write_text("epoch 2")  # recorded, killed before the rename
    (ckpt / ".last-0003.123.tmp.keras").write_text("half")
    assert committed_checkpoint(tmp_path, 2).read_text() == "epoch 2"
    assert sorted(p.name for p in ckpt.iterdir()) == ["last.keras"]


AMSYNTH = os.environ.get("DEEPDIVA_AMSYNTH_VST", "/usr/lib/vst/amsynth_vst.so")


@pytest.mark.skipif(not Path(AMSYNTH).exists(), reason=f"amsynth VST not found at {AMSYNTH}")
def test_a_vst_build_can_render_after_tensorflow_has_loaded() -> None:
    """A resumed build may export (TensorFlow) and then evaluate (the plugin) in one process."""
    pytest.importorskip("dawdreamer")
    script = (
        "import numpy as np\n"
        "from deepdiva.training.build import _plugin_host_first\n"
        "_plugin_host_first('vst')\n"
        "import tensorflow\n"
        "from deepdiva.core.profile import load_profile\n"
        "from deepdiva.core.render import RenderSettings\n"
        "from deepdiva.core.renderers import make_renderer\n"
        "pset = load_profile('amsynth').parameter_set('small')\n"
        f"r = make_renderer('vst', pset, RenderSettings(), plugin_path={AMSYNTH!r})\n"
        "print(r.render(pset.defaults_normalised()[None, :].astype(np.float32), np.array([48.0])).shape)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


# --------------------------------------------------------------------------- slow: whole builds

def _command(folder: Path) -> list[str]:
    return [sys.executable, "-m", "deepdiva", "build-model", *TINY, "--out", str(folder)]


def _state(folder: Path) -> dict:
    try:
        return json.loads((folder / "build.json").read_text())
    except (OSError, ValueError):
        return {}


def _stage(folder: Path, name: str) -> dict:
    return _state(folder).get("stages", {}).get(name, {})


def _running(name: str, ready: Callable[[Path], bool] = lambda folder: True) -> Callable[[Path], bool]:
    """Kill condition: stage ``name`` started, not done, and ``ready`` (some of its work is on disk)."""
    return lambda folder: _stage(folder, name).get("done") is False and ready(folder)


def _shards(folder: Path) -> int:
    try:
        return len(json.loads((folder / "data" / "train" / "manifest.json").read_text())["shards"])
    except (OSError, ValueError):
        return 0


def _epochs(folder: Path) -> int:
    try:
        return len(json.loads((folder / "runs" / NAME / "history.json").read_text())["epochs"])
    except (OSError, ValueError):
        return 0


KILL_WHEN = {  # mid-stage, with part of the stage's work already written where it has parts
    "eval-data": _running("eval-data"),
    "train-data": _running("train-data", lambda f: _shards(f) >= 1),
    "train": _running("train", lambda f: _epochs(f) >= 1),
    "export": _running("export"),
    "evaluate": _running("evaluate"),
}


def _results(folder: Path) -> dict:
    """Each stage's done flag and result: what must not depend on kills (times may)."""
    return {name: (s["done"], s["result"]) for name, s in _state(folder)["stages"].items()}


def _onnx_outputs(folder: Path) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(folder / f"{NAME}.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(7).random((4, *session.get_inputs()[0].shape[1:]), dtype=np.float32)
    return np.concatenate([o.ravel() for o in session.run(None, {session.get_inputs()[0].name: x})])


def _onnx_weights(folder: Path) -> dict[str, np.ndarray]:
    """The layers' weights in the ONNX file by name (the decoding's folded constants left out)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(folder / f"{NAME}.onnx")).graph
    return {i.name: numpy_helper.to_array(i).astype(np.float64).ravel()
            for i in sorted(graph.initializer, key=lambda i: i.name)
            if i.name.startswith("cnn3_1/") and "/params_1/" not in i.name}


def _train_arrays(folder: Path) -> list[np.ndarray]:
    return [np.load(p) for p in sorted((folder / "data" / "train").glob("shard-*/*.npy"))]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, float]:
    folder = tmp_path_factory.mktemp("build") / "uninterrupted"
    started = time.monotonic()
    done = subprocess.run(_command(folder), capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr
    return folder, time.monotonic() - started


@pytest.mark.slow
def test_a_build_runs_every_stage_and_says_how_to_use_the_model(uninterrupted: tuple[Path, float]) -> None:
    folder, seconds = uninterrupted
    print(f"uninterrupted tiny build: {seconds:.1f} s")
    state = _state(folder)
    assert list(state["stages"]) == list(STAGE_NAMES)
    assert all(s["done"] for s in state["stages"].values())
    assert state["stages"]["train"]["result"]["epochs"] == 2
    card = json.loads((folder / f"{NAME}.json").read_text())
    assert set(card["metrics"]["evaluations"]) == {"eval-notes", "eval-medium33"}


@pytest.mark.slow
def test_a_rerun_of_a_finished_build_does_nothing(uninterrupted: tuple[Path, float]) -> None:
    folder, _ = uninterrupted
    before = (folder / "build.json").read_bytes(), (folder / f"{NAME}.onnx").stat().st_mtime_ns
    result = CliRunner().invoke(cli, ["build-model", *TINY, "--out", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"model: {(folder / NAME).resolve()}.onnx" in result.output
    assert f"deepdiva serve --model {(folder / NAME).resolve()}.onnx" in result.output
    assert result.output.count("done earlier") == len(STAGE_NAMES)
    assert ((folder / "build.json").read_bytes(), (folder / f"{NAME}.onnx").stat().st_mtime_ns) == before


@pytest.mark.slow
def test_changed_settings_are_refused(uninterrupted: tuple[Path, float]) -> None:
    folder, _ = uninterrupted
    before = (folder / "build.json").read_bytes()
    result = CliRunner().invoke(cli, ["build-model", *TINY, "--epochs", "3", "--seed", "1", "--out", str(folder)])
    assert result.exit_code == 2
    assert "other settings (epochs, seed)" in result.output and "--restart" in result.output
    assert (folder / "build.json").read_bytes() == before


@pytest.mark.slow
def test_a_build_killed_in_every_stage_ends_as_an_uninterrupted_one(uninterrupted: tuple[Path, float],
                                                                      tmp_path: Path) -> None:
    reference, _ = uninterrupted
    folder = tmp_path / "killed"
    started = time.monotonic()
    for stage, when in KILL_WHEN.items():
        t0 = time.monotonic()
        process = subprocess.Popen(_command(folder), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        try:
            while not when(folder):
                assert process.poll() is None, f"the build ended before it could be killed in {stage}"
                time.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        assert _stage(folder, stage).get("done") is False, f"the kill missed {stage}"
        print(f"killed in {stage} after {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    done = subprocess.run(_command(folder), capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stderr
    print(f"last run {time.monotonic() - t0:.1f} s; whole killed build {time.monotonic() - started:.1f} s")

    assert _results(folder) == _results(reference)  # incl. the trained weights' sha256 and every evaluation
    # tf2onnx names folded constants differently in every export, so the files differ, not what they hold
    assert _onnx_weights(folder).keys() == _onnx_weights(reference).keys()
    np.testing.assert_array_equal(np.concatenate(list(_onnx_weights(folder).values())),
                                  np.concatenate(list(_onnx_weights(reference).values())))
    np.testing.assert_array_equal(_onnx_outputs(folder), _onnx_outputs(reference))
    for ours, theirs in zip(_train_arrays(folder), _train_arrays(reference), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    history = [json.loads((f / "runs" / NAME / "history.json").read_text()) for f in (folder, reference)]
    assert [{k: v for k, v in e.items() if k not in ("seconds", "session")} for e in history[0]["epochs"]] == \
        [{k: v for k, v in e.items() if k not in ("seconds", "session")} for e in history[1]["epochs"]]


@pytest.mark.slow
def test_on_a_ray_cluster_the_data_stages_render_the_same_datasets(uninterrupted: tuple[Path, float],
                                                                    tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from deepdiva.training.build import STAGES, Build

    settings = {"samples": 200, "shard_size": 100, "eval_samples": 16, "epochs": 2, "epoch_size": 128,
                "loss_weights": "equal"}
    build = Build(tmp_path / "ray", BuildConfig(**settings), ray_address="local")
    build.open()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)  # once, not once per dataset
    try:
        results = {stage.name: stage.run(build, lambda text: None) for stage in STAGES[:2]}
    finally:
        ray.shutdown()
    reference, _ = uninterrupted
    assert results == {name: result for name, (_, result) in _results(reference).items() if name in results}
    for name in ("train", "eval-notes", "eval-medium33"):
        ours, theirs = (sorted((f / "data" / name).glob("shard-*/*.npy")) for f in (build.folder, reference))
        assert [p.name for p in ours] == [p.name for p in theirs]
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(np.load(a), np.load(b))
