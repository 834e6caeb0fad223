"""Feature cache -> training run -> resume -> ONNX export -> runtime, on a tiny tone dataset."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from deepdiva.cli import cli
from deepdiva.core.atomic import write_json_atomic
from deepdiva.core.errors import DatasetError, ModelError
from deepdiva.core.features import FeatureConfig
from deepdiva.training.dataset import (
    Chunk,
    Dataset,
    DatasetSpec,
    draw_patches,
    manifest_path,
    prepare,
    write_shard,
)
from deepdiva.training.features_cache import (
    CachedFeatures,
    cache_features,
    feature_path,
    make_split,
    scaler_for,
    split_for,
)

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

VAL = 0.25  # 8 of 32 patches


def tone_dataset(folder: Path, n_shards: int = 2, n: int = 16, seed: int = 0) -> Dataset:
    """A dataset of 2 s decaying sines whose pitch, level and decay follow three parameters.

    Written with the dataset module's own writers, without a renderer, so it takes milliseconds.
    """
    spec = DatasetSpec(parameter_set="tiny11", sample_size=n, n_shards=n_shards, seed=seed)
    manifest = prepare(folder, spec)
    pset = spec.resolve_set()
    sr = spec.render.sample_rate
    t = np.arange(spec.render.n_samples) / sr
    for i in range(n_shards):
        params = draw_patches(pset, np.random.default_rng([seed, i]), n)
        freq = 100 * 2 ** (4 * params[:, :1])
        level = 0.05 + 0.9 * params[:, 1:2]
        decay = np.exp(-t[None] * (1 + 8 * params[:, 2:3]))
        audio = (level * decay * np.sin(2 * np.pi * freq * t[None])).astype(np.float32)
        manifest["shards"].append(asdict(write_shard(folder, i, [Chunk(params, audio)], n, sr, False)))
    write_json_atomic(manifest_path(folder), manifest)
    return Dataset.open(folder)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Dataset:
    ds = tone_dataset(tmp_path_factory.mktemp("data") / "tones")
    for name in ("mel_db", "mfcc"):
        cache_features(ds, name, validation_split=VAL)
    return ds


@pytest.fixture(scope="module")
def cnn2_run(dataset, tmp_path_factory) -> Path:
    from deepdiva.training.train import TrainConfig, train

    cfg = TrainConfig(str(dataset.folder), model="cnn2", epochs=2, batch_size=8, save_freq=1,
                      validation_split=VAL, runs_dir=str(tmp_path_factory.mktemp("runs")), name="cnn2-test")
    return train(cfg).run_dir


# --------------------------------------------------------------------------- split, cache

def test_split_is_deterministic_and_disjoint() -> None:
    a, b = make_split(100, 0.1, seed=3), make_split(100, 0.1, seed=3)
    np.testing.assert_array_equal(a.val, b.val)
    assert a.val.size == 10 and a.train.size == 90
    assert not set(a.val) & set(a.train)
    assert make_split(100, 0.1, seed=4).record()["val_sha1"] != a.record()["val_sha1"]
    assert make_split(5, 0.0).val.size == 0
    with pytest.raises(DatasetError):
        make_split(10, 1.0)


def test_feature_cache_skips_done_shards_and_recomputes_missing(tmp_path: Path) -> None:
    ds = tone_dataset(tmp_path / "ds")
    first = cache_features(ds, "mel")
    assert (first.done, first.skipped, first.shape) == (2, 0, (128, 173, 1))
    mel = np.load(feature_path(ds, ds.shards[1], "mel"))
    assert mel.shape == (16, 128, 173, 1) and mel.dtype == np.float32
    assert cache_features(ds, "mel").skipped == 2
    feature_path(ds, ds.shards[1], "mel").unlink()
    (ds.shard_dir(ds.shards[0]) / ".mel.npy.abc.tmp").write_bytes(b"half")  # a killed run's leftover
    again = cache_features(ds, "mel")
    assert (again.done, again.skipped) == (1, 1)
    np.testing.assert_array_equal(np.load(feature_path(ds, ds.shards[1], "mel")), mel)
    assert not list(ds.folder.rglob("*.tmp"))
    other = FeatureConfig(fmax=12000.0)
    with pytest.raises(DatasetError, match="other settings"):
        cache_features(ds, "mel", other)
    assert cache_features(ds, "mel", other, overwrite=True).done == 2


def test_mfcc_scaler_is_fitted_on_training_rows_only(dataset: Dataset) -> None:
    split = split_for(dataset, VAL)
    data = json.loads((dataset.folder / "mfcc_scaler.json").read_text())
    assert data["fitted_on"] == split.record()
    mfcc = dataset.load_all("mfcc")
    np.testing.assert_allclose(np.asarray(data["min"]).reshape(87, 13), mfcc[split.train].min(axis=0), rtol=1e-6)
    assert not np.allclose(np.asarray(data["min"]).reshape(87, 13), mfcc.min(axis=0))
    other = make_split(len(dataset), 0.5, seed=1)
    assert scaler_for(dataset, other)["fitted_on"] == other.record()  # refitted for another split
    assert scaler_for(dataset, split)["fitted_on"] == split.record()


def test_cached_features_read_rows_across_shards(dataset: Dataset) -> None:
    store = CachedFeatures(dataset, "mel_db")
    x, y = store.get(np.array([20, 3, 17]))
    all_x, all_y = dataset.load_all("mel_db"), dataset.load_all("params")
    np.testing.assert_array_equal(x, all_x[[3, 17, 20]])
    np.testing.assert_array_equal(y, all_y[[3, 17, 20]])


# --------------------------------------------------------------------------- train, resume

def test_run_folder_holds_config_history_checkpoints_and_plot(cnn2_run: Path) -> None:
    for name in ("config.json", "history.json", "metrics.json", "loss.png", "best.keras",
                 "checkpoints/last.keras", "checkpoints/epoch-0001.keras", "checkpoints/epoch-0002.keras"):
        assert (cnn2_run / name).exists(), name
    config = json.loads((cnn2_run / "config.json").read_text())
    assert config["split"]["n_val"] == 8 and config["feature"]["name"] == "mel_db"
    history = json.loads((cnn2_run / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert {"loss", "val_loss", "mae", "val_mae"} <= set(history["epochs"][0])
    metrics = json.loads((cnn2_run / "metrics.json").read_text())
    assert 0 < metrics["val_mae"] < 1 and len(metrics["val_mae_per_parameter"]) == 11


def test_resume_continues_the_history(cnn2_run: Path, tmp_path: Path) -> None:
    from deepdiva.training.train import resume

    run = Path(shutil.copytree(cnn2_run, tmp_path / "copy"))
    result = resume(run, epochs=3)
    history = json.loads((run / "history.json").read_text())
    assert result.epochs_done == 3
    assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    assert [s["initial_epoch"] for s in history["sessions"]] == [0, 2]
    assert resume(run, epochs=3).epochs_done == 3  # nothing left to do


def test_new_run_refuses_an_existing_name(cnn2_run: Path, dataset: Dataset) -> None:
    from deepdiva.training.train import TrainConfig, train

    with pytest.raises(ModelError, match="already exists"):
        train(TrainConfig(str(dataset.folder), model="cnn2", runs_dir=str(cnn2_run.parent), name=cnn2_run.name))


# --------------------------------------------------------------------------- export, runtime

def test_export_then_runtime_matches_keras(cnn2_run: Path, dataset: Dataset, tmp_path: Path) -> None:
    import keras

    from deepdiva.core.model_runtime import ModelCard, OnnxModel
    from deepdiva.training.export import export_run

    onnx_path, card_path = export_run(cnn2_run, tmp_path / "models" / "tiny.onnx")
    assert onnx_path.stat().st_size < 5_000_000
    card = ModelCard.load(card_path)
    assert card.parameter_ids == dataset.manifest["parameter_ids"]
    assert card.data["parity"]["max_abs_diff"] <= 1e-4 and card.data["parity"]["n"] == 8
    assert card.data["training"]["n_val"] == 8 and "val_mae" in card.metrics
    assert {"tensorflow", "tf2onnx", "onnxruntime", "deepdiva"} <= set(card.data["versions"])
    # the card ships with the model: folder names for provenance, no paths of this machine
    assert card.data["training"]["run"] == cnn2_run.name and card.data["training"]["checkpoint"] == "best.keras"
    assert str(tmp_path.parent) not in card_path.read_text()

    model = OnnxModel.load(onnx_path)
    split = split_for(dataset, VAL)
    x, _ = CachedFeatures(dataset, "mel_db").get(split.val)
    expected = keras.models.load_model(cnn2_run / "best.keras").predict(x, verbose=0)[0]
    np.testing.assert_allclose(model.predict(x), expected, atol=1e-4)
    audio = dataset.load_all("audio")[split.val]
    np.testing.assert_allclose(model.predict_audio(audio), expected, atol=1e-4)

    with pytest.raises(ModelError, match="--overwrite"):
        export_run(cnn2_run, onnx_path)


def test_export_names_the_synth_of_the_training_data(cnn2_run: Path, dataset: Dataset, tmp_path: Path) -> None:
    from deepdiva.core.model_runtime import ModelCard
    from deepdiva.training.export import export_run

    _, card_path = export_run(cnn2_run, tmp_path / "tiny.onnx")
    synth = json.loads(card_path.read_text())["synth"]
    assert synth == {"profile": "diva", "renderer": "builtin", "parameter_set": "tiny11",
                     "render": dataset.spec.render.to_dict(), "pitch_range": None, "plugin": None,
                     "plugin_version": None, "synth": "u-he Diva", "synth_version": None, "fixed": {}}
    card = ModelCard.load(card_path)
    assert card.synth.as_dict() == synth and card.pitch_range is None and card.render == synth["render"]


def test_the_card_says_which_recordings_labelled_by_a_match_were_trained_on(cnn2_run: Path, dataset: Dataset,
                                                                           tmp_path: Path) -> None:
    """A dataset joined with recordings labelled by a scored match (scripts/pseudo_labels.py) carries
    their provenance in its manifest; the run's config and the exported card carry it on."""
    from deepdiva.training.export import export_run
    from deepdiva.training.train import TrainConfig, train

    folder = tmp_path / "mix"
    shutil.copytree(dataset.folder, folder)
    provenance = {"recordings": 7, "repeat": 3, "rounds": [
        {"recordings": 7, "make_seed": 32, "kinds": {"gm": 5, "voices": 2}, "augmented_share": 0.5,
         "labelled_by": {"model_file": "m.onnx", "model_sha256": "ab" * 32, "match": "deepdiva match"}}]}
    manifest = json.loads(manifest_path(folder).read_text())
    write_json_atomic(manifest_path(folder), {**manifest, "pseudo_labels": provenance})
    run = train(TrainConfig(str(folder), model="cnn2", epochs=1, batch_size=8, validation_split=VAL,
                            runs_dir=str(tmp_path / "runs"), name="labelled")).run_dir
    assert json.loads((run / "config.json").read_text())["dataset"]["pseudo_labels"] == provenance
    _, card_path = export_run(run, tmp_path / "labelled.onnx")
    assert json.loads(card_path.read_text())["training"]["pseudo_labels"] == provenance
    _, plain_card = export_run(cnn2_run, tmp_path / "plain.onnx")  # trained on the renders alone
    assert "pseudo_labels" not in json.loads(plain_card.read_text())["training"]  # nothing said


