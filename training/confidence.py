"""Refit a several-answer model's confidence to pick the answer that *sounds* closest.

A ``cnn3h`` network gives eight answers and a confidence for each. Training taught the confidence
which answer is closest to the true patch by *parameter* loss, but what a user hears of
``deepdiva match --no-score`` is the most confident answer's sound, and many patches that are
far apart in parameters sound alike (and the other way round). Here the confidence layer (one
Dense layer on the trunk's 384 numbers) is fitted again, with the trunk and the answers kept
as they are, to the answer whose render is closest to the target by the multi-resolution
spectral distance times its spectral convergence (the linear measure, so that a noisy answer
the log-magnitude distance alone would forgive is not picked), each answer finished as an
unscored match finishes it (:meth:`~deepdiva.core.matcher.Matcher.finished_unscored`: tidied,
the target's amp envelope when it dies away or is let go, played at the detected key and let go where the
target was, repaired if it sounds off the pitch, at the target's RMS level). Each answer is also
marked mute or not (:func:`~deepdiva.core.level.mute`), and the card reports the share of picks that
are (a mute pick makes the unscored match fall back on another answer: 10-15 % of held-out renders
with v5). Costing a mute answer more than any that sounds was tried and not kept
(``scripts/experiments/mute_cost.py``: fewer fallbacks, but what the match wrote was further by
spectral convergence, the closest heard answer by render beating the confidence's pick).

The targets are fresh renders drawn as the training data was (builtin synth, mixed prior,
augmented, keys 36-84) under another seed; no labels are needed beyond the audio, so the refit
costs renders and distances, not training: ~40 ms a target on one core.

The fit is a softmax regression (L-BFGS) to soft labels ``softmax(-log(cost) / temperature)`` (an
answer twice as far gets ``2 ** (-1 / temperature)`` of the closest's weight), its weights held
near the trained layer's by an L2 penalty. Temperature and penalty were chosen on a validation
split of the fit's targets (0.05-0.2 and 1e-4-1e-3 all within 0.005 of each other).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.atomic import write_bytes_atomic, write_json_atomic
from ..core.audio import AudioClip, prepare_take
from ..core.envelope import amp_envelope, noise_floor
from ..core.errors import AudioError, ModelError
from ..core.level import mute
from ..core.metrics import SpectralTarget, spectral_convergence

log = logging.getLogger(__name__)

CONFIDENCE_LAYER = "hyp_confidence"  # the Keras layer name of the confidence logits (training.models)
TEMPERATURE = 0.2
L2 = 1e-3
RECORDINGS_SHARE = 0.3  # of the fit's weight, when recordings join the renders
REFIT_SEED = 5  # the targets' dataset seed: not training's (0, 3, 4) nor the held-out sets' (1001, 1002)


@dataclass(frozen=True)
class ConfidenceLayer:
    """Where the confidence logits are computed in an ONNX graph: ``logits = embedding @ weight + bias``."""

    embedding: str  # the tensor the layer reads (the trunk's output)
    weight: str  # initializer names
    bias: str


def _onnx():
    """The ``onnx`` package (the ``train`` extra), or a clear error."""
    try:
        import onnx
    except ImportError:
        raise ModelError("refitting a model needs the onnx package: pip install 'deepdiva[train]'") from None
    return onnx


def confidence_layer(model) -> ConfidenceLayer:
    """The confidence layer of an exported ``cnn3h`` ONNX ``model`` (an ``onnx.ModelProto``)."""
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    matmul = next((n for n in graph.node if n.op_type == "MatMul" and CONFIDENCE_LAYER in n.name), None)
    if matmul is None or matmul.input[1] not in inits:
        raise ModelError("the model has no confidence layer to refit (a cnn3h model has one)")
    add = next((n for n in graph.node if n.op_type == "Add" and matmul.output[0] in n.input), None)
    bias = None if add is None else next((i for i in add.input if i in inits), None)
    if bias is None:
        raise ModelError("the model's confidence layer has no bias")
    return ConfidenceLayer(matmul.input[0], matmul.input[1], bias)


def layer_weights(model, layer: ConfidenceLayer) -> tuple[np.ndarray, np.ndarray]:
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    return numpy_helper.to_array(inits[layer.weight]).copy(), numpy_helper.to_array(inits[layer.bias]).copy()


def with_layer_weights(model, layer: ConfidenceLayer, weight: np.ndarray, bias: np.ndarray):
    """A copy of ``model`` whose confidence layer has ``weight`` and ``bias``."""
    onnx = _onnx()
    from onnx import numpy_helper

    new = onnx.ModelProto()
    new.CopyFrom(model)
    for init in new.graph.initializer:
        if init.name in (layer.weight, layer.bias):
            value = weight if init.name == layer.weight else bias
            old = numpy_helper.to_array(init)
            if old.shape != value.shape:
                raise ModelError(f"confidence {init.name}: shape {value.shape}, the model has {old.shape}")
            init.CopyFrom(numpy_helper.from_array(value.astype(old.dtype), init.name))
    return new


def with_embedding_output(model, layer: ConfidenceLayer):
    """A copy of ``model`` that also outputs the confidence layer's input (the trunk's numbers)."""
    onnx = _onnx()

    new = onnx.ModelProto()
    new.CopyFrom(model)
    new.graph.output.append(onnx.helper.make_tensor_value_info(layer.embedding, onnx.TensorProto.FLOAT, None))
    return new


# ---------------------------------------------------------------- labels: how close each answer sounds


@dataclass
class AnswerScores:
    """Per target: the trunk's numbers, and each answer's distance and spectral convergence to it,
    and whether it is mute (:func:`~deepdiva.core.level.mute`: no volume brings it within 30 dB)."""

    embedding: np.ndarray  # (n, e)
    distance: np.ndarray  # (n, h) multi-resolution STFT distance
    convergence: np.ndarray  # (n, h)
    mute: np.ndarray | None = None  # (n, h) bool; None: none is

    FIELDS = ("embedding", "distance", "convergence", "mute")

    def __post_init__(self) -> None:
        if self.mute is None:
            self.mute = np.zeros(self.distance.shape, dtype=bool)

    @classmethod
    def concat(cls, parts: list[AnswerScores]) -> AnswerScores:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.FIELDS))

    def rows(self, which: slice) -> AnswerScores:
        """The scores of the targets ``which`` selects."""
        return AnswerScores(*(getattr(self, f)[which] for f in self.FIELDS))

    @property
    def cost(self) -> np.ndarray:
        """What the confidence is fitted to avoid: distance x spectral convergence (n, h)."""
        return self.distance * self.convergence

    def save(self, path: Path) -> None:
        np.savez(path, **{f: getattr(self, f) for f in self.FIELDS})

    @classmethod
    def load(cls, path: Path) -> AnswerScores | None:
        """The scores kept at ``path``; None for a file kept before answers were marked mute (to score again)."""
        with np.load(path) as z:
            return cls(*(z[f] for f in cls.FIELDS)) if all(f in z.files for f in cls.FIELDS) else None


class AnswerScorer:
    """Scores every answer of a model for targets, as ``deepdiva match --no-score`` would finish it."""

    def __init__(self, model_path: str | os.PathLike) -> None:
        from ..core.matcher import Matcher
        from ..core.model_runtime import make_session

        self.matcher = Matcher.load(model_path, intra_op_threads=1, bank=False)
        proto = _onnx().load(os.fspath(self.matcher.model.card.model_path))
        self.layer = confidence_layer(proto)
        self.shape = layer_weights(proto, self.layer)[0].shape  # (the trunk's numbers, answers)
        self.session = make_session(with_embedding_output(proto, self.layer).SerializeToString())

    def score(self, clips: Iterable[AudioClip]) -> AnswerScores:
        """Scores of each clip that reads as one note (chords and silent clips are left out; none: empty)."""
        m = self.matcher
        rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        count = 0
        for clip in clips:
            count += 1
            try:
                take = prepare_take(clip, m.sample_rate, m.seconds)
            except AudioError:
                continue
            note = take.note
            pitch = m.detect(note[None, :])[0]
            if m.chord_in(note, pitch) is not None:
                continue
            noise = noise_floor(note, m.sample_rate, take.lead_in)
            envelope = amp_envelope(note, m.sample_rate, noise)
            length = m.note_length(note, envelope)
            key = m.played_at(pitch).midi_float
            features = m.features(note[None, :], [pitch])
            hyps, embedding = self.session.run(["hypotheses", self.layer.embedding],
                                               {m.model.card.input_name: features.astype(np.float32)})
            answers = m.enveloped_unscored(m.tidied(hyps[0], [pitch] * hyps.shape[1]), envelope)
            played, rendered = zip(*(m.finished_unscored(a, note, key, pitch, length) for a in answers), strict=True)
            assert all(r is not None for r in rendered)  # render=True
            played, renders = np.stack(played), np.stack(rendered)
            target = SpectralTarget(note, noise=noise)
            rows.append((embedding[0], target.distance(renders), spectral_convergence(renders, note[None, :]),
                         mute(m.parameter_set, played, renders, note)))
        if not rows:
            log.info("none of %d clips could be scored (silent, or chords)", count)
            width, answers = self.shape
            return AnswerScores(np.zeros((0, width), np.float32), np.zeros((0, answers), np.float32),
                                np.zeros((0, answers), np.float32), np.zeros((0, answers), bool))
        emb, dist, sc, muted = (np.stack(x) for x in zip(*rows, strict=True))
        return AnswerScores(emb.astype(np.float32), dist.astype(np.float32), sc.astype(np.float32), muted)


_SCORER: AnswerScorer | None = None


def _init_worker(model_path: str) -> None:
    global _SCORER
    logging.disable(logging.WARNING)
    _SCORER = AnswerScorer(model_path)


def _score_shard(spec_dict: dict, index: int) -> AnswerScores:
    from .dataset import DatasetSpec, render_chunks

    assert _SCORER is not None
    spec = DatasetSpec.from_dict(spec_dict)
    rate = spec.render.sample_rate
    parts = [_SCORER.score(AudioClip(a, rate) for a in chunk.audio)
             for chunk in render_chunks(spec, _SCORER.matcher.renderer, index) if chunk.audio is not None]
    return AnswerScores.concat(parts)


def _readable(paths: list[str]) -> Iterable[AudioClip]:
    from ..core.audio import read_audio

    for path in paths:
        try:
            yield read_audio(path)
        except AudioError as exc:
            log.warning("left out: %s", exc)


def _score_files(paths: list[str]) -> AnswerScores:
    assert _SCORER is not None
    return _SCORER.score(_readable(paths))


def score_files(model_path: str | os.PathLike, paths: list[Path], workers: int = 2, batch: int = 50) -> AnswerScores:
    """:class:`AnswerScores` of recordings (audio files; those that are chords, silent or unreadable
    are left out), scored on ``workers`` processes."""
    names = [os.fspath(p) for p in paths]
    batches = [names[i:i + batch] for i in range(0, len(names), batch)]
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(os.fspath(model_path),)) as pool:
        parts = list(pool.map(_score_files, batches))
    return AnswerScores.concat(parts)


def target_spec(n_shards: int, shard_size: int, seed: int = REFIT_SEED) -> dict:
    """The refit's targets: drawn as the shipped model's training data (scripts/build_model.sh)."""
    from .augment import AugmentConfig
    from .dataset import DatasetSpec

    return DatasetSpec(sample_size=shard_size, n_shards=n_shards, seed=seed, drop_silent=True, pitch_range=(36, 84),
                       augment=AugmentConfig().to_dict(), prior="mixed").to_dict()


def score_targets(model_path: str | os.PathLike, n_targets: int, seed: int = REFIT_SEED, workers: int = 2,
                  shard_size: int = 250, cache: Path | None = None) -> AnswerScores:
    """:class:`AnswerScores` of ``n_targets`` fresh renders, scored on ``workers`` processes; with
    ``cache`` (a folder) each finished shard is kept there, named by the model file's digest, and not
    scored again for that model."""
    shard_size = min(shard_size, n_targets)
    n_shards = -(-n_targets // shard_size)
    spec = target_spec(n_shards, shard_size, seed)
    parts: dict[int, AnswerScores] = {}
    todo = []
    kept: list[Path | None] = [None] * n_shards
    if cache is not None:
        digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:12]
        kept = [cache / f"scores-{digest}-{seed}-{shard_size}-{i:05d}.npz" for i in range(n_shards)]
    for i in range(n_shards):
        path = kept[i]
        loaded = AnswerScores.load(path) if path is not None and path.exists() else None
        if loaded is not None:
            parts[i] = loaded
        else:
            todo.append(i)
    if todo:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(os.fspath(model_path),)) as pool:
            futures = {i: pool.submit(_score_shard, spec, i) for i in todo}
            for i, future in futures.items():
                parts[i] = future.result()
                path = kept[i]
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    parts[i].save(path)
                log.info("scored shard %d of %d", i + 1, n_shards)
    return AnswerScores.concat([parts[i] for i in range(n_shards)])


# ---------------------------------------------------------------- the fit


def soft_labels(distance: np.ndarray, temperature: float = TEMPERATURE) -> np.ndarray:
    """Per target, each answer's share: ``softmax(-log(distance) / temperature)``."""
    z = -np.log(np.maximum(distance, 1e-6)) / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def fit_confidence(embedding: np.ndarray, cost: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                   temperature: float = TEMPERATURE, l2: float = L2,
                   row_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Confidence weights (e, h) and bias (h,) fitted to :func:`soft_labels` of each answer's ``cost``
    (n, h), by cross-entropy (each row weighted by ``row_weights``, default alike) + ``l2`` x the
    squared distance of the weights from the trained ``weight``."""
    from scipy.optimize import minimize

    x = embedding.astype(np.float64)
    y = soft_labels(cost.astype(np.float64), temperature)
    rows = np.ones(len(x)) if row_weights is None else np.asarray(row_weights, dtype=np.float64)
    y = y * (rows / rows.mean())[:, None]  # a row's weight scales its labels (and so its gradient)
    n, e = x.shape
    h = y.shape[1]
    w0 = weight.astype(np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: e * h].reshape(e, h), theta[e * h:]
        logits = x @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        ce = -float((y * logp).sum()) / n
        g = (np.exp(logp) * y.sum(axis=1, keepdims=True) - y) / n
        gw = x.T @ g + 2 * l2 * (w - w0)
        return ce + l2 * float(np.square(w - w0).sum()), np.concatenate([gw.ravel(), g.sum(axis=0)])

    start = np.concatenate([w0.ravel(), bias.astype(np.float64)])
    result = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    theta = result.x
    return theta[: e * h].reshape(e, h).astype(np.float32), theta[e * h:].astype(np.float32)


def chosen(scores: AnswerScores, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The answer each target's confidence (``weight``, ``bias``) picks (n,)."""
    return np.argmax(scores.embedding @ weight + bias, axis=1)


def summary(scores: AnswerScores, picks: np.ndarray) -> dict[str, float]:
    """Median distance and spectral convergence of the picked answers, and the share of them mute."""
    rows = np.arange(len(picks))
    assert scores.mute is not None
    return {"mrstft_median": float(np.median(scores.distance[rows, picks])),
            "sc_median": float(np.median(scores.convergence[rows, picks])),
            "mute_share": float(np.mean(scores.mute[rows, picks]))}


def write_refitted(model_path: Path, weight: np.ndarray, bias: np.ndarray, out: Path, note: dict) -> Path:
    """The model with its confidence layer's new weights, as ``out`` (.onnx) + its card (.json),
    the card noting the refit (``note``) and the new file's sha256."""
    onnx = _onnx()

    from ..core.model_runtime import ModelCard

    card = ModelCard.load(model_path)
    proto = onnx.load(os.fspath(card.model_path))
    data = with_layer_weights(proto, confidence_layer(proto), weight, bias).SerializeToString()
    onnx_path = out.with_suffix(".onnx")
    write_bytes_atomic(onnx_path, data)
    info = json.loads(json.dumps(card.data))
    info["model_file"] = onnx_path.name
    info["model_sha256"] = hashlib.sha256(data).hexdigest()
    info["confidence_refit"] = note
    write_json_atomic(onnx_path.with_suffix(".json"), info)
    return onnx_path


def split(scores: AnswerScores, held_out: float) -> tuple[AnswerScores, AnswerScores]:
    """``scores`` as (all but the last ``held_out`` share, that share)."""
    n_fit = int(round(len(scores.distance) * (1 - held_out)))
    return scores.rows(slice(None, n_fit)), scores.rows(slice(n_fit, None))


def _report(test: AnswerScores, before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray]) -> dict:
    return {"before": summary(test, chosen(test, *before)), "after": summary(test, chosen(test, *after)),
            "closest": summary(test, np.argmin(test.distance, axis=1))}


