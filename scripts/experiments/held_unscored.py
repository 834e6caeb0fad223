"""Experiment: ``deepdiva match --no-score`` writing a held note's envelope into its answer, as it
writes a dying note's (``Matcher.enveloped_if_dying``), side by side with the match as it is.

A held note (``core.envelope.amp_envelope``: no decay read, perhaps let go) gets the measured attack
and full sustain (and, let go, its release on the decay knob, as ``with_envelope`` writes it for the
scored match's enveloped options). Sets: the benchmark's (``benchmarks/match.py target_sets``) and any
folders given (takes prepared as ``deepdiva match`` prepares them, the rest of the take with them).

    .venv/bin/python scripts/experiments/held_unscored.py [DIR ...]

Prints per set: how many targets read as held, and over those the median MR-STFT / SC as it is ->
with the held envelope written, and how many came closer / further by MR-STFT.
"""
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from match import readable_takes, target_sets  # noqa: E402

from deepdiva.core.envelope import amp_envelope, noise_floor, with_envelope  # noqa: E402
from deepdiva.core.matcher import Matcher  # noqa: E402
from deepdiva.core.metrics import SpectralTarget, spectral_convergence  # noqa: E402

logging.disable(logging.WARNING)
matcher = Matcher.load(bank=False)
rate, pset = matcher.sample_rate, matcher.parameter_set
as_is = Matcher.enveloped_if_dying
sustain = pset.role_column("amp_sustain")


def held_too(self: Matcher, answers: np.ndarray, envelope):  # type: ignore[no-untyped-def]
    if envelope is not None and envelope.decay is None:  # held: full sustain (with_envelope sets it when let go)
        fitted = with_envelope(pset, answers, envelope)
        if fitted is not None and envelope.release is None:
            native = pset.from_normalised(fitted)
            native[:, sustain] = pset.parameters[sustain].high
            fitted = pset.quantise(pset.to_normalised(native))
        return answers if fitted is None else fitted
    return as_is(self, answers, envelope)


sets = {name: [(t, None, None) for t in targets] for name, targets in
        target_sets(Path("data/eval-notes"), Path("data/eval-medium33"), Path("data/ood"), 200).items()}
for d in map(Path, sys.argv[1:]):
    sets[f"{d.parent.name}/{d.name}"] = [(t.note, t.lead_in, t.after)
                                         for _, t in readable_takes([d], rate, matcher.seconds)]
for name, targets in sets.items():
    rows = []
    for note, lead_in, after in targets:
        noise = noise_floor(note, rate, lead_in)
        envelope = amp_envelope(note, rate, noise, after)
        if envelope is None or envelope.decay is not None:
            continue
        Matcher.enveloped_if_dying = as_is
        a = matcher.match(note, score=False, lead_in=lead_in, after=after)
        Matcher.enveloped_if_dying = held_too
        b = matcher.match(note, score=False, lead_in=lead_in, after=after)
        renders = np.stack([a.audio, b.audio])
        d = SpectralTarget(note, noise=noise).distance(renders)
        sc = spectral_convergence(renders, note[None])
        rows.append((d[0], d[1], sc[0], sc[1]))
    Matcher.enveloped_if_dying = as_is
    if not rows:
        print(f"{name:24s} no held targets")
        continue
    r = np.asarray(rows)
    m = np.median(r, axis=0)
    print(f"{name:24s} {len(r):4d} of {len(targets):4d} held: {m[0]:.3f} / {m[2]:.3f} -> {m[1]:.3f} / {m[3]:.3f}"
          f"  closer {(r[:, 1] < r[:, 0]).sum()}, further {(r[:, 1] > r[:, 0]).sum()}", flush=True)
