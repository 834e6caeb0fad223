"""Evaluate an exported model on a dataset against two baselines (base preset, random patch).

Per-parameter MAE in normalised units, and — after re-rendering every prediction with the
dataset's renderer — spectral distances to the target audio: multi-resolution STFT, log-mel L1,
MFCC distance. Writes a JSON report and PNG plots; the text table goes to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import write_atomic, write_json_atomic
from ..core.errors import ModelError
from ..core.features import FeatureConfig
from ..core.matcher import Matcher
from ..core.metrics import log_mel_l1, mfcc_distance, multires_stft_distance, spectral_convergence
from ..core.model_runtime import OnnxModel
from ..core.model_synth import choose_synth, renderer_for
from ..core.profile import ParameterSet
from ..core.render import Renderer
from ..core.tuning import relative_to_pitch
from .dataset import Dataset, base_preset_values, draw_patches, is_silent
from .plots import plot_examples

DISTANCES = ("mrstft", "sc", "log_mel_l1", "mfcc")
BATCH = 64
EVAL_STREAM = 0xE7A1


@dataclass
class MethodScores:
    """Per-clip scores of one way of choosing parameters."""

    mae: np.ndarray  # (n, k) absolute errors, normalised
    distances: dict[str, np.ndarray]  # name -> (n,)

    def summary(self) -> dict:
        return {"mae": float(self.mae.mean()),
                "mae_per_parameter": self.mae.mean(axis=0).round(5).tolist(),
                **{name: float(d.mean()) for name, d in self.distances.items()},
                **{f"{name}_median": float(np.median(d)) for name, d in self.distances.items()}}


def _distances(pred_audio: np.ndarray, target: np.ndarray, cfg: FeatureConfig) -> dict[str, np.ndarray]:
    return {"mrstft": multires_stft_distance(pred_audio, target),
            "sc": spectral_convergence(pred_audio, target),
            "log_mel_l1": log_mel_l1(pred_audio, target, cfg),
            "mfcc": mfcc_distance(pred_audio, target, cfg)}


def _check_compatible(model: OnnxModel, ds: Dataset) -> None:
    if model.card.synth.profile != ds.spec.profile:
        raise ModelError(f"the model predicts {model.card.synth.profile} parameters but the dataset is of "
                         f"{ds.spec.profile}")
    if list(model.parameter_set.ids) != list(ds.parameter_set.ids):
        raise ModelError(f"the model predicts {model.parameter_set.describe()} but the dataset varies "
                         f"{ds.parameter_set.describe()}")
    if model.card.n_samples != ds.spec.render.n_samples or model.card.sample_rate != ds.spec.render.sample_rate:
        raise ModelError("the model and the dataset use different clip lengths or sample rates")


def dataset_renderer(model: OnnxModel, ds: Dataset, plugin_path: str | None = None) -> Renderer:
    """The renderer of the dataset's audio (its renderer, render settings and base preset), with
    ``plugin_path`` for its plugin if it moved; refused if it cannot play the model's synth
    (:func:`~deepdiva.core.model_synth.choose_synth`)."""
    spec = ds.spec
    choice = choose_synth(model.card.synth, spec.renderer, plugin_path or spec.plugin_path)
    fixed = base_preset_values(spec.profile, spec.base_preset) if spec.base_preset else {}
    return renderer_for(model.card, choice, settings=spec.render, fixed=fixed)


def _rows(ds: Dataset, limit: int | None):
    """(params, played notes, audio) batches over the dataset, at most ``limit`` rows in all."""
    left = limit if limit is not None else len(ds)
    for shard in ds.shards:
        params = ds.load_shard(shard, "params")
        audio = ds.load_shard(shard, "audio")
        played = ds.played_notes(shard)
        for start in range(0, len(params), BATCH):
            if left <= 0:
                return
            stop = min(start + BATCH, len(params), start + left)
            left -= stop - start
            yield np.asarray(params[start:stop]), played[start:stop], np.asarray(audio[start:stop])


def evaluate(model: OnnxModel, ds: Dataset, limit: int | None = None, seed: int = 0,
             renderer: Renderer | None = None, keep_examples: int = 3,
             plugin_path: str | None = None) -> tuple[dict, dict]:
    """Score the model and the baselines; returns (report, examples for plots). Every answer is
    re-rendered as the dataset was (:func:`dataset_renderer`; ``plugin_path``: its plugin here).

    The model answers as ``deepdiva match`` does (:meth:`Matcher.answer`): a model trained across
    notes is played at the pitch detected in each target, one trained at one note at that note;
    the baselines are played at the same keys. Parameter errors are measured against the true
    patch restated for the key the answer is played at (:func:`relative_to_pitch`: the same
    sound, so an answer is not penalised for putting the octave into the note).
    """
    _check_compatible(model, ds)
    pset: ParameterSet = model.parameter_set
    engine = renderer or dataset_renderer(model, ds, plugin_path)
    matcher = Matcher(model, engine, threads=1)
    cfg = model.card.feature_config
    # A stream of its own: default_rng(seed) would equal shard 0 of a dataset made with that seed.
    rng = np.random.default_rng([EVAL_STREAM, seed])
    base = pset.defaults_normalised()
    parts: dict[str, list[MethodScores]] = {"model": [], "base_preset": [], "random_patch": []}
    if model.has_hypotheses:  # its answer when a match renders them: the one that sounds closest
        parts["model_closest"] = []
    examples: dict[str, list] = {"target": [], "model": [], "distance": [], "pitch": []}
    skipped = pitched = 0
    try:
        for params, played, audio in _rows(ds, limit):
            audible = ~is_silent(audio)  # the matcher refuses silence, so scoring it means nothing
            skipped += int((~audible).sum())
            params, played, audio = params[audible], played[audible], audio[audible]
            n = len(params)
            if n == 0:
                continue
            guess, pitches, keys = matcher.answer(audio)
            pitched += sum(p.pitched for p in pitches)
            truth, _ = relative_to_pitch(pset, params, played, keys)
            choices = {"model": guess,
                       "base_preset": np.repeat(base[None, :], n, axis=0),
                       "random_patch": draw_patches(pset, rng, n)}
            if "model_closest" in parts:
                choices["model_closest"] = np.stack([matcher.closest(matcher.hypotheses(a, p), a, k, leveled=False)[0]
                                                     for a, p, k in zip(audio, pitches, keys, strict=True)])
            for method, choice in choices.items():
                rendered = engine.render(choice, keys)
                batch_scores = MethodScores(np.abs(choice - truth), _distances(rendered, audio, cfg))
                parts[method].append(batch_scores)
                if method == "model" and len(examples["target"]) < keep_examples:
                    take = min(keep_examples - len(examples["target"]), n)
                    examples["target"].extend(audio[:take])
                    examples["model"].extend(rendered[:take])
                    examples["distance"].extend(batch_scores.distances["mrstft"][:take].tolist())
                    examples["pitch"].extend(pitches[:take])
    finally:
        if renderer is None:
            engine.close()
    scores = {m: MethodScores(np.concatenate([p.mae for p in ps]),
                              {d: np.concatenate([p.distances[d] for p in ps]) for d in DISTANCES})
              for m, ps in parts.items()}
    n_rows = len(scores["model"].mae)
    report: dict[str, Any] = {
        "model": str(model.card.path),
        "trained_on": model.card.synth.describe(),
        "rendered_with": engine.kind,
        "dataset": str(ds.folder),
        "n": n_rows,
        "skipped_silent": skipped,
        "pitched": pitched,
        "plays_detected_note": matcher.follows_pitch,
        "parameters": [p.location or p.name for p in pset.parameters],
        "methods": {m: s.summary() for m, s in scores.items()},
    }
    report["ratios"] = {
        "mae_model_vs_random": report["methods"]["model"]["mae"] / report["methods"]["random_patch"]["mae"],
        "mrstft_model_vs_base": report["methods"]["model"]["mrstft"] / report["methods"]["base_preset"]["mrstft"],
        "mrstft_median_model_vs_base": (report["methods"]["model"]["mrstft_median"]
                                        / report["methods"]["base_preset"]["mrstft_median"]),
    }
    return report, examples


def format_table(report: dict) -> str:
    methods = report["methods"]
    head = (f"{'method':<14}{'param MAE':>11}{'MR-STFT':>10}{'(median)':>10}{'SC median':>11}"
            f"{'log-mel L1':>12}{'MFCC':>9}")
    played = "the detected note" if report.get("plays_detected_note") else "the model's one note"
    lines = [f"{report['n']} clips of {report['dataset']} ({report['skipped_silent']} silent targets skipped, "
             f"{report.get('pitched', 0)} pitched; answers played at {played})", head, "-" * len(head)]
    for name, m in methods.items():
        lines.append(f"{name:<14}{m['mae']:>11.4f}{m['mrstft']:>10.3f}{m['mrstft_median']:>10.3f}"
                     f"{m['sc_median']:>11.3f}{m['log_mel_l1']:>12.4f}{m['mfcc']:>9.2f}")
    r = report["ratios"]
    lines.append(f"model MAE / random MAE = {r['mae_model_vs_random']:.3f}; "
                 f"model MR-STFT / base-preset MR-STFT = {r['mrstft_model_vs_base']:.3f} "
                 f"(medians {r['mrstft_median_model_vs_base']:.3f})")
    return "\n".join(lines)


def default_report_dir(model_path: str | Path) -> Path:
    """``./<model stem>-eval/`` in the current folder; never beside the model, which for the
    shipped model is inside the installed package."""
    return Path.cwd() / f"{Path(model_path).stem}-eval"


def write_outputs(report: dict, examples: dict, out: Path, sample_rate: int) -> list[Path]:
    """report.json, per-parameter error bars and target/prediction spectrogram pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = [write_json_atomic(out / "report.json", report)]
    names = report["parameters"]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(8, 0.35 * len(names)), 4))
    width = 0.27
    for i, method in enumerate(("model", "base_preset", "random_patch")):
        ax.bar(x + (i - 1) * width, report["methods"][method]["mae_per_parameter"], width, label=method)
    ax.set_xticks(x, names, rotation=90, fontsize=7)
    ax.set_ylabel("MAE (normalised)")
    ax.legend()
    fig.tight_layout()
    written.append(write_atomic(out / "parameter_mae.png", lambda tmp: fig.savefig(tmp, format="png", dpi=90)))
    plt.close(fig)

    if examples["target"]:
        written.append(write_atomic(out / "examples.png", lambda tmp: plot_examples(examples, sample_rate, tmp)))
    return written


def update_card_metrics(model: OnnxModel, report: dict) -> Path:
    """Record the evaluation in the model card, under ``metrics.evaluations.<dataset name>`` (one
    entry per dataset evaluated on); the ONNX file itself is unchanged."""
    card = dict(model.card.data)
    metrics = dict(card.get("metrics", {}))
    name = Path(report["dataset"]).name
    metrics.pop("evaluation", None)  # the single entry of earlier cards
    metrics["evaluations"] = {**metrics.get("evaluations", {}), name: {
        "dataset": name, "n": report["n"], "pitched": report.get("pitched"),
        **{m: {k: v for k, v in s.items() if k != "mae_per_parameter"} for m, s in report["methods"].items()}}}
    card["metrics"] = metrics
    assert model.card.path is not None
    return write_json_atomic(model.card.path, card)


def parameter_mae_table(report: dict) -> list[tuple[str, float]]:
    """(parameter, model MAE) pairs, worst first."""
    per = report["methods"]["model"]["mae_per_parameter"]
    return sorted(zip(report["parameters"], per, strict=True), key=lambda t: -t[1])
