"""Datasets of random patches: a folder with a manifest and shards, written atomically, resumable.

Layout (DESIGN.md "Data flow" 3)::

    DIR/{prefix}manifest.json          profile, set, render settings, seed, shards done
    DIR/{prefix}shard-00000/params.npy float32 (n, k) normalised parameters
    DIR/{prefix}shard-00000/notes.npy  float32 (n,) MIDI note each patch was played at (cents as fraction)
    DIR/{prefix}shard-00000/audio.npy  float32 (n, samples) mono audio (unless --no-audio)
    DIR/{prefix}shard-00000/pitch.npy  float32 (n,) detected pitch, MIDI scale, NaN unpitched (with features)
    DIR/{prefix}shard-00000/<feature>.npy  features computed while rendering (--feature), see features_cache
    DIR/{prefix}shard-00000/wav/*.wav  optional

Each patch is played at a note drawn from ``pitch_range`` (or at the render settings' one note).
With ``augment`` the notes are played a little out of tune and released early, and the audio
gets room, noise, EQ, gain and late starts (``training.augment``). Shard ``i`` draws everything
from ``numpy.random.default_rng([seed, i])`` (augmenting from its own stream), so the result does
not depend on the number of workers, their order, or on where a killed run stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .. import __version__
from ..core.atomic import write_json_atomic
from ..core.audio import raised_to_nominal
from ..core.errors import DatasetError
from ..core.features import FeatureConfig
from ..core.profile import ParameterSet, load_profile
from ..core.render import Renderer, RenderSettings
from ..core.renderers import make_renderer
from .priors import PRIORS, draw_patches

__all__ = ["Chunk", "Dataset", "DatasetSpec", "ShardResult", "draw_patches", "generate", "is_silent", "write_shard"]

FORMAT = "deepdiva-dataset/1"
SILENCE_PEAK = 10 ** (-60 / 20)  # -60 dBFS
MAX_SILENT_RETRIES = 50
RENDER_CHUNK = 32  # patches per render call


@dataclass(frozen=True)
class DatasetSpec:
    """Everything that determines a dataset's content."""

    profile: str = "diva"
    parameter_set: str = "medium33"
    renderer: str = "builtin"
    plugin_path: str | None = None
    base_preset: str | None = None
    render: RenderSettings = field(default_factory=RenderSettings)
    sample_size: int = 1000
    n_shards: int = 1
    seed: int = 0
    file_prefix: str = ""
    save_audio: bool = False
    drop_silent: bool = False
    pitch_range: tuple[int, int] | None = None  # notes drawn uniformly from LOW..HIGH; None: render.midi_pitch
    augment: dict | None = None  # an AugmentConfig as a dict; None: clean renders
    features: tuple[str, ...] = ()  # features computed while rendering, stored in the shards
    keep_audio: bool = True  # False: only parameters, notes and features are stored
    prior: str = "uniform"  # how patches are drawn (training.priors)
    nominal_level: bool = False  # each note raised as a match raises a quiet take (core.audio.raised_to_nominal)

    def __post_init__(self) -> None:
        if self.pitch_range is not None:
            low, high = (int(v) for v in self.pitch_range)
            if not 0 <= low <= high <= 127:
                raise DatasetError(f"--pitch-range {low} {high} must satisfy 0 <= LOW <= HIGH <= 127")
            object.__setattr__(self, "pitch_range", (low, high))
        object.__setattr__(self, "features", tuple(self.features))
        if not self.keep_audio and not self.features:
            raise DatasetError("--no-audio needs --feature: a dataset must keep its audio or its features")
        if self.augment is not None:
            from .augment import AugmentConfig

            AugmentConfig.from_dict(self.augment)  # validates
        if self.prior not in PRIORS:
            raise DatasetError(f"unknown patch prior {self.prior!r}; use one of {', '.join(PRIORS)}")
        if self.base_preset and self.renderer == "builtin":
            raise DatasetError("the builtin synth models the shipped base preset only; "
                               "--base-preset needs --synth vst or --synth renderman")
        if self.sample_size < 1:
            raise DatasetError(f"--sample-size must be >= 1, got {self.sample_size}")
        if self.n_shards < 1:
            raise DatasetError(f"--nr-data-batches must be >= 1, got {self.n_shards}")
        if "/" in self.file_prefix or "\\" in self.file_prefix:
            raise DatasetError(f"--file-prefix must not contain a path separator: {self.file_prefix!r}")

    def resolve_set(self) -> ParameterSet:
        return load_profile(self.profile).parameter_set(self.parameter_set)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["render"] = self.render.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DatasetSpec:
        d = dict(d)
        d["render"] = RenderSettings(**d["render"])
        if d.get("pitch_range") is not None:
            d["pitch_range"] = tuple(d["pitch_range"])
        d["features"] = tuple(d.get("features") or ())
        return cls(**d)

    def draw_keys(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """The MIDI key each of ``n`` patches is played at."""
        if self.pitch_range is None:
            return np.full(n, self.render.midi_pitch, dtype=np.int64)
        return rng.integers(self.pitch_range[0], self.pitch_range[1] + 1, n)


@dataclass
class ShardResult:
    index: int
    name: str
    n: int
    silent: int
    regenerated: int


def shard_name(prefix: str, index: int) -> str:
    return f"{prefix}shard-{index:05d}"


def manifest_path(folder: Path, prefix: str = "") -> Path:
    return folder / f"{prefix}manifest.json"


def is_silent(audio: np.ndarray) -> np.ndarray:
    """Per row: True where the peak is below -60 dBFS."""
    peak = np.maximum(audio.max(axis=-1, initial=-np.inf), -audio.min(axis=-1, initial=np.inf))
    return peak < SILENCE_PEAK




@dataclass
class Chunk:
    """Consecutive rows of a shard: patches, their audio, other per-row arrays (``notes``,
    ``pitch``, features; stored as ``<name>.npy``) and how many of them are silent."""

    params: np.ndarray
    audio: np.ndarray | None
    silent: int = 0
    regenerated: int = 0
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.params)


