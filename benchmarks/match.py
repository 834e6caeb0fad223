"""Match latency and quality, side by side in one run (issues 6 and 12).

    .venv/bin/python benchmarks/match.py --run runs/v2-cnn3 --old-model v1=/tmp/v1/deepdiva-medium33.onnx \
        [--eval data/eval-notes] [--eval-48 data/eval-medium33] [--ood data/ood] [--parts latency,lookup,refine]

(a) Latency, file -> preset written, warm, network only, against the original project's
    pipeline shape on the same trained network (librosa load + librosa features + Keras
    ``predict`` + preset written). Two deepdiva rows: ``match_file`` as ``deepdiva match`` runs
    it, which also re-renders the answer and scores it against the target (the distance it
    prints and writes into the preset), and as ``deepdiva match --no-score`` runs it, the
    original's steps plus pitch detection (read, pitch, features, onnxruntime, preset written):
    the like-for-like comparison. Then where ``match_file``'s time goes, stage by stage. Needs the
    ``train`` and ``test`` extras (TensorFlow, librosa).
(b) The network alone (its most confident answer, and the closest of its answers), the same with
    the amp envelope measured in the target (``core/envelope.py``: what ``--no-score`` writes, and
    the closest of the answers and their envelope variants) and ``deepdiva match`` against a lookup
    table of 30,000 random builtin renders at random keys (pooled mel_db, L2; built once into
    data/) and the base preset, on held-out builtin renders
    (random keys; C3 only) and on out-of-domain sets (benchmarks/ood_sets.py: saws, GM
    instruments, espeak voices, amsynth): median MR-STFT and spectral convergence per set.
(c) Refinement on 30 held-out renders: base preset, network, network + 2 s and + 10 s (also
    warm-started from the patch bank), and CMA-ES from the base preset for 10 s and 60 s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from deepdiva.core.audio import Take, prepare_note, prepare_take, raised_to_nominal, read_audio  # noqa: E402
from deepdiva.core.bank import Bank, build_bank, embed, random_rows, shipped_bank  # noqa: E402
from deepdiva.core.errors import AudioError  # noqa: E402
from deepdiva.core.features import FeatureConfig, full_scale_reference, harmonic_comb  # noqa: E402
from deepdiva.core.level import best_gain, with_gain  # noqa: E402
from deepdiva.core.matcher import Matcher, default_model_path  # noqa: E402
from deepdiva.core.metrics import SpectralTarget, multires_stft_distance, spectral_convergence  # noqa: E402
from deepdiva.core.refine import FAR_SIGMA, refine  # noqa: E402
from deepdiva.core.tuning import pitch_columns  # noqa: E402
from deepdiva.presets.diva import write_diva_preset  # noqa: E402
from deepdiva.presets.match_job import AUDIO_SUFFIXES, match_file  # noqa: E402
from deepdiva.training.dataset import Dataset, is_silent  # noqa: E402

LOOKUP_SEED = 30000  # the lookup table's patches: not the bank deepdiva builds for warm starts (seed 0)


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
    if feature in ("mel_db", "mel_db_pitch"):
        db = librosa.power_to_db(mel, ref=full_scale_reference(cfg), top_db=None)
        x = 1 + np.clip(db, cfg.db_floor, 0) / -cfg.db_floor
    else:
        db = librosa.power_to_db(mel, ref=np.max)
        x = (db - db.min()) / max(db.max() - db.min(), 1e-9)
    image = np.flipud(x)[None, :, :, None].astype(np.float32)
    if feature != "mel_db_pitch":
        return image
    # the note's pitch as the original would have had it: librosa's YIN over the first 0.6 s
    f0 = librosa.yin(y[: int(0.6 * cfg.sample_rate)], fmin=30, fmax=2600, sr=cfg.sample_rate, frame_length=4096)
    comb = harmonic_comb(np.array([np.median(f0)]), cfg)[0][::-1]
    return np.concatenate([image, np.broadcast_to(comb[None, :, None, None], image.shape)], axis=-1)


def original_shape(run: Path | None, matcher: Matcher, out: Path):
    """The original project's pipeline on the same network: file -> preset written. The network
    is the training ``run``'s Keras model or, without one (a fresh clone keeps no runs), the card's
    architecture with untrained weights: the same layers and arithmetic, so the same time."""
    import keras

    from deepdiva.training.models import build_model  # also registers the custom layers for load_model
    from deepdiva.training.train import best_model_path

    card = matcher.model.card
    model = (keras.models.load_model(best_model_path(run)) if run is not None
             else build_model(card.data["architecture"], card.input_shape, matcher.parameter_set))
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
    times: dict[str, list[float]] = {k: [] for k in ("read", "prepare", "pitch", "features + network",
                                                      "re-render", "distance", "preset write")}
    for _ in range(repeats):
        for f in files:
            t = [time.perf_counter()]
            clip = read_audio(f)
            t.append(time.perf_counter())
            note = prepare_note(clip, matcher.sample_rate, matcher.seconds)
            t.append(time.perf_counter())
            pitch = matcher.detect(note[None, :])[0]
            played = matcher.played_at(pitch)
            t.append(time.perf_counter())
            params = matcher.predict(note[None, :], [pitch])[0]
            t.append(time.perf_counter())
            audio = matcher.renderer.render(params[None, :], played.midi_float)
            t.append(time.perf_counter())
            distance = float(multires_stft_distance(audio, note)[0])
            t.append(time.perf_counter())
            write_diva_preset(matcher.parameter_set, params, out, source=f, distance=distance, pitch=played)
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
    # --no-score alone, as a user runs it: between scored matches (whose 25 renders and the bank's
    # product push its data out of the caches) it measured ~1.5 ms slower
    alone = timed(same_match, files, repeats)
    split = stages(matcher, files, tmp / "stages", repeats)
    p50, p95 = percentiles(full)
    s50, s95 = percentiles(steps)
    a50, a95 = percentiles(alone)
    print(f"(a) latency, file -> preset written, network only, {len(full)} matches each")
    print(f"    deepdiva match (+ re-render and distance)   p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   (target p50 <= 20)")
    print(f"    deepdiva match --no-score (original steps)  p50 {s50:7.2f} ms   p95 {s95:7.2f} ms   (between scored ones)")
    print(f"    deepdiva match --no-score, back to back      p50 {a50:7.2f} ms   p95 {a95:7.2f} ms")
    print("    deepdiva match, median per stage: " + ", ".join(f"{k} {v:.2f}" for k, v in split.items()) + " ms")
    theirs = timed(original_shape(run, matcher, tmp / "keras"), files, repeats)
    q50, q95 = percentiles(theirs)
    weights = "trained" if run is not None else "untrained, same layers"
    print(f"    original shape (librosa + Keras predict, {weights})")
    print(f"                                                 p50 {q50:7.2f} ms   p95 {q95:7.2f} ms")
    print(f"    speed-up at p50, like for like: {q50 / s50:.1f}x between scored matches, {q50 / a50:.1f}x back to "
          f"back (target >= 10x); deepdiva match, which also scores its answer: {q50 / p50:.1f}x   "
          f"(load now {os.getloadavg()[0]:.1f})")


def quality(matcher: Matcher, clips: np.ndarray, budgets: list[float], base_budgets: list[float],
            banked: Matcher | None = None) -> None:
    """Distances of the base preset, the network, the network + each refinement budget (and, with
    ``banked``, the same search warm-started from the patch bank), and a search of each of
    ``base_budgets`` from the base preset without the network; all played at the key the match
    plays (the pitch detected), on the matcher's threads."""
    pset = matcher.parameter_set
    base = pset.defaults_normalised()
    runs: list[tuple[str, Callable[[np.ndarray, int], tuple[float, int]]]] = []
    for b in budgets:
        runs.append((f"network + {b:g} s", lambda clip, i, b=b: _refined(matcher, clip, b, i)))
        if banked is not None:
            runs.append((f"network + bank + {b:g} s", lambda clip, i, b=b: _refined(banked, clip, b, i)))
    for b in base_budgets:
        runs.append((f"search from base, {b:g} s", lambda clip, i, b=b: _from_base(matcher, clip, base, b, i)))
    rows: dict[str, list[float]] = {"base preset": [], "network only": []} | {name: [] for name, _ in runs}
    evaluations: dict[str, list[int]] = {name: [] for name, _ in runs}
    for i, clip in enumerate(clips):
        key = matcher.played_at(matcher.detect(clip[None, :])[0]).midi_float
        target = SpectralTarget(clip)
        base_render = matcher.renderer.render(base[None, :], key, matcher.note_length(clip))
        rows["base preset"].append(float(target.distance(base_render)[0]))
        rows["network only"].append(matcher.match(clip).distance)
        for name, run in runs:
            distance, spent = run(clip, i)
            rows[name].append(distance)
            evaluations[name].append(spent)
        print(f"    [{i + 1}/{len(clips)}] medians so far: "
              + ", ".join(f"{name} {np.median(values):.3f}" for name, values in rows.items()), flush=True)
    print(f"(c) refinement on {len(clips)} held-out builtin renders at random notes: multi-resolution STFT "
          f"distance (lower is better), on {matcher.threads} threads")
    base_median = np.median(rows["base preset"])
    for name, values in rows.items():
        renders = f"   renders median {np.median(evaluations[name]):6.0f}" if name in evaluations else ""
        print(f"    {name:28s} mean {np.mean(values):8.3f}   median {np.median(values):7.3f}   "
              f"median vs base {np.median(values) / base_median:5.2f}{renders}")


