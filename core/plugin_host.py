"""What every plugin host needs, whichever host it is (DawDreamer for ``vst``, RenderMan):
profile parameters matched to the plugin's by name, the plugin file checked, profile values
turned into the plugin's 0-1 values, and audio cut to the render length.

Parameters are matched by name: a profile parameter's ``plugin_name`` (else its ``name``) must
be one of the plugin's parameter names, so one profile per synth serves every host.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .errors import RenderError
from .profile import Parameter, ParameterSet


def plugin_name_of(parameter: Parameter) -> str:
    """The host's name for a profile parameter."""
    return parameter.plugin_name or parameter.name


def _fold(name: str) -> str:
    return " ".join(name.lower().split())


def match_parameters(parameters: Sequence[Parameter], plugin_names: Sequence[str],
                     plugin: str = "the plugin") -> list[int]:
    """The plugin index of each profile parameter: exact name first, then ignoring case and spacing.

    Raises :class:`RenderError` naming the parameters that are missing, with close matches.
    """
    exact: dict[str, int] = {}
    folded: dict[str, int] = {}
    for index, name in enumerate(plugin_names):
        exact.setdefault(name, index)
        folded.setdefault(_fold(name), index)
    indices: list[int] = []
    missing: list[str] = []
    for parameter in parameters:
        want = plugin_name_of(parameter)
        found = exact.get(want, folded.get(_fold(want)))
        if found is None:
            missing.append(want)
        else:
            indices.append(found)
    if missing:
        shown = "; ".join(_describe_missing(name, plugin_names) for name in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise RenderError(
            f"{len(missing)} profile parameter(s) not found in {plugin} ({len(plugin_names)} parameters): "
            f"{shown}{more}. Use the profile made for this plugin, or set plugin_name in the profile.")
    if len(set(indices)) != len(indices):
        raise RenderError(f"two profile parameters map to the same parameter of {plugin}; "
                          "give them distinct plugin_name values")
    return indices


def _describe_missing(name: str, plugin_names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(plugin_names), n=3, cutoff=0.5)
    return f"{name!r} (close: {', '.join(map(repr, close))})" if close else f"{name!r} (no close match)"


def check_plugin_path(plugin_path: str | Path | None) -> Path:
    """The plugin file or bundle, or a :class:`RenderError` that says what to pass."""
    if plugin_path is None or not str(plugin_path).strip():
        raise RenderError("this renderer needs the plugin file: pass --plugin PATH "
                          "(e.g. /usr/lib/vst/amsynth_vst.so for the amsynth profile)")
    path = Path(plugin_path).expanduser()
    if not path.exists():
        raise RenderError(f"plugin {path} does not exist; give the path of a VST2 (.so, .dll, .vst) "
                          "or VST3 (.vst3) instrument")
    if path.is_dir() and path.suffix.lower() not in (".vst3", ".vst", ".component"):
        raise RenderError(f"plugin {path} is a folder, not a plugin file or bundle")
    return path


class PluginPatches:
    """Profile values -> plugin values for every parameter of the profile the host sets.

    The set's columns vary per patch; every other (non-placeholder) parameter is held at the
    renderer's fixed value. ``base`` is the patch with the set at its defaults; ``flush`` is the
    base patch with the profile's ``[flush]`` values on top (native values by parameter name):
    settings that make a synth reset state it otherwise keeps between patches.
    """

    def __init__(self, parameter_set: ParameterSet, fixed_native: Mapping[int, float],
                 plugin_names: Sequence[str], plugin: str) -> None:
        profile = parameter_set.profile
        params = [p for p in profile.parameters if p.kind != "placeholder"]
        self.hosted = profile.parameter_set([p.id for p in params])
        self.indices = np.array(match_parameters(params, plugin_names, plugin), dtype=np.int64)
        column = {p.id: j for j, p in enumerate(params)}
        self.set_columns = np.array([column[i] for i in parameter_set.ids], dtype=np.int64)
        self.base_native = np.array([fixed_native.get(p.id, p.default) for p in params], dtype=np.float64)
        self.base = self.values(self.base_native[None, self.set_columns])[0]
        flush_native = self.base_native.copy()
        overrides = profile.meta.get("flush", {})
        if not isinstance(overrides, Mapping):
            raise RenderError(f"profile {profile.name}: [flush] must map parameter names to values")
        for name, value in overrides.items():
            parameter = profile.find(str(name))
            if parameter.id not in column:
                raise RenderError(f"profile {profile.name}: [flush] names placeholder {name!r}")
            flush_native[column[parameter.id]] = float(value)
        self.flush = self.hosted.to_normalised(flush_native[None, :])[0].astype(np.float64)

    def values(self, native: np.ndarray) -> np.ndarray:
        """Set values (n, k) in profile units -> plugin values (n, hosted) in [0, 1]."""
        full = np.repeat(self.base_native[None, :], len(native), axis=0)
        full[:, self.set_columns] = native
        return self.hosted.to_normalised(full).astype(np.float64)


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad 1-D audio to ``n`` samples."""
    return audio[:n] if len(audio) >= n else np.pad(audio, (0, n - len(audio)))
