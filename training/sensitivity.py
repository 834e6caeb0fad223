"""How much each parameter changes the sound: the weights of a sound-aware training loss.

For random patches played at random keys, one parameter at a time is redrawn at random and the
median multi-resolution STFT distance between the two renders is that parameter's sensitivity.
A parameter the audio barely shows (ENV2's release, heard only after note-off) gets a small
weight, one that moves the sound a lot (the filter cutoff) a large one. Deterministic in ``seed``.
"""

from __future__ import annotations

import numpy as np

from ..core.metrics import multires_stft_distance
from ..core.render import Renderer
from .dataset import is_silent

CHUNK = 32
MIN_WEIGHT, MAX_WEIGHT = 0.1, 3.0


def parameter_sensitivity(renderer: Renderer, n: int = 160, seed: int = 5,
                          pitch_range: tuple[int, int] = (36, 84)) -> np.ndarray:
    """Median MR-STFT distance (k,) caused by redrawing each parameter of ``n`` random patches."""
    pset = renderer.parameter_set
    rng = np.random.default_rng(seed)
    x = pset.quantise(rng.random((n, len(pset)))).astype(np.float32)
    notes = rng.integers(pitch_range[0], pitch_range[1] + 1, n).astype(np.float64)
    base = renderer.render(x, notes)
    audible = ~is_silent(base)
    out = np.zeros(len(pset))
    for j in range(len(pset)):
        changed = x.copy()
        changed[:, j] = rng.random(n)
        audio = renderer.render(pset.quantise(changed), notes)
        d = np.concatenate([multires_stft_distance(audio[i:i + CHUNK], base[i:i + CHUNK]) for i in range(0, n, CHUNK)])
        out[j] = float(np.median(d[audible])) if audible.any() else 0.0
    return out


def loss_weights(sensitivity: np.ndarray) -> list[float]:
    """Sensitivities scaled to mean 1, each kept within [MIN_WEIGHT, MAX_WEIGHT] so no parameter is ignored."""
    s = np.asarray(sensitivity, dtype=np.float64)
    w = np.clip(s / max(float(s.mean()), 1e-12), MIN_WEIGHT, MAX_WEIGHT)
    return (w / w.mean()).round(4).tolist()