def _refined(matcher: Matcher, clip: np.ndarray, budget: float, seed: int) -> tuple[float, int]:
    result = matcher.match(clip, refine_seconds=budget, seed=seed)
    return float(result.distance), result.evaluations


def _from_base(matcher: Matcher, clip: np.ndarray, base: np.ndarray, budget: float, seed: int) -> tuple[float, int]:
    """CMA-ES from the base preset, no network: what a search alone reaches in ``budget`` seconds
    (holding the tuning and pitch modulation for a clearly pitched target, as a match's search does)."""
    pitch = matcher.detect(clip[None, :])[0]
    key = matcher.played_at(pitch).midi_float
    length = matcher.note_length(clip)
    target = SpectralTarget(clip)
    result = refine(matcher.renderer, target.distance, base, budget, seed=seed, sigma=FAR_SIGMA,
                    executor=matcher._executor, blocks=matcher.threads, note=key,
                    fixed=pitch_columns(matcher.parameter_set) if matcher.keeps_pitch(pitch) else None,
                    screen=matcher.screen(target, key, length), note_length=length)
    return result.distance, result.evaluations


def lookup_bank(renderer, size: int, path: Path) -> tuple[Bank, np.ndarray, np.ndarray]:
    """The baseline lookup table: ``size`` uniform random builtin patches at random notes 36-84
    (pooled mel_db embeddings), cached at ``path``; also the raw patches and notes (re-drawn from
    the same seed) so a row's own render can be reproduced."""
    raw, notes = random_rows(renderer, size, seed=LOOKUP_SEED)
    if path.exists():
        bank = Bank.load(path)
    else:
        began = time.perf_counter()
        bank = build_bank(renderer, raw, notes)
        bank.save(path)
        print(f"    (lookup table of {size} renders built in {time.perf_counter() - began:.0f} s: {path})")
    return bank, raw, notes


