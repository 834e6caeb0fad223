"""Refinement on a real plugin (amsynth through DawDreamer): renders per second with 1 and 2 worker
processes, side by side in one run.

Rows: the plain ``vst`` renderer in this process (not thread-safe: one render after another,
each generation scored after it), then :class:`~deepdiva.core.renderer_pool.RendererPool` with
1 and 2 workers, refined as the matcher does (a thread per core, each rendering and scoring a
block of every generation), and the 2-worker pool given whole generations by one thread. Each
refinement searches ``--budget`` seconds from a random patch towards another one's render; the
rows take turns ``--repeats`` times, so load from other processes hits them alike, and the
medians are reported. "renders/s" counts every candidate rendered and scored; "cores" is the CPU
time this process and the workers took per second of search (the pool costs no more CPU per render
than one host, so renders/s follows the cores it gets: on a busy machine, fewer than the workers;
Linux's autogroup scheduler gives each busy terminal session an equal share, so while another
session computes, this one gets about one core whatever its process count); "distance" is the
median final distance (lower is better).

    .venv/bin/python benchmarks/refine_plugin.py [--plugin /usr/lib/vst/amsynth_vst.so] [--budget 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from amsynth_plugin import add_plugin_option, require_plugin  # benchmarks/ is the script's folder

from deepdiva.core.metrics import SpectralTarget
from deepdiva.core.profile import ParameterSet, load_profile
from deepdiva.core.refine import refine
from deepdiva.core.render import Renderer, RenderSettings
from deepdiva.core.renderer_pool import RendererPool
from deepdiva.core.vst_renderer import VstRenderer

THREADS = 2  # the matcher's default_threads() on a 2-core machine


def pitched(pset: ParameterSet, rows: np.ndarray) -> np.ndarray:
    """amsynth's noise waveforms swapped for saw: their noise is not reproducible between hosts."""
    native = pset.from_normalised(rows)
    for j, p in enumerate(pset.parameters):
        if p.name.endswith("_waveform"):
            native[:, j] = np.minimum(native[:, j], 2)
    return pset.to_normalised(native).astype(np.float32)


def cpu_seconds(renderer: Renderer) -> float:
    """CPU time of this process and the renderer's worker processes (Linux /proc; else this one)."""
    total = time.process_time()
    for pid in renderer.pids() if isinstance(renderer, RendererPool) else []:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return total


def run(renderer: Renderer, threads: int, target: SpectralTarget, start: np.ndarray,
        budget: float) -> tuple[float, float, float]:
    """(candidates rendered and scored per second, final distance, cores used) of one refinement."""
    executor = ThreadPoolExecutor(threads) if threads > 1 else None
    cpu = cpu_seconds(renderer)
    try:
        result = refine(renderer, target.distance, start, budget, executor=executor, blocks=threads)
    finally:
        if executor is not None:
            executor.shutdown()
    cores = (cpu_seconds(renderer) - cpu) / result.seconds
    return result.evaluations / result.seconds, result.distance, cores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_plugin_option(parser)
    parser.add_argument("--set", default="medium", help="amsynth parameter set to search")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per refinement")
    parser.add_argument("--repeats", type=int, default=5, help="refinements per row (median)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    require_plugin(args.plugin)
    import cma  # noqa: F401 - imported before any clock runs (seconds of scipy on a cold start)

    settings = RenderSettings()  # 2 s notes, as the matcher plays them
    pset = load_profile("amsynth").parameter_set(args.set)
    single = VstRenderer(pset, settings, plugin_path=args.plugin)
    started: dict[int, float] = {}
    pools: dict[int, RendererPool] = {}
    for workers in (1, 2):
        tick = time.perf_counter()
        pools[workers] = RendererPool("vst", pset, settings, plugin_path=args.plugin, workers=workers)
        started[workers] = time.perf_counter() - tick
    rows: dict[str, Callable[[SpectralTarget, np.ndarray], tuple[float, float, float]]] = {
        "in-process vst renderer": lambda t, s: run(single, 1, t, s, args.budget),
        "pool, 1 worker": lambda t, s: run(pools[1], THREADS, t, s, args.budget),
        "pool, 2 workers": lambda t, s: run(pools[2], THREADS, t, s, args.budget),
        "pool, 2 workers, whole batches": lambda t, s: run(pools[2], 1, t, s, args.budget),
    }
    load = [os.getloadavg()[0]]
    rng = np.random.default_rng(0)
    measured: dict[str, list[tuple[float, float, float]]] = {name: [] for name in rows}
    try:
        for _ in range(max(1, args.repeats)):
            target_row, start = pitched(pset, rng.random((2, len(pset))))
            target = SpectralTarget(single.render(target_row)[0])
            for name, measure in rows.items():
                measured[name].append(measure(target, start))
        load.append(os.getloadavg()[0])
    finally:
        single.close()
        for pool in pools.values():
            pool.close()
    rates, distances, cores = ({name: float(np.median([row[i] for row in m])) for name, m in measured.items()}
                               for i in range(3))
    base, one, two = rates["in-process vst renderer"], rates["pool, 1 worker"], rates["pool, 2 workers"]
    result = {
        "plugin": args.plugin, "set": pset.describe(), "budget_s": args.budget, "repeats": args.repeats,
        "renders_per_s": {k: round(v, 1) for k, v in rates.items()},
        "median_distance": {k: round(v, 3) for k, v in distances.items()},
        "cores_used": {k: round(v, 2) for k, v in cores.items()},
        "two_over_one_worker": round(two / one, 2), "two_workers_over_in_process": round(two / base, 2),
        "pool_start_s": {str(k): round(v, 2) for k, v in started.items()},
        "load_average_start_end": load, "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['set']}: refinement of {args.budget:g} s from a random patch, {settings.render_length:g} s "
          f"notes at {settings.sample_rate} Hz, median of {args.repeats}")
    for name in rows:
        print(f"  {name:32s} {rates[name]:7.1f} renders/s   {cores[name]:4.2f} cores   "
              f"distance {distances[name]:8.3f}")
    print(f"  2 workers / 1 worker             {two / one:7.2f}")
    print(f"  2 workers / in-process           {two / base:7.2f}")
    print(f"  pool start: {started[1]:.2f} s (1 worker), {started[2]:.2f} s (2 workers)")
    print(f"  load average {load[0]:.1f} at the start, {load[-1]:.1f} at the end, on {os.cpu_count()} CPUs "
          "(busy sessions take cores from the workers: see 'cores')")


if __name__ == "__main__":
    main()
