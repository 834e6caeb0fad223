"""Datasets of random patches: a folder with a manifest and shards, written atomically, resumable.

Layout (DESIGN.md "Data flow" 3)::

    DIR/{prefix}manifest.json          profile, set, render settings, seed, shards done
    DIR/{prefix}shard-00000/params.npy float32 (n, k) normalised parameters
    DIR/{prefix}shard-00000/audio.npy  float32 (n, samples) mono audio
    DIR/{prefix}shard-00000/wav/*.wav  optional

Shard ``i`` draws its patches from ``numpy.random.default_rng([seed, i])``, so the result does
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
from ..core.errors import DatasetError
from ..core.profile import ParameterSet, load_profile
from ..core.render import Renderer, RenderSettings, make_renderer

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

    def __post_init__(self) -> None:
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
        return cls(**d)


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


def draw_patches(pset: ParameterSet, rng: np.random.Generator, n: int) -> np.ndarray:
    """n random patches, uniform in [0, 1], snapped to what the synth can represent."""
    return pset.quantise(rng.random((n, len(pset)), dtype=np.float64)).astype(np.float32)


@dataclass
class Chunk:
    """Consecutive rows of a shard: patches, their audio and how many of them are silent."""

    params: np.ndarray
    audio: np.ndarray
    silent: int = 0
    regenerated: int = 0


def render_chunks(spec: DatasetSpec, renderer: Renderer, index: int) -> Iterator[Chunk]:
    """Render shard ``index`` in chunks of RENDER_CHUNK patches. Pure given spec.

    Rendering chunk by chunk keeps one small buffer per worker instead of the whole shard's
    audio (176 MB for 500 two-second notes), which is also faster: less memory to fault in.
    With ``drop_silent`` a chunk's silent patches are redrawn before the next chunk starts.
    """
    pset = renderer.parameter_set
    rng = np.random.default_rng([spec.seed, index])
    params = draw_patches(pset, rng, spec.sample_size)
    for start in range(0, len(params), RENDER_CHUNK):
        chunk = params[start:start + RENDER_CHUNK]
        audio = renderer.render(chunk)
        silent = is_silent(audio)
        regenerated = 0
        if spec.drop_silent:
            for _ in range(MAX_SILENT_RETRIES):
                rows = np.nonzero(silent)[0]
                if rows.size == 0:
                    break
                chunk[rows] = draw_patches(pset, rng, rows.size)
                audio[rows] = renderer.render(chunk[rows])
                silent[rows] = is_silent(audio[rows])
                regenerated += int(rows.size)
        yield Chunk(chunk, audio, int(silent.sum()), regenerated)


def _npy_header(file: BinaryIO, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Start a .npy file whose rows are then appended as raw C-order bytes."""
    np.lib.format.write_array_header_1_0(file, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                "fortran_order": False, "shape": shape})


def write_shard(folder: Path, index: int, chunks: Iterable[Chunk], n_rows: int, sample_rate: int,
                save_audio: bool, prefix: str = "") -> ShardResult:
    """Stream chunks into a temp folder, then rename it into place (atomic on one filesystem).

    ``n_rows`` is the shard's size; chunks adding up to anything else raise DatasetError and
    leave nothing behind.
    """
    name = shard_name(prefix, index)
    final = folder / name
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}.", suffix=".tmp"))
    params: list[np.ndarray] = []
    rows = silent = regenerated = 0
    try:
        if save_audio:
            (tmp / "wav").mkdir()
        with open(tmp / "audio.npy", "wb") as audio_file:
            for chunk in chunks:
                audio = np.ascontiguousarray(chunk.audio, dtype=np.float32)
                if rows + len(audio) > n_rows or len(chunk.params) != len(audio):
                    raise _row_count_error(name, n_rows, rows + len(audio))
                if audio_file.tell() == 0:
                    _npy_header(audio_file, (n_rows, audio.shape[1]), audio.dtype)
                audio_file.write(audio.data)
                if save_audio:
                    _write_wavs(tmp / "wav", name, rows, audio, sample_rate)
                params.append(np.asarray(chunk.params, dtype=np.float32))
                rows += len(audio)
                silent += chunk.silent
                regenerated += chunk.regenerated
        if rows != n_rows:
            raise _row_count_error(name, n_rows, rows)
        np.save(tmp / "params.npy", np.concatenate(params))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
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


def prepare(folder: Path, spec: DatasetSpec) -> dict:
    """Create or reopen a dataset folder; a rerun must ask for the same content."""
    folder.mkdir(parents=True, exist_ok=True)
    mpath = manifest_path(folder, spec.file_prefix)
    if mpath.exists():
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        old = DatasetSpec.from_dict(manifest["spec"])
        same = {**old.to_dict(), "n_shards": 0, "save_audio": False}
        new = {**spec.to_dict(), "n_shards": 0, "save_audio": False}
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
