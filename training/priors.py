"""How random patches are drawn: uniformly, or closer to what musicians play.

Uniform patches in [0, 1] are mostly chaotic: oscillators at arbitrary intervals, deep pitch and
filter modulation at once, so three in four of them have no clear pitch. Real sounds are mostly
pitched and use a few modulations at a time. The ``mixed`` prior draws :data:`MUSICAL_SHARE` of its
patches "musical" and the rest uniformly (so every corner of the space stays covered): each modulation depth
is off with probability :data:`P_MODULATION_OFF`, oscillator 2 sits on a common interval (with a
slight detune) with probability :data:`P_INTERVAL`, and oscillator 1 on the played key with
probability :data:`P_TUNE1_ZERO`.

Uniform envelopes are not what instruments play either: a uniform amp attack is slower than 0.1 s
in half the patches, and the amp sustain lets the note die away (below 2 %) in 2 % of them, so
plucked, struck and mallet sounds are almost absent from a uniform set (a network trained on it
answered a marimba, a guitar and a piano with patches that hold their level). The ``instrumental``
prior draws :data:`INSTRUMENTAL_SHARE` of its patches musical *and* with an instrument's amp
envelope (the profile's ``amp_attack``, ``amp_decay``, ``amp_sustain`` roles): plucked with
probability :data:`P_PLUCKED` (a quick attack, a decay of tens of milliseconds to seconds, no
sustain), otherwise held (an attack up to about a second, a sustain in the upper part of its range).
"""

from __future__ import annotations

import numpy as np

from ..core.envelope import amp_envelope_columns
from ..core.errors import DatasetError
from ..core.names import PATCH_PRIORS
from ..core.profile import ParameterSet

PRIORS = PATCH_PRIORS
# Depths that bend pitch or sweep a filter, and the oscillators' tuning: the profile's roles
# (``modulation_depths``, ``osc2_tune``, ``osc1_octave``; Diva: VtoD, TM1Dpt, TM2Dpt, HPF:FMDpt,
# VCF1:FMDpt, VCF1:FM2Dpt, VCF1:FFM, OSC:Tune2, OSC:Tune1). A profile without them draws uniformly.
INTERVALS = (0.0, 0.0, 0.0, 12.0, -12.0, 7.0, -5.0, 19.0, 24.0, -24.0, 5.0, 3.0, 4.0)  # semitones
DETUNE = 0.1  # semitones, standard deviation of a musical patch's osc2 detune
P_MODULATION_OFF = 0.6
P_INTERVAL = 0.7
P_TUNE1_ZERO = 0.5
MUSICAL_SHARE = 0.25
INSTRUMENTAL_SHARE = 0.5
P_PLUCKED = 0.5
# normalised ranges (Diva's envelope knob 0..100 is 1 ms x 10**(v/25): 0.5 = 0.1 s, 0.75 = 1 s)
PLUCKED_ATTACK = (0.0, 0.5)
PLUCKED_DECAY = (0.3, 0.8)  # 16 ms .. 1.6 s
PLUCKED_SUSTAIN = (0.0, 0.02)
HELD_ATTACK = (0.0, 0.75)
HELD_SUSTAIN = (0.3, 1.0)


def _musical(pset: ParameterSet, rng: np.random.Generator, uniform: np.ndarray) -> np.ndarray:
    """Turn uniform patches (n, k) normalised into musical ones (see the module docstring)."""
    native = pset.from_normalised(uniform)
    defaults = pset.defaults_native()
    n = len(native)
    for j in pset.role_columns("modulation_depths"):
        off = rng.random(n) < P_MODULATION_OFF
        native[off, j] = defaults[j]
    j2 = pset.role_column("osc2_tune")
    if j2 is not None:
        on = rng.random(n) < P_INTERVAL
        native[on, j2] = rng.choice(INTERVALS, on.sum()) + rng.normal(0.0, DETUNE, on.sum())
    j1 = pset.role_column("osc1_octave")
    if j1 is not None:
        native[rng.random(n) < P_TUNE1_ZERO, j1] = 0.0
    return pset.to_normalised(native)


def _instrument_envelopes(pset: ParameterSet, rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Patches (n, k) normalised with a plucked or a held amp envelope (see the module docstring);
    unchanged where the profile has no amp envelope roles."""
    columns = amp_envelope_columns(pset)
    if columns is None:
        return x
    attack, decay, sustain = columns
    x = x.copy()
    plucked = rng.random(len(x)) < P_PLUCKED
    held = ~plucked
    x[plucked, attack] = rng.uniform(*PLUCKED_ATTACK, plucked.sum())
    x[plucked, decay] = rng.uniform(*PLUCKED_DECAY, plucked.sum())
    x[plucked, sustain] = rng.uniform(*PLUCKED_SUSTAIN, plucked.sum())
    x[held, attack] = rng.uniform(*HELD_ATTACK, held.sum())
    x[held, sustain] = rng.uniform(*HELD_SUSTAIN, held.sum())
    return x


def draw_patches(pset: ParameterSet, rng: np.random.Generator, n: int, prior: str = "uniform") -> np.ndarray:
    """n random patches snapped to what the synth can represent, float32 (n, k) normalised."""
    if prior not in PRIORS:
        raise DatasetError(f"unknown patch prior {prior!r}; use one of {', '.join(PRIORS)}")
    x = rng.random((n, len(pset)), dtype=np.float64)
    if prior == "mixed":
        musical = rng.random(n) < MUSICAL_SHARE
        x[musical] = _musical(pset, rng, x[musical])
    elif prior == "instrumental":
        played = rng.random(n) < INSTRUMENTAL_SHARE
        x[played] = _instrument_envelopes(pset, rng, _musical(pset, rng, x[played]))
    return pset.quantise(x).astype(np.float32)
