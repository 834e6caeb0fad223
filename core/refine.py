"""Search refinement: improve a parameter guess by rendering candidates within a time budget.

CMA-ES (the maintained ``cma`` package) searches the normalised cube [0, 1]^k, starting at
the network's answer. Candidates are quantised to what the synth can represent, rendered in
one batch per generation, and scored with a spectral distance to the target. The starting
point is scored first, so the result is never worse than the network alone. With ``keep`` > 1
it also returns the best *distinct* patches it scored (Genopatch-style alternatives to audition):
each differs from every better one by at least ``min_difference`` (mean absolute difference of
the normalised parameters). Given an ``executor``, each generation is split into row blocks
rendered and scored on its threads at once (the builtin synth and the spectral distance spend
their time outside the GIL), so more candidates fit into the budget.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from .render import Renderer

Distance = Callable[[np.ndarray], np.ndarray]  # candidate audio (n, samples) -> distances (n,)
MIN_DIFFERENCE = 0.05  # alternatives differ by at least 5 % of each range on average
# CMA-ES's initial step size in the normalised cube. Tuned on held-out renders (eval-medium33
# rows 60-84, not the ones benchmarks/match.py reports): 0.1 beat 0.05, 0.075, 0.15 and 0.25
# with 1 s and 5 s budgets. A small gain: paired against 0.15 on 40 further renders it was
# better for 26 (1 s) and 24 (5 s), per-render median distance ratio 0.975 for both.
SIGMA = 0.1
ARCHIVE_SIZE = 256  # best scored patches kept to pick alternatives from


@dataclass(frozen=True)
class RefineResult:
    params: np.ndarray  # normalised (k,), quantised
    distance: float
    start_distance: float
    evaluations: int
    seconds: float
    alternatives: tuple[tuple[np.ndarray, float], ...] = ()  # distinct (params, distance), best first


def pick_distinct(params: np.ndarray, distances: np.ndarray, keep: int,
                  min_difference: float = MIN_DIFFERENCE) -> list[int]:
    """Rows of the ``keep`` best patches that each differ from every better pick by at least
    ``min_difference`` (mean absolute difference); the best patch is always first."""
    picked: list[int] = []
    for i in np.argsort(distances, kind="stable"):
        if len(picked) == keep:
            break
        if all(np.mean(np.abs(params[i] - params[j])) >= min_difference for j in picked):
            picked.append(int(i))
    return picked


def scorer(renderer: Renderer, distance: Distance, executor: Executor | None = None, blocks: int = 2,
           note: float | None = None) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``params (n, k) -> (renders (n, samples), float64 distances (n,))`` at MIDI ``note``
    (default: the renderer's); with an ``executor`` (and a thread-safe renderer) the rows are
    split into ``blocks`` rendered and scored concurrently."""

    def score(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        audio = renderer.render(params, note)
        return audio, np.asarray(distance(audio), dtype=np.float64)

    if executor is None or blocks < 2 or not renderer.thread_safe:
        return score

    def score_blocks(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(params) < 2:
            return score(params)
        parts = np.array_split(params, min(blocks, len(params)))  # none empty: at most one per row
        done = [f.result() for f in [executor.submit(score, part) for part in parts]]
        return np.concatenate([audio for audio, _ in done]), np.concatenate([d for _, d in done])

    return score_blocks


def evaluator(renderer: Renderer, distance: Distance, executor: Executor | None = None,
              blocks: int = 2, note: float | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """``params (n, k) -> float64 distances (n,)`` of their renders: :func:`scorer` without the renders."""
    score = scorer(renderer, distance, executor, blocks, note)
    return lambda params: score(params)[1]


def refine(renderer: Renderer, distance: Distance, start: np.ndarray, budget_seconds: float,
           sigma: float = SIGMA, popsize: int | None = None, seed: int = 0, keep: int = 1,
           min_difference: float = MIN_DIFFERENCE, executor: Executor | None = None,
           blocks: int = 2, note: float | None = None, warm_starts: np.ndarray | None = None,
           fixed: np.ndarray | list[int] | None = None) -> RefineResult:
    """Minimise ``distance(renderer.render(x, note))`` from ``start`` for at most ``budget_seconds``;
    ``keep`` > 1 also returns up to that many distinct good patches (see :func:`pick_distinct`);
    ``executor``: render and score each generation in ``blocks`` on its threads (see :func:`evaluator`).
    ``warm_starts`` (m, k): other patches scored with ``start``; the best of them all starts the
    search (``start_distance`` stays the distance of ``start``, which the result never exceeds).
    ``fixed``: columns the search leaves at ``start``'s values (warm starts take them too); with
    fewer than two columns left free, the best start is the result."""
    import cma
    from threadpoolctl import threadpool_limits

    began = time.perf_counter()
    pset = renderer.parameter_set
    evaluate = evaluator(renderer, distance, executor, blocks, note)
    x0 = pset.quantise(np.asarray(start, dtype=np.float64)[None, :])[0].astype(np.float64)
    held = np.zeros(x0.size, dtype=bool)
    if fixed is not None:
        held[np.asarray(fixed, dtype=np.intp)] = True
    starts = x0[None, :]
    if warm_starts is not None and len(warm_starts):
        others = np.array(warm_starts, dtype=np.float64)
        others[:, held] = x0[held]
        starts = np.concatenate([starts, pset.quantise(others)])
    scores = evaluate(starts)
    evaluations = len(starts)
    start_d = float(scores[0])
    i = int(np.argmin(scores))  # the first of equals: the network's answer wins ties
    x0, best_d = starts[i].astype(np.float64), float(scores[i])
    best_x = x0.copy()
    archive_x, archive_d = starts, np.asarray(scores, dtype=np.float64)
    free = ~held
    k = int(free.sum())
    if k < 2:  # CMA-ES needs two dimensions: nothing (or too little) left to search
        return RefineResult(best_x.astype(np.float32), best_d, start_d, evaluations, time.perf_counter() - began)

    def whole(searched: np.ndarray) -> np.ndarray:
        """Candidates of the free columns (n, k) -> whole patches, the held columns as started."""
        full = np.repeat(x0[None, :], len(searched), axis=0)
        full[:, free] = searched
        return full

    options = {
        "bounds": [0.0, 1.0], "seed": seed + 1, "verbose": -9,
        "popsize": popsize or max(8, 4 + int(3 * np.log(k))), "tolfun": 1e-9, "tolx": 1e-6,
    }
    # CMA-ES's small eigendecompositions gain nothing from BLAS threads, and OpenBLAS's idle
    # threads spin after each call, taking the cores the candidates render on (measured: two
    # evaluation threads scored 1.1x as many candidates as one with them, 1.8x without).
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")  # cma warns about flat fitness on discrete plateaus
        es = cma.CMAEvolutionStrategy(np.clip(x0[free], 0.0, 1.0), sigma, options)
        generation = 0.0  # duration of the last generation: do not start one that would overrun
        while time.perf_counter() - began + generation < budget_seconds and not es.stop():
            tick = time.perf_counter()
            candidates = np.clip(np.asarray(es.ask()), 0.0, 1.0)
            snapped = pset.quantise(whole(candidates))
            scores = evaluate(snapped)
            evaluations += len(scores)
            es.tell(list(candidates), scores.tolist())
            i = int(np.argmin(scores))
            if scores[i] < best_d:
                best_d, best_x = float(scores[i]), snapped[i].astype(np.float64)
            if keep > 1:
                archive_x = np.concatenate([archive_x, snapped])
                archive_d = np.concatenate([archive_d, scores])
                if len(archive_d) > 2 * ARCHIVE_SIZE:
                    order = np.argsort(archive_d, kind="stable")[:ARCHIVE_SIZE]
                    archive_x, archive_d = archive_x[order], archive_d[order]
            generation = time.perf_counter() - tick
    alternatives = tuple((archive_x[i].astype(np.float32), float(archive_d[i]))
                         for i in pick_distinct(archive_x, archive_d, keep, min_difference)) if keep > 1 else ()
    return RefineResult(best_x.astype(np.float32), best_d, start_d, evaluations, time.perf_counter() - began,
                        alternatives)