def refit(model_path: str | os.PathLike, out: str | os.PathLike, n_targets: int = 24000, seed: int = REFIT_SEED,
          workers: int = 2, cache: Path | None = None, held_out: float = 0.2, temperature: float = TEMPERATURE,
          l2: float = L2, recordings: list[Path] | None = None, recordings_share: float = RECORDINGS_SHARE) -> dict:
    """Score ``n_targets`` fresh renders (:func:`score_targets`) and any ``recordings`` (audio files:
    :func:`score_files`), fit the confidence on all but the last ``held_out`` share of each (the
    recordings weighted to ``recordings_share`` of the whole), and write the model with it to
    ``out``; returns what the card notes: per kind of target, the held-out ones' median distance
    and SC of the answer picked before and after, and of the closest answer (what a perfect
    confidence would pick)."""
    onnx = _onnx()

    from ..core.model_runtime import ModelCard

    model_path, out = Path(model_path), Path(out)
    if out.suffix != ".onnx":
        raise ModelError(f"the refitted model's name must end in .onnx (its card is written beside it): {out}")
    out.parent.mkdir(parents=True, exist_ok=True)  # before the renders are scored, not after
    renders_fit, renders_test = split(score_targets(model_path, n_targets, seed, workers, cache=cache), held_out)
    parts, weights = [renders_fit], [np.ones(len(renders_fit.distance))]
    tests = {"renders": renders_test}
    scored_recordings = 0
    if recordings:  # shuffled (seeded), so the held-out share is of every kind a folder holds
        shuffled = [recordings[i] for i in np.random.default_rng(seed).permutation(len(recordings))]
        scores = score_files(model_path, shuffled, workers)
        scored_recordings = len(scores.distance)
        rec_fit, tests["recordings"] = split(scores, held_out)
        if len(rec_fit.distance):
            share = recordings_share / (1 - recordings_share) * len(renders_fit.distance) / len(rec_fit.distance)
            parts.append(rec_fit)
            weights.append(np.full(len(rec_fit.distance), share))
    fit = AnswerScores.concat(parts)
    proto = onnx.load(os.fspath(ModelCard.load(model_path).model_path))
    before = layer_weights(proto, confidence_layer(proto))
    after = fit_confidence(fit.embedding, fit.cost, *before, temperature, l2, np.concatenate(weights))
    note = {"renders": len(renders_fit.distance) + len(renders_test.distance), "seed": seed,
            "recordings": scored_recordings,
            "recordings_share": recordings_share if recordings else 0.0, "held_out_share": held_out,
            "temperature": temperature, "l2": l2,
            "cost": "multi-resolution STFT distance x spectral convergence, each answer as --no-score finishes it",
            "held_out": {kind: _report(test, before, after) for kind, test in tests.items() if len(test.distance)}}
    write_refitted(model_path, *after, out, note)
    return note
