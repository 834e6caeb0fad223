"""Experiment (models/README, "answers pulled toward the sound"): side by side on held-out renders,
each answer of a model rendered raw at the key a match plays and scored by MR-STFT x SC against the
target; the answer each chooser picks: the confidence, a sound proxy (training.sound_proxy: the
answer whose proxy summary is nearest the target's own mel summary, no render), the real summary
of its render (the proxy's ceiling) and the closest by the renders themselves.

    .venv/bin/python scripts/experiments/answers_by_sound.py PROXY.keras EVAL N [MODEL.onnx | WEIGHTS.weights.h5]

WEIGHTS: a Keras fine-tune of the shipped model (loaded into it as rebuilt by training.onnx_import).
"""
import sys

import keras
import numpy as np
from scipy.stats import spearmanr

from deepdiva.core.features import FeatureConfig, mel_db_features
from deepdiva.core.matcher import Matcher
from deepdiva.core.metrics import multires_stft_distance, spectral_convergence
from deepdiva.training.dataset import Dataset
from deepdiva.training.models import head_layout
from deepdiva.training.sound_proxy import centred, heads_representation, key_input, pooled

PROXY, DATA, N = sys.argv[1], sys.argv[2], int(sys.argv[3])
MODEL = sys.argv[4] if len(sys.argv) > 4 else None
weights = MODEL if MODEL and MODEL.endswith(".weights.h5") else None
m = Matcher.load(MODEL, bank=False) if MODEL and not weights else Matcher.load(bank=False)
proxy = keras.models.load_model(PROXY)
ds = Dataset.open(DATA)
layout = head_layout(ds.parameter_set)
audio = np.asarray(ds.load_shard(ds.shards[0], "audio"))[:N].astype(np.float32)
pitches = m.detect(audio)
x = m.features(audio, pitches)
keys = np.array([m.played_at(p).midi_float for p in pitches], np.float32)
if weights:
    from deepdiva.training.onnx_import import keras_from_onnx

    net = keras_from_onnx("models/deepdiva-medium33.onnx", x[:256])
    net.load_weights(weights)
    out = net.predict(x, batch_size=128, verbose=0)
    hyps = np.asarray(out[net.output_names.index("hypotheses")])
    confidence = np.asarray(out[net.output_names.index("confidence")])
else:
    hyps, confidence = m.model.predict_hypotheses(x)
h = hyps.shape[1]
mr, sc, pd, sd = (np.empty((N, h)) for _ in range(4))
target = centred(pooled(x[..., 0]))
for j in range(h):
    params = m.tidied(hyps[:, j], pitches)
    a = m.renderer.render(params, keys)
    mr[:, j] = multires_stft_distance(a, audio)
    sc[:, j] = spectral_convergence(a, audio)
    guess = proxy.predict(np.concatenate([heads_representation(params, layout), key_input(keys)], axis=1),
                          verbose=0, batch_size=512)
    pd[:, j] = np.abs(centred(guess) - target).mean(axis=1)
    sd[:, j] = np.abs(centred(pooled(mel_db_features(a, FeatureConfig())[..., 0])) - target).mean(axis=1)
cost = mr * sc
r = np.arange(N)


def rho(a, b):
    return np.nanmean([spearmanr(a[i], b[i])[0] for i in r])


print(f"{N} held-out targets of {DATA}; Spearman per target: proxy vs cost {rho(pd, cost):.3f}, "
      f"real summary vs cost {rho(sd, cost):.3f}, proxy vs real summary {rho(pd, sd):.3f}")
closest = np.argmin(cost, axis=1)
picks = {"most confident": np.argmax(confidence, axis=1), "proxy": np.argmin(pd, axis=1),
         "real summary": np.argmin(sd, axis=1), "closest (renders)": closest}
for name, pick in picks.items():
    print(f"  {name:18s} MR-STFT {np.median(mr[r, pick]):.3f}  SC {np.median(sc[r, pick]):.3f}  "
          f"cost {np.median(cost[r, pick]):.3f}  = closest {np.mean(pick == closest):.2f}")
spread = float(np.mean(np.abs(hyps - hyps.mean(axis=1, keepdims=True))))
print(f"  answers' spread {spread:.4f}")
