"""Any note in, a playable preset out: the pitch acceptance of issue 12, side by side in one run.

    .venv/bin/python benchmarks/pitch.py --old-model OLD.onnx [--model NEW.onnx] [--ood data/ood]

For five plain saws (C2, C3, C4, A4, A5) and five other pitched sounds (GM instruments from
``benchmarks/ood_sets.py``), through ``deepdiva match`` (network only) with the new and the old
model: the note detected against the truth (+-50 cents), the written preset's OSC:Tune1 (0: the
preset sounds at the key played; the strict reading) and OSC:Tune2 (within 1 semitone of 0 or of
an interval the target's own harmonics hold: an octave, an octave and a fifth, two octaves ...),
and the spectral distance (MR-STFT, SC) of each preset rendered at the key it is meant to be
played at.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import numpy as np

from deepdiva.core.audio import prepare_note, read_audio
from deepdiva.core.matcher import Matcher
from deepdiva.core.metrics import multires_stft_distance, spectral_convergence
from deepdiva.core.pitch import midi_to_hz, note_name
from deepdiva.core.profile import load_profile
from deepdiva.presets.h2p import read_h2p
from deepdiva.presets.match_job import match_file

OTHERS = ("instruments/piano-48.wav", "instruments/violin-67.wav", "instruments/flute-72.wav",
          "instruments/trumpet-58.wav", "instruments/bass-31.wav")
HARMONIC_INTERVALS = (0.0, 12.0, 19.0, 24.0, 28.0)  # harmonics 1-5 of any pitched note, in semitones


def truth_of(path: Path) -> int:
    return int(re.search(r"-(\d+)\.wav$", path.name).group(1))


def tuning(preset: Path) -> tuple[float, float]:
    profile = load_profile("diva")
    values = read_h2p(preset, profile).native_by_id(profile)
    return float(values[86]), float(values[87])


def sensible(tune1: float, tune2: float) -> bool:
    return abs(tune1) <= 1.0 and min(abs(tune2 - i) for i in HARMONIC_INTERVALS) <= 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="the new model (default: the shipped one)")
    parser.add_argument("--old-model", required=True, help="the previous model (v1)")
    parser.add_argument("--ood", default="data/ood")
    args = parser.parse_args()
    ood = Path(args.ood)
    files = sorted((ood / "saws").glob("saw-*.wav"), key=truth_of) + [ood / f for f in OTHERS]
    new, old = Matcher.load(args.model), Matcher.load(args.old_model)
    out = Path(tempfile.mkdtemp(prefix="dd-pitch-"))
    print(f"{'target':22s}{'truth':>7s}{'detected':>18s}  {'Tune1/Tune2 new':>16s}  {'old':>12s}"
          f"{'MR-STFT new':>13s}{'old':>7s}{'SC new':>8s}{'old':>7s}")
    checks = []
    for path in files:
        truth = truth_of(path)
        target = prepare_note(read_audio(path))
        reports = {}
        for label, matcher in (("new", new), ("old", old)):
            report = match_file(matcher, path, out / label, preview=True)
            tune1, tune2 = tuning(report.preset)
            audio = report.match.audio
            reports[label] = (report, tune1, tune2, float(multires_stft_distance(audio, target)[0]),
                              float(spectral_convergence(audio, target)[0]))
        pitch = reports["new"][0].match.pitch
        cents_off = 100 * (pitch.midi_float - truth) if pitch.pitched else float("nan")
        (_, t1, t2, d_new, sc_new), (_, o1, o2, d_old, sc_old) = reports["new"], reports["old"]
        ok = (abs(cents_off) <= 50, sensible(t1, t2), d_new < d_old)
        checks.append(ok)
        print(f"{path.name:22s}{note_name(truth):>7s}{pitch.name:>6s} ({cents_off:+4.0f} c)   "
              f"{t1:+5.0f}/{t2:+6.1f}    {o1:+4.0f}/{o2:+6.1f}{d_new:13.3f}{d_old:7.3f}{sc_new:8.3f}{sc_old:7.3f}"
              f"   {'ok' if all(ok) else 'MISS ' + ','.join(n for n, c in zip(('note', 'tuning', 'distance'), ok, strict=True) if not c)}")
    passed = np.array(checks)
    print(f"note within 50 cents: {passed[:, 0].sum()}/{len(files)}; tuning sensible: {passed[:, 1].sum()}/{len(files)}; "
          f"new closer than old: {passed[:, 2].sum()}/{len(files)}   (presets in {out})")
    print(f"(the old model plays every preset at {note_name(old.settings.midi_pitch)} = "
          f"{float(midi_to_hz(old.settings.midi_pitch)):.1f} Hz; the new one at the note detected, cents as fine tune)")


if __name__ == "__main__":
    main()
