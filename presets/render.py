"""Render a preset file to a wav: preset values -> normalised -> renderer -> atomic wav write."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.atomic import write_atomic
from ..core.profile import load_profile
from ..core.render import RenderSettings
from ..core.renderers import make_renderer
from .h2p import read_h2p


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, overwrite: bool = False) -> Path:
    """Write mono float audio as 32-bit float wav, atomically; pick a free name unless overwrite."""
    import soundfile as sf

    return write_atomic(Path(path), lambda tmp: sf.write(tmp, audio, sample_rate, subtype="FLOAT", format="WAV"),
                        overwrite=overwrite)


def render_preset(preset_path: str | Path, renderer: str = "builtin", plugin_path: str | None = None,
                  set_name: str = "medium33", settings: RenderSettings | None = None,
                  profile_name: str = "diva") -> np.ndarray:
    """Render a preset at the settings' note; returns float32 mono audio. The ``set_name``
    parameters vary; every other value of the preset is fixed as the file has it (so a preset
    matched at A4 with a fine tune plays exactly as its preview when rendered at 69)."""
    profile = load_profile(profile_name)
    pset = profile.parameter_set(set_name)
    preset = read_h2p(preset_path, profile)
    native = preset.native_values(pset)
    engine = make_renderer(renderer, pset, settings, plugin_path=plugin_path, fixed=preset.native_by_id(profile))
    try:
        return engine.render(pset.to_normalised(np.asarray(native)[None, :]))[0]
    finally:
        engine.close()


def render_preset_to_wav(preset_path: str | Path, out: Path, renderer: str = "builtin",
                         plugin_path: str | None = None, set_name: str = "medium33",
                         settings: RenderSettings | None = None, overwrite: bool = False) -> Path:
    settings = settings or RenderSettings()
    audio = render_preset(preset_path, renderer, plugin_path, set_name, settings)
    return write_wav(out, audio, settings.sample_rate, overwrite=overwrite)