def target_sets(eval_notes: Path, eval_48: Path, ood: Path, n_builtin: int) -> dict[str, np.ndarray]:
    """Prepared 2 s notes per set: held-out builtin renders (random notes; MIDI 48 only) and the
    out-of-domain sets of benchmarks/ood_sets.py, each cut as a match cuts its target and, peaking
    under -18 dBFS, raised to it as a match raises it (a third of the renders: they start at once
    and last 2 s, so the cut leaves them as they are)."""
    sets: dict[str, np.ndarray] = {}
    for name, folder in (("builtin, random notes", eval_notes), ("builtin, MIDI 48", eval_48)):
        if folder.exists():
            ds = Dataset.open(folder)
            audio = np.asarray(ds.load_shard(ds.shards[0], "audio"))
            sets[name] = raised_to_nominal(audio[~is_silent(audio)][-n_builtin:])  # the last rows: latency uses the first
    for name in ("saws", "instruments", "voices", "amsynth", "chords", "drums"):
        files = sorted((ood / name).glob("*.wav"))
        if files:
            sets[name] = np.stack([prepare_note(read_audio(f)) for f in files])
    return sets


def readable_takes(folders: list[Path], sample_rate: int = 44100,
                   seconds: float = 2.0) -> Iterator[tuple[Path, Take]]:
    """Each audio file in ``folders`` (in path order) and its take, prepared as ``deepdiva match``
    prepares it; the files it refuses (silent, unreadable) left out."""
    for path in sorted(p for d in folders for p in Path(d).iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
        try:
            yield path, prepare_take(read_audio(path), sample_rate, seconds)
        except AudioError:
            continue


def lookup_comparison(matcher: Matcher, olds: dict[str, Matcher], sets: dict[str, np.ndarray], bank: Bank,
                      raw: np.ndarray, notes: np.ndarray, default: Matcher) -> None:
    """Network only against the lookup table and the base preset, per set: median MR-STFT and
    median spectral convergence (SC, linear: 1.0 is no closer than silence) of each answer's
    render to the target; ``deepdiva match`` without a bank (``matcher``) and as it runs by
    default (``default``: with the shipped bank)."""
    renderer, pset = matcher.renderer, matcher.parameter_set
    base = pset.defaults_normalised()[None, :]
    print(f"(b) network only against a lookup table of {len(bank)} random builtin renders (pooled mel_db, L2), "
          "medians over each set: MR-STFT / SC")
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    for set_name, targets in sets.items():
        scores: dict[str, list[tuple[float, float]]] = {}

        def add(method: str, audio: np.ndarray, target: np.ndarray, scores=scores) -> None:
            scores.setdefault(method, []).append(
                (float(multires_stft_distance(audio, target)[0]), float(spectral_convergence(audio, target)[0])))

        for target in targets:
            guess, pitches, keys = matcher.answer(target[None, :])
            length = matcher.note_length(target)  # every render lets go where the target was let go
            add("base preset", renderer.render(base, keys, length), target)
            for label, old in olds.items():
                old_guess, _, old_keys = old.answer(target[None, :])
                add(f"{label} network", renderer.render(old_guess, old_keys, length), target)
                add(f"{label}: deepdiva match", old.match(target).audio, target)
                if old.follows_pitch:  # a model that plays at the detected key: its network-only match too
                    add(f"{label}: deepdiva match --no-score", old.match(target, score=False).audio[None, :], target)
            add("network", renderer.render(guess, keys, length), target)
            add("network + envelope", renderer.render(matcher.unscored(target, pitches[0])[None, :], keys, length), target)
            add("deepdiva match --no-score (in tune, RMS)", matcher.match(target, score=False).audio[None, :], target)
            if matcher.model.has_hypotheses:
                chosen, audio = matcher.closest(matcher.hypotheses(target, pitches[0]), target, keys[0],
                                               leveled=False, length=length)
                add("network, closest of its answers", audio[None, :], target)
            chosen, audio = matcher.closest(matcher.candidates(target, pitches[0]), target, keys[0], leveled=False,
                                            length=length)
            add("closest of answers, answers + envelope", audio[None, :], target)
            add("deepdiva match, no bank (answers or plain patches, level)", matcher.match(target).audio, target)
            if default is not matcher:
                add("deepdiva match (default: + shipped bank)", default.match(target).audio, target)
            played = matcher.played_at(pitches[0])
            row = bank.nearest(embed(target[None, :])[0], 1)[0]
            own = renderer.render(raw[row:row + 1], notes[row], length)
            add("lookup, its own render", own, target)
            leveled = with_gain(pset, raw[row], best_gain(own[0], target, SpectralTarget(target).distance_at_gains))
            add("lookup + level", renderer.render(leveled[None, :], notes[row], length), target)
            near = bank.nearest(embed(target[None, :])[0], 1,
                                near=played.midi_float if played.pitched else float("nan"))[0]
            add("lookup near the key, at the key", renderer.render(bank.params[near:near + 1], keys, length), target)
        rows[set_name] = {m: (float(np.median([a for a, _ in v])), float(np.median([b for _, b in v])))
                          for m, v in scores.items()}
        print(f"    {set_name} ({len(targets)} targets)")
        for method, (mr, sc) in rows[set_name].items():
            print(f"        {method:40s} MR-STFT {mr:7.3f}   SC {sc:6.3f}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--run", default=None, help="training run of the same model, for the Keras comparison "
                        "(default: the model's architecture with untrained weights, timed alike)")
    parser.add_argument("--eval", dest="eval_path", default="data/eval-notes",
                        help="held-out renders at random notes (latency, the lookup's first row, refinement)")
    parser.add_argument("--n-latency", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-quality", type=int, default=30)
    parser.add_argument("--budgets", default="2,10")
    parser.add_argument("--base-budgets", default="10,60", help="searches from the base preset, no network")
    parser.add_argument("--bank", action=argparse.BooleanOptionalAction, default=True,
                        help="also refine from the patch bank's warm starts")
    parser.add_argument("--old-model", action="append", default=[], metavar="LABEL=ONNX",
                        help="an earlier model for side-by-side rows, e.g. v1=/tmp/v1/deepdiva-medium33.onnx (repeatable)")
    parser.add_argument("--eval-48", default="data/eval-medium33", help="held-out renders at MIDI 48")
    parser.add_argument("--ood", default="data/ood", help="out-of-domain sets (benchmarks/ood_sets.py)")
    parser.add_argument("--lookup-size", type=int, default=30000)
    parser.add_argument("--n-lookup", type=int, default=300, help="builtin targets per set for the lookup rows")
    parser.add_argument("--parts", default="latency,lookup,refine")
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    matcher = Matcher.load(args.model or default_model_path(), bank=False)  # the network's own rows
    # deepdiva match as it runs by default: with the bank that ships for the model's parameter set
    shipped = shipped_bank(matcher.parameter_set)
    default = matcher if shipped is None else Matcher(matcher.model, matcher.renderer, matcher.threads, bank=shipped)
    ds = Dataset.open(args.eval_path)
    audio = np.asarray(ds.load_shard(ds.shards[0], "audio"))
    audio = audio[~is_silent(audio)]
    if "latency" in parts:
        latency(default, Path(args.run) if args.run else None, audio[: args.n_latency], args.repeats)
    if "lookup" in parts:
        olds = {label: Matcher.load(path, bank=False) for label, path in (o.split("=", 1) for o in args.old_model)}
        bank, raw, notes = lookup_bank(matcher.renderer, args.lookup_size,
                                       Path("data") / f"lookup-{args.lookup_size}.npz")
        lookup_comparison(matcher, olds, target_sets(Path(args.eval_path), Path(args.eval_48), Path(args.ood),
                                                    args.n_lookup), bank, raw, notes, default)
    if "refine" in parts and args.n_quality > 0:
        banked = default if default is not matcher else Matcher(matcher.model, matcher.renderer, matcher.threads,
                                                                use_bank=True, say=print)
        quality(matcher, audio[args.n_latency: args.n_latency + args.n_quality],
                [float(b) for b in args.budgets.split(",")], [float(b) for b in args.base_budgets.split(",") if b],
                banked if args.bank else None)


if __name__ == "__main__":
    main()
