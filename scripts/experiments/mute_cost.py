"""Experiment (issue 12, tried and not kept): refit the confidence with a mute answer
(:func:`deepdiva.core.level.mute`) costing twice its target's farthest answer, so the most confident
answer is seldom mute and ``deepdiva match --no-score`` seldom falls back on another.

    .venv/bin/deepdiva refit-confidence models/deepdiva-medium33.onnx -o /tmp/mute/x.onnx --targets 4000 \\
        --cache /tmp/mute/cache            # scores 4,000 fresh renders (each answer marked mute or not)
    .venv/bin/python scripts/experiments/mute_cost.py /tmp/mute/cache [N]

Fits the shipped confidence again on the first 80 % of the cached targets, the cost as the refit has
it and with the mute cost, and compares (1) the picks on the last 20 % and (2) what ``--no-score``
writes for the first N (400) held-out renders of data/eval-notes, with the shipped model beside.
Measured (v5, 4,000 targets): picks mute 9.5 % -> 2.4 %, their median MR-STFT 2.53 -> 2.51, SC 1.000
-> 1.036; written: MR-STFT 2.397 -> 2.400, SC 1.002 -> 1.024, fallbacks 62 -> 16 of 400 (shipped
2.355 / 1.001, 59). The closest heard answer by render (the match's fallback) beats the confidence's
pick among the heard ones, so the cost stayed as it was.
"""
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

from deepdiva.core.matcher import Matcher, default_model_path
from deepdiva.core.metrics import multires_stft_distance, spectral_convergence
from deepdiva.training.confidence import (
    AnswerScores,
    chosen,
    confidence_layer,
    fit_confidence,
    layer_weights,
    split,
    summary,
    write_refitted,
)
from deepdiva.training.dataset import Dataset

cache, n = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 400
parts = [AnswerScores.load(p) for p in sorted(cache.glob("*.npz"))]
scores = AnswerScores.concat([p for p in parts if p is not None])
fit, test = split(scores, 0.2)
shipped = default_model_path()
proto = onnx.load(str(shipped))
before = layer_weights(proto, confidence_layer(proto))
mute_cost = np.where(fit.mute, 2.0 * fit.cost.max(axis=1, keepdims=True), fit.cost)
fits = {"cost as the refit has it": fit_confidence(fit.embedding, fit.cost, *before),
        "mute costs more": fit_confidence(fit.embedding, mute_cost, *before)}
print(f"{len(scores.distance)} targets; picks on the {len(test.distance)} held out:")
for name, weights in {"shipped": before, **fits}.items():
    print(f"    {name:26s} {summary(test, chosen(test, *weights))}")

ds = Dataset.open("data/eval-notes")
audio = np.asarray(ds.load_shard(ds.shards[0], "audio"))[:n].astype(np.float32)
out = Path(tempfile.mkdtemp())
models = {"shipped": shipped}
for i, (name, weights) in enumerate(fits.items()):
    models[name] = write_refitted(shipped, *weights, out / f"refit-{i}.onnx", {"experiment": name})
print(f"what --no-score writes for the first {n} held-out renders at random keys:")
for name, path in models.items():
    m = Matcher.load(path, bank=False)
    fallbacks: list[int] = []
    closest = m.closest  # an unscored match looks for the closest answer only when its first is mute
    m.closest = (lambda *a, closest=closest, fallbacks=fallbacks, **k:  # type: ignore[method-assign]
                 (fallbacks.append(1), closest(*a, **k))[1])
    renders = np.stack([m.match(a, score=False).audio for a in audio])
    d, sc = multires_stft_distance(renders, audio), spectral_convergence(renders, audio)
    print(f"    {name:26s} median MR-STFT {np.median(d):.3f} SC {np.median(sc):.3f}, fallbacks {len(fallbacks)}")
