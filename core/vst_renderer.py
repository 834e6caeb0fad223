"""Render with any VST2/VST3 instrument hosted by DawDreamer (a user's Diva, Debian's amsynth).

Parameters are matched by name: a profile parameter's ``plugin_name`` (else its ``name``) must
be one of the plugin's parameter names, so one profile per synth serves every host.

Plugin values. Hosts set plugin parameters as normalised 0-1 values. A profile value ``v`` is
sent as the profile's own normalisation: ``(v - min) / (max - min)`` for continuous and integer
parameters, ``index / (n - 1)`` for enumerated ones. amsynth takes exactly that
(``scripts/build_amsynth_profile.py`` checks it against the plugin); for Diva it is the same
assumption the profile's RenderMan ranges make.

Determinism. Synths keep state from note to note (oscillator glides, smoothed controls, reverb
tails, limiter envelopes), so every render of one patch takes three steps, all on one pitch:

1. flush: the plugin is prepared again (``prepareToPlay``: amsynth resets its output limiter
   there), then all-sound-off (MIDI CC 120 and 123), a short note under the *base patch* (fixed
   values, set parameters at their defaults, with the profile's ``[flush]`` values on top),
   all-sound-off, and ``tail`` seconds of silence (default 0.25 s) for effects that a plugin
   does not clear itself, so whatever the previous patch left behind is replaced by the same
   state;
2. settle: the patch is set and a short note played for ``settle`` seconds (default 0.1 s), so
   the patch's smoothed controls reach their values before the measured note;
3. all-sound-off again, then the measured note; ``render_length`` seconds from its onset are
   returned, mixed down to mono.

The same patch then gives the same audio: bit-identical twice in a row, and within about 3e-5
(-90 dBFS) whatever was rendered before it (amsynth; a longer ``tail`` shrinks that further).
This costs ``2 * settle + tail`` seconds of extra audio per render: 5-15% fewer renders per
second than a bare set-parameters-and-render loop for amsynth's 2 s notes
(``benchmarks/render_vst.py``).

What a host cannot reset: amsynth's noise waveforms draw from one generator per process (noise
patches differ in their noise, not their spectrum, from render to render); its oscillator sync
keeps a phase across notes; mono/legato keyboard modes play on another voice than the flush.
The amsynth profile leaves sync and the keyboard modes out of its named sets.
"""

from __future__ import annotations

import difflib
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from .errors import RenderError
from .profile import Parameter, ParameterSet
from .render import Renderer, RenderSettings

SETTLE_SECONDS = 0.1
TAIL_SECONDS = 0.25
BLOCK_SIZE = 512
ALL_SOUND_OFF, ALL_NOTES_OFF = 120, 123
INSTALL_HINT = "pip install 'deepdiva[vst]'"


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


def _import_dawdreamer() -> ModuleType:
    try:
        import dawdreamer
    except ImportError:
        raise RenderError(f"DawDreamer is not installed; {INSTALL_HINT}") from None
    return dawdreamer


