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
- ``chords``: 45 chords of three and four notes (major, minor, sevenths, sus4, diminished, an
  inversion, open voicings, add9) on 15 GM programs, pads, pianos, organs, guitars, brass, choir
  (``core/chord.py``; chosen on ``dev_sets.py``'s other programs and chords).
- ``drums``: 38 GM percussion sounds (channel 10): the TR-808, electronic, power and brush kits and
  the standard kit's sounds that ``dev_sets.py``'s ``drums`` leaves out (toms, bongos, congas,
  Chinese cymbal, vibraslap, woodblock, cuica, guiro, whistle, triangle).

File names carry the note the sound was played at (``name-69.wav``; a chord's lowest,
``name-maj7-48.wav``; ``voice-...-na.wav`` when a voice has no fixed note). Deterministic: the same
command makes the same files.
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
# (kit name, GM drum kit program, keys): none of dev_sets.py's standard-kit sounds
DRUMS = [("tr808", 25, (36, 38, 39, 42, 46, 49, 56, 75)), ("electronic", 24, (36, 38, 40, 42, 46, 51)),
         ("power", 16, (35, 40, 52, 57)), ("brush", 40, (38, 40, 42, 46, 59)),
         ("standard", 0, (35, 40, 41, 47, 52, 58, 60, 63, 66, 68, 71, 74, 77, 78, 80))]
CHORD_INTERVALS = {"maj": (0, 4, 7), "min": (0, 3, 7), "maj7": (0, 4, 7, 11), "dom7": (0, 4, 7, 10),
                   "min7": (0, 3, 7, 10), "sus4": (0, 5, 7), "dim": (0, 3, 6), "maj1st": (0, 3, 8),
                   "open": (0, 7, 16), "add9": (0, 4, 7, 14), "fifth": (0, 7)}
# (name, GM program, chord, lowest key): 15 programs, three chords each (drawn once, seed 5)
CHORDS = [
    ("bright", 1, "open", 56), ("bright", 1, "maj", 51), ("bright", 1, "min7", 58),
    ("rhodes", 5, "maj", 45), ("rhodes", 5, "dom7", 47), ("rhodes", 5, "open", 53),
    ("clav", 7, "min", 50), ("clav", 7, "dim", 59), ("clav", 7, "maj", 61),
    ("vibes", 11, "sus4", 64), ("vibes", 11, "min", 62), ("vibes", 11, "dom7", 63),
    ("rockorgan", 18, "maj1st", 59), ("rockorgan", 18, "sus4", 46), ("rockorgan", 18, "maj", 59),
    ("accordion", 21, "add9", 49), ("accordion", 21, "min7", 64), ("accordion", 21, "open", 46),
    ("nylon", 24, "maj1st", 50), ("nylon", 24, "min", 64), ("nylon", 24, "dom7", 56),
    ("cleangtr", 27, "dim", 61), ("cleangtr", 27, "open", 45), ("cleangtr", 27, "dom7", 60),
    ("ensemble", 49, "maj", 49), ("ensemble", 49, "sus4", 56), ("ensemble", 49, "min7", 52),
    ("choir", 52, "dom7", 60), ("choir", 52, "min", 51), ("choir", 52, "open", 48),
    ("brass", 61, "min", 52), ("brass", 61, "min7", 50), ("brass", 61, "sus4", 46),
    ("sawlead", 81, "min", 66), ("sawlead", 81, "min7", 56), ("sawlead", 81, "open", 50),
    ("newage", 88, "maj", 63), ("newage", 88, "dom7", 63), ("newage", 88, "maj1st", 46),
    ("halo", 94, "add9", 65), ("halo", 94, "dom7", 49), ("halo", 94, "sus4", 53),
    ("sweep", 95, "min", 59), ("sweep", 95, "min7", 61), ("sweep", 95, "open", 49),
]


def midi_file(path: Path, program: int, notes: int | tuple[int, ...], seconds: float, channel: int = 0) -> None:
    """A MIDI file playing ``notes`` (one, or a chord: all at once) on GM ``program`` for ``seconds``
    (``channel`` 9: the percussion channel, whose program picks a drum kit)."""
    import mido

    ticks = 480
    keys = (notes,) if isinstance(notes, int) else notes
    held = int(seconds * 2 * ticks)
    track = mido.MidiTrack([mido.Message("program_change", channel=channel, program=program, time=0)]
                           + [mido.Message("note_on", channel=channel, note=k, velocity=100, time=0) for k in keys]
                           + [mido.Message("note_off", channel=channel, note=k, velocity=0, time=held if i == 0 else 0)
                              for i, k in enumerate(keys)]
                           + [mido.MetaMessage("end_of_track", time=ticks * 2)])
    midi = mido.MidiFile(ticks_per_beat=ticks)
    midi.tracks.append(track)
    midi.save(str(path))


def instruments(out: Path, played: list[tuple[str, int, tuple[int, ...], float]] = INSTRUMENTS) -> None:
    render_gm(out, [(f"{name}-{note}", program, note, seconds) for name, program, notes, seconds in played
                    for note in notes])


def chords(out: Path, played: list[tuple[str, int, str, int]] | None = None) -> None:
    """Each (name, GM program, chord, lowest key) of ``played`` (default :data:`CHORDS`) as ``name-chord-key.wav``."""
    render_gm(out, [(f"{name}-{chord}-{root}", program, tuple(root + i for i in CHORD_INTERVALS[chord]), 2.0)
                    for name, program, chord, root in (CHORDS if played is None else played)])


def drums(out: Path, played: list[tuple[str, int, tuple[int, ...]]] | None = None) -> None:
    """Each (kit name, GM kit program, drum keys) of ``played`` (default :data:`DRUMS`) as ``name-key.wav``."""
    render_gm(out, [(f"{name}-{key}", kit, key, 1.0) for name, kit, keys in (DRUMS if played is None else played)
                    for key in keys], channel=9)


def render_gm(out: Path, played: list[tuple[str, int, int | tuple[int, ...], float]], channel: int = 0) -> None:
    """Each (file stem, GM program, key or chord, seconds held) of ``played`` rendered by fluidsynth
    (on MIDI ``channel``; 9 plays drum kits)."""
    if not SOUNDFONT.exists() or not shutil.which("fluidsynth"):
        raise SystemExit("needs: apt-get install fluidsynth fluid-soundfont-gm")
    with tempfile.TemporaryDirectory() as tmp:
        for stem, program, notes, seconds in played:
            mid = Path(tmp) / f"{stem}.mid"
            midi_file(mid, program, notes, seconds, channel)
            subprocess.run(["fluidsynth", "-ni", "-g", "0.7", "-r", str(SR), "-F", str(out / f"{stem}.wav"),
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


SETS = {"saws": saws, "instruments": instruments, "voices": voices, "amsynth": amsynth, "extremes": extremes,
        "chords": chords, "drums": drums}


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
