"""Patch priors: what the ``instrumental`` prior adds to ``mixed`` (plucked and held amp envelopes)."""

from __future__ import annotations

import numpy as np

from deepdiva.core.builtin_renderer import BuiltinRenderer
from deepdiva.core.level import rms
from deepdiva.core.profile import load_profile
from deepdiva.training.priors import draw_patches


def _dies_away(pset, params: np.ndarray) -> np.ndarray:
    """Which renders end (last half second) 30 dB or more below their first quarter second."""
    audio = BuiltinRenderer(pset).render(params, 48.0)
    first, last = rms(audio[:, :11025]), rms(audio[:, -22050:])
    return last < first * 10 ** (-30 / 20)


def test_instrumental_prior_plays_plucked_notes_that_die_away() -> None:
    pset = load_profile("diva").parameter_set("medium33")
    plucked = {prior: _dies_away(pset, draw_patches(pset, np.random.default_rng(1), 300, prior)).mean()
               for prior in ("mixed", "instrumental")}
    assert plucked["mixed"] < 0.09  # the uniform amp sustain rarely lets a note die away (~6 %)
    assert plucked["instrumental"] > 2 * plucked["mixed"]  # ~18 %: a quarter plucked, the slowest ring on


def test_instrumental_prior_is_deterministic_and_keeps_a_uniform_half() -> None:
    pset = load_profile("diva").parameter_set("medium33")
    one = draw_patches(pset, np.random.default_rng(2), 2000, "instrumental")
    np.testing.assert_array_equal(one, draw_patches(pset, np.random.default_rng(2), 2000, "instrumental"))
    attack = pset.role_column("amp_attack")
    assert attack is not None
    assert 0.05 < (one[:, attack] > 0.75).mean() < 0.2  # slow attacks only from the uniform half (~12 %)


def test_a_profile_without_amp_envelope_roles_draws_envelopes_as_mixed_does() -> None:
    pset = load_profile("amsynth").parameter_set("medium")
    assert pset.role_column("amp_sustain") is None
    x = draw_patches(pset, np.random.default_rng(3), 4000, "instrumental")
    assert 0.4 < np.median(x[:, 2]) < 0.6  # amp_sustain stays uniform
