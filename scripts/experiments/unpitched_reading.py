"""Experiment: may an answer whose render reads *unpitched* be written for a clearly pitched target?

``Matcher`` takes only answers whose render sounds within a quarter tone of the target's pitch;
a render with no clear pitch in its first 0.6 s counts as out of tune and is passed over (the
network's, the bank's, a search's best). Some targets hold their pitch only in their first frames
(a blip, then noise or a sweep), and answers that sound closer by both the log and the linear
measure were passed over for that. Rules, each as the scored ``deepdiva match`` (shipped bank):

- ``passed``: such an answer is passed over (the rule before ``Matcher._heard_closer``).
- ``both``: as it is: the closest option, or a search's best, heard without a pitch replaces the
  answer in tune when it is closer by the full distance and by spectral convergence.
- ``any``: a render read as unpitched counts as in tune (what the rule would give without a guard).
- ``fragile``: ... only for a target whose pitch does not hold: read again from 0.3 s on, it has
  no clear pitch (clarity < PITCHED_CLARITY) or another one.

    .venv/bin/python scripts/experiments/unpitched_reading.py [--rules passed,both,any,fragile] DIR ... [renders]
    .venv/bin/python scripts/experiments/unpitched_reading.py --refine S DIR ... [renders]

``--refine S``: one match with a search of S s per target (``both`` for the choice before it), its
results kept by ``passed`` and by ``both`` side by side: the same search, so no timing noise between
them. Timed: run it on an idle machine.

``renders``: held-out builtin renders (data/eval-notes rows 100-299, random keys). Prints per set
and rule median MR-STFT / SC, closer / further than the first rule by MR-STFT and how many of those
also by SC, and how many answers read unpitched for a target the match held to its pitch.
"""
import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from match import readable_takes  # noqa: E402

from deepdiva.core.matcher import PITCHED_CLARITY, Matcher, _within_tune  # noqa: E402
from deepdiva.core.metrics import multires_stft_distance, spectral_convergence  # noqa: E402
from deepdiva.core.pitch import detect_pitches  # noqa: E402
from deepdiva.training.dataset import Dataset, is_silent  # noqa: E402

logging.disable(logging.WARNING)
parser = argparse.ArgumentParser()
parser.add_argument("sets", nargs="+")
parser.add_argument("--refine", type=float, default=0.0)
parser.add_argument("--rules", default="passed,both,any")
parser.add_argument("--limit", type=int, default=0)
args = parser.parse_args()
rules = args.rules.split(",")

sets: dict[str, np.ndarray] = {}
for name in args.sets:
    if name == "renders":
        ds = Dataset.open("data/eval-notes")
        audio = np.asarray(ds.load_shard(ds.shards[0], "audio"))
        sets["renders"] = audio[~is_silent(audio)][100:300]
    else:
        notes = [take.note for _, take in readable_takes([Path(name)])]
        sets[f"{Path(name).parent.name}/{Path(name).name}"] = np.stack(notes[: args.limit or None])

matcher = Matcher.load(refine=args.refine > 0)
original_off_pitch = Matcher.off_pitch
state = {"rule": "both", "fragile": False}
original_heard_closer = Matcher._heard_closer


def off_pitch(self, renders, pitch):
    offs = original_off_pitch(self, renders, pitch)
    if state["rule"] == "any" or (state["rule"] == "fragile" and state["fragile"]):
        reads = self.detect(renders)
        return [0.0 if o is None and not r.pitched else o for o, r in zip(offs, reads, strict=True)]
    return offs


def heard_closer(self, *args):
    return state["rule"] == "both" and original_heard_closer(self, *args)


Matcher.off_pitch = off_pitch
Matcher._heard_closer = heard_closer


def fragile(note: np.ndarray, sr: int) -> bool:
    first = detect_pitches(note[None, :], sr)[0]
    later = detect_pitches(note[None, int(0.3 * sr):], sr)[0]
    return not (later.pitched and later.clarity >= PITCHED_CLARITY and _within_tune(later.midi_float - first.midi_float))


def compare(name: str, rule: str, targets: np.ndarray, renders: np.ndarray, held: list[bool],
            results: dict[str, tuple[np.ndarray, np.ndarray]], first: str, extra: str = "") -> None:
    """Print one rule's line: medians, unpitched answers, against the ``first`` rule's results."""
    mr, sc = multires_stft_distance(renders, targets), spectral_convergence(renders, targets)
    reads = matcher.detect(renders)
    unpitched = sum(h and not r.pitched for h, r in zip(held, reads, strict=True))
    results[rule] = (mr, sc)
    line = f"{name:20s} {rule:8s} {np.median(mr):.3f} / {np.median(sc):.3f}  unpitched answers {unpitched}"
    if rule != first:
        m0, s0 = results[first]
        closer, further = mr < m0 - 1e-6, mr > m0 + 1e-6
        line += (f"  closer {closer.sum()} (SC too {(closer & (sc < s0)).sum()}) / further {further.sum()}"
                 f" (SC too {(further & (sc > s0)).sum()}), geometric mean {np.exp(np.mean(np.log(mr / m0))):.3f}")
    print(line, extra, flush=True)


if args.refine > 0:  # one search per target, its results kept by both rules
    original_searched = Matcher._searched_in_tune
    kept: dict[str, np.ndarray] = {}

    def searched_in_tune(self, *a, **k):
        for rule in ("passed", "both"):
            state["rule"] = rule
            found, renders = original_searched(self, *a, **k)
            kept[rule] = renders[0]
        return found, renders

    Matcher._searched_in_tune = searched_in_tune
    for name, targets in sets.items():
        written: dict[str, list[np.ndarray]] = {"passed": [], "both": []}
        held = []
        for i, t in enumerate(targets):
            kept.clear()
            state["rule"] = "both"
            out = matcher.match(t, refine_seconds=args.refine, seed=i)
            held.append(matcher.keeps_pitch(out.pitch) and out.chord is None)
            for rule in written:
                written[rule].append(kept.get(rule, out.audio))
        results: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for rule in written:
            compare(name, rule, targets, np.stack(written[rule]), held, results, "passed", f"(search {args.refine:g} s)")
    raise SystemExit

for name, targets in sets.items():
    results = {}
    flags = [fragile(t, matcher.sample_rate) for t in targets]
    for rule in rules:
        state["rule"] = rule
        outs = []
        for i, t in enumerate(targets):
            state["fragile"] = flags[i]
            outs.append(matcher.match(t, refine_seconds=args.refine, seed=i))
        renders = np.stack([o.audio for o in outs])
        held = [matcher.keeps_pitch(o.pitch) and o.chord is None for o in outs]
        compare(name, rule, targets, renders, held, results, rules[0], f"(fragile targets {sum(flags)} of {len(targets)})")