def render_chunks(spec: DatasetSpec, renderer: Renderer, index: int) -> Iterator[Chunk]:
    """Render shard ``index`` in chunks of RENDER_CHUNK patches. Pure given spec.

    Rendering chunk by chunk keeps one small buffer per worker instead of the whole shard's
    audio (176 MB for 500 two-second notes), which is also faster: less memory to fault in.
    With ``drop_silent`` a chunk's silent patches are redrawn before the next chunk starts. With
    ``nominal_level`` each note, augmented, is then raised as ``deepdiva match`` raises a quiet take,
    so a network never learns from images darker than a match shows it.
    """
    from .augment import AugmentConfig, augment_audio, draw_performance

    pset = renderer.parameter_set
    rng = np.random.default_rng([spec.seed, index])
    params = draw_patches(pset, rng, spec.sample_size, spec.prior)
    keys = spec.draw_keys(rng, spec.sample_size)
    augment = AugmentConfig.from_dict(spec.augment) if spec.augment is not None else None
    if augment is not None:
        notes, lengths = draw_performance(augment, rng, keys, spec.render.note_length)
    else:
        notes, lengths = keys.astype(np.float64), None
    audio_rng = np.random.default_rng([spec.seed, index, 1])
    for start in range(0, len(params), RENDER_CHUNK):
        rows_of = slice(start, start + RENDER_CHUNK)
        chunk, chunk_notes = params[rows_of], notes[rows_of]
        chunk_lengths = None if lengths is None else lengths[rows_of]
        audio = renderer.render(chunk, chunk_notes, chunk_lengths)
        silent = is_silent(audio)
        regenerated = 0
        if spec.drop_silent:
            for _ in range(MAX_SILENT_RETRIES):
                rows = np.nonzero(silent)[0]
                if rows.size == 0:
                    break
                chunk[rows] = draw_patches(pset, rng, rows.size, spec.prior)
                audio[rows] = renderer.render(chunk[rows], chunk_notes[rows],
                                              None if chunk_lengths is None else chunk_lengths[rows])
                silent[rows] = is_silent(audio[rows])
                regenerated += int(rows.size)
        if augment is not None:
            audio = augment_audio(augment, audio_rng, audio, spec.render.sample_rate)
        if spec.nominal_level:
            audio = raised_to_nominal(audio)
        arrays = {"notes": chunk_notes.astype(np.float32)}
        if spec.features:
            arrays.update(feature_arrays(spec.features, audio, spec.render.sample_rate))
        yield Chunk(chunk, audio if spec.keep_audio else None, int(silent.sum()), regenerated, arrays)


