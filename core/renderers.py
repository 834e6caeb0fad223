"""The renderer registry: a kind's name -> the backend that renders it, imported on first use.

Apart from :mod:`.render` (the interface the backends implement), so neither imports the other's
users: a new renderer is one module plus one line here (and its name in ``core/names.py``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import RenderError
from .names import RENDERER_KINDS
from .profile import ParameterSet
from .render import Renderer, RenderSettings


@dataclass(frozen=True)
class Backend:
    module: str  # under deepdiva.core
    cls: str
    hosts_plugin: bool  # takes a plugin file (``plugin_path``)


BACKENDS: dict[str, Backend] = {
    "builtin": Backend("builtin_renderer", "BuiltinRenderer", hosts_plugin=False),
    "vst": Backend("vst_renderer", "VstRenderer", hosts_plugin=True),
    "renderman": Backend("renderman_renderer", "RenderManRenderer", hosts_plugin=True),
}
assert tuple(BACKENDS) == RENDERER_KINDS, "core/names.py RENDERER_KINDS and the registry disagree"


def make_renderer(kind: str, parameter_set: ParameterSet, settings: RenderSettings | None = None,
                  plugin_path: str | None = None, fixed: Mapping[int, float] | None = None) -> Renderer:
    """Create a renderer by name; optional backends are imported only when asked for.

    ``fixed`` gives native values for parameters outside the set (e.g. from a base preset).
    """
    backend = BACKENDS.get(kind)
    if backend is None:
        raise RenderError(f"unknown renderer {kind!r}; use one of {', '.join(RENDERER_KINDS)}")
    cls = getattr(importlib.import_module(f"{__package__}.{backend.module}"), backend.cls)
    if backend.hosts_plugin:
        return cls(parameter_set, settings, plugin_path=plugin_path, fixed=fixed)
    return cls(parameter_set, settings, fixed=fixed)
