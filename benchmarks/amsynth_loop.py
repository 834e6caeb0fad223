"""The whole loop on a real plugin with known ground truth: an amsynth model, judged in amsynth.

Held-out amsynth renders (parameters known, never seen in training; ``data/eval-amsynth`` is
generated when missing) are matched by the amsynth model, and every answer is rendered by the
amsynth plugin itself through DawDreamer. Side by side, per answer: parameter MAE (normalised,
against the true patch) and the spectral distances of its render to the target (multi-resolution
STFT, lower is better; spectral convergence, 1.0 is no closer than silence), for

- the base preset (amsynth's init patch) and a random patch (the floor),
- the network alone (``deepdiva match --synth vst``: rendered and scored in amsynth),
- the network + a 2 s refinement whose every candidate is rendered in amsynth.

    .venv/bin/python benchmarks/amsynth_loop.py [--model models/deepdiva-amsynth-medium.onnx]
        [--n 200] [--n-refine 30] [--refine 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from amsynth_plugin import AMSYNTH  # benchmarks/ is the script's folder

from deepdiva.core.audio import AudioClip, prepare_note
from deepdiva.core.matcher import Matcher
from deepdiva.core.metrics import multires_stft_distance, parameter_mae, spectral_convergence
from deepdiva.core.model_runtime import OnnxModel
from deepdiva.core.model_synth import choose_synth, renderer_for
from deepdiva.training.dataset import Dataset

ROOT = Path(__file__).parents[1]
MODEL = ROOT / "models" / "deepdiva-amsynth-medium.onnx"
EVAL = ROOT / "data" / "eval-amsynth"


def held_out(path: Path, plugin: Path) -> Dataset:
    """The held-out set: 500 amsynth/medium patches at keys C2-C6, seed 2002 (training never uses it)."""
    if not (path / "manifest.json").exists():
        subprocess.run([sys.executable, "-m", "deepdiva", "dataset", "generate", "--data-path", str(path.parent),
                        "--folder-name", path.name, "--synth", "vst", "--plugin-path", str(plugin),
                        "--profile", "amsynth", "--random-parameters", "medium", "--sample-size", "500",
                        "--seed", "2002", "--pitch-range", "36", "84", "--drop-silent"], check=True)
    return Dataset.open(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--plugin", type=Path, default=AMSYNTH)
    parser.add_argument("--eval", type=Path, default=EVAL, help="held-out amsynth dataset (made when missing)")
    parser.add_argument("--n", type=int, default=200, help="targets for base, random and network")
    parser.add_argument("--n-refine", type=int, default=30, help="of those, targets also refined")
    parser.add_argument("--refine", type=float, default=2.0, help="refinement budget (s)")
    parser.add_argument("--workers", type=int, default=2, help="plugin processes for the refinement")
    args = parser.parse_args()

    ds = held_out(args.eval, args.plugin)
    model = OnnxModel.load(args.model)
    if model.card.data.get("profile") != "amsynth":
        raise SystemExit(f"{args.model} is not an amsynth model (profile {model.card.data.get('profile')!r})")
    renderer = renderer_for(model.card, choose_synth(model.card.synth, "vst", args.plugin), args.workers)
    matcher = Matcher(model, renderer=renderer)
    pset = matcher.parameter_set
    if list(ds.parameter_set.ids) != list(pset.ids):
        raise SystemExit("the held-out set and the model have different parameter sets")
    audio = ds.load_all("audio")[: args.n]
    truth = ds.load_all("params")[: args.n]
    sr = ds.spec.render.sample_rate
    targets = np.stack([prepare_note(AudioClip(a, sr), matcher.sample_rate, matcher.seconds) for a in audio])
    rng = np.random.default_rng(7)
    rows: dict[str, dict[str, list[float]]] = {}

    def add(name: str, params: np.ndarray, render: np.ndarray, target: np.ndarray, truth_row: np.ndarray) -> None:
        r = rows.setdefault(name, {"mae": [], "mrstft": [], "sc": []})
        r["mae"].append(float(parameter_mae(params[None, :], truth_row[None, :])[0]))
        r["mrstft"].append(float(multires_stft_distance(render[None, :], target[None, :])[0]))
        r["sc"].append(float(spectral_convergence(render[None, :], target[None, :])[0]))

    base = pset.defaults_normalised()
    began = time.perf_counter()
    refine_seconds: list[float] = []
    renders: list[int] = []
    for i, (target, true) in enumerate(zip(targets, truth, strict=True)):
        key = matcher.played_at(matcher.detect(target[None, :])[0]).midi_float
        random_patch = pset.quantise(rng.random((1, len(pset)), dtype=np.float32))[0]
        both = renderer.render(np.stack([base, random_patch]), key)
        add("base preset", base, both[0], target, true)
        add("random patch", random_patch, both[1], target, true)
        nn = matcher.match(target)
        add("network (rendered in amsynth)", nn.params, nn.audio, target, true)
        if i < args.n_refine:
            t = time.perf_counter()
            refined = matcher.match(target, refine_seconds=args.refine, seed=i)
            refine_seconds.append(time.perf_counter() - t)
            renders.append(refined.evaluations)
            add(f"network + {args.refine:g} s refine in amsynth", refined.params, refined.audio, target, true)
            add("network (refined subset)", nn.params, nn.audio, target, true)
    print(f"amsynth loop: {args.model.name} on {len(targets)} held-out amsynth/medium renders at keys C2-C6 "
          f"({args.eval}), every answer rendered by {args.plugin.name}; {time.perf_counter() - began:.0f} s")
    print(f"  {'':40s} {'n':>4s} {'MAE':>7s} {'MR-STFT median (mean)':>22s} {'SC median':>10s}")
    for name, r in rows.items():
        print(f"  {name:40s} {len(r['mae']):4d} {np.mean(r['mae']):7.4f} "
              f"{np.median(r['mrstft']):10.3f} ({np.mean(r['mrstft']):7.3f}) {np.median(r['sc']):10.3f}")
    if renders:
        hosts = getattr(renderer, "workers", 1)
        print(f"  refinement: {hosts} plugin host(s), median {np.median(renders):.0f} renders in "
              f"{np.median(refine_seconds):.2f} s per match = {np.median(renders) / args.refine:.0f} renders/s")
    renderer.close()


if __name__ == "__main__":
    main()
