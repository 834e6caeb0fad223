"""A learned forward model of the synth's sound, so training can pull answers toward the *sound*.

Winner-takes-all on parameter error trains each of a ``cnn3h``'s answers toward the true patch's
parameters, but many patches far apart in parameters sound alike, and the answer closest by
parameters is the one closest by sound for only 13 % of targets (models/README). The synth is not
differentiable; this proxy is. It maps a patch, in the heads' own representation (continuous
values, then one probability per step of each stepped parameter, so a network's soft answers go
in as they come out) and the key it is played at, to a summary of its clean render: the
network's input image (``mel_db``) averaged over a few time segments, short ones for the attack
and long ones for the body. Training then adds, per answer, ``sound_weight`` x the mean absolute
difference between the proxy's summary of the answer and the true patch's clean summary, both
with their mean level taken away (a match plays answers at the target's level).

The summaries are computed once per dataset from clean renders of its patches (restated for the
pitch heard, played at that key: :func:`sound_summaries`, cached per shard as
``sound_summary.npy``); the proxy is a small MLP fitted on them (:func:`fit_proxy`). Numpy only,
up to :func:`build_proxy`, so worker processes do not import TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..core.errors import DatasetError, ModelError
from ..core.features import FeatureConfig, mel_db_features
from ..core.pitch import DEFAULT_MIDI
from .dataset import Dataset

SUMMARY_NAME = "sound_summary"
SUMMARY_FILE = f"{SUMMARY_NAME}.npy"
# segments of the 173 frames of a 2 s note (hop 512 at 44.1 kHz), in frames: 35 ms, 0.1, 0.2, 0.5, 1 and 2 s
SEGMENTS = (0, 3, 8, 18, 40, 86, 173)
SOUND_WEIGHT = 5.0  # a summary distance of 0.1 (two random patches: 0.11) counts as a parameter error of 0.5
PROXY_WIDTH = 768
BLOCK = 500  # patches rendered per task


def pooled(image: np.ndarray) -> np.ndarray:
    """mel_db images (n, mels, frames) -> summaries (n, mels x segments): the mean over each of
    :data:`SEGMENTS` (the last one reaches to the image's end)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] < SEGMENTS[-2] + 1:
        raise DatasetError(f"a sound summary needs mel images of at least {SEGMENTS[-2] + 1} frames, got {image.shape}")
    bounds = (*SEGMENTS[:-1], image.shape[2])
    parts = [image[:, :, a:b].mean(axis=2) for a, b in zip(bounds, bounds[1:], strict=False)]
    return np.stack(parts, axis=2).reshape(len(image), -1)


def heads_representation(params: np.ndarray, layout: Sequence[int]) -> np.ndarray:
    """Normalised patches (n, k) -> (n, H) as a network's heads hold them (``training.models``):
    the continuous values first, then a one-hot per stepped parameter (``layout``: steps, 0 continuous)."""
    params = np.asarray(params, dtype=np.float32)
    parts = [params[:, [j for j, s in enumerate(layout) if s == 0]]]
    for j, steps in enumerate(layout):
        if steps:
            step = np.clip(np.rint(params[:, j] * (steps - 1)), 0, steps - 1).astype(np.int64)
            parts.append(np.eye(steps, dtype=np.float32)[step])
    return np.concatenate(parts, axis=1)


def key_input(keys: np.ndarray) -> np.ndarray:
    """MIDI keys (n,) -> the proxy's key column (n, 1), about -1..1 over keys 36-84."""
    return ((np.asarray(keys, dtype=np.float32) - 60.0) / 24.0)[:, None]


def played_keys(ds: Dataset, shard: dict) -> np.ndarray:
    """The key each patch of ``shard`` is restated for (``training.features_cache``): the pitch
    heard in its audio, the default note where none was."""
    path = ds.shard_dir(shard) / "pitch.npy"
    if not path.exists():
        raise DatasetError(f"{ds.shard_dir(shard)} has no pitch.npy: sound summaries need a dataset made with "
                           "--pitch-range and a pitched feature (--feature mel_db_pitch)")
    heard = np.load(path)
    return np.where(np.isfinite(heard), heard, float(DEFAULT_MIDI)).astype(np.float32)


def opened(data: Dataset | str | os.PathLike) -> Dataset:
    """A dataset, or the one a folder or manifest path names."""
    return data if isinstance(data, Dataset) else Dataset.open(data)


def manifest_of(ds: Dataset) -> str:
    """The path that opens ``ds`` again (in another process)."""
    return os.fspath(ds.folder / f"{ds.prefix}manifest.json")


# ---------------------------------------------------------------- clean summaries of a dataset

_WORKER: dict = {}


def _init_worker(manifest: str) -> None:
    from ..core.renderers import make_renderer
    from .features_cache import CachedFeatures

    ds = Dataset.open(manifest)
    _WORKER.update(ds=ds, store=CachedFeatures(ds, "mel_db_pitch"),
                   renderer=make_renderer(ds.spec.renderer, ds.parameter_set, ds.spec.render,
                                          plugin_path=ds.spec.plugin_path))


def _summaries(rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
    ds, store, renderer = _WORKER["ds"], _WORKER["store"], _WORKER["renderer"]
    _, params = store.get(rows)  # restated for the pitch heard
    audio = renderer.render(ds.parameter_set.quantise(params), keys)
    return pooled(mel_db_features(audio, FeatureConfig())[..., 0])


def sound_summaries(data: Dataset | str | os.PathLike, workers: int = 2,
                    say: Callable[[str], None] | None = None) -> np.ndarray:
    """The clean summary of every patch of the dataset (n, mels x segments), rendered on ``workers``
    processes where a shard has none cached yet (each shard's written whole or not at all)."""
    from .features_cache import CachedFeatures, save_array_atomic

    ds = opened(data)
    bounds = CachedFeatures(ds, "mel_db_pitch").bounds()
    out = []
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(manifest_of(ds),)) as pool:
        for i, shard in enumerate(ds.shards):
            path = ds.shard_dir(shard) / SUMMARY_FILE
            if not path.exists():
                keys = played_keys(ds, shard)
                rows = np.arange(*bounds[i])
                blocks = [(rows[s:s + BLOCK], keys[s:s + BLOCK]) for s in range(0, len(rows), BLOCK)]
                summaries = np.concatenate(list(pool.map(_summaries, *zip(*blocks, strict=True))))
                save_array_atomic(ds.shard_dir(shard), SUMMARY_NAME, summaries.astype(np.float16))
                if say:
                    say(f"sound summaries of shard {i + 1} of {len(ds.shards)}")
            out.append(np.load(path).astype(np.float32))
    return np.concatenate(out)


def proxy_inputs(data: Dataset | str | os.PathLike, layout: Sequence[int]) -> np.ndarray:
    """Every patch of the dataset as the proxy reads it: heads representation and key (n, H + 1)."""
    from .features_cache import CachedFeatures

    ds = opened(data)
    store = CachedFeatures(ds, "mel_db_pitch")
    keys = np.concatenate([played_keys(ds, s) for s in ds.shards])
    _, params = store.get(np.arange(len(store)))
    return np.concatenate([heads_representation(params, layout), key_input(keys)], axis=1)


def sound_targets(data: Dataset | str | os.PathLike) -> np.ndarray:
    """What the sound term trains toward, per patch of the dataset: key column and clean summary
    (n, 1 + mels x segments), in the row order of ``training.features_cache.CachedFeatures``."""
    ds = opened(data)
    keys = np.concatenate([played_keys(ds, s) for s in ds.shards])
    paths = [ds.shard_dir(s) / SUMMARY_FILE for s in ds.shards]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise DatasetError(f"{missing[0]} is missing: run deepdiva sound-proxy {ds.folder} first")
    return np.concatenate([key_input(keys), np.concatenate([np.load(p) for p in paths]).astype(np.float32)], axis=1)


# ---------------------------------------------------------------- the proxy network

def build_proxy(n_inputs: int, n_outputs: int, width: int = PROXY_WIDTH):
    """Three GELU layers of ``width``: (heads representation, key) -> summary."""
    import keras
    from keras import layers

    x = keras.Input((n_inputs,), name="patch_and_key")
    h = x
    for i in range(3):
        h = layers.Dense(width, activation="gelu", name=f"proxy_{i}")(h)
    return keras.Model(x, layers.Dense(n_outputs, name="summary")(h), name="sound_proxy")


def centred(summary):
    """Summaries with each one's mean level taken away (numpy arrays or tensors)."""
    return summary - summary.mean(axis=-1, keepdims=True)


def fit_proxy(data: Dataset | str | os.PathLike, out: str | os.PathLike, epochs: int = 30, workers: int = 2,
              seed: int = 0, say: Callable[[str], None] | None = None) -> dict:
    """Compute the dataset's clean summaries (cached) and fit the proxy on 98 % of its patches;
    saved to ``out`` (.keras). Returns the held-out 2 %'s centred MAE and mean-level error, each
    beside that of two random patches'."""
    import keras

    from .features_cache import split_for
    from .models import head_layout

    out = Path(out)
    if out.suffix != ".keras":
        raise ModelError(f"the sound proxy is saved as NAME.keras, got {out}")
    ds = opened(data)
    summaries = sound_summaries(ds, workers, say)
    inputs = proxy_inputs(ds, head_layout(ds.parameter_set))
    split = split_for(ds, 0.02, seed)
    keras.utils.set_random_seed(seed)
    model = build_proxy(inputs.shape[1], summaries.shape[1])
    steps = epochs * -(-len(split.train) // 256)
    model.compile(keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(1e-3, steps), weight_decay=1e-5),
                  loss="mse")  # not MAE: most bins of most patches sit at the floor, and a median there is 0
    model.fit(inputs[split.train], summaries[split.train], batch_size=256, epochs=epochs, verbose=0,
              validation_data=(inputs[split.val], summaries[split.val]))
    held = summaries[split.val]
    guess = model.predict(inputs[split.val], verbose=0)
    report = {"patches": len(summaries), "epochs": epochs,
              "held_out_mae": float(np.abs(centred(guess) - centred(held)).mean()),
              "random_pair_mae": float(np.abs(centred(held) - centred(held[::-1])).mean()),
              "held_out_level_error": float(np.abs(guess.mean(axis=1) - held.mean(axis=1)).mean()),
              "random_pair_level_error": float(np.abs(held.mean(axis=1) - held[::-1].mean(axis=1)).mean())}
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    if say:
        say(f"sound proxy {out}: held-out summary error {report['held_out_mae']:.4f} "
            f"(two random patches: {report['random_pair_mae']:.4f}), mean level error "
            f"{report['held_out_level_error']:.4f} ({report['random_pair_level_error']:.4f})")
    return report
