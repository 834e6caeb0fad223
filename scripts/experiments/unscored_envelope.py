"""Experiment: which measured amp envelopes ``deepdiva match --no-score`` should write into its answer.

An unscored match compares nothing with the target, so it must decide by rule whether the envelope
measured in the target (``core.envelope.amp_envelope``) replaces the network's own reading. Per kind
of envelope read (dies away, let go within the render, falls to a level, held to the end), the
match as it is (``Matcher.enveloped_unscored``) side by side with two other rules:

- ``dies only``: written only when the note dies away (the rule until let-go notes were added);
- ``written``: the measurement written whatever its kind (``core.envelope.with_envelope``: the
  attack always, decay and sustain when the note falls, full sustain and the release when let go);
- ``held full``: as it is, and a note held to the end also gets the measured attack and full sustain.

Sets: the benchmark's (``benchmarks/match.py target_sets``) and any folders given (takes prepared as
``deepdiva match`` prepares them, the rest of the take with them: a note-off after the 2 s is heard).
Decide on development folders (``benchmarks/dev_sets.py``), check on the benchmark's.

    .venv/bin/python scripts/experiments/unscored_envelope.py [--only-folders] [DIR ...]

Prints per set and kind: targets, median MR-STFT / SC (as benchmarks/match.py measures them) as it
is and under each rule, and how many
came closer / further by MR-STFT (geometric mean of the ratio over those that changed).
"""
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from match import readable_takes, target_sets  # noqa: E402

from deepdiva.core.envelope import AmpEnvelope, amp_envelope, noise_floor, with_envelope  # noqa: E402
from deepdiva.core.matcher import Matcher  # noqa: E402
from deepdiva.core.metrics import multires_stft_distance, spectral_convergence  # noqa: E402

logging.disable(logging.WARNING)
matcher = Matcher.load(bank=False)
rate, pset = matcher.sample_rate, matcher.parameter_set
as_is = Matcher.enveloped_unscored
sustain = pset.role_column("amp_sustain")


def written(self: Matcher, answers: np.ndarray, envelope: AmpEnvelope | None) -> np.ndarray:
    fitted = None if envelope is None else with_envelope(pset, answers, envelope)
    return answers if fitted is None else fitted


def dies_only(self: Matcher, answers: np.ndarray, envelope: AmpEnvelope | None) -> np.ndarray:
    fitted = with_envelope(pset, answers, envelope) if envelope is not None and envelope.dies_away else None
    return answers if fitted is None else fitted


def held_full(self: Matcher, answers: np.ndarray, envelope: AmpEnvelope | None) -> np.ndarray:
    if envelope is None or kind(envelope) != "held":
        return as_is(self, answers, envelope)
    fitted = with_envelope(pset, answers, envelope)
    if fitted is None:
        return answers
    native = pset.from_normalised(fitted)
    native[:, sustain] = pset.parameters[sustain].high
    return pset.quantise(pset.to_normalised(native))


def kind(envelope: AmpEnvelope | None) -> str:
    if envelope is None:
        return "none read"
    if envelope.dies_away:
        return "dies away"
    if envelope.release is not None:
        return "let go"
    return "falls to a level" if envelope.decay is not None else "held"


RULES = {"as it is": as_is, "dies only": dies_only, "written": written, "held full": held_full}
flags = {a for a in sys.argv[1:] if a.startswith("--")}
sets = {} if "--only-folders" in flags else {
    name: [(t, None, None) for t in targets] for name, targets in
    target_sets(Path("data/eval-notes"), Path("data/eval-medium33"), Path("data/ood"), 200).items()}
for d in (Path(a) for a in sys.argv[1:] if a not in flags):
    sets[f"{d.parent.name}/{d.name}"] = [(t.note, t.lead_in, t.after)
                                         for _, t in readable_takes([d], rate, matcher.seconds)]
try:
    for name, targets in sets.items():
        kinds, scores = [], {rule: [] for rule in RULES}
        for note, lead_in, after in targets:
            noise = noise_floor(note, rate, lead_in)
            envelope = amp_envelope(note, rate, noise, after)
            late = envelope is not None and envelope.release is not None and \
                matcher.note_length(note, envelope) is None  # let go after the render: not heard in it
            kinds.append("held" if late else kind(envelope))
            for rule, method in RULES.items():
                Matcher.enveloped_unscored = method  # type: ignore[method-assign]
                # the render compared (a preview of a take let go later runs on: its first 2 s are it)
                audio = matcher.match(note, score=False, lead_in=lead_in, after=after).audio[None, :note.size]
                scores[rule].append((float(multires_stft_distance(audio, note[None])[0]),
                                     float(spectral_convergence(audio, note[None])[0])))
        Matcher.enveloped_unscored = as_is  # type: ignore[method-assign]
        print(name, flush=True)
        for k in ["every kind", *sorted(set(kinds))]:
            rows = [i for i, x in enumerate(kinds) if k in (x, "every kind")]
            base = np.array([scores["as it is"][i] for i in rows])
            line = f"    {k:16s} {len(rows):4d}  as it is {np.median(base[:, 0]):.3f} / {np.median(base[:, 1]):.3f}"
            for rule in list(RULES)[1:]:
                r = np.array([scores[rule][i] for i in rows])
                changed = np.abs(r[:, 0] - base[:, 0]) > 1e-6
                ratio = np.exp(np.mean(np.log(r[changed, 0] / base[changed, 0]))) if changed.any() else 1.0
                line += (f" | {rule} {np.median(r[:, 0]):.3f} / {np.median(r[:, 1]):.3f}"
                         f" ({int((r[:, 0] < base[:, 0] - 1e-6).sum())} closer / "
                         f"{int((r[:, 0] > base[:, 0] + 1e-6).sum())} further, {ratio:.3f})")
            print(line, flush=True)
finally:
    Matcher.enveloped_unscored = as_is  # type: ignore[method-assign]
