"""A bank of rendered patches with compact embeddings: a nearest-neighbour lookup of sounds.

Each row is a random patch, the note it was played at, the pitch heard in its audio and an
embedding of that audio: the ``mel_db`` spectrogram average-pooled to :data:`BANDS` bands x
:data:`SEGMENTS` time segments (256 numbers, float16), compared by plain L2 distance. Patches
are stored restated for the pitch heard (:func:`~deepdiva.core.tuning.relative_to_pitch`), so a
row found for a target can be played at the target's key.

Two uses: the baseline every network must beat (the nearest row's own render is the answer),
and warm starts for the refinement (the nearest rows near the target's pitch are scored beside
the network's answer and the best one starts the search; they are also natural runners-up).
"""

from __future__ import annotations

import os
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .atomic import write_atomic
from .errors import ModelError
from .features import FeatureConfig, mel_db
from .pitch import detect_pitches
from .render import Renderer
from .tuning import relative_to_pitch

BANDS = 32
SEGMENTS = 8
FORMAT = "deepdiva-bank/1"
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
    """Rows of patches (normalised, restated for the pitch heard), notes and embeddings."""

    params: np.ndarray  # float32 (N, k)
    played: np.ndarray  # float32 (N,), the MIDI note each patch was rendered at
    heard: np.ndarray  # float32 (N,), the pitch detected in its audio (MIDI scale), NaN unpitched
    embeddings: np.ndarray  # float16 (N, D)
    parameter_ids: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.params)

    @cached_property
    def _centred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The embeddings as float32 minus their mean, their squared norms, and the mean: made once
        (each query took ~30 ms for 20,000 rows converting them). Centred, the float32 sums lose
        ~30x less to rounding than raw dB values would (~0.03 of distances ~10,000)."""
        embeddings = self.embeddings.astype(np.float32)
        mean = embeddings.mean(axis=0)
        embeddings -= mean
        return embeddings, np.einsum("ij,ij->i", embeddings, embeddings), mean

    def nearest(self, query: np.ndarray, k: int = 1, near: float | None = None,
                tolerance: float = 3.0) -> np.ndarray:
        """Rows of the ``k`` embeddings nearest to ``query`` (D,), best first. With ``near`` (a MIDI
        pitch) only rows heard within ``tolerance`` semitones of it count (NaN: only unpitched
        rows), unless fewer than ``k`` qualify."""
        embeddings, norms, mean = self._centred
        q = np.asarray(query, dtype=np.float32) - mean
        distances = norms - 2.0 * (embeddings @ q) + float(q @ q)  # |e - q|^2, one matrix product
        if near is not None:
            if np.isfinite(near):
                outside = ~(np.abs(self.heard - near) <= tolerance)
            else:
                outside = np.isfinite(self.heard)
            if (~outside).sum() >= k:
                distances = np.where(outside, np.inf, distances)
        k = min(k, len(distances))
        top = np.argpartition(distances, k - 1)[:k]
        return top[np.argsort(distances[top], kind="stable")]

    def save(self, path: str | os.PathLike) -> Path:
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, format=np.array(FORMAT), params=self.params, played=self.played, heard=self.heard,
                         embeddings=self.embeddings, parameter_ids=np.asarray(self.parameter_ids, dtype=np.int64))

        return write_atomic(Path(path), write)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Bank:
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != FORMAT:
                    raise ModelError(f"{path} is not a {FORMAT} file")
                return cls(data["params"], data["played"], data["heard"], data["embeddings"],
                           tuple(int(i) for i in data["parameter_ids"]))
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot read the patch bank {path}: {exc}; delete it to have it rebuilt") from None


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


def cached_bank(renderer: Renderer, path: str | os.PathLike | None = None, size: int = DEFAULT_SIZE,
                say=None, executor: Executor | None = None) -> Bank:
    """The bank at ``path`` (default: :func:`default_bank_path`), built and saved there first if it
    is missing (``say`` is told, since that takes about half a minute on two threads)."""
    target = Path(path) if path is not None else default_bank_path(renderer, size)
    if target.exists():
        bank = Bank.load(target)
        if bank.parameter_ids == tuple(renderer.parameter_set.ids):
            return bank
    if say:
        say(f"building the warm-start bank of {size} rendered patches (once) into {target}")
    params, notes = random_rows(renderer, size)
    bank = build_bank(renderer, params, notes, executor=executor)
    target.parent.mkdir(parents=True, exist_ok=True)
    bank.save(target)
    return bank
