"""Refitting a several-answer model's confidence (training.confidence) on the shipped model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from deepdiva.core.matcher import default_model_path
from deepdiva.core.model_runtime import OnnxModel
from deepdiva.training.confidence import (
    AnswerScorer,
    AnswerScores,
    chosen,
    confidence_layer,
    fit_confidence,
    layer_weights,
    soft_labels,
    summary,
    write_refitted,
)


@pytest.fixture(scope="module")
def shipped():
    path = default_model_path()
    proto = onnx.load(str(path))
    return path, proto, confidence_layer(proto)


def test_the_shipped_models_confidence_layer_is_found(shipped):
    _, proto, layer = shipped
    weight, bias = layer_weights(proto, layer)
    assert weight.shape == (384, 8) and bias.shape == (8,)
    assert "dense" in layer.embedding


def test_a_refitted_model_answers_with_the_answer_its_new_confidence_picks(shipped, tmp_path):
    path, proto, layer = shipped
    weight, _ = layer_weights(proto, layer)
    bias = np.full(8, -50.0, dtype=np.float32)
    bias[5] = 50.0  # answer 5 always wins
    out = write_refitted(path, np.zeros_like(weight), bias, tmp_path / "refit.onnx", {"test": True})
    old, new = OnnxModel.load(path), OnnxModel.load(out)
    assert new.card.data["confidence_refit"] == {"test": True}
    x = np.random.default_rng(0).random((3, *old.card.input_shape), dtype=np.float32)
    raw_hyps = new.session.run(["hypotheses"], {new.card.input_name: x})[0]
    np.testing.assert_allclose(new.predict(x), raw_hyps[:, 5], atol=1e-6)
    np.testing.assert_allclose(raw_hyps, old.session.run(["hypotheses"], {old.card.input_name: x})[0], atol=1e-6)


def test_soft_labels_favour_the_closest_answer():
    labels = soft_labels(np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 1.5]]), temperature=0.5)
    np.testing.assert_allclose(labels.sum(axis=1), 1.0)
    assert labels[0].argmax() == 0 and labels[1].argmax() == 2
    assert labels[0, 1] == pytest.approx(labels[0, 0] / 4)  # twice as far: 2 ** (-1 / 0.5) of the weight


def test_the_fit_learns_which_answer_is_closest_from_the_embedding():
    rng = np.random.default_rng(1)
    n, e, h = 2000, 16, 4
    x = rng.random((n, e)).astype(np.float32)
    best = np.argmax(x[:, :h], axis=1)  # the closest answer is told by the first h numbers
    distance = np.full((n, h), 2.0) + rng.random((n, h)) * 0.1
    distance[np.arange(n), best] = 1.0
    w0, b0 = np.zeros((e, h), np.float32), np.zeros(h, np.float32)
    weight, bias = fit_confidence(x[:1500], distance[:1500], w0, b0, l2=1e-5)
    scores = AnswerScores(x[1500:], distance[1500:], distance[1500:])
    assert np.mean(chosen(scores, weight, bias) == best[1500:]) > 0.9
    assert np.mean(chosen(scores, w0 + rng.normal(0, 0.01, w0.shape), b0) == best[1500:]) < 0.5


def test_answers_are_scored_as_an_unscored_match_finishes_them(shipped):
    """The answer the shipped confidence picks scores what ``deepdiva match --no-score`` writes,
    repaired where it sounded off the target's pitch and at the target's level."""
    from deepdiva.core.audio import AudioClip, prepare_take
    from deepdiva.core.envelope import noise_floor
    from deepdiva.core.metrics import SpectralTarget
    from deepdiva.training.dataset import draw_patches, is_silent

    _, proto, layer = shipped
    scorer = AnswerScorer(shipped[0])
    m = scorer.matcher
    rng = np.random.default_rng(7)
    notes = m.renderer.render(draw_patches(m.parameter_set, rng, 12, "mixed"), rng.integers(36, 85, 12).astype(float))
    notes = notes[~is_silent(notes)][:8]
    scores = scorer.score(AudioClip(n, m.sample_rate) for n in notes)
    assert scores.embedding.shape == (len(notes), 384) and scores.distance.shape == (len(notes), 8)
    assert scores.mute is not None and scores.mute.shape == (len(notes), 8) and scores.mute.dtype == bool
    picks = chosen(scores, *layer_weights(proto, layer))
    same = 0
    for note, distances, muted, pick in zip(notes, scores.distance, scores.mute, picks, strict=True):
        take = prepare_take(AudioClip(note, m.sample_rate), m.sample_rate, m.seconds)
        written = m.match(take.note, score=False, lead_in=take.lead_in)
        noise = noise_floor(take.note, m.sample_rate, take.lead_in)
        distance = SpectralTarget(take.note, noise=noise).distance(written.audio[None, :])[0]
        # a mute pick is not what is written: the match falls back on an answer that is heard
        same += bool(np.isclose(distance, distances[pick], rtol=1e-4)) != bool(muted[pick] and not muted.all())
    assert same == len(notes)


def test_kept_scores_keep_which_answers_are_mute_and_the_summary_counts_mute_picks(tmp_path):
    distance, convergence = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 1.0]]), np.array([[1.0, 1.2, 1.0], [1.0, 1.0, 1.0]])
    muted = np.array([[True, False, False], [False, False, False]])
    scores = AnswerScores(np.zeros((2, 2), np.float32), distance, convergence, muted)
    np.testing.assert_allclose(scores.cost, distance * convergence)
    assert summary(scores, np.array([0, 1]))["mute_share"] == 0.5
    assert not AnswerScores(scores.embedding, distance, convergence).mute.any()  # none known: none
    scores.save(tmp_path / "kept.npz")
    again = AnswerScores.load(tmp_path / "kept.npz")
    assert again is not None and np.array_equal(again.mute, muted) and np.array_equal(again.cost, scores.cost)
    np.savez(tmp_path / "old.npz", embedding=scores.embedding, distance=distance, convergence=convergence)
    assert AnswerScores.load(tmp_path / "old.npz") is None  # kept before answers were marked mute: scored again


def test_row_weights_decide_between_targets_that_disagree():
    rng = np.random.default_rng(2)
    x = np.ones((400, 3), np.float32) + rng.normal(0, 0.01, (400, 3)).astype(np.float32)
    distance = np.ones((400, 2))
    distance[:300, 1] = 2.0  # three quarters want answer 0 ...
    distance[300:, 0] = 2.0  # ... a quarter answer 1, from the same embedding
    w0, b0 = np.zeros((3, 2), np.float32), np.zeros(2, np.float32)
    alike = fit_confidence(x, distance, w0, b0, l2=1e-6)
    favoured = fit_confidence(x, distance, w0, b0, l2=1e-6, row_weights=np.r_[np.ones(300), np.full(100, 9.0)])
    scores = AnswerScores(x[:1], distance[:1], distance[:1])
    assert chosen(scores, *alike)[0] == 0 and chosen(scores, *favoured)[0] == 1
