"""Rebuild the patch bank that ships beside the model: models/bank-<profile>-<set>.npz.

    .venv/bin/python scripts/build_bank.py [--model models/deepdiva-medium33.onnx] [--size 20000]

The same rows a user-cache bank holds (``core.bank.random_rows``, seed 0: patches drawn uniformly,
keys 36-84), rendered by the synth the model card names (the builtin one), embedded, their pitch
detected, and saved compact (``core.bank.COMPACT_DIMS`` principal components as int8, patches
as float16). About half a minute on two cores.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from deepdiva.core.bank import COMPACT_DIMS, DEFAULT_SIZE, build_bank, random_rows, shipped_bank_path
from deepdiva.core.matcher import default_model_path
from deepdiva.core.model_runtime import ModelCard
from deepdiva.core.model_synth import renderer_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model whose card names the synth and parameter set")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--dims", type=int, default=COMPACT_DIMS)
    args = parser.parse_args()
    card = ModelCard.load(args.model or default_model_path())
    renderer = renderer_for(card)
    start = time.perf_counter()
    params, notes = random_rows(renderer, args.size)
    with ThreadPoolExecutor(2) as pool:
        bank = build_bank(renderer, params, notes, executor=pool)
    path = bank.save(shipped_bank_path(renderer.parameter_set), dims=args.dims)
    print(f"{path}: {len(bank)} patches, {path.stat().st_size / 1e6:.2f} MB, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
