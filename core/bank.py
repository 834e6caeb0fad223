"""A bank of rendered patches with compact embeddings: a nearest-neighbour lookup of sounds.

Each row is a random patch, the note it was played at, the pitch heard in its audio and an
embedding of that audio: the ``mel_db`` spectrogram average-pooled to :data:`BANDS` bands x
:data:`SEGMENTS` time segments (256 numbers, float16), compared by plain L2 distance. Patches
are stored restated for the pitch heard (:func:`~deepdiva.core.tuning.relative_to_pitch`), so a
row found for a target can be played at the target's key.

Two uses: the baseline every network must beat (the nearest row's own render is the answer),
and candidates for a match (the nearest rows near the target's pitch are scored beside the
network's answers; the best one starts a search; they are also natural runners-up).

A bank for the shipped model's parameter set ships beside it (``models/bank-diva-medium33.npz``,
:data:`COMPACT_FORMAT`: the embeddings reduced to their first :data:`COMPACT_DIMS` principal
components, stored as int8, the patches as float16; ~2 MB instead of 13), so matching uses one
with nothing to build. Any other set's bank is built once into the user cache.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import write_atomic
from .errors import ModelError
from .features import FeatureConfig, mel_db
from .pitch import detect_pitches
from .profile import ParameterSet
from .render import Renderer
from .tuning import relative_to_pitch

BANDS = 32
SEGMENTS = 8
FORMAT = "deepdiva-bank/1"
COMPACT_FORMAT = "deepdiva-bank-compact/1"
# Principal components kept by a compact bank: 98.8 % of the embeddings' variance. On 300 held-out
# and 88 out-of-domain targets, deepdiva match with a 64-component bank is as close as with the
# full one (median MR-STFT within 0.04 on each set, better as often as worse); with 32, 97.4 %.
COMPACT_DIMS = 64
BUILD_CHUNK = 256  # patches rendered and embedded at a time


def embed(audio: np.ndarray, cfg: FeatureConfig | None = None) -> np.ndarray:
    """Audio (n, samples) -> float32 (n, BANDS * SEGMENTS): mel_db averaged over 4 adjacent bands
    and over 8 equal stretches of time."""
    cfg = cfg or FeatureConfig()
    spec = mel_db(audio, cfg)  # (n, mels, frames), dB in [db_floor, 0]
    n, mels, frames = spec.shape
    bands = spec[:, : mels // BANDS * BANDS].reshape(n, BANDS, mels // BANDS, frames).mean(axis=2)
    edges = np.linspace(0, frames, SEGMENTS + 1).astype(int)
    pooled = np.add.reduceat(bands, edges[:-1], axis=2) / np.diff(edges)
    return pooled.reshape(n, BANDS * SEGMENTS).astype(np.float32)


@dataclass(frozen=True)
class Bank:
    """Rows of patches (normalised, restated for the pitch heard), notes and embeddings. A compact
    bank holds each embedding as its principal components: ``embeddings`` (N, d) in the space of
    ``basis`` (d, D, orthonormal rows) around ``mean`` (D,); a query is projected there, which
    ranks rows as the plain distance to the embeddings they stand for would."""

    params: np.ndarray  # float32 (N, k)
    played: np.ndarray  # float32 (N,), the MIDI note each patch was rendered at
    heard: np.ndarray  # float32 (N,), the pitch detected in its audio (MIDI scale), NaN unpitched
    embeddings: np.ndarray  # float16 (N, D); a compact bank's: float32 (N, d) components
    parameter_ids: tuple[int, ...]
    basis: np.ndarray | None = None  # float32 (d, D) for a compact bank
    mean: np.ndarray | None = None  # float32 (D,) for a compact bank
    probe: np.ndarray | None = None  # float16 (3, D): :func:`synth_probe` of the synth that built it

    def __len__(self) -> int:
        return len(self.params)

    def full_embeddings(self) -> np.ndarray:
        """float16 (N, D): the embeddings, or what a compact bank's components stand for."""
        if self.basis is None or self.mean is None:
            return self.embeddings
        return (self.mean + self.embeddings @ self.basis).astype(np.float16)

    @cached_property
    def _centred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The embeddings (a compact bank's components) as float32 minus their mean, their squared
        norms, and the mean: made once (each query took ~30 ms for 20,000 rows converting them).
        Centred, the float32 sums lose ~30x less to rounding than raw dB values would (~0.03 of
        distances ~10,000)."""
        embeddings = self.embeddings.astype(np.float32)
        mean = embeddings.mean(axis=0)
        embeddings -= mean
        return embeddings, np.einsum("ij,ij->i", embeddings, embeddings), mean

    def nearest(self, query: np.ndarray, k: int = 1, near: float | None = None,
                tolerance: float = 3.0, strict: bool = False) -> np.ndarray:
        """Rows of the ``k`` embeddings nearest to ``query`` (D,), best first. With ``near`` (a MIDI
        pitch) only rows heard within ``tolerance`` semitones of it count (NaN: only unpitched
        rows), unless fewer than ``k`` qualify; ``strict``: even then (fewer rows, perhaps none)."""
        embeddings, norms, mean = self._centred
        q = np.asarray(query, dtype=np.float32)
        if self.basis is not None and self.mean is not None:
            q = (q - self.mean) @ self.basis.T
        q = q - mean
        distances = norms - 2.0 * (embeddings @ q) + float(q @ q)  # |e - q|^2, one matrix product
        if near is not None:
            if np.isfinite(near):
                outside = ~(np.abs(self.heard - near) <= tolerance)
            else:
                outside = np.isfinite(self.heard)
            if strict:
                k = min(k, int((~outside).sum()))
                if k == 0:
                    return np.zeros(0, dtype=np.int64)
            if (~outside).sum() >= k:  # always, once strict has cut k
                distances = np.where(outside, np.inf, distances)
        k = min(k, len(distances))
        top = np.argpartition(distances, k - 1)[:k]
        return top[np.argsort(distances[top], kind="stable")]

    def save(self, path: str | os.PathLike, dims: int | None = None) -> Path:
        """Write the bank; with ``dims`` (or when it is compact), compact (:data:`COMPACT_FORMAT`):
        the embeddings as int8 codes of their first ``dims`` principal components, the patches as
        float16."""
        compact = dims or self.basis is not None
        arrays: dict[str, Any] = self._compact_arrays(dims) if compact else {  # Any: savez takes allow_pickle=
            "format": np.array(FORMAT), "params": self.params, "played": self.played, "heard": self.heard,
            "embeddings": self.embeddings}
        arrays["parameter_ids"] = np.asarray(self.parameter_ids, dtype=np.int64)
        if self.probe is not None:
            arrays["probe"] = self.probe
        save = np.savez_compressed if compact else np.savez

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                save(fh, **arrays)

        return write_atomic(Path(path), write)

    def _compact_arrays(self, dims: int | None) -> dict[str, np.ndarray]:
        if self.basis is not None and self.mean is not None:  # already compact: its own components
            components, basis, mean = self.embeddings[:, :dims], self.basis[:dims], self.mean
        else:
            embeddings = self.embeddings.astype(np.float32)
            mean = embeddings.mean(axis=0)
            _, _, vt = np.linalg.svd(embeddings - mean, full_matrices=False)
            basis = vt[:dims]
            components = (embeddings - mean) @ basis.T
        scale = np.maximum(np.abs(components).max(axis=0), 1e-12) / 127.0
        codes = np.clip(np.rint(components / scale), -127, 127).astype(np.int8)
        return {"format": np.array(COMPACT_FORMAT), "params": self.params.astype(np.float16),
                "played": self.played.astype(np.float16), "heard": self.heard.astype(np.float16),
                "codes": codes, "scale": scale.astype(np.float32), "basis": basis.astype(np.float32),
                "mean": mean.astype(np.float32)}

    @classmethod
    def load(cls, path: str | os.PathLike) -> Bank:
        """A bank written by :meth:`save`, full or compact (its components from the codes)."""
        basis = mean = None
        try:
            with np.load(path, allow_pickle=False) as data:
                kind = str(data["format"])
                ids = tuple(int(i) for i in data["parameter_ids"])
                if kind == FORMAT:
                    embeddings = data["embeddings"]
                elif kind == COMPACT_FORMAT:
                    embeddings = data["codes"].astype(np.float32) * data["scale"].astype(np.float32)
                    basis, mean = data["basis"].astype(np.float32), data["mean"].astype(np.float32)
                else:
                    raise ModelError(f"{path} is not a {FORMAT} or {COMPACT_FORMAT} file")
                params, played, heard = (data[k].astype(np.float32) for k in ("params", "played", "heard"))
                probe = data["probe"] if "probe" in data.files else None
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot read the patch bank {path}: {exc}; delete it to have it rebuilt") from None
        dims = embeddings.shape[1:]
        fits = basis is None or (mean is not None and basis.shape == (dims[0], len(mean)))
        if (not (len(params) == len(played) == len(heard) == len(embeddings)) or params.shape[1:] != (len(ids),)
                or not fits):
            raise ModelError(f"the patch bank {path} is inconsistent: {len(params)} patches of {params.shape[1:]} "
                             f"values for {len(ids)} parameters, {len(embeddings)} embeddings of {dims}"
                             + ("" if basis is None else f", a basis of {basis.shape}"))
        return cls(params, played, heard, embeddings, ids, basis, mean, probe)


def build_bank(renderer: Renderer, params: np.ndarray, notes: np.ndarray,
               cfg: FeatureConfig | None = None, executor: Executor | None = None) -> Bank:
    """Render ``params`` (N, k) at MIDI ``notes`` (N,), embed the audio and detect its pitch;
    chunks run on ``executor``'s threads when given (and the renderer is thread-safe)."""
    pset = renderer.parameter_set
    cfg = cfg or FeatureConfig(sample_rate=renderer.settings.sample_rate)

    def chunk(start: int) -> tuple[np.ndarray, list[float]]:
        audio = renderer.render(params[start:start + BUILD_CHUNK], notes[start:start + BUILD_CHUNK])
        pitches = detect_pitches(audio, cfg.sample_rate)
        return embed(audio, cfg).astype(np.float16), [np.nan if p.hz is None else p.midi_float for p in pitches]

    starts = range(0, len(params), BUILD_CHUNK)
    if executor is not None and renderer.thread_safe:
        parts = list(executor.map(chunk, starts))
    else:
        parts = [chunk(s) for s in starts]
    embeddings = [e for e, _ in parts]
    heard_arr = np.asarray([h for _, hs in parts for h in hs], dtype=np.float32)
    restated, _ = relative_to_pitch(pset, params, notes, heard_arr)
    restated = pset.quantise(restated).astype(np.float32)  # as a preset would store them
    return Bank(restated, np.asarray(notes, dtype=np.float32), heard_arr,
                np.concatenate(embeddings) if embeddings else np.zeros((0, BANDS * SEGMENTS), np.float16),
                tuple(pset.ids))


DEFAULT_SIZE = 20_000  # about a minute to build on one core, 10 MB on disk
DEFAULT_RANGE = (36, 84)


def random_rows(renderer: Renderer, size: int, seed: int = 0,
                pitch_range: tuple[int, int] = DEFAULT_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """``size`` patches drawn uniformly (snapped to the synth's steps) and keys drawn from
    ``pitch_range``, reproducibly from ``seed``."""
    pset = renderer.parameter_set
    rng = np.random.default_rng([BANK_STREAM, seed])
    params = pset.quantise(rng.random((size, len(pset)))).astype(np.float32)
    return params, rng.integers(pitch_range[0], pitch_range[1] + 1, size).astype(np.float64)


BANK_STREAM = 0xBA4C


def default_bank_path(renderer: Renderer, size: int = DEFAULT_SIZE) -> Path:
    """Where the bank for ``renderer``'s synth and parameter set lives in the user cache."""
    from platformdirs import user_cache_path

    pset = renderer.parameter_set
    s = renderer.settings
    return (user_cache_path("deepdiva") / f"bank-{renderer.kind}-{pset.profile.name}-{pset.name}-"
            f"{s.sample_rate}-{size}.npz")


def shipped_bank_path(parameter_set: ParameterSet) -> Path:
    """Where the bank for ``parameter_set`` ships, beside the shipped model (it may not exist)."""
    from importlib import resources

    name = f"bank-{parameter_set.profile.name}-{parameter_set.name}.npz"
    return Path(str(resources.files("deepdiva.models").joinpath(name)))


def shipped_bank(parameter_set: ParameterSet) -> Bank | None:
    """The bank that ships for ``parameter_set`` (rendered by the builtin synth), or None."""
    path = shipped_bank_path(parameter_set)
    if not path.exists():
        return None
    bank = Bank.load(path)
    return bank if bank.parameter_ids == tuple(parameter_set.ids) else None


PROBE_NOTES = (36.0, 60.0, 84.0)
PROBE_DB = 0.25  # float16 holds dB near -80 to 0.06; the same synth renders the same samples


def synth_probe(renderer: Renderer) -> np.ndarray:
    """Embeddings float16 (3, D) of the base preset played by ``renderer`` at :data:`PROBE_NOTES`:
    what tells a cached bank whether the synth still sounds as it did when the bank was built."""
    defaults = renderer.parameter_set.defaults_normalised()[None, :]
    audio = renderer.render(np.repeat(defaults, len(PROBE_NOTES), axis=0), np.array(PROBE_NOTES))
    return embed(audio, FeatureConfig(sample_rate=renderer.settings.sample_rate)).astype(np.float16)


def cached_bank(renderer: Renderer, path: str | os.PathLike | None = None, size: int = DEFAULT_SIZE,
                say=None, executor: Executor | None = None) -> Bank:
    """The bank at ``path``; by default the one that ships for the renderer's parameter set
    (:func:`shipped_bank`), else the one in the user cache (:func:`default_bank_path`). One that is
    missing, was built for other parameters or by a synth that sounds different now (its
    :func:`synth_probe`: a new deepdiva, another plugin build) is built and saved there first
    (``say`` is told: about half a minute on two threads for the builtin synth, much longer
    through a plugin)."""
    if path is None and (ready := shipped_bank(renderer.parameter_set)) is not None:
        return ready
    target = Path(path) if path is not None else default_bank_path(renderer, size)
    probe = synth_probe(renderer)
    why = "once"
    if target.exists():
        bank = Bank.load(target)
        same_synth = bank.probe is not None and bank.probe.shape == probe.shape and np.allclose(
            bank.probe.astype(np.float32), probe.astype(np.float32), atol=PROBE_DB)
        if bank.parameter_ids == tuple(renderer.parameter_set.ids) and same_synth:
            return bank
        why = ("again: the one there was built for other parameters" if same_synth
               else "again: the synth sounds different from the one that built the bank there")
    if say:
        say(f"building the patch bank of {size} rendered patches ({why}) into {target}")
    params, notes = random_rows(renderer, size)
    bank = replace(build_bank(renderer, params, notes, executor=executor), probe=probe)
    target.parent.mkdir(parents=True, exist_ok=True)
    bank.save(target)
    return bank
