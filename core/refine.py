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

A ``screen`` (a cheaper distance, e.g. one resolution of the four) can steer the search for its
first :data:`SCREEN_SECONDS`: the starts are still scored with the full ``distance``, the
candidates with the screen; then the :data:`RESCORED` best of them (and the ``keep`` best distinct
ones) are scored again with the full distance, which alone decides the result, and the search
goes on with the full distance. Measured on 32 held-out renders with the builtin synth, on two
threads, against the full distance throughout: a 1024-point resolution lets CMA-ES score 2.2x as
many candidates, and a 2 s search ends closer for 24 of 32 (geometric mean of the distance ratio
0.95); a 10 s search ends where it did (0.997, 19 of 32), where screening all 10 s was worse
(1.009: the screen's optimum is not quite the distance's). Two resolutions, 2048 alone, or a
render at half the rate with a 512-point screen (twice the renders again) gained less at 2 s.
Its frames half a window apart instead of a quarter (``Matcher.screen``) score 1.3x as many
candidates again, and a 2 s search ends closer (geometric mean 0.981 on 60 other held-out renders).

The search is separable CMA-ES (``CMA_diagonal``: a diagonal covariance, which adapts a step size
per parameter about n times faster than a full one learns its n^2 entries; with a few hundred
generations in a match's budget the full matrix hardly moves). Its first steps are small
(:data:`SIGMA`) because a match's start already sounds close: most of what a short search gains
is near it. Measured on 60 held-out renders at random keys (eval-notes rows 100-159, not the
ones benchmarks/match.py reports), network start, two threads, against the full covariance and
a step of 0.1: step 0.03 ended closer at 2 s (geometric mean of the distance ratio 0.956 and
0.987 on the two halves) and at 10 s (0.945); with the diagonal as well 0.931 / 0.975 at 2 s and
0.936 at 10 s. From the base preset, which is far from every target, the step stays
:data:`FAR_SIGMA` (0.03 measured the same there at 10 s) and the diagonal gained as much (0.935
at 10 s).
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
Evaluate = Callable[[np.ndarray], np.ndarray]  # candidate patches (n, k) -> distances (n,) of their renders
MIN_DIFFERENCE = 0.05  # alternatives differ by at least 5 % of each range on average
# CMA-ES's initial step size in the normalised cube, from a start that already sounds close
# (a network's answer, a bank patch): see the module's docstring; 0.01-0.03 measured alike at 2 s.
SIGMA = 0.03
# ... and from a start far from the target (the base preset). Tuned for network starts before the
# screen, the bank and the diagonal (eval-medium33 rows 60-84): 0.1 beat 0.05, 0.075, 0.15 and 0.25
# with 1 s and 5 s budgets.
FAR_SIGMA = 0.1
ARCHIVE_SIZE = 256  # best scored patches kept to pick alternatives from
RESCORED = 8  # a screened search's best candidates scored again with the full distance
SCREEN_SECONDS = 2.0  # how long a screen steers a search before the full distance takes over


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
           note: float | np.ndarray | None = None, note_length: float | None = None
           ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``params (n, k) -> (renders (n, samples), float64 distances (n,))`` at MIDI ``note`` (one for
    all, or one per row), let go after ``note_length`` seconds (defaults: the renderer's); with an
    ``executor`` (and a thread-safe renderer) the rows are split into ``blocks`` rendered and scored
    concurrently."""

    def score(params: np.ndarray, notes: float | np.ndarray | None = note) -> tuple[np.ndarray, np.ndarray]:
        audio = renderer.render(params, notes, note_length)
        return audio, np.asarray(distance(audio), dtype=np.float64)

    if executor is None or blocks < 2 or not renderer.thread_safe:
        return score

    def score_blocks(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(params) < 2:
            return score(params)
        parts = np.array_split(np.arange(len(params)), min(blocks, len(params)))  # none empty: at most one per row
        per_row = isinstance(note, np.ndarray) and note.ndim > 0
        done = [f.result() for f in [executor.submit(score, params[rows], np.asarray(note)[rows] if per_row else note)
                                     for rows in parts]]
        return np.concatenate([audio for audio, _ in done]), np.concatenate([d for _, d in done])

    return score_blocks


def evaluator(renderer: Renderer, distance: Distance, executor: Executor | None = None,
              blocks: int = 2, note: float | None = None, note_length: float | None = None) -> Evaluate:
    """``params (n, k) -> float64 distances (n,)`` of their renders: :func:`scorer` without the renders."""
    score = scorer(renderer, distance, executor, blocks, note, note_length)
    return lambda params: score(params)[1]


def refine(renderer: Renderer, distance: Distance, start: np.ndarray, budget_seconds: float,
           sigma: float = SIGMA, popsize: int | None = None, seed: int = 0, keep: int = 1,
           min_difference: float = MIN_DIFFERENCE, executor: Executor | None = None,
           blocks: int = 2, note: float | None = None, warm_starts: np.ndarray | None = None,
           fixed: np.ndarray | list[int] | None = None, screen: Evaluate | None = None,
           screen_seconds: float = SCREEN_SECONDS, note_length: float | None = None) -> RefineResult:
    """Minimise ``distance(renderer.render(x, note))`` from ``start`` for at most ``budget_seconds``;
    ``keep`` > 1 also returns up to that many distinct good patches (see :func:`pick_distinct`);
    ``executor``: render and score each generation in ``blocks`` on its threads (see :func:`evaluator`).
    ``warm_starts`` (m, k): other patches scored with ``start``; the best of them all starts the
    search (``start_distance`` stays the distance of ``start``, which the result never exceeds).
    ``fixed``: columns the search leaves at ``start``'s values (warm starts take them too); with
    fewer than two columns left free, the best start is the result. ``screen``: a cheaper
    :data:`Evaluate` (e.g. :func:`evaluator` with another distance) that scores the search's
    candidates for its first ``screen_seconds`` (see the module's docstring); the result, its
    alternatives and their distances are by ``distance`` all the same. ``sigma``: CMA-ES's first
    step, :data:`SIGMA` for a start near the target, :data:`FAR_SIGMA` for one far from it.
    ``note_length``: seconds to each render's note-off (default: the renderer's)."""
    import cma
    from threadpoolctl import threadpool_limits

    began = time.perf_counter()
    pset = renderer.parameter_set
    evaluate = evaluator(renderer, distance, executor, blocks, note, note_length)
    x0 = pset.quantise(np.asarray(start, dtype=np.float64)[None, :])[0].astype(np.float64)
    held = np.zeros(x0.size, dtype=bool)
    if fixed is not None:
        held[np.asarray(fixed, dtype=np.intp)] = True
    starts = x0[None, :]
    if warm_starts is not None and len(warm_starts):
        others = np.array(warm_starts, dtype=np.float64)
        others[:, held] = x0[held]
        starts = np.concatenate([starts, pset.quantise(others)])
    tick = time.perf_counter()
    scores = evaluate(starts)
    per_row = (time.perf_counter() - tick) / len(starts)  # one full score: what a rescoring costs
    start_d = float(scores[0])
    i = int(np.argmin(scores))  # the first of equals: the network's answer wins ties
    x0 = starts[i].astype(np.float64)
    scored = _Archive(starts, scores, keep > 1)  # by the full distance
    free = ~held
    k = int(free.sum())
    if k < 2:  # CMA-ES needs two dimensions: nothing (or too little) left to search
        return scored.result(start_d, time.perf_counter() - began, keep, min_difference)

    def whole(searched: np.ndarray) -> np.ndarray:
        """Candidates of the free columns (n, k) -> whole patches, the held columns as started."""
        full = np.repeat(x0[None, :], len(searched), axis=0)
        full[:, free] = searched
        return full

    screened = _Archive(starts[:0], scores[:0], True) if screen is not None else None
    search = screen if screen is not None else evaluate
    reserve = per_row * (RESCORED + keep)  # time kept back to score the screened best in full
    options = {
        "bounds": [0.0, 1.0], "seed": seed + 1, "verbose": -9,
        "popsize": popsize or max(8, 4 + int(3 * np.log(k))), "tolfun": 1e-9, "tolx": 1e-6,
        "CMA_diagonal": True,
    }
    # CMA-ES's small eigendecompositions gain nothing from BLAS threads, and OpenBLAS's idle
    # threads spin after each call, taking the cores the candidates render on (measured: two
    # evaluation threads scored 1.1x as many candidates as one with them, 1.8x without).
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")  # cma warns about flat fitness on discrete plateaus
        es = cma.CMAEvolutionStrategy(np.clip(x0[free], 0.0, 1.0), sigma, options)
        generation = 0.0  # duration of the last generation: do not start one that would overrun
        while not es.stop():
            elapsed = time.perf_counter() - began + generation
            if screened is not None and elapsed + reserve >= min(screen_seconds, budget_seconds):
                scored.add(*_rescored(screened, evaluate, keep, min_difference))  # the screen's phase ends
                screened, search = None, evaluate
                elapsed = time.perf_counter() - began + generation
            if elapsed >= budget_seconds:
                break
            tick = time.perf_counter()
            candidates = np.clip(np.asarray(es.ask()), 0.0, 1.0)
            snapped = pset.quantise(whole(candidates))
            scores = search(snapped)
            es.tell(list(candidates), scores.tolist())
            (scored if screened is None else screened).add(snapped, scores)
            generation = time.perf_counter() - tick
    if screened is not None:  # CMA-ES stopped itself within the screen's phase
        scored.add(*_rescored(screened, evaluate, keep, min_difference))
    return scored.result(start_d, time.perf_counter() - began, keep, min_difference)


class _Archive:
    """The patches a search scored by one distance: the best so far, and (``all_kept``) the
    :data:`ARCHIVE_SIZE` best to pick alternatives (or a screen's finalists) from."""

    def __init__(self, params: np.ndarray, distances: np.ndarray, all_kept: bool) -> None:
        self.all_kept = all_kept
        self.params, self.distances = params[:0].astype(np.float64), np.zeros(0)
        self.evaluations = 0
        self.best: tuple[np.ndarray, float] | None = None
        self.add(params, distances)

    def add(self, params: np.ndarray, distances: np.ndarray, evaluations: int | None = None) -> None:
        """Record scored ``params`` (n, k), which took ``evaluations`` renders (default: n); the
        best changes only on a strictly lower distance."""
        self.evaluations += len(distances) if evaluations is None else evaluations
        i = int(np.argmin(distances)) if len(distances) else 0
        if len(distances) and (self.best is None or distances[i] < self.best[1]):
            self.best = (np.asarray(params[i], dtype=np.float64), float(distances[i]))
        if self.all_kept:
            self.params = np.concatenate([self.params, params])
            self.distances = np.concatenate([self.distances, np.asarray(distances, dtype=np.float64)])
            if len(self.distances) > 2 * ARCHIVE_SIZE:
                order = np.argsort(self.distances, kind="stable")[:ARCHIVE_SIZE]
                self.params, self.distances = self.params[order], self.distances[order]

    def result(self, start_distance: float, seconds: float, keep: int, min_difference: float) -> RefineResult:
        assert self.best is not None  # the starts were scored first
        x, d = self.best
        alternatives = tuple((self.params[i].astype(np.float32), float(self.distances[i]))
                             for i in pick_distinct(self.params, self.distances, keep, min_difference)
                             ) if keep > 1 else ()
        return RefineResult(x.astype(np.float32), d, start_distance, self.evaluations, seconds, alternatives)


def _rescored(screened: _Archive, evaluate: Evaluate, keep: int,
              min_difference: float) -> tuple[np.ndarray, np.ndarray, int]:
    """The screen's :data:`RESCORED` best and ``keep`` best distinct patches scored with the
    full distance (``evaluate``): ``(params, distances, renders)`` for :meth:`_Archive.add`,
    the renders counting the screen's too."""
    if not len(screened.distances):
        return screened.params, screened.distances, 0
    finalists = sorted(set(np.argsort(screened.distances, kind="stable")[:RESCORED].tolist())
                       | set(pick_distinct(screened.params, screened.distances, keep, min_difference)))
    params = screened.params[finalists]
    return params, evaluate(params), screened.evaluations + len(params)
