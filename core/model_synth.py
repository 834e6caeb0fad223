"""The synth a model was trained on (its card's ``synth`` section) and the renderer that plays
its answers at match time.

Which renderers may play a model's answers. A model predicts the parameters of one synth
profile, so a renderer may play them only if it plays that profile:

- ``builtin`` plays Diva parameters only (it is a surrogate of Diva): any Diva model, never an
  amsynth one;
- a plugin host (``vst``, ``renderman``) plays the profile its plugin was made for. DawDreamer
  reports no plugin name or version (its processors' ``get_name()`` is the label deepdiva gives
  them), so the plugin is known by its file: **the file (or bundle) name must contain the
  profile's name** (``diva``, ``amsynth``), case-insensitive: ``Diva.vst3`` and
  ``amsynth_vst.so`` fit, ``amsynth_vst.so`` for a Diva model does not. Once loaded, the plugin
  must also have every parameter of the profile by name (:mod:`.plugin_host`).

So a Diva model trained on the builtin synth may be refined with a real Diva plugin (said in
the output), while a Diva model with amsynth's plugin, or an amsynth model with the builtin
synth, is refused with a :class:`RenderError` before anything is rendered.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelError, RenderError
from .plugin_host import check_plugin_path
from .profile import Profile, load_profile
from .render import Renderer, RenderSettings
from .renderer_pool import pooled_renderer
from .renderers import BACKENDS

if TYPE_CHECKING:
    from .model_runtime import ModelCard

BUILTIN_PROFILE = "diva"  # the profile the builtin synth plays (core/builtin_renderer.py)


@dataclass(frozen=True)
class TrainedSynth:
    """What a model's training data was rendered with: the card's ``synth`` section."""

    profile: str
    renderer: str  # a renderer kind (core/names.py)
    parameter_set: str
    render: Mapping[str, Any]  # RenderSettings as a dict
    pitch_range: tuple[int, int] | None = None
    plugin: str | None = None  # the plugin's file name (never this machine's path: the card ships)
    plugin_version: str | None = None  # as the host reports it (DawDreamer reports none)
    synth: str = ""  # the profile's synth name, e.g. "u-he Diva", "amsynth"
    synth_version: str | None = None  # the synth version the profile was made from
    fixed: Mapping[int, float] = field(default_factory=dict)  # native values outside the set (base preset)

    @classmethod
    def of(cls, profile: str, renderer: str, parameter_set: str, render: Mapping[str, Any],
           pitch_range: tuple[int, int] | list[int] | None = None, plugin_path: str | Path | None = None,
           plugin_version: str | None = None, fixed: Mapping[int, float] | None = None) -> TrainedSynth:
        """The section for training data of ``profile``; synth name and version from the profile."""
        prof = load_profile(profile)
        version = prof.meta.get("synth_version")
        return cls(profile, renderer, parameter_set, dict(render),
                   None if pitch_range is None else (int(pitch_range[0]), int(pitch_range[1])),
                   Path(plugin_path).name if plugin_path else None, plugin_version,
                   str(prof.meta.get("synth", profile)), None if version is None else str(version),
                   {int(k): float(v) for k, v in (fixed or {}).items()})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "<dict>") -> TrainedSynth:
        """Read a card's ``synth`` section; :class:`ModelError` naming what is wrong."""
        if not isinstance(data, Mapping):
            raise ModelError(f"model card {where}: 'synth' must be a table")
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("profile", "renderer", "parameter_set", "render") if k not in data]
        if missing:
            raise ModelError(f"model card {where}: synth lacks {', '.join(missing)}; re-export the model")
        try:
            values = {k: v for k, v in data.items() if k in known}
            pitch = values.get("pitch_range")
            values["pitch_range"] = None if pitch is None else (int(pitch[0]), int(pitch[1]))
            values["render"] = dict(values["render"])
            values["fixed"] = {int(k): float(v) for k, v in (values.get("fixed") or {}).items()}
            synth = cls(**values)
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise ModelError(f"model card {where}: malformed synth section ({exc})") from None
        if synth.renderer not in BACKENDS:
            raise ModelError(f"model card {where}: synth.renderer {synth.renderer!r} is not one of "
                             f"{', '.join(BACKENDS)}")
        if not all(math.isfinite(v) for v in synth.fixed.values()):
            raise ModelError(f"model card {where}: synth.fixed holds a value that is not a finite number")
        return synth

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["render"] = dict(self.render)
        out["pitch_range"] = None if self.pitch_range is None else list(self.pitch_range)
        out["fixed"] = {str(k): v for k, v in sorted(self.fixed.items())}
        return out

    def render_settings(self) -> RenderSettings:
        known = RenderSettings.__dataclass_fields__
        return RenderSettings(**{k: v for k, v in self.render.items() if k in known})

    def describe(self) -> str:
        """E.g. ``amsynth 1.13.2 (plugin amsynth_vst.so, vst)``, ``the builtin synth (a surrogate of u-he Diva)``."""
        if self.renderer == "builtin":
            return f"the builtin synth (a surrogate of {self.synth or 'Diva'})"
        name = (self.synth or self.profile) + (f" {self.synth_version}" if self.synth_version else "")
        return f"{name} ({f'plugin {self.plugin}, ' if self.plugin else ''}{self.renderer})"


