"""Any note in, a playable preset out: the pitch acceptance of issue 12, side by side in one run.

    .venv/bin/python benchmarks/pitch.py --old-model OLD.onnx [--model NEW.onnx] [--ood data/ood]

For five plain saws (C2, C3, C4, A4, A5) and five other pitched sounds (GM instruments from
``benchmarks/ood_sets.py``), through ``deepdiva match`` (network only) with the new and the old
model: the note detected against the truth (+-50 cents); the written preset's OSC:Tune1 and
OSC:Tune2, each within 1 semitone of 0 or of an interval the target really contains (an octave,
an octave and a fifth, two octaves, two octaves and a third: its 2nd-5th harmonic within
``CONTAINED_DB`` of its strongest partial; the issue's reading), and the strict reading beside it
(Tune1 = 0); the pitch the preset sounds at when played at its key (the pitch of its render:
within a quarter tone of the target's, "in tune"); and the spectral distance (MR-STFT, SC) of
each preset rendered at the key it is meant to be played at: the new model's ``deepdiva match``
against the old model's through the same code ("old": today's scored choice, with the plain
patches, at C3), and against the old model's own answer ("v1 alone": its network answer at C3,
in tune and at the target's level, ``--no-score``: what v1 did). Then, over every clearly pitched
out-of-domain target (instruments, the range's ends, amsynth), how many presets sound in tune.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import numpy as np

from deepdiva.core.audio import prepare_note, read_audio
from deepdiva.core.matcher import IN_TUNE_SEMITONES, Matcher
from deepdiva.core.metrics import multires_stft_distance, spectral_convergence
from deepdiva.core.pitch import midi_to_hz, note_name
from deepdiva.core.profile import load_profile
from deepdiva.presets.h2p import read_h2p
from deepdiva.presets.match_job import match_file

OTHERS = ("instruments/piano-48.wav", "instruments/violin-67.wav", "instruments/flute-72.wav",
          "instruments/trumpet-58.wav", "instruments/bass-31.wav")
HARMONIC_INTERVALS = (0.0, 12.0, 19.0, 24.0, 28.0)  # harmonics 1-5 of any pitched note, in semitones
CONTAINED_DB = -40.0  # a harmonic this loud against the strongest partial is one the target really contains


def truth_of(path: Path) -> int:
    return int(re.search(r"-(\d+)\.wav$", path.name).group(1))


def tuning(preset: Path) -> tuple[float, float]:
    profile = load_profile("diva")
    values = read_h2p(preset, profile).native_by_id(profile)
    return float(values[86]), float(values[87])


def contained(target: np.ndarray, hz: float, sr: int = 44100) -> tuple[float, ...]:
    """The intervals of :data:`HARMONIC_INTERVALS` whose harmonic of ``hz`` the target really holds:
    the spectrum's peak within 3 % of it at most ``-CONTAINED_DB`` below the strongest partial."""
    spectrum = np.abs(np.fft.rfft(target[:sr] * np.hanning(min(sr, target.size))))
    freqs = np.fft.rfftfreq(min(sr, target.size), 1 / sr)
    strongest = spectrum.max()
    held = []
    for k, interval in enumerate(HARMONIC_INTERVALS, start=1):
        near = np.abs(freqs - k * hz) <= 0.03 * k * hz
        if near.any() and 20 * np.log10(spectrum[near].max() / strongest + 1e-12) >= CONTAINED_DB:
            held.append(interval)
    return tuple(held)


def sensible(tune1: float, tune2: float, intervals: tuple[float, ...] = (0.0,)) -> bool:
    """Both tunings within 1 semitone of 0 or of one of ``intervals``."""
    return all(min(abs(t - i) for i in (0.0, *intervals)) <= 1.0 for t in (tune1, tune2))


def sounds_at(matcher: Matcher, audio: np.ndarray, pitch) -> float:
    """Semitones the render ``audio`` sounds from the target's ``pitch`` (NaN: no pitch heard)."""
    off = matcher.off_pitch(audio[None, :], pitch)[0] if pitch.pitched else None
    return float("nan") if off is None else off