def _mono(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=0) if audio.ndim == 2 else audio


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad 1-D audio to ``n`` samples."""
    return audio[:n] if len(audio) >= n else np.pad(audio, (0, n - len(audio)))


class VstRenderer(Renderer):
    """One DawDreamer engine with one plugin, reused for every render; not thread-safe."""

    kind = "vst"

    def __init__(self, parameter_set: ParameterSet, settings: RenderSettings | None = None,
                 plugin_path: str | Path | None = None, fixed: Mapping[int, float] | None = None,
                 settle: float = SETTLE_SECONDS, tail: float = TAIL_SECONDS,
                 block_size: int = BLOCK_SIZE) -> None:
        super().__init__(parameter_set, settings, fixed)
        if not 0.01 <= settle <= 5.0:
            raise RenderError(f"settle time {settle} s must be within 0.01..5")
        if not 0.0 <= tail <= 10.0:
            raise RenderError(f"flush tail {tail} s must be within 0..10")
        self.settle, self.tail = float(settle), float(tail)
        self.plugin_path = check_plugin_path(plugin_path)
        daw = _import_dawdreamer()
        self._engine = daw.RenderEngine(self.settings.sample_rate, int(block_size))
        try:
            self._synth = self._engine.make_plugin_processor("synth", str(self.plugin_path))
        except Exception as exc:  # DawDreamer raises RuntimeError("Unable to load plugin.")
            raise RenderError(f"cannot load plugin {self.plugin_path}: {exc} "
                              "(is it a VST2/VST3 instrument built for this system?)") from None
        if self._synth.get_num_output_channels() < 1:
            raise RenderError(f"plugin {self.plugin_path} has no audio outputs")
        names = [self._synth.get_parameter_name(i) for i in range(self._synth.get_plugin_parameter_size())]
        self.patches = PluginPatches(parameter_set, self.fixed_native(), names, self.plugin_path.name)
        self._engine.load_graph([(self._synth, [])])
        self._midi: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(prefix="deepdiva-midi-")
        self._prelude = Path(self._midi.name) / "prelude.mid"
        _write_prelude(self._prelude, self.settings, self.settle)

    def _schedule(self, note: int | None = None, length: float = 0.0) -> None:
        """The prelude (reset, short note, reset), plus the measured ``note`` when given."""
        self._synth.load_midi(str(self._prelude), clear_previous=True, beats=False, all_events=True)
        if note is not None:
            self._synth.add_midi_note(note, self.settings.velocity, self.settle, length, beats=False)

    def _apply(self, values: np.ndarray) -> None:
        for index, value in zip(self.patches.indices.tolist(), values.tolist(), strict=True):
            self._synth.set_parameter(index, value)

    def _render_native(self, native: np.ndarray, notes: np.ndarray, note_lengths: np.ndarray) -> np.ndarray:
        if self._engine is None:
            raise RenderError("this renderer is closed")
        values = self.patches.values(native)
        n = self.settings.n_samples
        offset = int(round(self.settle * self.settings.sample_rate))
        out = np.empty((len(values), n), dtype=np.float32)
        keys = np.rint(notes).astype(int).tolist()
        for row, patch, note, length in zip(out, values, keys, note_lengths.tolist(), strict=True):
            self._engine.load_graph([(self._synth, [])])  # re-prepares the plugin (amsynth: limiter)
            self._apply(self.patches.flush)
            self._schedule()
            self._engine.render(self.settle + self.tail)
            self._apply(patch)
            self._schedule(note, length)
            self._engine.render(self.settle + self.settings.render_length)
            row[:] = fit_length(_mono(self._engine.get_audio())[offset:], n)
        return out

    def close(self) -> None:
        """Free the plugin and the engine; rendering afterwards raises :class:`RenderError`."""
        self._synth = None
        self._engine = None
        midi, self._midi = getattr(self, "_midi", None), None
        if midi is not None:
            midi.cleanup()

    def __enter__(self) -> VstRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_prelude(path: Path, settings: RenderSettings, settle: float) -> None:
    """All-sound-off, a note of ``settle / 2`` s, all-sound-off at ``0.75 * settle`` (120 bpm)."""
    import mido

    ticks_per_beat, seconds_per_beat = 960, 0.5

    def tick(seconds: float) -> int:
        return int(round(seconds / seconds_per_beat * ticks_per_beat))

    events = [(0, "reset"), (0, "on"), (tick(0.5 * settle), "off"), (tick(0.75 * settle), "reset")]
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=int(seconds_per_beat * 1e6), time=0)])
    now = 0
    for at, what in events:
        if what == "reset":
            messages = [mido.Message("control_change", control=c, value=0) for c in (ALL_SOUND_OFF, ALL_NOTES_OFF)]
        else:
            kind = "note_on" if what == "on" else "note_off"
            messages = [mido.Message(kind, note=settings.midi_pitch, velocity=settings.velocity)]
        for message in messages:
            track.append(message.copy(time=at - now))
            now = at
    track.append(mido.MetaMessage("end_of_track", time=1))
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    midi.tracks.append(track)
    midi.save(str(path))
