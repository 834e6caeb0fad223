"""Optional RenderMan host (``librenderman``): VST2 only, unmaintained, not on PyPI.

Kept as a thin adapter for setups that already have it (the original project rendered Diva
this way). Parameters are matched by name exactly as for DawDreamer (see
:mod:`.vst_renderer`), and values are sent with the same linear mapping. RenderMan plays one
note from time 0 with no way to reset the plugin in between, so unlike the ``vst`` renderer it
cannot flush state from one patch to the next.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import numpy as np

from .errors import RenderError
from .plugin_host import PluginPatches, check_plugin_path, fit_length
from .profile import ParameterSet
from .render import Renderer, RenderSettings

BUFFER_SIZE = 512
FFT_SIZE = 512
MISSING = ("RenderMan is not installed: it is VST2-only and not on PyPI; see "
           "https://github.com/fedden/RenderMan or use --synth vst (DawDreamer)")
_LINE = re.compile(r"^\s*(\d+):\s?(.*?)\s*$")


def _import_renderman() -> ModuleType:
    try:
        import librenderman
    except ImportError:
        raise RenderError(MISSING) from None
    return librenderman


def parse_description(text: str) -> list[str]:
    """``get_plugin_parameters_description()`` ("  0: name" lines) -> names by plugin index.

    RenderMan leaves out parameters named "Param"; their slots stay empty strings.
    """
    found: dict[int, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            found[int(match[1])] = match[2]
    names = [""] * (max(found) + 1 if found else 0)
    for index, name in found.items():
        names[index] = name
    return names


class RenderManRenderer(Renderer):
    """One RenderMan engine with one VST2 plugin, reused for every render."""

    kind = "renderman"

    def __init__(self, parameter_set: ParameterSet, settings: RenderSettings | None = None,
                 plugin_path: str | Path | None = None, fixed: Mapping[int, float] | None = None) -> None:
        super().__init__(parameter_set, settings, fixed)
        rm = _import_renderman()
        self.plugin_path = check_plugin_path(plugin_path)
        self._engine = rm.RenderEngine(self.settings.sample_rate, BUFFER_SIZE, FFT_SIZE)
        if not self._engine.load_plugin(str(self.plugin_path)):
            raise RenderError(f"RenderMan cannot load plugin {self.plugin_path} (it hosts VST2 only)")
        names = parse_description(self._engine.get_plugin_parameters_description())
        self.patches = PluginPatches(parameter_set, self.fixed_native(), names, self.plugin_path.name)

    def _render_native(self, native: np.ndarray, notes: np.ndarray, note_lengths: np.ndarray) -> np.ndarray:
        if self._engine is None:
            raise RenderError("this renderer is closed")
        s = self.settings
        out = np.empty((len(native), s.n_samples), dtype=np.float32)
        keys = np.rint(notes).astype(int).tolist()
        for row, patch, note, length in zip(out, self.patches.values(native), keys, note_lengths.tolist(),
                                            strict=True):
            for index, value in zip(self.patches.indices.tolist(), patch.tolist(), strict=True):
                if not self._engine.override_plugin_parameter(index, float(np.clip(value, 0.0, 1.0))):
                    raise RenderError(f"RenderMan refused a value for parameter {index} of {self.plugin_path}")
            self._engine.render_patch(note, s.velocity, length, s.render_length)
            audio = np.asarray(self._engine.get_audio_frames(), dtype=np.float32)
            row[:] = fit_length(audio, s.n_samples)
        return out

    def close(self) -> None:
        """Drop the engine; rendering afterwards raises :class:`RenderError`."""
        self._engine = None
