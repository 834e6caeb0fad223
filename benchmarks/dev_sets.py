"""Make development sets: out-of-domain sounds for choosing settings that no benchmark reports.

    .venv/bin/python benchmarks/dev_sets.py [--out data/dev]

Tune on these, report on ``benchmarks/ood_sets.py``'s sets: other General MIDI programs and notes
(fluidsynth), other espeak-ng voices, other amsynth patches (seed 8, not the benchmark's 7) and plain
band-limited waves made here (squares, triangles, saws; held and plucked, some low-passed), and
notes at the ends of the pitch range (``range-ends``: D7-C8 and A0-A#0), and chords (``chords``: 6
programs, major, minor, major seventh and fifths at three keys; ``gm-wide``: 112 GM programs at seven
keys, single notes none of which may read as a chord), drums (``drums``: 26 sounds of the standard
kit) and sound effects (``effects``: GM programs 112-127 at two keys). The plain patches
(``core/plain.py``), the note-off rule (``core/envelope.py``), the pitch range
(``core/pitch.py``: A0-C8) and the chord rule (``core/chord.py``) were chosen on them.
Deterministic: the same command makes the same files.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
from ood_sets import SR, amsynth, chords, drums, instruments, make_sets  # benchmarks/ is the script's folder

INSTRUMENTS = [
    ("bright-piano", 1, (52, 69), 1.5), ("harpsichord", 6, (57,), 1.0), ("glocken", 9, (79,), 1.0),
    ("drawbar", 16, (50, 62), 2.0), ("accordion", 21, (60,), 2.0), ("steel-guitar", 25, (47, 64), 1.0),
    ("clean-guitar", 27, (55,), 1.0), ("ac-bass", 32, (33, 38), 1.0), ("fretless", 35, (40,), 1.5),
    ("viola", 41, (60,), 2.0), ("trombone", 57, (46, 53), 1.5), ("horn", 60, (55,), 1.5),
    ("soprano-sax", 64, (68,), 1.5), ("oboe", 68, (70,), 1.5), ("bassoon", 70, (43,), 1.5),
    ("recorder", 74, (77,), 1.5), ("calliope", 82, (64,), 1.5), ("charang", 84, (59,), 1.5),
    ("bass-lead", 87, (40, 48), 1.5), ("newage-pad", 88, (57,), 2.0), ("polysynth", 90, (52, 66), 2.0),
    ("sitar", 104, (62,), 1.0), ("kalimba", 108, (67,), 0.5), ("steel-drum", 114, (65,), 0.8),
]
VOICES = [("en+m1", 35, "ooooooooh"), ("en+f4", 65, "eeeeeeh"), ("it", 45, "laaaaaa"), ("en+m7", 25, "aaaaaah"),
          ("nl", 55, "wooow"), ("en+f1", 75, "mmmmmmm")]
# (MIDI note, wave, decay time constant in s or None for held); plucks also pass a 3 kHz low-pass
PLAIN = [(43, "square", None), (57, "square", 0.3), (62, "tri", None), (50, "saw", 0.25),
         (72, "square", None), (38, "saw", 0.6), (66, "tri", 0.4), (55, "saw", None)]


def harmonic_amplitudes(kind: str, k: np.ndarray) -> np.ndarray:
    if kind == "square":
        return np.where(k % 2 == 1, 1.0 / k, 0.0)
    if kind == "tri":
        return np.where(k % 2 == 1, (-1.0) ** ((k - 1) // 2) / k**2, 0.0)
    return 1.0 / k


def plain_wave(kind: str, note: int, decay: float | None, cutoff: float | None) -> np.ndarray:
    """2 s of a band-limited ``kind`` wave (harmonics below 16 kHz) at MIDI ``note``, held or dying away
    with time constant ``decay`` s, through a 4th-order low-pass at ``cutoff`` Hz (None: none), with
    5 ms fades, peaking at 0.5."""
    t = np.arange(2 * SR) / SR
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)
    f0 = 440.0 * 2 ** ((note - 69) / 12)
    k = np.arange(1, int(16000 // f0) + 1)
    low_pass = 1 / np.sqrt(1 + (k * f0 / cutoff) ** 4) if cutoff else np.ones(k.size)
    wave = (np.sin(2 * np.pi * f0 * np.outer(t, k)) * (harmonic_amplitudes(kind, k) * low_pass)).sum(axis=1)
    y = wave * (np.exp(-t / decay) if decay else 1.0) * fade
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def plain(out: Path) -> None:
    for note, kind, decay in PLAIN:
        sf.write(out / f"{kind}-{'pluck' if decay else 'held'}-{note}.wav",
                 plain_wave(kind, note, decay, 3000.0 if decay else None), SR, subtype="FLOAT")


def voices(out: Path) -> None:
    for i, (voice, pitch, text) in enumerate(VOICES):
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", "90", "-w", str(out / f"v{i}.wav"), text],
                       check=True)


# The range's ends (the pitch range A0-C8 was chosen on these): 16 GM programs at D7, G7 and C8, 8 of
# them at ten more notes B6-B7, 10 basses and others at A0 and A#0. FluidR3 has no sample for some
# (a recorder's or a violin's top): those silent renders are not kept.
TOP = [("piccolo", 72), ("flute", 73), ("glock", 9), ("celesta", 8), ("xylo", 13), ("sqlead", 80), ("piano", 0),
       ("musicbox", 10), ("ocarina", 79), ("panflute", 75), ("bottle", 76), ("tinkle", 112), ("vibes", 11),
       ("whistle", 78), ("recorder", 74), ("violin", 40)]
BOTTOM = [("piano", 0), ("acbass", 32), ("fingerbass", 33), ("synbass", 38), ("synbass2", 39), ("tuba", 58),
          ("contrabass", 43), ("organ", 19), ("cello", 42), ("bassoon", 70)]


def range_ends(out: Path) -> None:
    played = [(name, program, (98, 103, 108), 1.0) for name, program in TOP]
    played += [(name, program, (95, 97, 99, 100, 101, 102, 104, 105, 106, 107), 1.0) for name, program in TOP[:8]]
    played += [(name, program, (21, 22), 1.2) for name, program in BOTTOM]
    instruments(out, played)
    for path in out.glob("*.wav"):
        if np.abs(sf.read(path, dtype="float32")[0]).max() < 0.002:  # no sample there
            path.unlink()


# Chords (core/chord.py was chosen on these): 6 programs, 4 chords (two of them fifths, which are no chords:
# a synth note with oscillator 2 a fifth up sounds the same) at 3 lowest keys.
CHORD_PROGRAMS = [("piano", 0), ("epiano", 4), ("organ", 19), ("strings", 48), ("warmpad", 89), ("polysynth", 90)]
CHORDS = [(name, program, chord, root) for name, program in CHORD_PROGRAMS for chord in ("maj", "min", "maj7", "fifth")
          for root in (48, 55, 60)]

# 112 GM programs (the pitched ones, 0-111) at seven keys E2-E5: single notes on which no chord may be heard
GM_WIDE = [(f"gm{program:03d}", program, (40, 47, 52, 59, 64, 71, 76), 1.5) for program in range(112)]

# Drums and effects (the noise high-passed at fixed frequencies, core/plain.py, and the note-off after a swell,
# core/envelope.py, were chosen on these): the standard kit (ood_sets.py's drums play its other sounds and
# other kits), and the GM programs 112-127 (bells, drums, reversed cymbal, breath, sea, bird, phone, ...)
DRUMS = [("kit0", 0, (36, 37, 38, 39, 42, 44, 45, 46, 49, 51, 53, 54, 55, 56, 57, 59, 62, 64, 65, 67, 69, 70, 73,
                      75, 81, 82))]
EFFECTS = [(f"gm{program}", program, (48, 62), 1.5) for program in range(112, 128)]

SETS = {"instruments": lambda out: instruments(out, INSTRUMENTS), "voices": voices,
        "amsynth": lambda out: amsynth(out, n=20, seed=8), "plain": plain, "range-ends": range_ends,
        "chords": lambda out: chords(out, CHORDS), "gm-wide": lambda out: instruments(out, GM_WIDE),
        "drums": lambda out: drums(out, DRUMS), "effects": lambda out: instruments(out, EFFECTS)}


def main() -> None:
    make_sets(SETS, "data/dev", __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
