"""The sound proxy: clean summaries of a dataset, the proxy fitted on them, and a several-answer
model trained with its sound term (training.sound_proxy, models.SoundProxyLoss)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepdiva.core.errors import DatasetError, ModelError
from deepdiva.core.features import FeatureConfig, mel_db_features
from deepdiva.core.render import RenderSettings
from deepdiva.core.renderers import make_renderer
from deepdiva.training.dataset import DatasetSpec, generate
from deepdiva.training.features_cache import CachedFeatures
from deepdiva.training.sound_proxy import (
    SEGMENTS,
    SUMMARY_FILE,
    heads_representation,
    key_input,
    pooled,
    sound_summaries,
    sound_targets,
)

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def notes(tmp_path_factory):
    spec = DatasetSpec(parameter_set="medium33", render=RenderSettings(), sample_size=24, n_shards=2, seed=3,
                       pitch_range=(36, 84), features=("mel_db_pitch",), keep_audio=False, prior="mixed")
    return generate(tmp_path_factory.mktemp("data") / "notes", spec)


def test_pooled_summary_and_heads_representation() -> None:
    image = np.zeros((2, 4, 173), np.float32)
    image[0, 1, :3] = 1.0  # the first segment (3 frames) of band 1
    image[1, :, 86:] = 0.5  # the last segment of every band
    s = pooled(image).reshape(2, 4, len(SEGMENTS) - 1)
    assert s[0, 1, 0] == 1.0 and s.sum() == pytest.approx(1.0 + 4 * 0.5)
    assert np.all(s[1, :, -1] == 0.5) and np.all(s[1, :, :-1] == 0)
    with pytest.raises(DatasetError, match="frames"):
        pooled(np.zeros((1, 4, 40)))
    # continuous values first, then one-hot steps, as the heads hold them
    rep = heads_representation(np.array([[0.25, 1.0, 0.5]]), [0, 3, 0])
    np.testing.assert_array_equal(rep, [[0.25, 0.5, 0.0, 0.0, 1.0]])
    np.testing.assert_allclose(key_input(np.array([36, 60, 84]))[:, 0], [-1, 0, 1])


def test_summaries_are_the_clean_renders_of_the_restated_patches(notes) -> None:
    summaries = sound_summaries(notes, workers=1)
    assert summaries.shape == (48, 128 * (len(SEGMENTS) - 1))
    kept = [notes.shard_dir(s) / SUMMARY_FILE for s in notes.shards]
    stamps = [p.stat().st_mtime_ns for p in kept]
    np.testing.assert_array_equal(sound_summaries(notes, workers=1), summaries)  # cached: not rendered again
    assert [p.stat().st_mtime_ns for p in kept] == stamps
    # row 30 rendered again: its patch as training restates it, played at the pitch heard
    targets = sound_targets(notes)
    _, params = CachedFeatures(notes, "mel_db_pitch").get(np.array([30]))
    key = 60 + 24 * targets[30, 0]
    audio = make_renderer("builtin", notes.parameter_set, notes.spec.render).render(
        notes.parameter_set.quantise(params), np.array([key]))
    again = pooled(mel_db_features(audio, FeatureConfig())[..., 0])[0]
    np.testing.assert_allclose(targets[30, 1:], again, atol=2e-3)  # kept as float16
    heard = np.load(notes.shard_dir(notes.shards[1]) / "pitch.npy")[6]
    assert key == pytest.approx(heard if np.isfinite(heard) else 48.0, abs=1e-3)


def test_sound_proxy_loss_adds_the_sound_distance(tmp_path: Path) -> None:
    import keras

    from deepdiva.training.models import HypothesesLoss, SoundProxyLoss
    from deepdiva.training.sound_proxy import build_proxy

    layout = [0, 0, 3]
    width = 2 + 3  # heads representation
    proxy = build_proxy(width + 1, 12, width=8)
    last = proxy.get_layer("summary")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()][:1] + [np.full(12, 0.3, np.float32)])
    proxy.save(tmp_path / "flat.keras")  # says every patch sounds the same: 0.3 in every bin
    rng = np.random.default_rng(0)
    params = rng.random((4, 3)).astype(np.float32)
    heads = rng.random((4, 8, width + 1)).astype(np.float32)
    heads[..., 2:5] /= heads[..., 2:5].sum(axis=-1, keepdims=True)
    key = np.zeros((4, 1), np.float32)
    plain = HypothesesLoss(layout)(params, heads)
    loss = SoundProxyLoss(layout, str(tmp_path / "flat.keras"), sound_weight=5.0)
    flat = np.full((4, 12), 0.7, np.float32)  # another level, the same shape: no distance once centred
    assert float(loss(np.concatenate([params, key, flat], 1), heads)) == pytest.approx(float(plain), rel=1e-5)
    bright = flat.copy()
    bright[:, :6] += 0.2  # half the bins 0.2 louder: 0.1 from the proxy's flat guess in every bin
    assert float(loss(np.concatenate([params, key, bright], 1), heads)) == pytest.approx(
        float(plain) + 0.95 * 5.0 * 0.1 + 0.05 * 5.0 * 0.1, rel=1e-4)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert again.proxy_path == loss.proxy_path and again.sound_weight == 5.0 and again.level_weight == 0.0
    # with a level term every answer is 0.4 quieter than the truth by the proxy's mean level
    levelled = SoundProxyLoss(layout, str(tmp_path / "flat.keras"), sound_weight=5.0, level_weight=2.0)
    assert float(levelled(np.concatenate([params, key, flat], 1), heads)) == pytest.approx(
        float(plain) + 2.0 * 0.4, rel=1e-4)
    quiet = np.full((4, 12), 0.1, np.float32)  # a truth 0.2 under the guess costs the same as one 0.2 over
    assert float(levelled(np.concatenate([params, key, quiet], 1), heads)) == pytest.approx(
        float(plain) + 2.0 * 0.2, rel=1e-4)
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(levelled)).level_weight == 2.0
    with pytest.raises(ModelError, match="cannot load the sound proxy"):
        SoundProxyLoss(layout, str(tmp_path / "missing.keras"))


def test_proxy_fitted_then_answers_trained_toward_the_sound_and_resumed(notes, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from deepdiva.cli import cli
    from deepdiva.training.sound_proxy import fit_proxy
    from deepdiva.training.train import TrainConfig, resume, train

    done = CliRunner().invoke(cli, ["sound-proxy", str(notes.folder), "-o", str(tmp_path / "proxy.keras"),
                                    "--epochs", "2", "--workers", "1"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output[done.output.index("{"):])
    assert report["patches"] == 48 and report["held_out_mae"] > 0 and (tmp_path / "proxy.keras").is_file()
    assert report["held_out_level_error"] >= 0 and report["random_pair_level_error"] >= 0
    with pytest.raises(ModelError, match="NAME.keras"):
        fit_proxy(notes, tmp_path / "proxy.h5", epochs=1, workers=1)
    common = dict(model="cnn3h", epochs=1, batch_size=8, validation_split=0.25, runs_dir=str(tmp_path / "runs"),
                  sound_proxy=str(tmp_path / "proxy.keras"), sound_weight=5.0, level_weight=1.0)
    run = train(TrainConfig(str(notes.folder), name="heard", **common)).run_dir
    config = json.loads((run / "config.json").read_text())["train"]
    assert config["sound_proxy"] == str(tmp_path / "proxy.keras") and config["sound_weight"] == 5.0
    assert config["level_weight"] == 1.0
    history = json.loads((run / "history.json").read_text())["epochs"]
    assert len(history) == 1 and np.isfinite(history[0]["loss"])
    from deepdiva.training.export import loss_card

    assert loss_card(json.loads((run / "config.json").read_text())) == {
        "loss": "sound_proxy_loss", "sound_proxy": "proxy.keras", "sound_weight": 5.0,
        "level_weight": 1.0}  # the card's words
    again = resume(run, epochs=2)  # the loss, proxy and all, comes back from the checkpoint
    assert again.epochs_done == 2
    with pytest.raises(ModelError, match="no such file"):
        TrainConfig(str(notes.folder), **{**common, "sound_proxy": str(tmp_path / "none.keras")})
    with pytest.raises(ModelError, match="give --sound-proxy"):
        TrainConfig(str(notes.folder), **{**common, "sound_proxy": None})
    with pytest.raises(ModelError, match="several answers"):
        train(TrainConfig(str(notes.folder), name="one", **{**common, "model": "cnn3"}))
