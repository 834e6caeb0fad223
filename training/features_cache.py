"""Feature cache: ``<feature>.npy`` beside ``audio.npy`` in every shard, plus the training split.

Each shard's feature file is written to a temp name and renamed into place, so a killed run
leaves either a whole file or none and a rerun skips the shards already done. The feature
settings of the cache are recorded in ``DATASET/{prefix}features.json``.

MFCCs are cached unscaled; a :class:`~deepdiva.core.scaler.MinMaxScaler` fitted on the
training rows only is stored as ``DATASET/{prefix}mfcc_scaler.json`` (with the split it was
fitted on under ``"fitted_on"``) and applied when the features are read, so the same JSON goes
into the model card and is applied at run time.

No TensorFlow here: worker processes import this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.atomic import write_json_atomic
from ..core.errors import DatasetError
from ..core.features import FEATURE_NAMES, PITCHED_FEATURES, FeatureConfig, extract, feature_shape
from ..core.scaler import MinMaxScaler
from ..core.tuning import relative_to_pitch
from .dataset import Dataset

SCALED_FEATURES = ("mfcc",)
# Features in [0, 1] stored as uint8 (a step of 0.31 dB for mel_db): a quarter of the disk and of
# the page cache, so a few hundred thousand training examples stay in memory.
QUANTISED_FEATURES = ("mel_db_pitch",)
CHUNK_CLIPS = 64  # clips per extract() call: bounds the temporaries, not the result


def default_config(sample_rate: int) -> FeatureConfig:
    """The feature settings for audio at ``sample_rate`` (the band ends below its Nyquist)."""
    return FeatureConfig(sample_rate=sample_rate, fmax=min(FeatureConfig.fmax, sample_rate / 2))


def stored(name: str, x: np.ndarray) -> np.ndarray:
    """Features as a shard stores them: uint8 for :data:`QUANTISED_FEATURES`, else float32."""
    if name in QUANTISED_FEATURES:
        return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.asarray(x, dtype=np.float32)


def loaded(x: np.ndarray) -> np.ndarray:
    """Stored features back as float32 (inverse of :func:`stored`)."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) * np.float32(1.0 / 255.0)
    return np.asarray(x, dtype=np.float32)


# --------------------------------------------------------------------------- split

@dataclass(frozen=True)
class Split:
    """A deterministic train/validation split of a dataset's rows (global indices, sorted)."""

    n: int
    validation_split: float
    seed: int
    train: np.ndarray = field(repr=False)
    val: np.ndarray = field(repr=False)

    def record(self) -> dict:
        """What a run or a scaler stores to recognise (and recompute) this split."""
        digest = hashlib.sha1(self.val.astype(np.int64).tobytes()).hexdigest()
        return {"method": "index", "n": self.n, "validation_split": self.validation_split,
                "seed": self.seed, "n_train": int(self.train.size), "n_val": int(self.val.size),
                "val_sha1": digest}


def make_split(n: int, validation_split: float = 0.1, seed: int = 0) -> Split:
    """Random rows (fixed by ``seed``) for validation, the rest for training.

    With ``validation_split > 0`` at least one row goes to each side.
    """
    if not 0.0 <= validation_split < 1.0:
        raise DatasetError(f"--validation-split must be in [0, 1), got {validation_split}")
    if n < 1 or (validation_split > 0 and n < 2):
        raise DatasetError(f"a dataset of {n} patches is too small to train on")
    n_val = 0 if validation_split == 0 else min(n - 1, max(1, round(n * validation_split)))
    perm = np.random.default_rng(seed).permutation(n)
    return Split(n, float(validation_split), int(seed), np.sort(perm[n_val:]), np.sort(perm[:n_val]))


def split_for(ds: Dataset, validation_split: float = 0.1, seed: int = 0) -> Split:
    return make_split(len(ds), validation_split, seed)


# --------------------------------------------------------------------------- cache files

def feature_path(ds: Dataset, shard: dict, name: str) -> Path:
    return ds.shard_dir(shard) / f"{name}.npy"


def features_manifest_path(ds: Dataset) -> Path:
    return ds.folder / f"{ds.prefix}features.json"


def scaler_path(ds: Dataset, name: str = "mfcc") -> Path:
    return ds.folder / f"{ds.prefix}{name}_scaler.json"


def read_features_manifest(ds: Dataset) -> dict:
    path = features_manifest_path(ds)
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}; delete it and rerun 'deepdiva features'") from None


def cached_config(ds: Dataset, name: str) -> FeatureConfig:
    """The feature settings the cache of ``name`` was made with."""
    entry = read_features_manifest(ds).get(name)
    if entry is None:
        raise DatasetError(f"{ds.folder} has no cached '{name}' features; "
                           f"run: deepdiva features {ds.folder} --feature {name}")
    return FeatureConfig.from_dict(entry["config"])


