"""The renderer interface: a batch of normalised parameter vectors in, one mono note each out.

Backends live in their own modules and are made by :func:`deepdiva.core.renderers.make_renderer`
(the registry), which imports them only when asked for, so that ``import deepdiva.core`` never
pulls in DawDreamer or RenderMan. Nothing here imports a backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from .errors import RenderError
from .profile import ParameterSet


@dataclass(frozen=True)
class RenderSettings:
    """One note: the original project's defaults (C3 = MIDI 48, full velocity, 2 s)."""

    sample_rate: int = 44100
    midi_pitch: int = 48
    velocity: int = 127
    note_length: float = 2.0
    render_length: float = 2.0

    def __post_init__(self) -> None:
        if not 8000 <= self.sample_rate <= 192000:
            raise RenderError(f"sample rate {self.sample_rate} Hz is outside 8000..192000")
        if not 0 <= self.midi_pitch <= 127:
            raise RenderError(f"MIDI pitch {self.midi_pitch} is outside 0..127")
        if not 0 <= self.velocity <= 127:
            raise RenderError(f"MIDI velocity {self.velocity} is outside 0..127")
        if not 0 < self.render_length <= 60:
            raise RenderError(f"render length {self.render_length} s must be in (0, 60]")
        if not 0 < self.note_length <= self.render_length:
            raise RenderError(
                f"note length {self.note_length} s must be > 0 and <= render length {self.render_length} s")

    @property
    def n_samples(self) -> int:
        return int(round(self.render_length * self.sample_rate))

    def to_dict(self) -> dict:
        return asdict(self)


class Renderer(ABC):
    """Renders one note per parameter vector of ``parameter_set`` (every other parameter fixed)."""

    kind: str = "abstract"
    thread_safe: bool = False  # may ``render`` run on several threads at once?

    def __init__(self, parameter_set: ParameterSet, settings: RenderSettings | None = None,
                 fixed: Mapping[int, float] | None = None) -> None:
        self.parameter_set = parameter_set
        self.settings = settings or RenderSettings()
        self.fixed = dict(fixed or {})

    def fixed_native(self) -> dict[int, float]:
        """Native values of every profile parameter outside the set: defaults, then overrides
        (e.g. from a ``--base-preset``)."""
        in_set = set(self.parameter_set.ids)
        values = {p.id: p.default for p in self.parameter_set.profile.parameters if p.id not in in_set}
        values.update({k: v for k, v in self.fixed.items() if k not in in_set})
        return values

    def render(self, params_normalised: np.ndarray, notes: float | np.ndarray | None = None,
               note_lengths: float | np.ndarray | None = None) -> np.ndarray:
        """float32 (n, k) in [0, 1] -> float32 (n, samples) mono audio; deterministic.

        ``notes``: the MIDI note each patch is played at, one for all or one per row (default:
        the settings' ``midi_pitch``). A fraction is cents: the builtin synth plays it exactly,
        plugin hosts play the nearest key. ``note_lengths``: seconds to each note-off (default:
        the settings' ``note_length``), at most the render length.
        """
        params = np.asarray(params_normalised, dtype=np.float32)
        if params.ndim == 1:
            params = params[None, :]
        k = len(self.parameter_set)
        if params.ndim != 2 or params.shape[1] != k:
            raise RenderError(f"expected parameters of shape (n, {k}) for "
                              f"{self.parameter_set.describe()}, got {np.shape(params_normalised)}")
        native = self.parameter_set.from_normalised(params)  # validates NaN, clips, quantises
        n = len(params)
        lengths = per_row(self.settings.note_length if note_lengths is None else note_lengths, n, "note length")
        if not ((lengths > 0).all() and (lengths <= self.settings.render_length).all()):
            raise RenderError(f"note lengths must lie within (0, {self.settings.render_length}] s")
        audio = self._render_native(native, self.notes_for(n, notes), lengths)
        return np.ascontiguousarray(audio, dtype=np.float32)

    def notes_for(self, n: int, notes: float | np.ndarray | None) -> np.ndarray:
        """float64 (n,) MIDI notes: ``notes`` broadcast to the batch, checked to lie in 0..127."""
        arr = per_row(self.settings.midi_pitch if notes is None else notes, n, "MIDI note")
        if not ((arr >= 0).all() and (arr <= 127).all()):
            raise RenderError("MIDI notes must lie within 0..127")
        return arr

    @abstractmethod
    def _render_native(self, native: np.ndarray, notes: np.ndarray, note_lengths: np.ndarray) -> np.ndarray:
        """Render native (profile-unit) values (n, k) at MIDI ``notes`` (n,), each released after
        ``note_lengths`` (n,) seconds -> (n, samples)."""

    def lengthened(self, render_length: float) -> Renderer | None:
        """This renderer's synth rendering ``render_length`` seconds a note, or None when it cannot
        (a plugin host is set up for the length it renders)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release host resources (plugins, engines)."""


def per_row(value: float | np.ndarray, n: int, what: str) -> np.ndarray:
    """A scalar or one value per row -> contiguous float64 (n,), finite."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise RenderError(f"expected one {what} or one per patch ({n}), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise RenderError(f"{what}s must be finite")
    return np.ascontiguousarray(arr)
