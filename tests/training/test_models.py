"""Keras model builders, the highway layer, the discrete heads and their loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from deepdiva.core.errors import ModelError  # noqa: E402
from deepdiva.core.profile import load_profile  # noqa: E402
from deepdiva.training.models import (  # noqa: E402
    HYPOTHESES,
    MODELS,
    DecodeParams,
    HeadLoss,
    Highway,
    HypothesesLoss,
    build_model,
    compile_model,
    head_layout,
    rmse,
    targets,
)


@pytest.fixture(scope="module")
def tiny11():
    return load_profile("diva").parameter_set("tiny11")


def test_head_layout_marks_discrete_parameters(tiny11) -> None:
    layout = head_layout(tiny11)
    assert len(layout) == 11
    # tiny11: OSC:Tune1 (5 octaves), OSC:Wave1/2 (4 steps) are discrete
    assert [(tiny11.ids[j], s) for j, s in enumerate(layout) if s] == [(86, 5), (131, 4), (132, 4)]


@pytest.mark.parametrize(("name", "shape"), [("cnn", (16, 16, 1)), ("lstm", (6, 13)), ("cnn2", (16, 32, 1)),
                                             ("cnn3", (16, 32, 2)), ("cnn3h", (16, 32, 2))])
def test_builders_output_shapes(tiny11, name: str, shape: tuple[int, ...]) -> None:
    model = build_model(name, shape, tiny11)
    x = np.random.default_rng(0).random((3, *shape), dtype=np.float32)
    out = model(x, training=False)
    params = out[0] if isinstance(out, list | tuple) else out
    assert model.output_names[0] == "params"
    assert tuple(params.shape) == (3, 11)
    p = np.asarray(params)
    assert np.all((p >= 0) & (p <= 1))
    if name in ("cnn2", "cnn3"):
        assert model.output_names == ["params", "heads"]
        assert tuple(out[1].shape) == (3, 8 + 5 + 4 + 4)
    if name == "cnn3h":
        assert model.output_names == ["params", "heads", "hypotheses", "confidence"]
        assert tuple(out[1].shape) == (3, HYPOTHESES, 8 + 5 + 4 + 4 + 1)
        assert tuple(out[2].shape) == (3, HYPOTHESES, 11)
        best = np.argmax(np.asarray(out[3]), axis=1)
        np.testing.assert_allclose(p, np.asarray(out[2])[np.arange(3), best])


def test_default_features_per_model() -> None:
    assert {k: v.feature for k, v in MODELS.items()} == {"cnn": "mel", "lstm": "mfcc", "cnn2": "mel_db",
                                                         "cnn3": "mel_db_pitch", "cnn3h": "mel_db_pitch"}


def test_registries_serve_exactly_the_names_the_cli_offers() -> None:
    from deepdiva.core.features import _EXTRACTORS, PITCHED_FEATURES
    from deepdiva.core.names import FEATURE_NAMES, MODEL_NAMES, PATCH_PRIORS
    from deepdiva.training.priors import PRIORS

    assert tuple(MODELS) == MODEL_NAMES
    assert set(_EXTRACTORS) | set(PITCHED_FEATURES) == set(FEATURE_NAMES)
    assert PRIORS == PATCH_PRIORS
    assert {spec.feature for spec in MODELS.values()} <= set(FEATURE_NAMES)


def test_decode_params_argmax_over_steps() -> None:
    layout = [0, 3, 0, 5]
    # continuous sigmoids first (columns 0, 2), then the 3-step and the 5-step softmax
    heads = np.array([[0.2, 0.7, 0.8, 0.1, 0.1, 0.0, 0.1, 0.1, 0.1, 0.7]], dtype=np.float32)
    out = np.asarray(DecodeParams(layout)(heads))
    np.testing.assert_allclose(out, [[0.2, 0.0, 0.7, 1.0]], atol=1e-7)


def test_decode_params_median_takes_the_half_way_step() -> None:
    layout = [0, 3, 0, 5]
    # the 5-step head: 0.4 on step 0, 0.05 on 1..3, 0.45 on step 4 -> argmax 4, median 2 (cdf 0.5 there)
    heads = np.array([[0.2, 0.7, 0.8, 0.1, 0.1, 0.40, 0.05, 0.06, 0.04, 0.45]], dtype=np.float32)
    np.testing.assert_allclose(np.asarray(DecodeParams(layout, decode="median")(heads)), [[0.2, 0.0, 0.7, 0.5]],
                               atol=1e-7)
    np.testing.assert_allclose(np.asarray(DecodeParams(layout)(heads)), [[0.2, 0.0, 0.7, 1.0]], atol=1e-7)


def test_head_loss_mae_and_weights() -> None:
    layout = [0, 0]
    y = np.array([[0.2, 0.8]], dtype=np.float32)
    pred = np.array([[0.4, 0.8]], dtype=np.float32)  # off by 0.2 in the first parameter only
    mae = float(np.asarray(HeadLoss(layout, continuous="mae")(y, pred)))
    assert mae == pytest.approx(0.1, abs=1e-6)  # mean |error| over the two columns
    heavy = float(np.asarray(HeadLoss(layout, continuous="mae", weights=[1.5, 0.5])(y, pred)))
    light = float(np.asarray(HeadLoss(layout, continuous="mae", weights=[0.5, 1.5])(y, pred)))
    assert heavy == pytest.approx(0.15, abs=1e-6) and light == pytest.approx(0.05, abs=1e-6)
    restored = HeadLoss.from_config(HeadLoss(layout, continuous="mae", weights=[1.5, 0.5]).get_config())
    assert restored.continuous == "mae" and restored.weights == [1.5, 0.5]


def test_sensitivity_weights_follow_what_the_audio_shows() -> None:
    from deepdiva.core.render import RenderSettings
    from deepdiva.core.renderers import make_renderer
    from deepdiva.training.sensitivity import loss_weights, parameter_sensitivity

    pset = load_profile("diva").parameter_set("tiny11")
    renderer = make_renderer("builtin", pset, RenderSettings(note_length=0.3, render_length=0.4))
    s = parameter_sensitivity(renderer, n=24, seed=1)
    assert s.shape == (11,) and np.all(s >= 0)
    assert s[pset.ids.index(148)] > s[pset.ids.index(35)]  # the cutoff moves the sound more than ENV1 sustain
    w = loss_weights(s)
    assert np.mean(w) == pytest.approx(1.0, abs=1e-3) and min(w) > 0


def test_head_loss_prefers_the_right_answer() -> None:
    layout = [0, 3]
    y = np.array([[0.25, 1.0], [0.75, 0.5]], dtype=np.float32)
    good = np.array([[0.25, 0.0, 0.0, 1.0], [0.75, 0.0, 1.0, 0.0]], dtype=np.float32)
    bad = np.array([[0.9, 1.0, 0.0, 0.0], [0.1, 1.0, 0.0, 0.0]], dtype=np.float32)
    loss = HeadLoss(layout)
    assert float(loss(y, good)) < 1e-3
    assert float(loss(y, bad)) > 1.0
    again = HeadLoss.from_config(loss.get_config())
    assert float(again(y, bad)) == pytest.approx(float(loss(y, bad)))


def test_hypotheses_loss_rewards_the_closest_answer_and_a_confidence_in_it() -> None:
    layout = [0, 3]
    y = np.array([[0.25, 1.0]], dtype=np.float32)
    exact = [0.25, 0.0, 0.0, 1.0]
    wrong = [0.9, 1.0, 0.0, 0.0]

    def loss(first, second, logits, spread=0.05):
        pred = np.array([[first + [logits[0]], second + [logits[1]]]], dtype=np.float32)
        return float(np.asarray(HypothesesLoss(layout, spread=spread)(y, pred)))

    sure_right, sure_wrong = loss(wrong, exact, [-5.0, 5.0]), loss(wrong, exact, [5.0, -5.0])
    assert sure_right < sure_wrong  # the confidence should point at the answer that was right
    assert loss(wrong, exact, [-5.0, 5.0]) == pytest.approx(loss(exact, wrong, [5.0, -5.0]), abs=1e-6)
    assert loss(wrong, wrong, [0.0, 0.0]) > loss(wrong, exact, [0.0, 0.0])
    # winner takes all: without spread a wrong second answer costs nothing beside an exact one
    assert loss(exact, wrong, [9.0, -9.0], spread=0.0) < 1e-3
    again = HypothesesLoss.from_config(HypothesesLoss(layout, weights=[2.0, 0.5], spread=0.1).get_config())
    assert again.weights == [2.0, 0.5] and again.spread == 0.1


def test_warm_start_gives_every_hypothesis_the_single_answer(tiny11) -> None:
    from deepdiva.training.train import warm_start

    keras.utils.set_random_seed(3)
    single = build_model("cnn3", (16, 32, 2), tiny11)
    several = build_model("cnn3h", (16, 32, 2), tiny11)
    assert warm_start(several, single, noise=0.0) == 10 + 1 + 3  # trunk, continuous and 3 discrete heads
    x = np.random.default_rng(4).random((2, 16, 32, 2), dtype=np.float32)
    one = np.asarray(single(x, training=False)[0])
    hyps = np.asarray(several(x, training=False)[2])
    for k in range(HYPOTHESES):
        np.testing.assert_allclose(hyps[:, k], one, atol=1e-5)
    warm_start(several, single, noise=0.05)  # noise tells the answers apart
    hyps = np.asarray(several(x, training=False)[2])
    assert not np.allclose(hyps[:, 0], hyps[:, 1])


def test_warm_start_from_a_model_with_answers_copies_them(tiny11) -> None:
    from deepdiva.training.train import warm_start

    keras.utils.set_random_seed(5)
    trained = build_model("cnn3h", (16, 32, 2), tiny11)
    keras.utils.set_random_seed(6)
    fresh = build_model("cnn3h", (16, 32, 2), tiny11)
    x = np.random.default_rng(7).random((2, 16, 32, 2), dtype=np.float32)
    assert not np.allclose(np.asarray(fresh(x, training=False)[2]), np.asarray(trained(x, training=False)[2]))
    warm_start(fresh, trained, noise=0.05)  # fine-tuning: the answers and confidences as they were, no noise
    for out in (2, 3):
        np.testing.assert_allclose(np.asarray(fresh(x, training=False)[out]),
                                   np.asarray(trained(x, training=False)[out]), atol=1e-6)


def test_diversify_pushes_every_answer_but_the_first_apart(tiny11) -> None:
    from deepdiva.core.errors import ModelError
    from deepdiva.training.train import TrainConfig, warm_start

    keras.utils.set_random_seed(5)
    trained = build_model("cnn3h", (16, 32, 2), tiny11)
    x = np.random.default_rng(8).random((4, 16, 32, 2), dtype=np.float32)
    before = np.asarray(trained(x, training=False)[2])
    fresh = build_model("cnn3h", (16, 32, 2), tiny11)
    warm_start(fresh, trained, diversify=1.5)
    after = np.asarray(fresh(x, training=False)[2])
    np.testing.assert_allclose(after[:, 0], before[:, 0], atol=1e-6)  # the first answer is the source's
    moved = np.abs(after[:, 1:] - before[:, 1:]).mean(axis=(0, 2))
    assert np.all(moved > 0.05)  # every other answer starts elsewhere
    alike = before.std(axis=1).mean(axis=0) < 0.01  # the untrained model's continuous answers agree
    assert alike.sum() >= 5 and np.all(after.std(axis=1).mean(axis=0)[alike] > 0.05)
    with pytest.raises(ModelError, match="several answers"):
        warm_start(build_model("cnn3", (16, 32, 2), tiny11), trained, diversify=1.0)
    with pytest.raises(ModelError, match="--init-from"):
        TrainConfig(dataset="d", diversify=1.0)


def test_rmse_is_sqrt_of_mse() -> None:
    a = np.zeros((2, 2), dtype=np.float32)
    b = np.full((2, 2), 0.5, dtype=np.float32)
    assert float(rmse(a, b)) == pytest.approx(0.5, abs=1e-5)


def test_highway_starts_near_identity_and_round_trips() -> None:
    layer = Highway()
    x = np.random.default_rng(1).random((4, 8), dtype=np.float32)
    y = np.asarray(layer(x))
    assert y.shape == (4, 8)
    assert np.abs(y - x).mean() < 0.5  # gate bias -2: mostly carried through
    assert Highway.from_config(layer.get_config()).gate_bias == -2.0


def test_compile_rejects_unknown_loss_and_optimizer(tiny11) -> None:
    model = build_model("lstm", (4, 13), tiny11)
    with pytest.raises(ModelError, match="unknown loss"):
        compile_model(model, loss="hinge-ish")
    with pytest.raises(ModelError, match="unknown optimizer"):
        compile_model(model, optimizer="not-an-optimizer")
    with pytest.raises(ModelError, match="unknown model"):
        build_model("transformer", (4, 13), tiny11)
    with pytest.raises(ModelError, match="reads"):
        build_model("lstm", (16, 16, 1), tiny11)


def test_cnn2_trains_saves_and_reloads(tiny11, tmp_path: Path) -> None:
    model = compile_model(build_model("cnn2", (16, 16, 1), tiny11), learning_rate=1e-3)
    rng = np.random.default_rng(2)
    x = rng.random((8, 16, 16, 1), dtype=np.float32)
    y = tiny11.quantise(rng.random((8, 11))).astype(np.float32)
    hist = model.fit(x, targets(model, y), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][-1]) and "params_mae" in hist.history
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    for a, b in zip(model.predict(x, verbose=0), again.predict(x, verbose=0), strict=True):
        np.testing.assert_array_equal(a, b)
