"""Experiment: CMA-ES's first step from a match's start (``core/refine.py: SIGMA``) at one budget.

``deepdiva match --refine`` as it runs by default (network and shipped bank start) on the tuning rows
of the held-out renders (eval-notes rows 100-159: not the 30 that ``benchmarks/match.py --parts
refine`` reports), once per first step, each target's searches one after another.

    .venv/bin/python scripts/experiments/refine_step.py [BUDGET_SECONDS] [SIGMAS]   (default: 10 0.03,0.1)

Prints running medians, then per step against the first: median and mean distance, closer /
further, geometric mean of the ratio. Timed: run it on an idle machine.
"""
import logging
import sys

import numpy as np

import deepdiva.core.matcher as matcher_module
from deepdiva.core.bank import shipped_bank
from deepdiva.core.matcher import Matcher
from deepdiva.training.dataset import Dataset, is_silent

logging.disable(logging.WARNING)
budget = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
sigmas = [float(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "0.03,0.1").split(",")]
plain = Matcher.load(bank=False, refine=True)
matcher = Matcher(plain.model, plain.renderer, plain.threads, bank=shipped_bank(plain.parameter_set))
ds = Dataset.open("data/eval-notes")
audio = np.asarray(ds.load_shard(ds.shards[0], "audio"))
audio = audio[~is_silent(audio)][100:160]
rows: dict[float, list[float]] = {s: [] for s in sigmas}
for i, clip in enumerate(audio):
    for s in sigmas:
        matcher_module.SIGMA = s  # what Matcher._match passes to refine for a start near the target
        rows[s].append(matcher.match(clip, refine_seconds=budget, seed=i).distance)
    if (i + 1) % 10 == 0:
        print(i + 1, {s: round(float(np.median(v)), 3) for s, v in rows.items()}, flush=True)
first = np.array(rows[sigmas[0]])
for s in sigmas[1:]:
    b = np.array(rows[s])
    print(f"first step {s} against {sigmas[0]} at {budget:g} s: median {np.median(b):.3f} against {np.median(first):.3f}, "
          f"mean {b.mean():.3f} against {first.mean():.3f}, closer {(b < first).sum()} / further {(b > first).sum()}, "
          f"geometric mean of the ratio {np.exp(np.mean(np.log(b / first))):.3f}")