def _shard_done(path: Path, n: int, shape: tuple[int, ...]) -> bool:
    if not path.exists():
        return False
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return arr.shape == (n, *shape) and arr.dtype in (np.float32, np.uint8)


def save_array_atomic(folder: Path, name: str, array: np.ndarray) -> None:
    """``array`` as ``folder/NAME.npy``, written whole or not at all (a temp file renamed into place)."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.npy.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array)
        os.replace(tmp, folder / f"{name}.npy")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cache_shard(shard_dir: str, name: str, cfg_dict: dict) -> str:
    """Extract ``name`` from ``shard_dir/audio.npy`` into ``shard_dir/<name>.npy`` (atomically);
    a feature that uses the note's pitch also writes the detected pitch (``pitch.npy``)."""
    from .dataset import feature_arrays

    folder = Path(shard_dir)
    cfg = FeatureConfig.from_dict(cfg_dict)
    audio = np.load(folder / "audio.npy", mmap_mode="r")
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(audio), CHUNK_CLIPS):
        clips = np.asarray(audio[i:i + CHUNK_CLIPS])
        if name in PITCHED_FEATURES:
            arrays = feature_arrays((name,), clips, cfg.sample_rate, cfg)
        else:
            arrays = {name: stored(name, extract(name, clips, cfg))}
        for key, value in arrays.items():
            parts.setdefault(key, []).append(value)
    if not parts:
        raise DatasetError(f"{folder / 'audio.npy'} holds no clips")
    if "pitch" in parts:
        save_array_atomic(folder, "pitch", np.concatenate(parts.pop("pitch")))
    save_array_atomic(folder, name, np.concatenate(parts[name]))
    return str(folder)


def record_features(ds: Dataset, names: Iterable[str]) -> None:
    """Note in the dataset's features.json that its shards carry ``names``, computed with the
    default settings while rendering (``dataset generate --feature``)."""
    cfg = default_config(ds.spec.render.sample_rate)
    manifest = read_features_manifest(ds)
    for name in names:
        manifest[name] = {"config": cfg.to_dict(), "shape": list(feature_shape(name, ds.manifest["n_samples"], cfg))}
    write_json_atomic(features_manifest_path(ds), manifest)


@dataclass
class CacheReport:
    feature: str
    shape: tuple[int, ...]
    done: int
    skipped: int
    scaler: Path | None = None


def cache_features(ds: Dataset, name: str, cfg: FeatureConfig | None = None, workers: int = 1,
                   overwrite: bool = False, validation_split: float = 0.1, seed: int = 0,
                   progress: Callable[[int], None] | None = None) -> CacheReport:
    """Write ``<name>.npy`` into every shard that lacks it; for MFCC also fit the scaler.

    ``progress(1)`` is called per finished shard (skipped ones included). A cache made with
    other feature settings is an error unless ``overwrite``.
    """
    if name not in FEATURE_NAMES:
        raise DatasetError(f"unknown feature {name!r}; use one of {', '.join(FEATURE_NAMES)}")
    if cfg is None:
        cfg = default_config(ds.spec.render.sample_rate)
    manifest = read_features_manifest(ds)
    old = manifest.get(name)
    if old is not None and old.get("config") != cfg.to_dict():
        if not overwrite:
            raise DatasetError(f"the cached '{name}' features of {ds.folder} were made with other "
                               "settings; pass --overwrite to recompute them")
        overwrite = True  # every shard is stale
    shape = feature_shape(name, ds.manifest["n_samples"], cfg)
    todo, skipped = [], 0
    for shard in ds.shards:
        path = feature_path(ds, shard, name)
        for stale in ds.shard_dir(shard).glob(f".{name}.npy.*.tmp"):
            stale.unlink(missing_ok=True)
        if not overwrite and old is not None and _shard_done(path, shard["n"], shape):
            skipped += 1
            if progress:
                progress(1)
        else:
            todo.append(str(ds.shard_dir(shard)))
    # record the settings first: a killed run then resumes with them instead of refusing
    manifest[name] = {"config": cfg.to_dict(), "shape": list(shape)}
    write_json_atomic(features_manifest_path(ds), manifest)
    _run(todo, name, cfg, workers, progress)
    report = CacheReport(name, shape, len(todo), skipped)
    if name in SCALED_FEATURES:
        split = split_for(ds, validation_split, seed)
        report.scaler = save_scaler(ds, fit_scaler(ds, split, name), split, name)
    return report


def _run(todo: list[str], name: str, cfg: FeatureConfig, workers: int,
         progress: Callable[[int], None] | None) -> None:
    if workers <= 1 or len(todo) <= 1:
        for folder in todo:
            cache_shard(folder, name, cfg.to_dict())
            if progress:
                progress(1)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(cache_shard, folder, name, cfg.to_dict()) for folder in todo]
        for fut in as_completed(futures):
            fut.result()
            if progress:
                progress(1)