def test_export_refuses_when_onnx_disagrees(cnn2_run: Path, tmp_path: Path, monkeypatch) -> None:
    from deepdiva.training import export

    real = export.run_onnx
    monkeypatch.setattr(export, "run_onnx", lambda b, x: {k: v + 1e-3 for k, v in real(b, x).items()})
    out = tmp_path / "bad.onnx"
    with pytest.raises(ModelError, match="does not reproduce"):
        export.export_run(cnn2_run, out)
    assert not list(tmp_path.iterdir())


def test_lstm_on_scaled_mfcc_end_to_end(dataset: Dataset, tmp_path: Path) -> None:
    """The MFCC scaler travels from the dataset through the run into the card and the runtime."""
    import keras

    from deepdiva.core.model_runtime import OnnxModel
    from deepdiva.training.export import export_run
    from deepdiva.training.train import TrainConfig, train

    run = train(TrainConfig(str(dataset.folder), model="lstm", epochs=1, batch_size=16, validation_split=VAL,
                            runs_dir=str(tmp_path), name="lstm")).run_dir
    onnx_path, _ = export_run(run, tmp_path / "lstm.onnx")
    model = OnnxModel.load(onnx_path)
    assert model.card.scaler is not None
    audio = dataset.load_all("audio")[:4]
    x = model.features_for(audio)
    assert x.shape == (4, 87, 13) and -0.5 < x.min() and x.max() < 1.5  # unclipped: held-out rows may leave [0, 1]
    expected = keras.models.load_model(run / "best.keras").predict(x, verbose=0)
    np.testing.assert_allclose(model.predict_audio(audio), expected, atol=1e-4)


