"""The ``builtin`` renderer: Diva's medium33 parameters on the embedded numba synth.

No plugin, no host: it trains and tests on any machine. Parameters of the set are rendered
from the batch, the other medium33 parameters from :meth:`Renderer.fixed_native` (the base
preset's values unless overridden). Parameters outside medium33 have no counterpart in the
builtin synth, which always plays the base preset's structure (see BUILTIN_SYNTH.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from .builtin_synth import PARAM_IDS, render_batch
from .errors import RenderError
from .profile import ParameterSet
from .render import Renderer, RenderSettings
from .tuning import FINE_TUNE_ID, TRANSPOSE_ID


class BuiltinRenderer(Renderer):
    """Renders Diva parameter sets within medium33 (tiny11, small18, medium33 or any subset)."""

    kind = "builtin"
    thread_safe = True  # a pure numba kernel that releases the GIL (nogil), fresh output per call

    def __init__(self, parameter_set: ParameterSet, settings: RenderSettings | None = None,
                 fixed: Mapping[int, float] | None = None, parallel: bool = False) -> None:
        super().__init__(parameter_set, settings, fixed)
        if parameter_set.profile.name != "diva":
            raise RenderError(f"the builtin synth plays Diva parameters, not {parameter_set.profile.name!r} "
                              "ones; use --synth vst for other plugins")
        outside = [pid for pid in parameter_set.ids if pid not in PARAM_IDS]
        if outside:
            names = ", ".join(f"{pid} {parameter_set.profile.by_id(pid).location}" for pid in outside[:6])
            more = f" and {len(outside) - 6} more" if len(outside) > 6 else ""
            raise RenderError(f"the builtin synth implements Diva's medium33 parameters only; "
                              f"{names}{more} are not among them. Use a set within medium33 "
                              "(tiny11, small18, medium33) or --synth vst with Diva")
        self.parallel = parallel
        self._columns = np.array([PARAM_IDS.index(pid) for pid in parameter_set.ids], dtype=np.intp)

    def lengthened(self, render_length: float) -> BuiltinRenderer:
        return BuiltinRenderer(self.parameter_set, replace(self.settings, render_length=render_length), self.fixed,
                               self.parallel)

    def medium33_template(self) -> np.ndarray:
        """Native values of all medium33 parameters, fixed ones filled in (set columns are 0)."""
        fixed = self.fixed_native()
        return np.array([fixed.get(pid, 0.0) for pid in PARAM_IDS], dtype=np.float64)

    def transpose(self) -> float:
        """Semitones the fixed master tuning adds to every note: VCC:Trsp + VCC:FTun / 100 (Diva's
        transpose and fine tune; both 0 in the base preset)."""
        fixed = self.fixed_native()
        return float(fixed.get(TRANSPOSE_ID, 0.0)) + float(fixed.get(FINE_TUNE_ID, 0.0)) / 100.0

    def _render_native(self, native: np.ndarray, notes: np.ndarray, note_lengths: np.ndarray) -> np.ndarray:
        full = np.repeat(self.medium33_template()[None, :], len(native), axis=0)
        full[:, self._columns] = native
        s = self.settings
        return render_batch(full, s.sample_rate, notes + self.transpose(), s.velocity, note_lengths,
                            s.render_length, parallel=self.parallel)
