"""Make the out-of-domain target sets the benchmarks use: sounds deepdiva's synth did not make.

    .venv/bin/python benchmarks/ood_sets.py [--out data/ood]

- ``instruments``: General MIDI instruments (Debian's fluidsynth + fluid-soundfont-gm), each at
  two notes across bass to lead, some held, some plucked.
- ``voices``: espeak-ng voices singing a vowel on a note (``-p`` pitch, long "aah") and speaking.
- ``amsynth``: random patches of another synth (Debian's amsynth VST through DawDreamer) at random
  notes.
- ``saws``: plain band-limited sawtooth notes at C2, C3, C4, A4 and A5 (the pitch acceptance).
- ``extremes``: GM instruments at the ends of the range (A0-E1 basses and piano, C7 leads), outside
  the network's training notes (``benchmarks/pitch.py``).

File names carry the note the sound was played at (``name-69.wav``; ``voice-...-na.wav`` when a
voice has no fixed note). Deterministic: the same command makes the same files.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from amsynth_plugin import AMSYNTH  # benchmarks/ is the script's folder

SR = 44100
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
# (name, GM program, notes, seconds held)
INSTRUMENTS = [
    ("piano", 0, (48, 72), 1.5), ("epiano", 4, (55, 67), 1.5), ("vibraphone", 11, (60, 79), 1.0),
    ("organ", 19, (43, 64), 2.0), ("nylon-guitar", 24, (45, 62), 1.0), ("bass", 33, (31, 40), 1.0),
    ("synth-bass", 38, (36, 43), 0.6), ("violin", 40, (67, 76), 2.0), ("cello", 42, (41, 50), 2.0),
    ("strings", 48, (55, 62), 2.0), ("choir", 52, (57, 64), 2.0), ("trumpet", 56, (58, 70), 1.5),
    ("sax", 65, (53, 61), 1.5), ("clarinet", 71, (52, 65), 1.5), ("flute", 73, (72, 84), 1.5),
    ("square-lead", 80, (60, 74), 1.5), ("saw-lead", 81, (57, 69), 1.5), ("warm-pad", 89, (48, 60), 2.0),
    ("marimba", 12, (60, 72), 0.5), ("harp", 46, (52, 76), 1.0),
]
# the ends of the range, where the network was not trained (MIDI 36-84): a bass guitar's low E,
# a tuba, a piano's lowest notes, piccolo and lead at C7
EXTREMES = [
    ("bass", 33, (28,), 1.5), ("contrabass", 43, (28,), 1.5), ("tuba", 58, (29,), 1.5), ("piano", 0, (21, 26, 100), 1.5),
    ("synth-bass", 38, (24, 33), 1.5), ("cello", 42, (36,), 1.5), ("piccolo", 72, (96,), 1.5), ("flute", 73, (91,), 1.5),
    ("square-lead", 80, (96,), 1.5), ("violin", 40, (93,), 1.5),
]
# (voice, espeak pitch 0-99, text); the pitch setting moves the voice's base pitch
VOICES = [("en", 30, "aaaaaaah"), ("en+f3", 60, "ooooooh"), ("en+m3", 20, "eeeeeee"), ("de", 45, "aaaaah"),
          ("fr", 50, "ooooooh"), ("en+f2", 70, "aaaaah"), ("en", 50, "hello there"), ("es", 40, "maaamaaa")]
SAWS = (36, 48, 60, 69, 81)


def midi_file(path: Path, program: int, note: int, seconds: float) -> None:
    import mido

    ticks = 480
    track = mido.MidiTrack([mido.Message("program_change", program=program, time=0),
                            mido.Message("note_on", note=note, velocity=100, time=0),
                            mido.Message("note_off", note=note, velocity=0, time=int(seconds * 2 * ticks)),
                            mido.MetaMessage("end_of_track", time=ticks * 2)])
    midi = mido.MidiFile(ticks_per_beat=ticks)
    midi.tracks.append(track)
    midi.save(str(path))


def instruments(out: Path, played: list[tuple[str, int, tuple[int, ...], float]] = INSTRUMENTS) -> None:
    if not SOUNDFONT.exists() or not shutil.which("fluidsynth"):
        raise SystemExit("needs: apt-get install fluidsynth fluid-soundfont-gm")
    with tempfile.TemporaryDirectory() as tmp:
        for name, program, notes, seconds in played:
            for note in notes:
                mid = Path(tmp) / f"{name}-{note}.mid"
                midi_file(mid, program, note, seconds)
                subprocess.run(["fluidsynth", "-ni", "-g", "0.7", "-r", str(SR), "-F", str(out / f"{name}-{note}.wav"),
                                str(SOUNDFONT), str(mid)], check=True, capture_output=True)


def voices(out: Path) -> None:
    if not shutil.which("espeak-ng"):
        raise SystemExit("needs: apt-get install espeak-ng")
    for i, (voice, pitch, text) in enumerate(VOICES):
        path = out / f"voice-{i}-{voice.replace('+', '')}-na.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", "90", "-w", str(path), text], check=True)


def amsynth(out: Path, n: int = 24, seed: int = 7) -> None:
    from deepdiva.core.profile import load_profile
    from deepdiva.core.render import RenderSettings
    from deepdiva.core.renderers import make_renderer
    from deepdiva.training.dataset import is_silent

    if not AMSYNTH.exists():
        raise SystemExit("needs: apt-get install amsynth")
    pset = load_profile("amsynth").parameter_set("medium")
    renderer = make_renderer("vst", pset, RenderSettings(), plugin_path=str(AMSYNTH))
    rng = np.random.default_rng(seed)
    made = 0
    try:
        while made < n:
            params = pset.quantise(rng.random((1, len(pset)))).astype(np.float32)
            note = int(rng.integers(36, 85))
            audio = renderer.render(params, float(note))
            if is_silent(audio)[0]:
                continue
            sf.write(out / f"amsynth-{made:02d}-{note}.wav", audio[0], SR, subtype="FLOAT")
            made += 1
    finally:
        renderer.close()


def saws(out: Path) -> None:
    """Band-limited saws (additive, harmonics below 16 kHz), 2 s with 5 ms fades."""
    t = np.arange(2 * SR) / SR
    for note in SAWS:
        f0 = 440.0 * 2 ** ((note - 69) / 12)
        k = np.arange(1, int(16000 // f0) + 1)
        wave = (np.sin(2 * np.pi * f0 * np.outer(t, k)) / k).sum(axis=1) * (2 / np.pi)
        fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)
        sf.write(out / f"saw-{note}.wav", (0.5 * wave * fade).astype(np.float32), SR, subtype="FLOAT")


def extremes(out: Path) -> None:
    instruments(out, EXTREMES)


SETS = {"saws": saws, "instruments": instruments, "voices": voices, "amsynth": amsynth, "extremes": extremes}


def make_sets(sets: dict, default_out: str, description: str) -> None:
    """The command line of a set-making script: ``--out`` folder, ``--sets`` (default all of ``sets``),
    each made into its own subfolder."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=default_out)
    parser.add_argument("--sets", default=",".join(sets))
    args = parser.parse_args()
    for name in args.sets.split(","):
        folder = Path(args.out) / name
        folder.mkdir(parents=True, exist_ok=True)
        sets[name](folder)
        print(f"{folder}: {len(list(folder.glob('*.wav')))} files")


def main() -> None:
    make_sets(SETS, "data/ood", __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
