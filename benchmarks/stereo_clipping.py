"""Stereo takes clipped channel by channel: restored one channel at a time against restored from
the mono mix (where a flat top survives only where both channels clipped together), side by side.

    .venv/bin/python benchmarks/stereo_clipping.py DIR [--n 60] [--seed 0] [--match]

DIR holds stereo notes (e.g. ``benchmarks/dev_sets.py --sets gm-wide``: fluidsynth's GM programs,
stereo). Each of ``--n`` of them, drawn with ``--seed``, is brought to a peak 6 and 12 dB past full
scale, clipped and written as 16-bit; the clean take (float, not clipped) is the reference. Per
level: median MR-STFT and spectral convergence of the prepared note (``prepare_take``) from the
clean one's, both at one RMS, for the take as clipped (nothing restored), restored from its mix and
restored channel by channel; with ``--match``, the scored ``deepdiva match`` of each restored take
against the clean note.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import soundfile as sf

from deepdiva.core import audio
from deepdiva.core.audio import prepare_take, read_audio
from deepdiva.core.metrics import multires_stft_distance, spectral_convergence


def at_one_rms(x: np.ndarray) -> np.ndarray:
    return x / max(1e-9, float(np.sqrt(np.mean(x**2))))


def distances(note: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    a, b = at_one_rms(note)[None], at_one_rms(clean)[None]
    return float(multires_stft_distance(a, b)[0]), float(spectral_convergence(a, b)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--match", action="store_true", help="also match each restored take (slower)")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # every take here is clipped on purpose
    files = sorted(args.dir.glob("*.wav"))
    files = [files[i] for i in np.random.default_rng(args.seed).choice(len(files), min(args.n, len(files)), False)]
    matcher = None
    if args.match:
        from deepdiva.core.matcher import Matcher

        matcher = Matcher.load()
    tmp = Path(tempfile.mkdtemp(prefix="dd-stereo-clip-"))
    for hot_db in (6, 12):
        rows = []
        for f in files:
            data, rate = sf.read(f, dtype="float32", always_2d=True)
            data = data / np.abs(data).max() * np.float32(10 ** (hot_db / 20))
            sf.write(tmp / "clean.wav", data, rate, subtype="FLOAT")
            sf.write(tmp / "hot.wav", np.clip(data, -1, 1), rate, subtype="PCM_16")
            clean = prepare_take(read_audio(tmp / "clean.wav")).note
            clip = read_audio(tmp / "hot.wav")
            by_channel, from_mix = prepare_take(clip), prepare_take(replace(clip, channels=None))
            with mock.patch.object(audio, "clipped_runs", lambda *a, **k: None):
                as_clipped = prepare_take(replace(clip, channels=None))
            row = [*distances(as_clipped.note, clean), *distances(from_mix.note, clean),
                   *distances(by_channel.note, clean), clip.channels is not None]
            if matcher is not None:
                for take in (from_mix, by_channel):
                    row.append(distances(matcher.match(take.note, lead_in=take.lead_in).audio, clean)[0])
            rows.append(row)
        r = np.array(rows, dtype=float)
        closer, further = int(np.sum(r[:, 4] < r[:, 2] - 1e-6)), int(np.sum(r[:, 4] > r[:, 2] + 1e-6))
        print(f"{hot_db} dB past full scale, {len(r)} stereo notes ({int(r[:, 6].sum())} kept their channels): "
              f"MR-STFT / SC from the clean note")
        print(f"  as clipped            {np.median(r[:, 0]):.3f} / {np.median(r[:, 1]):.3f}")
        print(f"  restored from the mix {np.median(r[:, 2]):.3f} / {np.median(r[:, 3]):.3f}")
        print(f"  restored by channel   {np.median(r[:, 4]):.3f} / {np.median(r[:, 5]):.3f}   "
              f"({closer} closer, {further} further than from the mix)")
        if matcher is not None:
            closer, further = int(np.sum(r[:, 8] < r[:, 7] - 1e-6)), int(np.sum(r[:, 8] > r[:, 7] + 1e-6))
            print(f"  deepdiva match: from the mix {np.median(r[:, 7]):.3f}, by channel {np.median(r[:, 8]):.3f} "
                  f"({closer} closer, {further} further)")


if __name__ == "__main__":
    main()
