"""The renderer interface: a batch of normalised parameter vectors in, one mono note each out.

Backends live in their own modules and are imported lazily by :func:`make_renderer`, so that
``import deepdiva.core`` never pulls in DawDreamer or RenderMan.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from .errors import RenderError
from .profile import ParameterSet

RENDERER_KINDS = ("builtin", "vst", "renderman")


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

    def render(self, params_normalised: np.ndarray) -> np.ndarray:
        """float32 (n, k) in [0, 1] -> float32 (n, samples) mono audio; deterministic."""
        params = np.asarray(params_normalised, dtype=np.float32)
        if params.ndim == 1:
            params = params[None, :]
        k = len(self.parameter_set)
        if params.ndim != 2 or params.shape[1] != k:
            raise RenderError(f"expected parameters of shape (n, {k}) for "
                              f"{self.parameter_set.describe()}, got {np.shape(params_normalised)}")
        native = self.parameter_set.from_normalised(params)  # validates NaN, clips, quantises
        audio = self._render_native(native)
        return np.ascontiguousarray(audio, dtype=np.float32)

    @abstractmethod
    def _render_native(self, native: np.ndarray) -> np.ndarray:
        """Render native (profile-unit) values (n, k) -> (n, samples)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release host resources (plugins, engines)."""


def make_renderer(kind: str, parameter_set: ParameterSet, settings: RenderSettings | None = None,
                  plugin_path: str | None = None, fixed: Mapping[int, float] | None = None) -> Renderer:
    """Create a renderer by name; optional backends are imported only when asked for.

    ``fixed`` gives native values for parameters outside the set (e.g. from a base preset).
    """
    if kind == "builtin":
        from .builtin_renderer import BuiltinRenderer
        return BuiltinRenderer(parameter_set, settings, fixed)
    if kind == "vst":
        from .vst_renderer import VstRenderer
        return VstRenderer(parameter_set, settings, plugin_path=plugin_path, fixed=fixed)
    if kind == "renderman":
        from .renderman_renderer import RenderManRenderer
        return RenderManRenderer(parameter_set, settings, plugin_path=plugin_path, fixed=fixed)
    raise RenderError(f"unknown renderer {kind!r}; use one of {', '.join(RENDERER_KINDS)}")
