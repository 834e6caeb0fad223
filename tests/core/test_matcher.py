"""The matcher with the shipped model: refinement never hurts; matches beat the base preset."""

from __future__ import annotations

import numpy as np
import pytest

from deepdiva.core.matcher import Matcher
from deepdiva.core.metrics import multires_stft_distance
from deepdiva.training.dataset import draw_patches, is_silent


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.load()


def test_refinement_never_worse(matcher: Matcher) -> None:
    pset = matcher.parameter_set
    rng = np.random.default_rng(11)
    targets = matcher.renderer.render(draw_patches(pset, rng, 6))
    for note in targets[~is_silent(targets)][:3]:
        refined = matcher.match(note, refine_seconds=0.5, seed=1)
        assert refined.distance <= refined.network_distance + 1e-9
        assert refined.evaluations > 1
        plain = matcher.match(note)
        assert plain.distance == pytest.approx(refined.network_distance, rel=1e-6)
        np.testing.assert_allclose(matcher.renderer.render(refined.params[None])[0], refined.audio)


@pytest.mark.slow
def test_matches_beat_the_base_preset_on_50_patches(matcher: Matcher) -> None:
    pset = matcher.parameter_set
    rng = np.random.default_rng(2024)
    params = draw_patches(pset, rng, 80)
    audio = matcher.renderer.render(params)
    audible = ~is_silent(audio)
    audio = audio[audible][:50]
    assert len(audio) == 50
    predicted = matcher.predict(audio)
    matched = matcher.renderer.render(predicted)
    base = matcher.renderer.render(np.repeat(pset.defaults_normalised()[None], len(audio), axis=0))
    d_match = multires_stft_distance(matched, audio)
    d_base = multires_stft_distance(base, audio)
    assert np.median(d_match) < np.median(d_base)
    assert np.mean(d_match) < np.mean(d_base)
