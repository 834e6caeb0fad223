"""Experiment (not a tool; models/README, "answers chosen by their sound"): train the shipped cnn3h further with each example's winning answer chosen by SOUND
(MR-STFT x SC of the answer's render against the true patch's render, both played at the key a
match plays), not by parameter distance. EM-style rounds: E = predict 8 answers, render, score,
pick; M = one epoch on those rows with the winner as a label.

    .venv/bin/python scripts/experiments/sound_winner.py ROUNDS ROWS_PER_ROUND OUT.weights.h5 DATA RUN

DATA: a dataset with the mel_db_pitch feature cached (``dataset generate ... --feature mel_db_pitch
--no-audio``); RUN: a ``deepdiva train`` run on it whose config holds the sensitivity loss weights.
One core renders and scores: ~0.2 s a row for the E step (6,000 rows: 20 min); a worker pool is
the first thing to add.
"""
import json
import sys
import time

import keras
import numpy as np
from keras import ops

from deepdiva.core.metrics import multires_stft_distance, spectral_convergence
from deepdiva.core.renderers import make_renderer
from deepdiva.training.dataset import Dataset
from deepdiva.training.features_cache import CachedFeatures, split_for
from deepdiva.training.models import HypothesesLoss, decode_layer, head_errors
from deepdiva.training.onnx_import import keras_from_onnx

ROUNDS, ROWS, OUT, DATA, RUN = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
SHIPPED = "models/deepdiva-medium33.onnx"
ds = Dataset.open(DATA)
store = CachedFeatures(ds, "mel_db_pitch")
split = split_for(ds, 0.02, 0)
heard = np.concatenate([np.load(ds.shard_dir(s) / "pitch.npy") for s in ds.shards])
keys = np.where(np.isfinite(heard), heard, 48.0)
weights = json.load(open(f"{RUN}/config.json"))["loss_weights"]
renderer = make_renderer(ds.spec.renderer, ds.parameter_set, ds.spec.render)


class SoundWinnerLoss(HypothesesLoss):
    """HypothesesLoss with the winner given as y_true's last column instead of the parameter-closest."""

    def call(self, y_true, y_pred):
        width = y_pred.shape[-1]
        params, win = y_true[:, :-1], ops.cast(y_true[:, -1], "int32")
        errors = head_errors(self.layout, self.weights, params, y_pred[..., :width - 1])  # (n, k)
        k = errors.shape[-1]
        chosen = ops.sum(errors * ops.one_hot(win, k), axis=-1)
        confidence = keras.losses.sparse_categorical_crossentropy(win, y_pred[..., width - 1], from_logits=True)
        return ((1.0 - self.spread) * chosen + self.spread * ops.sum(errors, axis=-1) / k
                + self.confidence_weight * confidence)


x0, _ = store.get(split.train[:256])
model = keras_from_onnx(SHIPPED, x0)
layout = decode_layer(model).layout
opt = keras.optimizers.Adam(1e-4)
model.compile(optimizer=opt, loss={"params": None, "heads": SoundWinnerLoss(layout, weights=weights),
                                   "hypotheses": None, "confidence": None})
hyp_index = model.output_names.index("hypotheses")
rng = np.random.default_rng(7)


def winners(x, y, rows):
    hyps = np.asarray(model.predict(x, batch_size=128, verbose=0)[hyp_index])  # (n, 8, k)
    n, h, k = hyps.shape
    q = ds.parameter_set.quantise
    costs = np.empty((n, h))
    param_win = np.argmin(np.abs(hyps - y[:, None, :]).mean(axis=-1), axis=1)
    for s in range(0, n, 256):  # in blocks: 8,000 renders of 2 s and their spectra do not fit in memory
        b = slice(s, min(n, s + 256))
        truth = renderer.render(q(y[b]), keys[rows[b]])
        for j in range(h):
            audio = renderer.render(q(hyps[b, j]), keys[rows[b]])
            costs[b, j] = multires_stft_distance(audio, truth) * spectral_convergence(audio, truth)
    return np.argmin(costs, axis=1), costs, param_win, hyps


for r in range(ROUNDS):
    began = time.time()
    rows = np.sort(rng.choice(split.train, ROWS, replace=False))
    x, y = store.get(rows)
    win, costs, param_win, hyps = winners(x, y, rows)
    spread = float(np.mean(np.abs(hyps - hyps.mean(axis=1, keepdims=True))))
    e_time = time.time() - began
    y_aug = np.concatenate([y, win[:, None].astype(np.float32)], axis=1)
    hist = model.fit(x, tuple([y_aug] * len(model.outputs)), batch_size=64, epochs=1, verbose=0, shuffle=True)
    print(f"round {r + 1}: E {e_time:.0f} s (median closest cost {np.median(costs.min(axis=1)):.3f}, "
          f"answer 0 {np.median(costs[:, 0]):.3f}, winners by sound = by params {np.mean(win == param_win):.2f}, "
          f"winner counts {np.bincount(win, minlength=8).tolist()}, answer spread {spread:.4f}), "
          f"M loss {hist.history['loss'][-1]:.4f} ({time.time() - began:.0f} s)", flush=True)
    model.save_weights(OUT)
