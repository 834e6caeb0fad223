"""Experiment (models/README, "answers chosen by their sound"): side by side on held-out renders (eval-notes, rows 0..N): the shipped model and the sound-winner
weights, each as a Keras model on the same features; every answer rendered at the key a match
plays; median MR-STFT and SC of answer 0 (most confident), the closest by MR-STFT x SC, and the
answers' spread.

    .venv/bin/python scripts/experiments/sound_winner_eval.py N WEIGHTS.h5 [WEIGHTS.h5 ...]
"""
import sys

import numpy as np

from deepdiva.core.matcher import Matcher
from deepdiva.core.metrics import multires_stft_distance, spectral_convergence
from deepdiva.training.dataset import Dataset
from deepdiva.training.onnx_import import keras_from_onnx

N = int(sys.argv[1])
m = Matcher.load(bank=False)
ds = Dataset.open("data/eval-notes")
audio = np.asarray(ds.load_shard(ds.shards[0], "audio"))[:N].astype(np.float32)
pitches = m.detect(audio)
x = m.features(audio, pitches)
keys = np.array([m.played_at(p).midi_float for p in pitches])
model = keras_from_onnx("models/deepdiva-medium33.onnx", x[:256])
hyp = model.output_names.index("hypotheses")
conf = model.output_names.index("confidence")


def report(name):
    out = model.predict(x, batch_size=128, verbose=0)
    hyps, confidence = np.asarray(out[hyp]), np.asarray(out[conf])
    order = np.argsort(-confidence, axis=1)
    n, h, k = hyps.shape
    mr = np.empty((n, h))
    sc = np.empty((n, h))
    for j in range(h):
        params = m.tidied(hyps[:, j], pitches)
        a = m.renderer.render(params, keys)
        mr[:, j] = multires_stft_distance(a, audio)
        sc[:, j] = spectral_convergence(a, audio)
    best = np.argmin(mr * sc, axis=1)
    top = order[:, 0]
    r = np.arange(n)
    spread = float(np.mean(np.abs(hyps - hyps.mean(axis=1, keepdims=True))))
    print(f"{name:28s} most confident {np.median(mr[r, top]):.3f} / {np.median(sc[r, top]):.3f}   "
          f"closest (MR x SC) {np.median(mr[r, best]):.3f} / {np.median(sc[r, best]):.3f}   "
          f"closest by MR {np.median(mr.min(axis=1)):.3f}   spread {spread:.4f}", flush=True)


report("shipped (v3, confidence refit)")
for path in sys.argv[2:]:
    model.load_weights(path)
    report(path.rsplit("/", 1)[-1])
