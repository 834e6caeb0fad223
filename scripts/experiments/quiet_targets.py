"""Experiment (issue 12): how a model answers quiet targets, fed as rendered or raised to -18 dBFS as a
match raises a quiet take (``core.audio.raised_to_nominal``), on the first N held-out renders at random
keys (data/eval-notes).

    .venv/bin/python scripts/experiments/quiet_targets.py MODEL.onnx [--n 300] [--quiet-below -30]

1. The share of the network's answers (all eight, raw, at the detected key) that are mute
   (``core.level.mute``) against the target, for quiet targets (peak under -40 dBFS) and the rest.
2. ``--no-score`` answers to the targets peaking under ``--quiet-below`` (up to 60), each brought to the
   raised target's RMS level: median MR-STFT and spectral convergence against the raised target.
(A model whose card raises notes itself, ``feature.nominal_peak_dbfs``, reads both feeds alike.)
"""
import argparse

import numpy as np

from deepdiva.core.audio import peak_dbfs, raised_to_nominal
from deepdiva.core.level import at_rms_of, mute
from deepdiva.core.matcher import Matcher
from deepdiva.core.metrics import multires_stft_distance, spectral_convergence
from deepdiva.training.dataset import Dataset

parser = argparse.ArgumentParser()
parser.add_argument("model")
parser.add_argument("--n", type=int, default=300)
parser.add_argument("--quiet-below", type=float, default=-30.0)
args = parser.parse_args()

ds = Dataset.open("data/eval-notes")
audio = np.asarray(ds.load_shard(ds.shards[0], "audio"))[:args.n].astype(np.float32)
raised = raised_to_nominal(audio)
m = Matcher.load(args.model, bank=False)
peaks = np.array([peak_dbfs(a) for a in audio])
print("target peaks (dBFS) at the 5/10/25/50/75th percentiles:", np.percentile(peaks, [5, 10, 25, 50, 75]).round(1))
quiet = peaks < -40
for feed, targets in (("as rendered", audio), ("raised", raised)):
    share, any_mute, first = [], [], []
    for a in targets:
        pitch = m.detect(a[None])[0]
        answers = m.hypotheses(a, pitch)
        renders = m.renderer.render(answers, np.full(len(answers), m.played_at(pitch).midi_float))
        muted = mute(m.parameter_set, answers, renders, a)
        share.append(muted.mean())
        any_mute.append(muted.any())
        first.append(muted[0])
    share, any_mute, first = map(np.array, (share, any_mute, first))
    for label, rows in (("all", np.ones(len(audio), bool)), ("under -40 dBFS", quiet), ("louder", ~quiet)):
        print(f"{feed:12s} {label:15s} n={rows.sum():3d}  mute: of all answers {share[rows].mean():.3f}, "
              f"targets with one {any_mute[rows].mean():.3f}, most confident {first[rows].mean():.3f}")
rows = np.nonzero(peaks < args.quiet_below)[0][:60]
for feed, targets in (("as rendered", audio), ("raised", raised)):
    renders = np.stack([m.match(targets[i], score=False).audio for i in rows])
    want = raised[rows]
    renders = np.concatenate([at_rms_of(r[None], w) for r, w in zip(renders, want, strict=True)])
    print(f"--no-score, {len(rows)} targets under {args.quiet_below:g} dBFS fed {feed}: median MR-STFT "
          f"{np.median(multires_stft_distance(renders, want)):.3f}, SC {np.median(spectral_convergence(renders, want)):.3f}")