@dataclass(frozen=True)
class SynthChoice:
    """The renderer that plays a model's answers; ``note`` tells the user when it is not the
    synth the model was trained on."""

    kind: str
    plugin_path: Path | None = None
    note: str | None = None


def plugin_fits(profile: Profile, plugin_path: str | os.PathLike) -> bool:
    """Whether a plugin file is taken for ``profile``: its name contains the profile's name."""
    return profile.name.lower() in Path(plugin_path).name.lower()


def choose_synth(trained: TrainedSynth, synth: str | None = None,
                 plugin_path: str | os.PathLike | None = None) -> SynthChoice:
    """The renderer for a model trained on ``trained``: ``synth`` (default: the card's) with
    ``plugin_path``; :class:`RenderError` if it cannot play the model's synth (module docstring)."""
    kind = synth or trained.renderer
    backend = BACKENDS.get(kind)
    if backend is None:
        raise RenderError(f"unknown renderer {kind!r}; use one of {', '.join(BACKENDS)}")
    profile = load_profile(trained.profile)
    trained_on = f"this model ({profile.name} parameters) was trained on {trained.describe()}"
    if not backend.hosts_plugin:
        if plugin_path:
            raise RenderError(f"--plugin-path is for --synth vst or renderman; the {kind} synth hosts no plugin")
        if profile.name != BUILTIN_PROFILE:
            raise RenderError(f"refused: {trained_on}; the {kind} synth plays Diva parameters only: use "
                              f"--synth {_plugin_kind(trained)} --plugin-path PATH to "
                              f"{trained.plugin or f'a {profile.name} plugin'} on this machine")
        note = None if trained.renderer == kind else (
            f"{trained_on}; its answers are rendered with the builtin synth, a surrogate of Diva")
        return SynthChoice(kind, None, note)
    if not plugin_path:
        raise RenderError(f"--synth {kind} needs the plugin file: pass --plugin-path PATH ({trained_on})")
    path = check_plugin_path(Path(plugin_path))
    if not plugin_fits(profile, path):
        raise RenderError(f"refused: {trained_on}; {path.name} is not a plugin for {profile.name}: a plugin is "
                          f"taken for {profile.name} parameters only if its file name contains "
                          f"'{profile.name}' (README: 'Your own synth')")
    if trained.renderer == "builtin":
        note = (f"the model was trained on the builtin synth, a surrogate of Diva; its answers are rendered "
                f"and refined with {path.name}")
    elif trained.plugin and trained.plugin != path.name:
        note = f"the model was trained with {trained.plugin}; its answers are rendered with {path.name}"
    else:
        note = None
    return SynthChoice(kind, path, note)


def _plugin_kind(trained: TrainedSynth) -> str:
    return trained.renderer if BACKENDS[trained.renderer].hosts_plugin else "vst"


def renderer_for(card: ModelCard, choice: SynthChoice | None = None, workers: int = 1,
                 settings: RenderSettings | None = None, fixed: Mapping[int, float] | None = None) -> Renderer:
    """The renderer that plays ``card``'s answers: ``choice`` (default: the synth the card names),
    at the card's render settings and fixed values (or ``settings`` and ``fixed``).

    ``workers`` > 1 spreads each batch of a plugin host over that many processes, one host each
    (:func:`~deepdiva.core.renderer_pool.pooled_renderer`: plugins are not thread-safe).
    """
    if workers < 1:
        raise RenderError(f"render workers must be >= 1, got {workers}")
    choice = choice or choose_synth(card.synth)
    trained = card.synth
    return pooled_renderer(choice.kind, card.parameter_set, settings or trained.render_settings(),
                           choice.plugin_path, dict(trained.fixed if fixed is None else fixed) or None, workers)
