"""Experiment (issue 12, "silent presets are written"): how often the answer a match writes is mute
(:func:`deepdiva.core.level.mute`: no volume setting makes it heard within 30 dB of its target) on the
first N held-out renders at random keys, and what falling back to the next answer that is not changes.

    .venv/bin/python scripts/experiments/silent_answers.py N MODEL.onnx [MODEL.onnx ...]

Per model: the unscored match as it was (the most confident answer, mute or not) beside the unscored
match now (``Matcher.match(score=False)``), and the scored match (no bank) on the first N // 4: mute
answers written, median MR-STFT and spectral convergence (medians over the rows whose answer changed too).
"""
import sys

import numpy as np

from deepdiva.core.level import mute
from deepdiva.core.matcher import Matcher
from deepdiva.core.metrics import multires_stft_distance, spectral_convergence
from deepdiva.training.dataset import Dataset, is_silent

N = int(sys.argv[1])
ds = Dataset.open("data/eval-notes")
audio = np.asarray(ds.load_shard(ds.shards[0], "audio"))[:N].astype(np.float32)
print(f"targets silent: {int(is_silent(audio).sum())} of {N}")


def summary(name: str, params: np.ndarray, renders: np.ndarray, targets: np.ndarray, changed: np.ndarray) -> None:
    muted = np.array([mute(m.parameter_set, p[None], r[None], t)[0] for p, r, t in zip(params, renders, targets, strict=True)])
    mr, sc = multires_stft_distance(renders, targets), spectral_convergence(renders, targets)
    print(f"  {name:28s} mute {int(muted.sum()):3d} of {len(targets)}  median MR-STFT {np.median(mr):.3f} "
          f"SC {np.median(sc):.3f}  | on the {int(changed.sum())} changed: MR-STFT "
          f"{np.median(mr[changed]) if changed.any() else float('nan'):.3f} SC "
          f"{np.median(sc[changed]) if changed.any() else float('nan'):.3f}")


for path in sys.argv[2:]:
    m = Matcher.load(path, bank=False)
    pitches = m.detect(audio)
    keys = np.array([m.played_at(p).midi_float for p in pitches])
    before = [m.finished_unscored(m.unscored(a, p), a, k, p, m.note_length(a)) for a, p, k in zip(audio, pitches, keys, strict=True)]
    after = [m.match(a, score=False) for a in audio]
    changed = np.array([not np.array_equal(b[0], x.params) for b, x in zip(before, after, strict=True)])
    print(path)
    summary("--no-score, before", np.stack([b[0] for b in before]), np.stack([b[1] for b in before]), audio, changed)
    summary("--no-score, now", np.stack([x.params for x in after]), np.stack([x.audio for x in after]), audio, changed)
    scored = [m.match(a) for a in audio[: N // 4]]
    summary("scored match, now", np.stack([x.params for x in scored]), np.stack([x.audio for x in scored]),
            audio[: N // 4], np.zeros(N // 4, bool))
