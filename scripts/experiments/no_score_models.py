"""Experiment (issue 12): several models side by side as ``deepdiva match --no-score`` answers, on the
benchmark's sets (``benchmarks/match.py target_sets``: 200 held-out builtin renders at random keys and
at C3, raised as a match raises a quiet take, and each out-of-domain folder of data/ood), with the
answers written that are mute (``core.level.mute``). Faster than the benchmark's lookup part (no scored
match): a few minutes for two models. Folders given too (arguments without ``=``) are each one more
set, their takes prepared as ``deepdiva match`` prepares them (e.g. the development sets).

    .venv/bin/python scripts/experiments/no_score_models.py v5=models/deepdiva-medium33.onnx new=runs/x/m.onnx [DIR ...]

``--scored``: the scored ``deepdiva match`` instead (with the shipped bank, as it runs by default).
``--only-folders``: the folders given only, not the benchmark's sets.

Prints per set and model: median MR-STFT / median spectral convergence, mute answers written.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from match import readable_takes, target_sets  # noqa: E402

from deepdiva.core.level import mute  # noqa: E402
from deepdiva.core.matcher import Matcher  # noqa: E402
from deepdiva.core.metrics import multires_stft_distance, spectral_convergence  # noqa: E402

flags = {a for a in sys.argv[1:] if a.startswith("--")}
scored = "--scored" in flags
sets = {} if "--only-folders" in flags else target_sets(Path("data/eval-notes"), Path("data/eval-medium33"),
                                                        Path("data/ood"), 200)
for folder in (Path(a) for a in sys.argv[1:] if "=" not in a and a not in flags):  # beside the benchmark's sets
    notes = [take.note for _, take in readable_takes([folder])]
    if not notes:
        raise SystemExit(f"{folder}: no sound file a match can read (a dataset folder? its renders are in the sets)")
    sets[f"{folder.parent.name}/{folder.name}"] = np.stack(notes)
models = (a.split("=", 1) for a in sys.argv[1:] if "=" in a)
matchers = {label: Matcher.load(path, bank=None if scored else False) for label, path in models}
for name, targets in sets.items():
    line = f"{name:22s}"
    first = None
    for label, m in matchers.items():
        outs = [m.match(t, score=scored) for t in targets]
        renders = np.stack([o.audio for o in outs])
        mr, sc = multires_stft_distance(renders, targets), spectral_convergence(renders, targets)
        muted = sum(bool(mute(m.parameter_set, o.params[None], o.audio[None], t)[0])
                    for o, t in zip(outs, targets, strict=True))
        line += f" | {label}: {np.median(mr):.3f} / {np.median(sc):.3f} mute {muted}"
        if first is None:
            first = mr
        else:  # target by target against the first model: closer / further by MR-STFT
            line += f" ({int((mr < first - 1e-6).sum())} closer / {int((mr > first + 1e-6).sum())} further)"
    print(line, flush=True)