# --------------------------------------------------------------------------- CLI

def test_cli_features_and_export(cnn2_run: Path, dataset: Dataset, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["features", str(dataset.folder), "--feature", "mel_db", "--validation-split", "0.25"])
    assert res.exit_code == 0, res.output
    assert "2 already done" in res.output
    out = tmp_path / "m.onnx"
    res = runner.invoke(cli, ["export", str(cnn2_run), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and out.with_suffix(".json").exists()
    res = runner.invoke(cli, ["export", str(cnn2_run), "-o", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = runner.invoke(cli, ["train"])
    assert res.exit_code == 2 and "DATASET" in res.output


def test_cli_train_seed_cnn_and_resume(tmp_path: Path) -> None:
    ds = tone_dataset(tmp_path / "ds")
    runner = CliRunner()
    assert runner.invoke(cli, ["features", str(ds.folder), "--feature", "mel"]).exit_code == 0
    args = ["train", str(ds.folder), "--model", "cnn", "--epochs", "1", "--batch-size", "16",
            "--runs-dir", str(tmp_path / "runs"), "--name", "seed", "--validation-split", "0.25"]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "epoch 1/1" in res.output
    res = runner.invoke(cli, ["train", "--resume", str(tmp_path / "runs" / "seed"), "--epochs", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "epoch" not in res.output
    assert len(json.loads((tmp_path / "runs" / "seed" / "history.json").read_text())["epochs"]) == 2
    res = runner.invoke(cli, ["export", str(tmp_path / "runs" / "seed"), "-o", str(tmp_path / "seed.onnx")])
    assert res.exit_code == 0, res.output
    # ... and the end of the chain: evaluate the exported model against the two baselines
    res = runner.invoke(cli, ["evaluate", str(tmp_path / "seed.onnx"), str(ds.folder), "--out",
                              str(tmp_path / "eval"), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["n"] == 32 and set(report["methods"]) == {"model", "base_preset", "random_patch"}
    assert (tmp_path / "eval" / "report.json").exists()


def test_hypothesis_model_starts_from_a_run_exports_and_answers_in_confidence_order(
        cnn2_run: Path, dataset: Dataset, tmp_path: Path) -> None:
    from deepdiva.core.model_runtime import ModelCard, OnnxModel
    from deepdiva.training.export import export_run
    from deepdiva.training.train import TrainConfig, train

    common = dict(feature="mel_db", epochs=1, batch_size=8, validation_split=VAL, runs_dir=str(tmp_path / "runs"))
    single = train(TrainConfig(str(dataset.folder), model="cnn3", name="one", **common)).run_dir
    several = train(TrainConfig(str(dataset.folder), model="cnn3h", name="many", init_from=str(single),
                                loss="mae", **common)).run_dir
    assert json.loads((several / "config.json").read_text())["train"]["init_from"] == str(single)
    onnx_path, card_path = export_run(several, tmp_path / "models" / "many.onnx")
    card = ModelCard.load(card_path)
    assert card.data["training"]["loss"] == "hypotheses_loss"
    assert {o["name"] for o in card.data["outputs"]} >= {"params", "hypotheses", "confidence"}

    model = OnnxModel.load(onnx_path)
    x, _ = CachedFeatures(dataset, "mel_db").get(split_for(dataset, VAL).val)
    hyps, confidence = model.predict_hypotheses(x)
    assert model.has_hypotheses and hyps.shape == (8, 8, 11) and confidence.shape == (8, 8)
    assert np.all(np.diff(confidence, axis=1) <= 0)  # most confident first
    np.testing.assert_allclose(confidence.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(hyps[:, 0], model.predict(x), atol=1e-4)
    # evaluate also scores the answer a match keeps: the one of them whose render sounds closest
    from deepdiva.training.evaluate import evaluate

    report, _ = evaluate(model, dataset, limit=4)
    closest, confident = report["methods"]["model_closest"], report["methods"]["model"]
    assert np.isfinite(closest["mrstft_median"]) and closest["mae"] >= 0
    assert closest["mrstft_median"] <= confident["mrstft_median"] * 1.5
    # a model with one answer gives it with full confidence
    one, sure = OnnxModel.load(export_run(single, tmp_path / "models" / "one.onnx")[0]).predict_hypotheses(x)
    assert one.shape == (8, 1, 11) and np.all(sure == 1.0)


def test_a_shipped_onnx_model_is_rebuilt_as_keras_and_trained_further(dataset: Dataset, tmp_path: Path) -> None:
    """No run folder survives a fresh machine, the shipped ONNX file does: rebuilt as the Keras
    model it was exported from (batch normalisation, folded into the convolutions by tf2onnx,
    unfolded), it gives the run's own heads, in training mode too on the batch it was measured on,
    and ``--init-from NAME.onnx`` starts a run from it."""
    import keras

    from deepdiva.training.export import export_run
    from deepdiva.training.onnx_import import keras_from_onnx
    from deepdiva.training.train import TrainConfig, best_model_path, train

    common = dict(feature="mel_db", epochs=1, batch_size=8, validation_split=VAL, runs_dir=str(tmp_path / "runs"))
    run = train(TrainConfig(str(dataset.folder), model="cnn3h", name="shipped", loss="mae", **common)).run_dir
    onnx_path, _ = export_run(run, tmp_path / "models" / "shipped.onnx")
    x, _ = CachedFeatures(dataset, "mel_db").get(np.arange(32))
    rebuilt = keras_from_onnx(onnx_path, x)
    original = keras.models.load_model(best_model_path(run))
    heads = rebuilt.output_names.index("heads")
    want = np.asarray(original.predict(x, verbose=0)[original.output_names.index("heads")])
    np.testing.assert_allclose(np.asarray(rebuilt.predict(x, verbose=0)[heads]), want, atol=1e-4)
    for layer in rebuilt.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in rebuilt.layers)
    np.testing.assert_allclose(np.asarray(rebuilt(x, training=True)[heads]), want, atol=1e-3)

    again = train(TrainConfig(str(dataset.folder), model="cnn3h", name="again", init_from=str(onnx_path),
                              loss="mae", **common)).run_dir
    assert json.loads((again / "config.json").read_text())["train"]["init_from"] == str(onnx_path)
    other = tmp_path / "other" / "mel.onnx"  # the same network, its card saying it reads another feature
    other.parent.mkdir()
    shutil.copy(onnx_path, other)
    card = json.loads(onnx_path.with_suffix(".json").read_text())
    card["feature"]["name"] = "mel"
    other.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="reads mel .*this run trains on mel_db"):
        train(TrainConfig(str(dataset.folder), model="cnn3h", name="mel", init_from=str(other), loss="mae", **common))
    with pytest.raises(ModelError, match="give a run folder or a shipped model"):
        train(TrainConfig(str(dataset.folder), model="cnn3h", name="wav", init_from=str(onnx_path.with_suffix(".json")),
                          loss="mae", **common))
