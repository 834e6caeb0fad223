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
Not for every patch, though: amsynth's voices keep their oscillator phases from earlier notes, and
a pulse + detuned-saw patch came out differently (MR-STFT 0.46) after other patches than after
itself, while right after itself it always sounds the same. So a single patch (a preview, the
network's answer, ``deepdiva render`` of a preset) is played twice and the second kept, which
makes a written preset render exactly as its preview in a new host; a batch (the search's
candidates) plays each patch once, and its scores carry that phase noise. A new instance also
renders one throwaway note first: a fresh plugin's very first note starts from other phases still.
This costs ``2 * settle + tail`` seconds of extra audio per render: 5-15% fewer renders per
second than a bare set-parameters-and-render loop for amsynth's 2 s notes
(``benchmarks/render_vst.py``).

What a host cannot reset: amsynth's noise waveforms draw from one generator per process (noise
patches differ in their noise, not their spectrum, from render to render); its oscillator sync
keeps a phase across notes; mono/legato keyboard modes play on another voice than the flush.
The amsynth profile leaves sync and the keyboard modes out of its named sets.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import numpy as np

from .errors import RenderError
from .plugin_host import PluginPatches, check_plugin_path, fit_length
from .profile import ParameterSet
from .render import Renderer, RenderSettings

SETTLE_SECONDS = 0.1
TAIL_SECONDS = 0.25
BLOCK_SIZE = 512
ALL_SOUND_OFF, ALL_NOTES_OFF = 120, 123
INSTALL_HINT = "pip install 'deepdiva[vst]'"


def _import_dawdreamer() -> ModuleType:
    try:
        import dawdreamer
    except ImportError:
        raise RenderError(f"DawDreamer is not installed; {INSTALL_HINT}") from None
    return dawdreamer


def _mono(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=0) if audio.ndim == 2 else audio


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
        # A fresh plugin instance plays its very first note from other oscillator phases than every
        # later one (amsynth: a pulse + detuned saw patch differs by MR-STFT 0.46 between its first
        # and second render, and never after); one throwaway render makes every measured render a
        # later one, so a preset renders the same in a new host (deepdiva render) as in the match.
        self.render(parameter_set.defaults_normalised()[None, :])

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
        plays = 2 if len(values) == 1 else 1  # a single patch is kept as played right after itself (see above)
        for row, patch, note, length in zip(out, values, keys, note_lengths.tolist(), strict=True):
            for _ in range(plays):
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
