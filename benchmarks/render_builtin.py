"""Speed of the builtin renderer: renders per second on one core and the real-time factor.

    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/render_builtin.py [--n 256] [--repeats 5]

Per-core speed is CPU time of this process (robust on a shared machine); ``--parallel`` adds
the wall-clock speed of numba's threads over the same batch, as a ratio to one core.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from numba import get_num_threads

from deepdiva.core import builtin_synth as bs
from deepdiva.core.builtin_renderer import BuiltinRenderer
from deepdiva.core.profile import load_profile
from deepdiva.core.render import RenderSettings


def best_time(fn: Callable[[], object], repeats: int, clock: Callable[[], float]) -> float:
    """Shortest of ``repeats`` runs, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best


def batches(n: int, seed: int) -> dict[str, np.ndarray]:
    """Normalised medium33 batches: the base preset, random patches, random without filter FM."""
    pset = load_profile("diva").parameter_set("medium33")
    rng = np.random.default_rng(seed)
    random = rng.random((n, len(pset)), dtype=np.float32)
    no_ffm = random.copy()
    no_ffm[:, bs.FILTER_FM] = 0.5  # FFM = 0: no per-sample cutoff modulation
    return {"base preset": np.tile(pset.defaults_normalised(), (n, 1)),
            "random medium33": random,
            "random, no filter FM": no_ffm}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="patches per batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parallel", action="store_true", help="also time numba threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    settings = RenderSettings()
    pset = load_profile("diva").parameter_set("medium33")
    serial = BuiltinRenderer(pset, settings)
    threaded = BuiltinRenderer(pset, settings, parallel=True)
    start = time.perf_counter()
    serial.render(pset.defaults_normalised())
    if args.parallel:
        threaded.render(np.tile(pset.defaults_normalised(), (2, 1)))
    print(f"compile or cache load: {time.perf_counter() - start:.2f} s")
    note = settings.render_length
    print(f"{settings.render_length:g} s notes at {settings.sample_rate} Hz, batches of {args.n}, "
          f"best of {args.repeats}")
    print(f"{'case':24s} {'ms/render':>10s} {'renders/s':>10s} {'x realtime':>11s}"
          + (f" {'threads':>8s} {'speed-up':>9s}" if args.parallel else ""))
    for name, batch in batches(args.n, args.seed).items():
        cpu = best_time(lambda b=batch: serial.render(b), args.repeats, time.process_time) / args.n
        line = f"{name:24s} {cpu * 1e3:10.3f} {1 / cpu:10.0f} {note / cpu:11.0f}"
        if args.parallel:
            wall = best_time(lambda b=batch: threaded.render(b), args.repeats, time.perf_counter) / args.n
            line += f" {get_num_threads():8d} {cpu / wall:9.2f}"
        print(line)


if __name__ == "__main__":
    main()
