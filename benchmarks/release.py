"""Notes let go after the 2 s a match hears: the preset's release against the take's, side by side.

    .venv/bin/python benchmarks/release.py DIR [DIR ...] [--seconds 4] [--no-score]

Every render of a match is 2 s long, so a note held longer is let go where no render hears it, and
the answer's release (on Diva's ADS envelope, ENV1's decay knob, which a note held at full sustain
never lets be heard before the note-off) was whatever the answer happened to hold: often many
seconds, a pad's wash after a viola. ``deepdiva match`` now also reads the take after the note's
window (``core.audio.Take.after``) and, for a note heard let go there, writes the release it heard
into answers that hold at full sustain (``core.envelope.with_release``).

For each single note in DIR (files of any length; the sets of ``benchmarks/dev_sets.py`` are 5-6 s)
let go at or after the end of the window, the match is made twice in one process, without the
take's continuation (as before) and with it, and each preset is rendered over ``--seconds``, held
until the target's note-off and then let go, as a musician would play it. Printed per file and as
medians: MR-STFT and spectral convergence of that render against the take's first ``--seconds``
(both at the take's level, as the match set it), and of its release alone (from the note-off on),
and ENV1's decay knob (the release) before and after with the release heard.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from match import readable_takes  # benchmarks/ is the script's folder

from deepdiva.core.builtin_renderer import BuiltinRenderer
from deepdiva.core.envelope import amp_envelope, noise_floor
from deepdiva.core.matcher import Matcher
from deepdiva.core.metrics import multires_stft_distance, spectral_convergence
from deepdiva.core.render import RenderSettings


def measure(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    return float(multires_stft_distance(a[None], b[None])[0]), float(spectral_convergence(a[None], b[None])[0])


def _shown(distance: float | None) -> str:
    return "-" if distance is None else f"{distance:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--no-score", action="store_true", help="match with --no-score instead")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    matcher = Matcher.load()
    rate, pset = matcher.sample_rate, matcher.parameter_set
    decay = pset.role_column("amp_decay")
    rows = []
    for path, take in readable_takes(args.dirs, rate, matcher.seconds):
        envelope = amp_envelope(take.note, rate, noise_floor(take.note, rate, take.lead_in), take.after)
        if envelope is None or envelope.note_off is None or envelope.note_off < matcher.seconds:
            continue  # let go inside the window (every render hears it), or never
        whole = np.concatenate([take.note, take.after])[: int(args.seconds * rate)]
        if whole.size < int(args.seconds * rate) or envelope.note_off >= args.seconds - 0.1:
            continue
        before = matcher.match(take.note, score=not args.no_score, lead_in=take.lead_in)
        if before.chord is not None:
            continue
        after = matcher.match(take.note, score=not args.no_score, lead_in=take.lead_in, after=take.after)
        player = BuiltinRenderer(pset, RenderSettings(sample_rate=rate, note_length=round(envelope.note_off, 2),
                                                      render_length=args.seconds))
        renders = player.render(np.stack([before.params, after.params]), after.played.midi_float)
        off = int(envelope.note_off * rate)
        row = [*measure(renders[0], whole), *measure(renders[1], whole),
               *measure(renders[0][off:], whole[off:]), *measure(renders[1][off:], whole[off:])]
        rows.append(row)
        print(f"{path.parent.name}/{path.name:26s} off {envelope.note_off:4.2f} s release {envelope.release:5.3f} s"
              f"  knob {before.native[decay]:6.2f} -> {after.native[decay]:6.2f}"
              f"  whole {row[0]:.3f}/{row[1]:.3f} -> {row[2]:.3f}/{row[3]:.3f}"
              f"  release {row[4]:.3f}/{row[5]:.3f} -> {row[6]:.3f}/{row[7]:.3f}"
              f"  (the match's own 2 s: {_shown(before.distance)} -> {_shown(after.distance)})", flush=True)
    if not rows:
        print("no note in these folders is let go after the window")
        return
    m = np.median(np.asarray(rows), axis=0)
    closer = sum(r[2] < r[0] for r in rows), sum(r[2] > r[0] for r in rows)
    print(f"\n{len(rows)} notes, median MR-STFT / SC over {args.seconds:g} s: {m[0]:.3f} / {m[1]:.3f} -> "
          f"{m[2]:.3f} / {m[3]:.3f} ({closer[0]} closer, {closer[1]} further); the release alone: "
          f"{m[4]:.3f} / {m[5]:.3f} -> {m[6]:.3f} / {m[7]:.3f}")


if __name__ == "__main__":
    main()