def feature_arrays(names: Iterable[str], audio: np.ndarray, sample_rate: int,
                   cfg: FeatureConfig | None = None) -> dict[str, np.ndarray]:
    """``pitch`` (detected, MIDI scale, NaN when unpitched) and each feature of ``names`` as stored
    in a shard (see :func:`deepdiva.training.features_cache.stored`)."""
    from ..core.features import extract
    from ..core.pitch import detect_pitches
    from .features_cache import default_config, stored

    pitches = detect_pitches(audio, sample_rate)
    f0 = np.array([np.nan if p.hz is None else p.hz for p in pitches])
    out = {"pitch": np.array([np.nan if p.hz is None else p.midi_float for p in pitches], dtype=np.float32)}
    cfg = cfg or default_config(sample_rate)
    for name in names:
        out[name] = stored(name, extract(name, audio, cfg, f0))
    return out


def _npy_header(file: BinaryIO, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Start a .npy file whose rows are then appended as raw C-order bytes."""
    np.lib.format.write_array_header_1_0(file, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                "fortran_order": False, "shape": shape})


def write_shard(folder: Path, index: int, chunks: Iterable[Chunk], n_rows: int, sample_rate: int,
                save_audio: bool, prefix: str = "") -> ShardResult:
    """Stream chunks into a temp folder, then rename it into place (atomic on one filesystem).

    Every per-row array (``params``, ``audio`` unless a chunk has none, and each of
    ``Chunk.arrays``) becomes ``<name>.npy``. ``n_rows`` is the shard's size; chunks adding up to
    anything else raise DatasetError and leave nothing behind.
    """
    name = shard_name(prefix, index)
    final = folder / name
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}.", suffix=".tmp"))
    files: dict[str, BinaryIO] = {}
    rows = silent = regenerated = 0
    try:
        if save_audio:
            (tmp / "wav").mkdir()
        for chunk in chunks:
            arrays = {"params": np.asarray(chunk.params, dtype=np.float32), **chunk.arrays}
            if chunk.audio is not None:
                arrays["audio"] = np.asarray(chunk.audio, dtype=np.float32)
            if rows + len(chunk) > n_rows or any(len(a) != len(chunk) for a in arrays.values()) \
                    or (files and set(arrays) != set(files)):
                raise _row_count_error(name, n_rows, rows + len(chunk))
            for key, array in arrays.items():
                if key not in files:
                    files[key] = open(tmp / f"{key}.npy", "wb")  # noqa: SIM115 - closed below
                    _npy_header(files[key], (n_rows, *array.shape[1:]), array.dtype)
                files[key].write(np.ascontiguousarray(array).data)
            if save_audio and chunk.audio is not None:
                _write_wavs(tmp / "wav", name, rows, arrays["audio"], sample_rate)
            rows += len(chunk)
            silent += chunk.silent
            regenerated += chunk.regenerated
        for handle in files.values():
            handle.close()
        if rows != n_rows:
            raise _row_count_error(name, n_rows, rows)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        for handle in files.values():
            handle.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ShardResult(index, name, rows, silent, regenerated)


def _row_count_error(name: str, expected: int, got: int) -> DatasetError:
    return DatasetError(f"shard {name}: expected {expected} rows of parameters and audio, "
                        f"got {got} (or mismatched chunks)")


def _write_wavs(folder: Path, name: str, first_row: int, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    for i, clip in enumerate(audio, start=first_row):
        sf.write(folder / f"{name}-{i:05d}.wav", clip, sample_rate, subtype="FLOAT")


# Worker-side state: one renderer per process, built once by the pool initializer.
_WORKER: dict = {}


def _make_renderer(spec: DatasetSpec) -> Renderer:
    fixed = base_preset_values(spec.profile, spec.base_preset) if spec.base_preset else None
    return make_renderer(spec.renderer, spec.resolve_set(), spec.render, plugin_path=spec.plugin_path,
                         fixed=fixed)


def base_preset_values(profile_name: str, path: str) -> dict[int, float]:
    """Native values of every parameter a preset file holds (Diva .h2p or an amsynth preset)."""
    profile = load_profile(profile_name)
    if Path(path).suffix.lower() == ".h2p":
        from ..presets.h2p import read_h2p

        return read_h2p(path, profile).native_by_id(profile)
    from ..presets.amsynth import read_amsynth

    return read_amsynth(path, profile).native_by_id(profile)


def _init_worker(spec_dict: dict) -> None:
    spec = DatasetSpec.from_dict(spec_dict)
    _WORKER["spec"] = spec
    _WORKER["renderer"] = _make_renderer(spec)


def _run_shard(folder: str, index: int) -> ShardResult:
    spec: DatasetSpec = _WORKER["spec"]
    return render_and_write(spec, _WORKER["renderer"], Path(folder), index)


def render_and_write(spec: DatasetSpec, renderer: Renderer, folder: Path, index: int) -> ShardResult:
    return write_shard(folder, index, render_chunks(spec, renderer, index), spec.sample_size,
                       spec.render.sample_rate, spec.save_audio, spec.file_prefix)


class Dataset:
    """A dataset folder as described by its manifest."""

    def __init__(self, folder: Path, manifest: dict, prefix: str = "") -> None:
        self.folder = folder
        self.manifest = manifest
        self.prefix = prefix
        self.spec = DatasetSpec.from_dict(manifest["spec"])

    @classmethod
    def open(cls, path: str | os.PathLike) -> Dataset:
        """Open a dataset from its folder or its ``*manifest.json``."""
        p = Path(path)
        if p.is_file() and p.name.endswith("manifest.json"):
            folder, mpath = p.parent, p
        elif p.is_dir():
            folder = p
            mpath = manifest_path(p)
            if not mpath.exists():
                found = sorted(p.glob("*manifest.json"))
                if len(found) != 1:
                    what = "no manifest.json" if not found else f"several manifests ({', '.join(f.name for f in found)})"
                    raise DatasetError(f"{p} is not a deepdiva dataset: {what}")
                mpath = found[0]
        else:
            raise DatasetError(f"dataset {p} does not exist")
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read dataset manifest {mpath}: {exc}") from None
        if manifest.get("format") != FORMAT:
            raise DatasetError(f"{mpath} is not a {FORMAT} manifest")
        return cls(folder, manifest, mpath.name.removesuffix("manifest.json"))

    @property
    def parameter_set(self) -> ParameterSet:
        return self.spec.resolve_set()

    @property
    def shards(self) -> list[dict]:
        return sorted(self.manifest["shards"], key=lambda s: s["index"])

    @property
    def complete(self) -> bool:
        return len(self.shards) == self.spec.n_shards

    def __len__(self) -> int:
        return sum(s["n"] for s in self.shards)

    def shard_dir(self, shard: dict) -> Path:
        return self.folder / shard["name"]

    def load_shard(self, shard: dict, what: str = "audio", mmap: bool = True) -> np.ndarray:
        path = self.shard_dir(shard) / f"{what}.npy"
        if not path.exists():
            raise DatasetError(f"missing {path}: regenerate the dataset or its features")
        return np.load(path, mmap_mode="r" if mmap else None)

    def played_notes(self, shard: dict) -> np.ndarray:
        """The MIDI note each patch of ``shard`` was played at (datasets from before per-row notes:
        the render settings' one note)."""
        path = self.shard_dir(shard) / "notes.npy"
        if path.exists():
            return np.load(path)
        return np.full(shard["n"], self.spec.render.midi_pitch, dtype=np.float32)

    def iter_shards(self, what: str = "audio") -> Iterator[tuple[dict, np.ndarray]]:
        for shard in self.shards:
            yield shard, self.load_shard(shard, what)

    def load_all(self, what: str) -> np.ndarray:
        """Concatenate one array (``params``, ``audio`` or a feature name) over all shards."""
        return np.concatenate([np.asarray(a) for _, a in self.iter_shards(what)], axis=0)


def _new_manifest(spec: DatasetSpec) -> dict:
    pset = spec.resolve_set()
    return {
        "format": FORMAT,
        "code_version": __version__,
        "spec": spec.to_dict(),
        "parameter_ids": list(pset.ids),
        "parameter_names": [p.location or p.name for p in pset.parameters],
        "n_samples": spec.render.n_samples,
        "shards": [],
    }


def _content(spec: DatasetSpec) -> dict:
    """What a spec says about a dataset's content, in JSON types (the manifest's augment ranges are
    lists where a new spec has tuples); the shard count and wav copies may change on a rerun."""
    return {**json.loads(json.dumps(spec.to_dict())), "n_shards": 0, "save_audio": False}


def prepare(folder: Path, spec: DatasetSpec) -> dict:
    """Create or reopen a dataset folder; a rerun must ask for the same content."""
    folder.mkdir(parents=True, exist_ok=True)
    mpath = manifest_path(folder, spec.file_prefix)
    if mpath.exists():
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        same, new = _content(DatasetSpec.from_dict(manifest["spec"])), _content(spec)
        if same != new:
            diff = sorted(k for k in new if same.get(k) != new.get(k))
            raise DatasetError(
                f"{folder} already holds a dataset made with other settings ({', '.join(diff)}); "
                "use another --folder-name or the same settings to resume")
        manifest["spec"] = spec.to_dict()
    else:
        manifest = _new_manifest(spec)
    # leftovers of a killed run: half-written shards and manifest temp files
    for stale in [*folder.glob(f".{spec.file_prefix}shard-*.tmp"), *folder.glob(f".{mpath.name}.*.tmp")]:
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    write_json_atomic(mpath, manifest)
    return manifest


def generate(folder: Path, spec: DatasetSpec, workers: int = 1, first_shard: int = 0,
             ray_address: str | None = None,
             progress: Callable[[ShardResult], None] | None = None) -> Dataset:
    """Render every missing shard of the dataset; returns the opened dataset."""
    manifest = prepare(folder, spec)
    if spec.features:
        from .features_cache import record_features

        record_features(Dataset(folder, manifest, spec.file_prefix), spec.features)
    done = {s["index"] for s in manifest["shards"] if (folder / s["name"]).is_dir()}
    manifest["shards"] = [s for s in manifest["shards"] if s["index"] in done]
    todo = [i for i in range(first_shard, spec.n_shards) if i not in done]
    mpath = manifest_path(folder, spec.file_prefix)

    def record(result: ShardResult) -> None:
        manifest["shards"].append(asdict(result))
        write_json_atomic(mpath, manifest)
        if progress:
            progress(result)

    if ray_address:
        from .cluster import run_on_ray

        for result in run_on_ray(ray_address, folder, spec, todo):
            record(result)
    elif workers <= 1 or len(todo) <= 1:
        renderer = _make_renderer(spec)
        try:
            for i in todo:
                record(render_and_write(spec, renderer, folder, i))
        finally:
            renderer.close()
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # fork where the OS has it: workers inherit the loaded (numba-compiled) renderer code
        # instead of importing and loading it again; spawn elsewhere.
        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(spec.to_dict(),)) as pool:
            futures = [pool.submit(_run_shard, str(folder), i) for i in todo]
            for fut in as_completed(futures):
                record(fut.result())
    return Dataset.open(mpath)
