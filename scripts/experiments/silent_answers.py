"""Experiment (issue 12 note, "silent presets are written"): how often the answer a match writes is
silent although its target is not, on the first N held-out renders at random keys, per model.

    .venv/bin/python scripts/experiments/silent_answers.py N MODEL.onnx [MODEL.onnx ...]
"""
import sys

import numpy as np

from deepdiva.core.matcher import Matcher
from deepdiva.training.dataset import Dataset, is_silent

N = int(sys.argv[1])
ds = Dataset.open("data/eval-notes")
audio = np.asarray(ds.load_shard(ds.shards[0], "audio"))[:N].astype(np.float32)
print(f"targets silent: {int(is_silent(audio).sum())} of {N}")
for path in sys.argv[2:]:
    m = Matcher.load(path, bank=False)
    pitches = m.detect(audio)
    keys = np.array([m.played_at(p).midi_float for p in pitches])
    hyps, _ = m.model.predict_hypotheses(m.features(audio, pitches))
    raw = is_silent(m.renderer.render(m.tidied(hyps[:, 0], pitches), keys))
    unscored = is_silent(np.stack([m.match(a, score=False).audio for a in audio]))
    scored = is_silent(np.stack([m.match(a).audio for a in audio[: N // 4]]))
    print(f"{path}: silent answers: most confident raw {int(raw.sum())} of {N}, --no-score {int(unscored.sum())} "
          f"of {N}, scored match (no bank) {int(scored.sum())} of {N // 4}")
