"""Match latency and quality, side by side in one run (issue 6's targets).

    .venv/bin/python benchmarks/match.py [--run runs/shipped-cnn2] [--eval data/eval-medium33]

(a) Latency, file -> preset written, warm, network only, against the original project's
    pipeline shape on the same trained network (librosa load + librosa features + Keras
    ``predict`` + preset written). Two deepdiva rows: ``match_file`` as ``deepdiva match`` runs
    it, which also re-renders the answer and scores it against the target (the distance it
    prints and writes into the preset), and as ``deepdiva match --no-score`` runs it, the
    original's steps only (read, features, onnxruntime, preset written): the like-for-like
    comparison. Then where ``match_file``'s time goes, stage by stage. Target: p50 <= 20 ms and >= 10x faster. Needs
    the ``train`` and ``test`` extras (TensorFlow, librosa).
(b) Quality on a held-out builtin dataset: multi-resolution STFT distance of the base preset,
    the network alone, and the network + 1 s and + 5 s of refinement (renders and scores on the
    matcher's threads), with the renders each spent; + 1 s also on one thread, side by side.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from deepdiva.core.audio import prepare_note, read_audio  # noqa: E402
from deepdiva.core.features import FeatureConfig, full_scale_reference  # noqa: E402
from deepdiva.core.matcher import Matcher, default_model_path  # noqa: E402
from deepdiva.core.metrics import SpectralTarget, multires_stft_distance  # noqa: E402
from deepdiva.presets.diva import write_diva_preset  # noqa: E402
from deepdiva.presets.match_job import match_file  # noqa: E402
from deepdiva.training.dataset import Dataset, is_silent  # noqa: E402


def percentiles(times: list[float]) -> tuple[float, float]:
    ms = np.asarray(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def librosa_features(path: Path, cfg: FeatureConfig, feature: str) -> np.ndarray:
    """The original project's shape: librosa.load + librosa mel features, one clip."""
    import librosa

    y, _ = librosa.load(path, sr=cfg.sample_rate, mono=True, duration=2.0)
    y = np.pad(y, (0, max(0, 2 * cfg.sample_rate - y.size)))[: 2 * cfg.sample_rate]
    mel = librosa.feature.melspectrogram(y=y, sr=cfg.sample_rate, n_fft=cfg.mel_n_fft,
                                         hop_length=cfg.mel_hop_length, n_mels=cfg.n_mels, fmin=cfg.fmin,
                                         fmax=cfg.fmax, pad_mode=cfg.pad_mode)
    if feature == "mel_db":
        db = librosa.power_to_db(mel, ref=full_scale_reference(cfg), top_db=None)
        x = 1 + np.clip(db, cfg.db_floor, 0) / -cfg.db_floor
    else:
        db = librosa.power_to_db(mel, ref=np.max)
        x = (db - db.min()) / max(db.max() - db.min(), 1e-9)
    return np.flipud(x)[None, :, :, None].astype(np.float32)


def original_shape(run: Path, matcher: Matcher, out: Path):
    """The original project's pipeline on the same trained network: file -> preset written."""
    import keras

    import deepdiva.training.models  # noqa: F401  registers the custom layers for load_model
    from deepdiva.training.train import best_model_path

    model = keras.models.load_model(best_model_path(run))
    card = matcher.model.card
    pset = matcher.parameter_set

    def match(path: Path) -> None:
        x = librosa_features(path, card.feature_config, card.feature_name)
        params = model.predict(x, verbose=0)
        params = params["params"] if isinstance(params, dict) else (params[0] if isinstance(params, list) else params)
        write_diva_preset(pset, pset.quantise(np.asarray(params))[0], out, source=path)

    return match


def timed(match, files: list[Path], repeats: int) -> list[float]:
    """Seconds per call of ``match(file)``, warm (three untimed calls first)."""
    for f in files[:3]:
        match(f)
    times = []
    for _ in range(repeats):
        for f in files:
            start = time.perf_counter()
            match(f)
            times.append(time.perf_counter() - start)
    return times


def stages(matcher: Matcher, files: list[Path], out: Path, repeats: int) -> dict[str, float]:
    """Median milliseconds of each step of a network-only ``match_file``, timed one by one."""
    times: dict[str, list[float]] = {k: [] for k in
                                     ("read", "prepare", "features + network", "re-render", "distance", "preset write")}
    for _ in range(repeats):
        for f in files:
            t = [time.perf_counter()]
            clip = read_audio(f)
            t.append(time.perf_counter())
            note = prepare_note(clip, matcher.sample_rate, matcher.seconds)
            t.append(time.perf_counter())
            params = matcher.predict(note[None, :])[0]
            t.append(time.perf_counter())
            audio = matcher.renderer.render(params[None, :])
            t.append(time.perf_counter())
            distance = float(multires_stft_distance(audio, note)[0])
            t.append(time.perf_counter())
            write_diva_preset(matcher.parameter_set, params, out, source=f, distance=distance)
            t.append(time.perf_counter())
            for name, a, b in zip(times, t, t[1:], strict=False):
                times[name].append(b - a)
    return {name: float(np.median(v)) * 1e3 for name, v in times.items()}


