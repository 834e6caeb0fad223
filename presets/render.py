"""Render a preset file to a wav: preset values -> normalised -> renderer -> atomic wav write."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.atomic import write_atomic
from ..core.profile import load_profile
from ..core.render import RenderSettings
from ..core.renderers import make_renderer
from .amsynth import BANK_SUFFIX, PRESET_SUFFIX, read_amsynth
from .h2p import read_h2p


def write_wav(path: Path, audio: np.ndarray, sample_rate: int, overwrite: bool = False) -> Path:
    """Write mono float audio as 32-bit float wav, atomically; pick a free name unless overwrite."""
    import soundfile as sf

    return write_atomic(Path(path), lambda tmp: sf.write(tmp, audio, sample_rate, subtype="FLOAT", format="WAV"),
                        overwrite=overwrite)


DEFAULT_SETS = {"diva": "medium33", "amsynth": "large"}  # medium33: all the builtin synth plays


def read_any_preset(preset_path: str | Path):
    """A preset file of any format deepdiva writes, and its profile's name (by the suffix:
    ``.h2p`` Diva, ``.bank`` / ``.amSynthPreset`` amsynth)."""
    suffix = Path(preset_path).suffix.lower()
    if suffix in (BANK_SUFFIX.lower(), PRESET_SUFFIX.lower()):
        profile = load_profile("amsynth")
        return read_amsynth(preset_path, profile), profile
    profile = load_profile("diva")
    return read_h2p(preset_path, profile), profile


def render_preset(preset_path: str | Path, renderer: str = "builtin", plugin_path: str | None = None,
                  set_name: str | None = None, settings: RenderSettings | None = None) -> np.ndarray:
    """Render a preset at the settings' note; returns float32 mono audio. Every value of the
    preset is played as the file has it (the ``set_name`` parameters, default the profile's
    default set (Diva medium33, amsynth large), go through the set's normalisation; the rest are fixed), so a preset matched at
    A4 with a fine tune plays exactly as its preview when rendered at 69."""
    preset, profile = read_any_preset(preset_path)
    name = set_name or DEFAULT_SETS[profile.name]
    pset = profile.parameter_set(name)
    native = preset.native_values(pset)
    engine = make_renderer(renderer, pset, settings, plugin_path=plugin_path, fixed=preset.native_by_id(profile))
    try:
        return engine.render(pset.to_normalised(np.asarray(native)[None, :]))[0]
    finally:
        engine.close()


def render_preset_to_wav(preset_path: str | Path, out: Path, renderer: str = "builtin",
                         plugin_path: str | None = None, set_name: str | None = None,
                         settings: RenderSettings | None = None, overwrite: bool = False) -> Path:
    settings = settings or RenderSettings()
    audio = render_preset(preset_path, renderer, plugin_path, set_name, settings)
    return write_wav(out, audio, settings.sample_rate, overwrite=overwrite)