# --------------------------------------------------------------------------- scaler

def fit_scaler(ds: Dataset, split: Split, name: str = "mfcc") -> MinMaxScaler:
    """Per-cell min/max of the cached ``name`` features over the training rows, shard by shard."""
    store = CachedFeatures(ds, name)
    lo = hi = None
    for s, (start, stop) in enumerate(store.bounds()):
        rows = split.train[(split.train >= start) & (split.train < stop)] - start
        if rows.size == 0:
            continue
        x = np.asarray(store.features[s][rows], dtype=np.float64)
        lo = x.min(axis=0) if lo is None else np.minimum(lo, x.min(axis=0))
        hi = x.max(axis=0) if hi is None else np.maximum(hi, x.max(axis=0))
    if lo is None or hi is None:
        raise DatasetError("no training rows to fit the feature scaler on")
    # fitting on the two extreme rows gives exactly those minima and ranges
    return MinMaxScaler(axis=0).fit(np.stack([lo, hi]))


def save_scaler(ds: Dataset, scaler: MinMaxScaler, split: Split, name: str = "mfcc") -> Path:
    """Write the scaler JSON with the split it was fitted on (``"fitted_on"``)."""
    return write_json_atomic(scaler_path(ds, name), {**scaler.to_dict(), "fitted_on": split.record()})


def scaler_for(ds: Dataset, split: Split, name: str = "mfcc") -> dict:
    """The scaler JSON (a dict) for ``split``: the stored one if it was fitted on the same
    split, else a new fit (written to the dataset folder)."""
    path = scaler_path(ds, name)
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if data.get("fitted_on") == split.record():
            MinMaxScaler.from_dict(data)
            return data
    save_scaler(ds, fit_scaler(ds, split, name), split, name)
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- reading

class CachedFeatures:
    """Memory-mapped cached features and parameters of a dataset, read by global row index.

    When a shard knows the pitch heard in each clip (``pitch.npy``, written with a pitched
    feature), the parameters are restated for that pitch (:func:`~deepdiva.core.tuning.relative_to_pitch`):
    the network learns the patch that sounds like the clip when played at the detected note,
    which is how a match is played. ``exact`` marks the rows restated exactly; the others (the
    pitch heard is no whole number of octaves from the key, so Tune1's octave steps cannot
    follow it) are restated as near as the steps allow, and kept: a first model trained without
    them answered such targets (most random patches heard "pitched") far worse than v1.
    """

    def __init__(self, ds: Dataset, name: str, scaler: MinMaxScaler | None = None) -> None:
        self.name = name
        self.scaler = scaler
        self.features = []
        self.params = []
        exact = []
        pset = ds.parameter_set
        for shard in ds.shards:
            path = feature_path(ds, shard, name)
            if not path.exists():
                raise DatasetError(f"missing {path}: run: deepdiva features {ds.folder} --feature {name}")
            feats, params = np.load(path, mmap_mode="r"), np.asarray(ds.load_shard(shard, "params"))
            if len(feats) != len(params):
                raise DatasetError(f"{path} has {len(feats)} rows but the shard has {len(params)} patches; "
                                   f"rerun: deepdiva features {ds.folder} --feature {name} --overwrite")
            heard_path = ds.shard_dir(shard) / "pitch.npy"
            ok = np.ones(len(params), dtype=bool)
            if heard_path.exists():
                params, ok = relative_to_pitch(pset, params, ds.played_notes(shard), np.load(heard_path))
            self.features.append(feats)
            self.params.append(params)
            exact.append(ok)
        if not self.features:
            raise DatasetError(f"{ds.folder} has no shards")
        self.offsets = np.cumsum([0] + [len(p) for p in self.params])
        self.shape = tuple(self.features[0].shape[1:])
        self.exact = np.concatenate(exact)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def bounds(self) -> list[tuple[int, int]]:
        """(start, stop) global rows of each shard."""
        return [(int(a), int(b)) for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)]

    def get(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features (scaled if a scaler is set) and parameters of ``rows``, in sorted row order."""
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        if rows.size and (rows[0] < 0 or rows[-1] >= len(self)):
            raise IndexError(f"rows outside 0..{len(self) - 1}")
        shard_of = np.searchsorted(self.offsets, rows, side="right") - 1
        x = np.empty((rows.size, *self.shape), dtype=np.float32)
        y = np.empty((rows.size, self.params[0].shape[1]), dtype=np.float32)
        for s in np.unique(shard_of):
            pick = shard_of == s
            local = rows[pick] - self.offsets[s]
            x[pick] = loaded(self.features[s][local])
            y[pick] = self.params[s][local]
        if self.scaler is not None:
            x = self.scaler.transform(x)
        return x, y
