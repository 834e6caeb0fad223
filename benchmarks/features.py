"""Feature extraction speed: deepdiva's numpy features vs librosa, side by side in one run.

Prints the time per 2 s clip (44.1 kHz) for one clip and for a batch, and librosa / deepdiva.
The librosa column does what the original project did: one call per clip. Also times the
multi-resolution STFT distance of a search step (16 candidates against a cached target).

    .venv/bin/python benchmarks/features.py [--batch 64] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from deepdiva.core import features as F
from deepdiva.core.metrics import SpectralTarget

SR = 44100


def _clips(n: int, seconds: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 55.0 * 2 ** rng.uniform(0, 4, size=(n, 1))
    saw = 2 * ((f0 * t) % 1.0) - 1
    return (0.5 * saw * np.exp(-2 * t) + 0.01 * rng.standard_normal(saw.shape)).astype(np.float32)


def _time(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _librosa_mel(librosa, x: np.ndarray) -> np.ndarray:
    s = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=2048, hop_length=512, n_mels=128, fmin=50,
                                       fmax=15000, pad_mode="reflect")
    s = librosa.power_to_db(s, ref=np.max)
    return ((s - s.min()) / (s.max() - s.min()))[::-1, :, None]


def _librosa_mfcc(librosa, x: np.ndarray) -> np.ndarray:
    return librosa.feature.mfcc(y=x, sr=SR, n_mfcc=13, n_fft=2048, hop_length=1024, fmin=50, fmax=15000,
                                pad_mode="reflect").T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    try:
        import librosa
    except ImportError:
        librosa = None
    cfg = F.FeatureConfig()
    batch = _clips(args.batch)
    one = batch[:1]

    print(f"{'feature':8} {'clips':>5} {'deepdiva ms/clip':>17} {'librosa ms/clip':>16} {'ratio':>6}")
    for name, lib_fn in [("mel", _librosa_mel), ("mfcc", _librosa_mfcc), ("mel_db", None)]:
        for x in (one, batch):
            ours = _time(lambda x=x, name=name: F.extract(name, x, cfg), args.repeats) / len(x)
            line = f"{name:8} {len(x):5d} {ours * 1e3:17.2f}"
            if librosa is not None and lib_fn is not None:
                theirs = _time(lambda x=x, f=lib_fn: [f(librosa, clip) for clip in x],
                               max(1, args.repeats // 2)) / len(x)
                line += f" {theirs * 1e3:16.2f} {theirs / ours:6.1f}x"
            print(line)

    target = SpectralTarget(batch[0])
    cands = batch[:16]
    d = _time(lambda: target.distance(cands), args.repeats)
    print(f"\nmulti-resolution STFT distance, 16 candidates vs cached target: {d * 1e3:.1f} ms "
          f"({d / 16 * 1e3:.2f} ms/candidate)")
    if librosa is None:
        print("(librosa not installed: no reference column)")


if __name__ == "__main__":
    main()