def latency(matcher: Matcher, run: Path | None, clips: np.ndarray, repeats: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="dd-bench-match-"))
    files = []
    for i, clip in enumerate(clips):
        files.append(tmp / f"t{i}.wav")
        sf.write(files[-1], clip, matcher.sample_rate, subtype="FLOAT")
    # deepdiva first, alone: once TensorFlow is loaded its thread pools keep spinning after each
    # predict and would slow whatever runs next in this process (deepdiva never imports it).
    # The two deepdiva rows alternate file by file, so a slow phase of the machine hits both.
    def full_match(path: Path) -> None:
        match_file(matcher, path, tmp / "presets", preview=False)

    def same_match(path: Path) -> None:  # deepdiva match --no-score --no-preview
        match_file(matcher, path, tmp / "steps", preview=False, score=False)

    full: list[float] = []
    steps: list[float] = []
    for f in files[:3]:  # warm up both
        full_match(f)
        same_match(f)
    for _ in range(repeats):
        for f in files:
            for match, times in ((full_match, full), (same_match, steps)):
                start = time.perf_counter()
                match(f)
                times.append(time.perf_counter() - start)
    split = stages(matcher, files, tmp / "stages", repeats)
    p50, p95 = percentiles(full)
    s50, s95 = percentiles(steps)
    print(f"(a) latency, file -> preset written, network only, {len(full)} matches each")
    print(f"    deepdiva match (+ re-render and distance)   p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   (target p50 <= 20)")
    print(f"    deepdiva match --no-score (original steps)  p50 {s50:7.2f} ms   p95 {s95:7.2f} ms")
    print("    deepdiva match, median per stage: " + ", ".join(f"{k} {v:.2f}" for k, v in split.items()) + " ms")
    if run is None:
        print("    original pipeline: pass --run RUN (a training run folder) to compare")
        return
    theirs = timed(original_shape(run, matcher, tmp / "keras"), files, repeats)
    q50, q95 = percentiles(theirs)
    print(f"    original shape (librosa + Keras predict)     p50 {q50:7.2f} ms   p95 {q95:7.2f} ms")
    print(f"    speed-up at p50, like for like: {q50 / s50:.1f}x (target >= 10x); deepdiva match, which also "
          f"scores its answer: {q50 / p50:.1f}x   (load now {os.getloadavg()[0]:.1f})")


def quality(matcher: Matcher, clips: np.ndarray, budgets: list[float]) -> None:
    """Distances of the base preset, the network, and refinements; the first budget also on one
    thread, to show what rendering and scoring on the matcher's threads buys."""
    pset = matcher.parameter_set
    base_audio = matcher.renderer.render(pset.defaults_normalised()[None, :])[0]
    one_thread = Matcher(matcher.model, matcher.renderer, threads=1)
    runs = [(f"network + {b:g} s refine", matcher, b) for b in budgets]
    if matcher.threads > 1:
        runs.insert(0, (f"network + {budgets[0]:g} s, 1 thread", one_thread, budgets[0]))
    rows: dict[str, list[float]] = {"base preset": [], "network only": []} | {name: [] for name, _, _ in runs}
    evaluations: dict[str, list[int]] = {name: [] for name, _, _ in runs}
    for i, clip in enumerate(clips):
        target = SpectralTarget(clip)
        rows["base preset"].append(float(target.distance(base_audio[None, :])[0]))
        rows["network only"].append(matcher.match(clip).distance)
        for name, m, budget in runs:
            result = m.match(clip, refine_seconds=budget, seed=i)
            rows[name].append(result.distance)
            evaluations[name].append(result.evaluations)
    print(f"(b) quality on {len(clips)} held-out builtin renders: multi-resolution STFT distance (lower is better); "
          f"refinement on {matcher.threads} threads unless marked")
    base_median = np.median(rows["base preset"])
    for name, values in rows.items():
        renders = f"   renders median {np.median(evaluations[name]):6.0f}" if name in evaluations else ""
        print(f"    {name:28s} mean {np.mean(values):8.3f}   median {np.median(values):7.3f}   "
              f"median vs base {np.median(values) / base_median:5.2f}{renders}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--run", default=None, help="training run of the same model, for the Keras comparison")
    parser.add_argument("--eval", dest="eval_path", default="data/eval-medium33", help="held-out dataset")
    parser.add_argument("--n-latency", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-quality", type=int, default=30)
    parser.add_argument("--budgets", default="1,5")
    args = parser.parse_args()

    matcher = Matcher.load(args.model or default_model_path())
    ds = Dataset.open(args.eval_path)
    audio = np.asarray(ds.load_shard(ds.shards[0], "audio"))
    audio = audio[~is_silent(audio)]
    latency(matcher, Path(args.run) if args.run else None, audio[: args.n_latency], args.repeats)
    if args.n_quality > 0:
        quality(matcher, audio[args.n_latency: args.n_latency + args.n_quality],
                [float(b) for b in args.budgets.split(",")])


if __name__ == "__main__":
    main()