def in_tune_share(matcher: Matcher, files: list[Path]) -> tuple[int, int, int]:
    """Of the clearly pitched targets among ``files``: how many, how many of their matches sound
    within :data:`IN_TUNE_SEMITONES` of them, and how many an octave or more off."""
    pitched = tuned = octave = 0
    for path in files:
        target = prepare_note(read_audio(path))
        result = matcher.match(target)
        if not matcher.keeps_pitch(result.pitch):
            continue
        off = sounds_at(matcher, result.audio, result.pitch)
        pitched += 1
        tuned += bool(abs(off) <= IN_TUNE_SEMITONES)
        octave += bool(abs(off) >= 6)
    return pitched, tuned, octave


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="the new model (default: the shipped one)")
    parser.add_argument("--old-model", required=True, help="the previous model (v1)")
    parser.add_argument("--ood", default="data/ood")
    args = parser.parse_args()
    ood = Path(args.ood)
    files = sorted((ood / "saws").glob("saw-*.wav"), key=truth_of) + [ood / f for f in OTHERS]
    new, old = Matcher.load(args.model), Matcher.load(args.old_model, bank=False)  # the bank is new with v3
    out = Path(tempfile.mkdtemp(prefix="dd-pitch-"))
    print(f"{'target':22s}{'truth':>7s}{'detected':>18s}  {'Tune1/Tune2 new':>16s}  {'old':>12s}"
          f"{'sounds at':>11s}{'MR-STFT new':>13s}{'old':>7s}{'v1 alone':>9s}{'SC new':>8s}{'old':>7s}")
    checks = []
    for path in files:
        truth = truth_of(path)
        target = prepare_note(read_audio(path))
        reports = {}
        for label, matcher, score in (("new", new, True), ("old", old, True), ("v1 alone", old, False)):
            report = match_file(matcher, path, out / label, preview=True, score=score)
            tune1, tune2 = tuning(report.preset)
            audio = report.match.audio[: target.size]  # the 2 s compared (a preview may run on as long as the take)
            reports[label] = (report, tune1, tune2, float(multires_stft_distance(audio, target)[0]),
                              float(spectral_convergence(audio, target)[0]))
        pitch = reports["new"][0].match.pitch
        cents_off = 100 * (pitch.midi_float - truth) if pitch.pitched else float("nan")
        (report, t1, t2, d_new, sc_new), (_, o1, o2, d_old, sc_old) = reports["new"], reports["old"]
        d_alone = reports["v1 alone"][3]
        off = sounds_at(new, report.match.audio[: target.size], pitch)
        held = contained(target, pitch.hz) if pitch.hz else ()
        ok = (abs(cents_off) <= 50, sensible(t1, t2, held), sensible(t1, 0.0) and sensible(0.0, t2, held),
              abs(off) <= IN_TUNE_SEMITONES, d_new < d_old, d_new < d_alone)
        checks.append(ok)
        names = ("note", "tuning", "strict", "in tune", "distance", "v1 alone")
        print(f"{path.name:22s}{note_name(truth):>7s}{pitch.name:>6s} ({cents_off:+4.0f} c)   "
              f"{t1:+5.0f}/{t2:+6.1f}    {o1:+4.0f}/{o2:+6.1f}{off:+9.2f} st{d_new:13.3f}{d_old:7.3f}{d_alone:9.3f}{sc_new:8.3f}{sc_old:7.3f}"
              f"   {'ok' if all(ok) else 'MISS ' + ','.join(n for n, c in zip(names, ok, strict=True) if not c)}")
    passed = np.array(checks)
    n = len(files)
    print(f"note within 50 cents: {passed[:, 0].sum()}/{n}; tuning on harmonics the target holds: {passed[:, 1].sum()}/{n} "
          f"(strict, Tune1 = 0: {passed[:, 2].sum()}/{n}); sounds in tune at its key: {passed[:, 3].sum()}/{n}; "
          f"new closer than old: {passed[:, 4].sum()}/{n}, than v1's network alone: {passed[:, 5].sum()}/{n}   "
          f"(presets in {out})")
    print(f"(the old model plays every preset at {note_name(old.settings.midi_pitch)} = "
          f"{float(midi_to_hz(old.settings.midi_pitch)):.1f} Hz; the new one at the note detected, cents as fine tune)")
    for name in ("instruments", "extremes", "amsynth"):
        pitched, tuned, octave = in_tune_share(new, sorted((ood / name).glob("*.wav")))
        print(f"{name}: {pitched} clearly pitched targets; the new model's match sounds in tune at its key for "
              f"{tuned}, an octave or more off for {octave}")


if __name__ == "__main__":
    main()
