"""Experiment (issue 12, "silent presets are written"): how often the answer a match writes is mute
(:func:`deepdiva.core.level.mute`: no volume setting brings it within 30 dB of its target's level), and
what falling back on the closest of the network's answers that is heard changes, per set.

    .venv/bin/python scripts/experiments/silent_answers.py MODEL.onnx [--n 400] [--ood data/ood] [--scored 100]

Sets: the first N held-out renders at random keys (data/eval-notes) and, with --ood, each folder of
benchmarks/ood_sets.py. Per set: the unscored match as it was (the most confident answer, mute or
not) beside the unscored match now (``Matcher.match(score=False)``): mute answers written, median
MR-STFT and spectral convergence over the set and over the rows whose answer changed; with --scored,
the scored match (no bank) on the first that many of the held-out renders.
"""
import argparse
from pathlib import Path

import numpy as np

from deepdiva.core import matcher as matcher_module
from deepdiva.core.audio import prepare_note, read_audio
from deepdiva.core.level import mute
from deepdiva.core.matcher import Matcher
from deepdiva.core.metrics import multires_stft_distance, spectral_convergence
from deepdiva.training.dataset import Dataset, is_silent

parser = argparse.ArgumentParser()
parser.add_argument("model")
parser.add_argument("--n", type=int, default=400)
parser.add_argument("--ood", type=Path, default=None)
parser.add_argument("--scored", type=int, default=0)
args = parser.parse_args()

ds = Dataset.open("data/eval-notes")
held_out = np.asarray(ds.load_shard(ds.shards[0], "audio"))[:args.n].astype(np.float32)
sets = {"builtin, random keys": held_out}
if args.ood is not None:
    for folder in sorted(p for p in args.ood.iterdir() if p.is_dir()):
        sets[folder.name] = np.stack([prepare_note(read_audio(f)) for f in sorted(folder.glob("*.wav"))])
m = Matcher.load(args.model, bank=False)


def summary(name: str, params: np.ndarray, renders: np.ndarray, targets: np.ndarray, changed: np.ndarray) -> None:
    muted = np.array([mute(m.parameter_set, p[None], r[None], t)[0]
                      for p, r, t in zip(params, renders, targets, strict=True)])
    mr, sc = multires_stft_distance(renders, targets), spectral_convergence(renders, targets)
    part = (f"| the {int(changed.sum())} changed: MR-STFT {np.median(mr[changed]):.3f} SC {np.median(sc[changed]):.3f}"
            if changed.any() else "")
    print(f"    {name:22s} mute {int(muted.sum()):3d} of {len(targets)}  median MR-STFT {np.median(mr):.3f} "
          f"SC {np.median(sc):.3f}  {part}")


for set_name, audio in sets.items():
    print(f"{set_name} ({len(audio)} targets, {int(is_silent(audio).sum())} silent)")
    matcher_module.mute = lambda pset, params, renders, target: np.zeros(len(params), bool)  # as it was: none is
    before = [m.match(a, score=False) for a in audio]
    matcher_module.mute = mute
    after = [m.match(a, score=False) for a in audio]
    changed = np.array([not np.array_equal(b.params, x.params) for b, x in zip(before, after, strict=True)])
    summary("--no-score, before", np.stack([b.params for b in before]), np.stack([b.audio for b in before]), audio,
            changed)
    summary("--no-score, now", np.stack([x.params for x in after]), np.stack([x.audio for x in after]), audio, changed)
if args.scored:
    scored = [m.match(a) for a in held_out[:args.scored]]
    summary("scored match, now", np.stack([x.params for x in scored]), np.stack([x.audio for x in scored]),
            held_out[:args.scored], np.zeros(args.scored, bool))
