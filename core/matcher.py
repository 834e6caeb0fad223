"""The matcher: a note in, synth parameters out (network, then optional search refinement).

Pure apart from loading the model once: no files are written here (see ``presets.match_job``).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np

from .bank import Bank, cached_bank, embed, shipped_bank
from .chord import Chord, ChordRenderer, detect_chord
from .envelope import AmpEnvelope, amp_envelope, noise_floor, releases_at_decay, with_envelope, with_release
from .errors import ModelError
from .level import at_rms_of, level_matched, mute, scored_gains, volume_columns, with_gain
from .metrics import SpectralTarget, spectral_convergence
from .model_runtime import OnnxModel
from .model_synth import choose_synth, renderer_for
from .pitch import Pitch, detect_pitches, midi_to_hz, note_name
from .plain import detuned_pairs, filter_sweeps, plain_patches
from .profile import ParameterSet
from .refine import FAR_SIGMA, SIGMA, Evaluate, evaluator, refine, scorer
from .render import Renderer, RenderSettings
from .tuning import FINE_TUNE_DECIMALS, on_harmonics, pitch_columns, pitch_repairs, tidy

DEFAULT_MODEL = "deepdiva-medium33.onnx"
WARM_STARTS = 8  # bank patches scored beside the network's answer before a search
# YIN's error on exact synthetic notes (a builtin A3 at 220.00 Hz is heard at 220.10 Hz, +0.8 c), far below
# the ~5 c anyone hears; a fine tune that small is the detector's, and detunes a render of an in-tune
# note measurably (MR-STFT 0.48 for 0.8 c on a plain saw)
IN_TUNE_CENTS = 1.5
CHOICE_FFT_SIZES = (1024,)  # the distance that picks among a network's answers: one resolution of the full four
# ... its frames half a window apart, not a quarter: half the cost per option. Side by side on the
# development sets the choice came out the same (geometric mean of the match's distance 0.9995-1.0019 per
# set) and the scored match 10-18 % faster (p50 254 -> 223 ms on builtin renders, 390 -> 352 on GM notes).
CHOICE_HOP_RATIO = 0.5
SCREEN_FFT_SIZES = CHOICE_FFT_SIZES  # the same steers a refinement's search (core/refine.py: screen): 1.3x
# as many candidates in a 2 s search, which ends closer (60 held-out renders, eval-notes rows 100-159, side by
# side twice: geometric mean of the distance ratio 0.981 and 0.981, the same code twice 1.001; frames 3/4 or a
# whole window apart 0.987, 0.990)
SCREEN_HOP_RATIO = CHOICE_HOP_RATIO
HARMONIC_CLARITY = 0.9  # a target this periodic (median autocorrelation at its period) has no inharmonic partner
# An answer whose render sounds further than this from the target's pitch is out of tune (a quarter
# tone: the network's unsure vibrato and pitch-modulation depths left 2 in 3 of 69 pitched
# out-of-domain targets 25-100 cents sharp, and 1 in 8 an octave off) and is repaired.
IN_TUNE_SEMITONES = 0.25
PITCHED_CLARITY = 0.8  # a target clearer than this has a pitch its answer must sound at
HEARD_FROM_HZ = 30.0  # Matcher._heard_closer's spectral convergence leaves out what lies below (sub-audible)
PITCH_CHOICES = 6  # distinct results of a search for a pitched target, the best in tune kept
TUNE_TRIES = 6  # a scored match's closest options tried, in turn, for one that sounds in tune
# ... and the first 3 that do are each finished (swept, leveled, paired: Matcher._finished) and the
# one closest by the full distance is kept: the one-resolution distance that ranks ~100 options is a
# quarter of the full one's cost but not the same measure, nor at the level the answer is written at.
# Development sets, side by side (leveled only, before the pairs joined in): builtin renders 29 of 80
# closer, 2 further (geometric mean of the ratio 0.970, median 1.968 -> 1.866), amsynth 0.986, GM
# notes 0.987, voices 0.998; 6 instead of 3: 0.960, 0.983, 0.988, 0.992 for twice the cost. Choosing
# before the pair step had lost pairs: 16 builtin saw pairs' median 0.73 -> 0.91; finishing each
# choice first, none further and 4 of 16 closer.
FULL_CHOICES = 3


def default_model_path() -> Path:
    """The model shipped in the package (``models/`` in the repository)."""
    path = Path(str(resources.files("deepdiva.models").joinpath(DEFAULT_MODEL)))
    if not path.exists():
        raise ModelError(f"the shipped model {DEFAULT_MODEL} is missing from the install; "
                         "rebuild it (models/README.md) or pass --model")
    return path


@dataclass(frozen=True)
class Alternative:
    """Another good patch the search found, clearly different from the match (to audition)."""

    params: np.ndarray  # normalised (k,)
    distance: float
    audio: np.ndarray  # its render (preview)


@dataclass(frozen=True)
class Match:
    """One matched note."""

    params: np.ndarray  # normalised (k,), quantised to the synth's steps
    native: np.ndarray  # profile units (k,)
    distance: float | None  # multi-resolution STFT distance of the re-render to the target (None: not scored)
    network_distance: float | None  # the same for the network's answer alone
    audio: np.ndarray | None  # the re-render (preview: the 2 s compared, then as long as the take); None when not needed
    evaluations: int  # renders spent on the search (0 without refinement)
    seconds: float  # wall time of this match
    alternatives: tuple[Alternative, ...] = ()  # runners-up of the search, best first
    pitch: Pitch = field(default_factory=Pitch.unpitched)  # detected in the target (a chord's: its lowest note)
    played: Pitch = field(default_factory=Pitch.unpitched)  # the key (and cents) the preset is played at
    note_length: float | None = None  # seconds to the note-off heard, where every render let go (None: held)
    chord: Chord | None = None  # the chord heard in the target, which every render played (None: one note)
    hiss_dbfs: float | None = None  # the take's noise floor the distances looked through, RMS dBFS (None: none read)
    let_go_at: float | None = None  # a note-off heard after every render's end, s from the onset (None: none)
    release: float | None = None  # the release heard there, written into the preset (None: not; it falls below full sustain)

    def as_dict(self, parameter_set: ParameterSet) -> dict:
        return {
            **self.pitch.as_dict(),
            "chord": None if self.chord is None else self.chord.names(),
            "played_at": {"note": note_name(self.played.midi), "midi_pitch": self.played.midi,
                          "cents": round(self.played.cents, 1), "held_for": _rounded(self.note_length),
                          "let_go_at": _rounded(self.let_go_at), "release": _rounded(self.release),
                          "keys": self.keys()},
            "distance": _rounded(self.distance),
            "network_distance": _rounded(self.network_distance),
            "noise_floor_dbfs": None if self.hiss_dbfs is None else round(self.hiss_dbfs, 1),
            "evaluations": self.evaluations,
            "seconds": round(self.seconds, 4),
            "params": {
                (p.location or str(p.id)): {"id": p.id, "normalised": round(float(u), 6),
                                            "value": p.format_native(float(v))}
                for p, u, v in zip(parameter_set.parameters, self.params, self.native, strict=True)
            },
        }

    def keys(self) -> list[str]:
        """The keys the preset is played at: the chord's notes from the key played, or that key."""
        intervals = (0,) if self.chord is None else self.chord.intervals
        return [note_name(self.played.midi + i) for i in intervals]


def default_threads() -> int:
    """Threads a refinement renders and scores on: the cores this process may use, at most 2.

    Measured on 2 cores; more threads would mostly wait for the GIL between numpy calls.
    """
    return max(1, min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _within_tune(off: float | None) -> bool:
    """Whether a render ``off`` semitones from the target's pitch (None: no pitch) sounds in tune."""
    return off is not None and abs(off) <= IN_TUNE_SEMITONES


class Matcher:
    """Holds one onnxruntime session, one renderer and the refinement's threads; call
    :meth:`match` per note.

    The renderer plays the model's answers: by default the synth its card names
    (:func:`~deepdiva.core.model_synth.renderer_for`); ``synth_note`` says when it is another
    one that plays the same parameters (e.g. a real Diva for a model trained on the builtin synth).

    A model trained across notes (its card has a ``pitch_range``) is played at the note detected
    in the target, with the cents as fine tune, or at the default note when the target is
    unpitched; a model trained at one note (deepdiva's first model) is played at that note.
    """

    def __init__(self, model: OnnxModel, renderer: Renderer | None = None, threads: int | None = None,
                 bank: Bank | None = None, use_bank: bool = False, say: Callable[[str], None] | None = None,
                 synth_note: str | None = None) -> None:
        self.model = model
        self.synth_note = synth_note
        self.bank = bank
        self.use_bank = use_bank or bank is not None  # without a bank given, build or load it on the first search
        self._say = say
        self.parameter_set = model.parameter_set
        card_render = {k: v for k, v in model.card.render.items() if k in RenderSettings.__dataclass_fields__}
        self.settings = RenderSettings(**card_render)
        self.follows_pitch = model.card.pitch_range is not None
        self.renderer = renderer or renderer_for(model.card)
        self.chord: Chord | None = None  # set on the copy that matches a chord (:meth:`_playing`)
        self.threads = default_threads() if threads is None else max(1, int(threads))
        self._executor = (ThreadPoolExecutor(self.threads, thread_name_prefix="deepdiva-refine")
                          if self.threads > 1 else None)

    @classmethod
    def load(cls, model_path: str | os.PathLike | None = None, intra_op_threads: int | None = None,
             bank: bool | None = None,
             say: Callable[[str], None] | None = None, synth: str | None = None,
             plugin_path: str | os.PathLike | None = None, workers: int = 1, refine: bool = False) -> Matcher:
        """Load the model once and warm up model and renderer, so the first match is as fast as any.
        ``bank``: choose among (and start searches from) the patch bank's nearest patches too
        (:mod:`~deepdiva.core.bank`): None (default) with the bank that ships for the model's
        parameter set, if one does; True with that or one loaded from the user cache or built there
        on the first scored match (``say`` is told); False without. ``synth`` and
        ``plugin_path``: the renderer (default: the synth the model card names), refused with a
        :class:`~deepdiva.core.errors.RenderError` if it cannot play the model's synth
        (:func:`~deepdiva.core.model_synth.choose_synth`); ``workers``: see ``renderer_for``.
        ``refine``: searches will follow, so the search library is loaded now (cma and scipy take
        0.5-3 s on a cold start, which would otherwise come on top of the first search's budget).
        ``intra_op_threads``: onnxruntime's threads for one network pass (default
        :func:`default_threads`: 2 cores nearly halve cnn3h's 3 ms; no thread spins between passes)."""
        if refine:
            import cma  # noqa: F401
        threads = default_threads() if intra_op_threads is None else intra_op_threads
        model = OnnxModel.load(model_path or default_model_path(), intra_op_threads=threads)
        choice = choose_synth(model.card.synth, synth, plugin_path)
        renderer = renderer_for(model.card, choice, workers)
        try:
            ready = shipped_bank(model.parameter_set) if bank is not False else None
            matcher = cls(model, renderer, bank=ready, use_bank=bool(bank), say=say, synth_note=choice.note)
            matcher.match(renderer.render(matcher.parameter_set.defaults_normalised()[None, :])[0])
        except BaseException:
            renderer.close()
            raise
        return matcher

    def close(self) -> None:
        """Release the renderer (a plugin host) and the refinement's threads."""
        self.renderer.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    @property
    def sample_rate(self) -> int:
        return self.settings.sample_rate

    @property
    def seconds(self) -> float:
        return self.settings.render_length

    def played_at(self, pitch: Pitch) -> Pitch:
        """The key (and cents) a match of a target with ``pitch`` is played at; cents within the
        detector's own error (:data:`IN_TUNE_CENTS`) count as in tune."""
        if self.follows_pitch:  # cents as the preset stores them (VCC:FTun)
            if not pitch.pitched:
                return Pitch.unpitched()
            cents = 0.0 if abs(pitch.cents) <= IN_TUNE_CENTS else round(pitch.cents, FINE_TUNE_DECIMALS)
            return replace(pitch, cents=cents)
        return Pitch.from_hz(float(midi_to_hz(self.settings.midi_pitch)))

    def detect(self, notes: np.ndarray) -> list[Pitch]:
        """The pitch of each note of a batch (n, samples)."""
        return detect_pitches(notes, self.sample_rate)

    def predict(self, notes: np.ndarray, pitches: list[Pitch] | None = None) -> np.ndarray:
        """Network only: notes (n, samples) -> quantised normalised parameters (n, k), the tuning
        of an unheard oscillator tidied, and for a note clearly periodic at the key it is played
        at, oscillator 2 on a harmonic (:func:`~deepdiva.core.tuning.on_harmonics`). A model with
        several answers gives its most confident one. ``pitches``: the notes' detected pitches, if known."""
        pitches = self.detect(notes) if pitches is None else pitches
        return self.tidied(self.model.predict(self.features(notes, pitches)), pitches)

    def hypotheses(self, note: np.ndarray, pitch: Pitch) -> np.ndarray:
        """Every answer of the network for one note (h, k), most confident first, each tidied as
        :meth:`predict`'s; one row for a model with one answer."""
        hyps, _ = self.model.predict_hypotheses(self.features(note[None, :], [pitch]))
        return self.tidied(hyps[0], [pitch] * hyps.shape[1])

    def features(self, notes: np.ndarray, pitches: list[Pitch]) -> np.ndarray:
        """The network's input for notes (n, samples) of the ``pitches`` detected in them."""
        return self.model.features_for(notes, np.array([np.nan if p.hz is None else p.hz for p in pitches]))

    def tidied(self, raw: np.ndarray, pitches: list[Pitch]) -> np.ndarray:
        """The network's raw answers (n, k) for notes of ``pitches``, quantised and tidied (see :meth:`predict`)."""
        params = self.parameter_set.quantise(raw)
        periodic = np.array([self.follows_pitch and p.pitched and p.clarity >= HARMONIC_CLARITY for p in pitches])
        if periodic.any():
            params[periodic] = on_harmonics(self.parameter_set, params[periodic])
        return tidy(self.parameter_set, params)

    def closest(self, answers: np.ndarray, note: np.ndarray, key: float, leveled: bool = True,
                target: SpectralTarget | None = None, length: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The answer (of ``answers`` (h, k)) whose render is closest to ``note`` by a one-
        resolution spectral distance (a quarter of the full one's cost), and its render.
        ``leveled``: each render is scored at the target's RMS level, for a match, where the level
        step follows: a right timbre 10 dB too loud beats a wrong one at the right level (GM
        instruments 1.63 -> 1.58, amsynth 1.98 -> 1.78 median MR-STFT of the match; scoring each at
        the best of the level step's four gains was no better for four times the cost); otherwise
        as rendered (the network alone). The answers are rendered and scored on the matcher's
        threads, as a search's generations are. ``target``: ``note``'s spectra, if already analysed;
        ``length``: seconds to each render's note-off (:meth:`note_length`; default: the synth's)."""
        audio, distances = self._choice_scorer(note, key, leveled, target, length)(answers)
        best = int(self._audible_first(np.argsort(distances, kind="stable"), answers, audio, note)[0])
        return answers[best], audio[best]

    def _audible_first(self, order: np.ndarray, options: np.ndarray, audio: np.ndarray, note: np.ndarray) -> np.ndarray:
        """``order`` (indices into ``options`` (h, k), rendered as ``audio``) without the options that
        are :func:`~deepdiva.core.level.mute` against ``note``, unless every one is: a render scored at
        the target's level can be close in shape though no volume setting makes it heard."""
        heard = ~mute(self.parameter_set, options[order], audio[order], note)
        return order[heard] if heard.any() else order

    def _choice_scorer(self, note: np.ndarray, key: float | np.ndarray, leveled: bool = True,
                       target: SpectralTarget | None = None, length: float | None = None
                       ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """What :meth:`closest` scores answers (h, k) with: their renders (at ``key``, one for all or
        one per answer) and one-resolution distances."""
        return scorer(self.renderer, self._choice_distance(note, leveled, target), self._executor, self.threads, key,
                      length)

    def _choice_distance(self, note: np.ndarray, leveled: bool = True,
                         target: SpectralTarget | None = None) -> Callable[[np.ndarray], np.ndarray]:
        """:meth:`_choice_scorer`'s distance of renders (n, samples) to ``note``, for renders made
        already (through the note's noise floor, as a match's ``target`` is)."""
        pick = (SpectralTarget(note, fft_sizes=CHOICE_FFT_SIZES, hop_ratio=CHOICE_HOP_RATIO,
                               noise=noise_floor(note, self.sample_rate)) if target is None
                else target.at_sizes(CHOICE_FFT_SIZES, CHOICE_HOP_RATIO))

        def at_target_level(audio: np.ndarray) -> np.ndarray:
            return pick.distance(at_rms_of(audio, note))

        return at_target_level if leveled else pick.distance

    def in_tune(self, guess: np.ndarray, audio: np.ndarray, note: np.ndarray, key: float, pitch: Pitch,
                target: SpectralTarget | None = None, length: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The answer ``guess`` (k,) and its render ``audio`` if the render sounds at the target's
        ``pitch`` (within :data:`IN_TUNE_SEMITONES`); else its first repair that does
        (:func:`~deepdiva.core.tuning.pitch_repairs`: no vibrato or pitch modulation, the octave
        moved), the closest one by :meth:`closest`'s distance when the ``target``'s spectra are
        given, and the answer as it was when no repair sounds in tune either. Targets without a
        clear pitch (or a model that does not follow pitch) keep their answer."""
        return self._tuned(guess, audio, note, key, pitch, target, length) or (guess, audio)

    def _tuned(self, guess: np.ndarray, audio: np.ndarray, note: np.ndarray, key: float, pitch: Pitch,
               target: SpectralTarget | None = None, length: float | None = None,
               offs: list[float | None] | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`in_tune`, but None when neither the answer nor any of its repairs sounds in tune
        (``offs``: the render's :meth:`off_pitch`, if known)."""
        if not self.keeps_pitch(pitch):
            return guess, audio
        offs = self.off_pitch(audio[None, :], pitch) if offs is None else offs
        if self._sound_in_tune(audio[None, :], pitch, offs)[0]:
            return guess, audio
        repairs = pitch_repairs(self.parameter_set, guess, offs[0])
        if not len(repairs):
            return None
        if target is None:
            renders, order = self.renderer.render(repairs, key, length), np.arange(len(repairs))
        else:
            renders, distances = self._choice_scorer(note, key, target=target, length=length)(repairs)
            order = np.argsort(distances, kind="stable")
        tuned = self._sound_in_tune(renders, pitch)
        return next(((repairs[i], renders[i]) for i in order if tuned[i]), None)

    def _chosen_in_tune(self, options: np.ndarray, note: np.ndarray, key: float, pitch: Pitch,
                        target: SpectralTarget, length: float | None = None
                        ) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray] | None]:
        """What a scored match chooses among, with their renders: of ``options`` (h, k), in the order
        of :meth:`closest`'s distance, the first :data:`FULL_CHOICES` of the closest
        :data:`TUNE_TRIES` that sound at the target's ``pitch`` as they are or repaired
        (:meth:`in_tune`); the closest as it is when none does. The match keeps the one closest by
        the full distance once finished (:meth:`_finished`). Second, the closest option when it was
        passed over because its render is heard without a pitch (None when it was not), which the
        match finishes too and keeps if that is closer by both measures (:meth:`_heard_closer`).
        A preset that plays 2 semitones sharp is a wrong answer however close its spectrum (a G1
        bass took a bank patch that did: 1.06 against the network's in-tune 1.10)."""
        audio, distances = self._choice_scorer(note, key, target=target, length=length)(options)
        order = self._audible_first(np.argsort(distances, kind="stable"), options, audio, note)
        found: list[tuple[np.ndarray, np.ndarray]] = []
        unpitched = None
        for rank, i in enumerate(order[:TUNE_TRIES]):
            offs = self.off_pitch(audio[i][None, :], pitch) if rank == 0 and self.keeps_pitch(pitch) else None
            tuned = self._tuned(options[i], audio[i], note, key, pitch, target, length, offs)
            if tuned is None and offs is not None and offs[0] is None:
                unpitched = (options[i], audio[i])  # passed over for a render heard without a pitch
            if tuned is not None and not any(np.array_equal(tuned[0], f[0]) for f in found):
                found.append(tuned)
                if len(found) == FULL_CHOICES:
                    break
        return (found, unpitched) if found else ([(options[order[0]], audio[order[0]])], None)

    def _heard_closer(self, audio: np.ndarray, distance: float, than_audio: np.ndarray, than_distance: float,
                      target: SpectralTarget) -> bool:
        """Whether a render ``audio`` at the full ``distance`` is closer to the ``target`` than
        another by that distance *and* by spectral convergence (linear magnitudes, which a noisy,
        inharmonic answer does not win): the test an answer whose render is heard without a pitch
        passes to replace one in tune. Such a render (no clear period in its first 0.6 s: a slow
        attack, detuned or modulated oscillators) is not heard *off* the target's pitch, and some
        targets hold their pitch only in their first frames; passed over outright, a search's best
        was lost for it on 3 of 30 held-out renders (0.59 against 0.88 written, SC 0.37 against
        0.67) - but that target held 99 % of its energy under 20 Hz, and the result, closer by both
        measures, was that thump alone with nothing heard above it: the convergence counts only
        what is heard (from :data:`HEARD_FROM_HZ`). ``scripts/experiments/unpitched_reading.py``."""
        if not distance < than_distance:
            return False
        convergence = spectral_convergence(np.stack([audio, than_audio]), target.target[:1],
                                           lowest_hz=HEARD_FROM_HZ, sample_rate=self.sample_rate)
        return bool(convergence[0] < convergence[1])

    def _finished(self, guess: np.ndarray, audio: np.ndarray, note: np.ndarray, key: float, pitch: Pitch,
                  target: SpectralTarget, length: float | None, envelope: AmpEnvelope | None
                  ) -> tuple[np.ndarray, np.ndarray, float, float]:
        """One of a scored match's choices ``guess`` (its render ``audio``) as the match would write
        it: with a filter sweep if one is closer (:meth:`_swept`), at the level that suits the target
        (:meth:`_leveled`), as a detuned pair if that, leveled, is closer (:meth:`_paired`). Returns
        the patch, its render, its full distance and the semitones it is played off ``key``."""
        guess, audio = self._swept(guess, audio, note, key, pitch, target, length, envelope)
        guess, leveled_audio, distance = self._leveled(guess, audio, note, key, target, True, length)
        assert leveled_audio is not None and distance is not None  # scored: rendered and measured
        paired = self._paired(guess, leveled_audio, note, key, pitch, target, length)
        if paired is not None:
            pair, pair_render, shift = paired
            pair, pair_audio, pair_distance = self._leveled(pair, pair_render, note, key + shift, target, True, length)
            if pair_audio is not None and pair_distance is not None and pair_distance < distance:
                return pair, pair_audio, pair_distance, shift
        return guess, leveled_audio, distance, 0.0

    def _searched_in_tune(self, found: list[tuple[np.ndarray, float]], wanted: int, start: np.ndarray,
                          start_distance: float, key: float, pitch: Pitch, target: SpectralTarget,
                          length: float | None = None) -> tuple[list[tuple[np.ndarray, float]], np.ndarray]:
        """Of a search's distinct results ``found`` (params, distance), best first, up to ``wanted``
        that sound at ``pitch`` and their renders. The answer (the first) is the first result in
        tune no further than the search's ``start``; else, when the start sounds at the pitch, the
        closest of the start and the best result's repairs that does (:meth:`_repaired_or_start`:
        never further than the start); else the first result in tune. The best result itself if it
        is heard without a pitch and closer than that answer by both measures (:meth:`_heard_closer`).
        The alternatives follow, each as it is or its closest repair that sounds at the pitch,
        closest first. When nothing does,
        all of them as they are. The search holds the tuning and pitch modulation, but muting the
        lower oscillator, say, still moves the pitch heard."""
        heard: dict[int, tuple[np.ndarray, float | None]] = {}  # render and semitones off, once each

        def hear(i: int) -> tuple[np.ndarray, float | None]:
            if i not in heard:
                audio = self.renderer.render(found[i][0][None, :], key, length)
                heard[i] = audio[0], self.off_pitch(audio, pitch)[0]
            return heard[i]

        def first_in_tune(rows: range) -> int | None:
            return next((i for i in rows if _within_tune(hear(i)[1])), None)

        closer = next((i for i, (_, d) in enumerate(found) if d > start_distance), len(found))
        first = first_in_tune(range(closer))  # the best is never further than the start: closer >= 1
        answer = None if first is None else (found[first], hear(first)[0])
        if answer is None:
            answer = self._repaired_or_start(found[0][0], hear(0)[1], start, key, pitch, target, length)
            first = 0  # the best result's repairs answered (or the start did): not an alternative
        if answer is None:  # the start sounds off the pitch too
            first = first_in_tune(range(len(found)))
            if first is None:
                return found, np.stack([hear(i)[0] for i in range(len(found))])
            answer = (found[first], hear(first)[0])
        if (hear(0)[1] is None
                and self._heard_closer(hear(0)[0], found[0][1], answer[1], answer[0][1], target)):
            answer, first = (found[0], hear(0)[0]), 0  # the best, heard without a pitch, closer by both measures
        alternatives: list[tuple[tuple[np.ndarray, float], np.ndarray]] = []
        for i, (x, d) in enumerate(found):
            if len(alternatives) + 1 >= wanted:
                break
            if i == first:
                continue
            audio, off = hear(i)
            if _within_tune(off):
                alternatives.append(((x, d), audio))
            else:
                repairs = pitch_repairs(self.parameter_set, x, off)
                closest = self._closest_in_tune(repairs, key, pitch, target, length=length)
                if closest is not None:
                    alternatives.append(((repairs[closest[0]], closest[1]), closest[2]))
        alternatives.sort(key=lambda alternative: alternative[0][1])
        kept = [answer, *alternatives]
        return [entry for entry, _ in kept], np.stack([audio for _, audio in kept])

    def _closest_in_tune(self, options: np.ndarray, key: float, pitch: Pitch, target: SpectralTarget,
                         required: int | None = None, length: float | None = None
                         ) -> tuple[int, float, np.ndarray] | None:
        """Of ``options`` (n, k) the closest (by the full distance) that sounds at ``pitch``: its row,
        distance and render; None when none does, or the ``required`` row does not."""
        if not len(options):
            return None
        renders = self.renderer.render(options, key, length)
        tuned = np.flatnonzero(self._sound_in_tune(renders, pitch))
        if not tuned.size or (required is not None and required not in tuned):
            return None
        distances = target.distance(renders[tuned])
        i = int(tuned[int(np.argmin(distances))])
        return i, float(distances.min()), renders[i]

    def _repaired_or_start(self, best: np.ndarray, off: float | None, start: np.ndarray, key: float, pitch: Pitch,
                           target: SpectralTarget, length: float | None = None
                           ) -> tuple[tuple[np.ndarray, float], np.ndarray] | None:
        """The closest of ``start`` and the repairs of a search's ``best`` result (``off`` semitones
        from ``pitch``) that sounds at the pitch, with its render; None when the start does not (so
        the answer is never further than a start in tune)."""
        options = np.concatenate([pitch_repairs(self.parameter_set, best, off), start[None, :]])
        closest = self._closest_in_tune(options, key, pitch, target, required=len(options) - 1, length=length)
        return None if closest is None else ((options[closest[0]], closest[1]), closest[2])

    def _swept(self, guess: np.ndarray, audio: np.ndarray, note: np.ndarray, key: float, pitch: Pitch,
               target: SpectralTarget, length: float | None, envelope: AmpEnvelope | None
               ) -> tuple[np.ndarray, np.ndarray]:
        """A scored match's choice ``guess`` (and its render ``audio``), or for a note that dies away
        the closest of its :func:`~deepdiva.core.plain.filter_sweeps` (its low-pass closing as the
        note fades) when that sounds closer by :meth:`closest`'s distance and in tune."""
        if envelope is None or not envelope.dies_away or envelope.decay is None:
            return guess, audio
        variants = filter_sweeps(self.parameter_set, guess, envelope.decay)
        if not len(variants):
            return guess, audio
        renders, distances = self._choice_scorer(note, key, target=target, length=length)(variants)
        best = self._closer_in_tune(renders, distances, audio, note, pitch, target)
        return (guess, audio) if best is None else (variants[best], renders[best])

    def _paired(self, guess: np.ndarray, audio: np.ndarray, note: np.ndarray, key: float, pitch: Pitch,
                target: SpectralTarget, length: float | None) -> tuple[np.ndarray, np.ndarray, float] | None:
        """For a clearly pitched target or a chord, the closest of a scored match's choice ``guess``'s
        :func:`~deepdiva.core.plain.detuned_pairs` (two oscillators a few cents apart, centred on the
        note) that sounds closer than its render ``audio`` by :meth:`closest`'s distance and in
        tune: the pair, its render and the semitones it is played off ``key``; else None. (Chords,
        pads mostly, side by side on 89 read as chords: 35 closer with the pairs, none further.)"""
        if not (self.keeps_pitch(pitch) or self.chord is not None):
            return None
        variants, shifts = detuned_pairs(self.parameter_set, guess)
        if not len(variants):
            return None
        renders, distances = self._choice_scorer(note, key + shifts, target=target, length=length)(variants)
        best = self._closer_in_tune(renders, distances, audio, note, pitch, target)
        return None if best is None else (variants[best], renders[best], float(shifts[best]))

    def _closer_in_tune(self, renders: np.ndarray, distances: np.ndarray, audio: np.ndarray, note: np.ndarray,
                        pitch: Pitch, target: SpectralTarget) -> int | None:
        """Of variants' ``renders`` and their choice ``distances``, the closest that is closer than
        the choice's render ``audio`` and sounds in tune (any, for a target without a clear pitch)."""
        chosen = float(self._choice_distance(note, target=target)(audio[None, :])[0])  # its render is at hand
        for i in np.argsort(distances, kind="stable"):
            if not distances[i] < chosen:
                break
            if not self.keeps_pitch(pitch) or self._sound_in_tune(renders[i][None, :], pitch)[0]:
                return int(i)
        return None

    def screen(self, target: SpectralTarget, key: float, length: float | None = None) -> Evaluate:
        """What steers the first seconds of a search for ``target`` played at ``key`` (see
        :mod:`~deepdiva.core.refine`): the candidates' renders at one resolution of the distance."""
        screen = target.at_sizes(SCREEN_FFT_SIZES, SCREEN_HOP_RATIO)
        return evaluator(self.renderer, screen.distance, self._executor, self.threads, key, length)

    def keeps_pitch(self, pitch: Pitch) -> bool:
        """Whether a target of ``pitch`` has a pitch its answer must sound at: clearly pitched (and
        a model that plays answers at the detected key). Not a chord: its renders read at the
        notes' common period, as the target does, which no single key's pitch is."""
        return self.chord is None and self.follows_pitch and pitch.pitched and pitch.clarity >= PITCHED_CLARITY

    def chord_in(self, note: np.ndarray, pitch: Pitch) -> Chord | None:
        """The chord heard in ``note`` (:func:`~deepdiva.core.chord.detect_chord`), read with its
        ``pitch``; None for a single note, or for a model that plays every answer at one key."""
        return detect_chord(note, self.sample_rate, pitch) if self.follows_pitch else None

    def _playing(self, chord: Chord) -> Matcher:
        """This matcher (the same network, bank and threads) rendering every patch as ``chord``."""
        chorded = copy.copy(self)
        chorded.renderer = ChordRenderer(self.renderer, chord.intervals)
        chorded.chord = chord
        return chorded

    def _sound_in_tune(self, renders: np.ndarray, pitch: Pitch, offs: list[float | None] | None = None) -> np.ndarray:
        """Whether each render (n, samples) sounds within :data:`IN_TUNE_SEMITONES` of ``pitch``
        (``offs``: their :meth:`off_pitch`, if known)."""
        offs = self.off_pitch(renders, pitch) if offs is None else offs
        return np.array([_within_tune(o) for o in offs], dtype=bool)

    def off_pitch(self, renders: np.ndarray, pitch: Pitch) -> list[float | None]:
        """Semitones each render (n, samples) sounds from ``pitch``; None where it has no pitch."""
        return [p.midi_float - pitch.midi_float if p.pitched else None for p in self.detect(renders)]

    def candidates(self, note: np.ndarray, pitch: Pitch, envelope: AmpEnvelope | None = None) -> np.ndarray:
        """What a scored match chooses from (h', k): every answer of the network (:meth:`hypotheses`),
        then each again with the amp envelope measured in ``note`` (:mod:`~deepdiva.core.envelope`;
        not when nothing was measured or the synth has no amp envelope roles), then with a bank
        (:meth:`warm_starts`) its patches nearest to ``note``. ``envelope``: ``note``'s, if measured
        already (here and below: a match measures it once)."""
        answers = self._also_fitted(self.hypotheses(note, pitch), self._measured(note, envelope))
        nearest = self.warm_starts(note, self.played_at(pitch))
        return answers if nearest is None else np.concatenate([answers, nearest])

    def note_length(self, note: np.ndarray, envelope: AmpEnvelope | None = None) -> float | None:
        """Seconds from the onset of ``note`` to its note-off (:func:`~deepdiva.core.envelope.note_off`),
        the time every render of its match lets go of the key (so a held organ note recorded for
        0.7 s is compared with answers let go at 0.7 s, not held for the synth's whole note); None
        (the synth's note length) when it was held through it (let go later, or never) or simply dies away."""
        envelope = self._measured(note, envelope)
        off = None if envelope is None else envelope.note_off
        if off is None or off >= self.settings.note_length:  # held through every render
            return None
        return float(max(off, 0.05))

    def _lengthened(self, params: np.ndarray, audio: np.ndarray, alternatives: tuple[Alternative, ...], key: float,
                    note_off: float | None, more: int) -> tuple[np.ndarray, tuple[Alternative, ...]]:
        """The previews of a match (its ``audio`` and its ``alternatives``') rendered ``more`` samples
        longer, as long as the take, let go at ``note_off`` seconds (None: held to their end), so a
        preview is heard released as the take was; as they were when the renderer cannot render
        longer (a plugin host). The first :attr:`seconds` are the renders the match compared."""
        seconds = (audio.size + more) / self.sample_rate
        longer = self.renderer.lengthened(seconds)
        if longer is None:
            return audio, alternatives
        rows = np.stack([params, *(a.params for a in alternatives)])
        renders = longer.render(rows, key, seconds if note_off is None else note_off)
        return renders[0], tuple(replace(a, audio=r) for a, r in zip(alternatives, renders[1:], strict=True))

    def plain_options(self, note: np.ndarray, key: float, envelope: AmpEnvelope | None = None) -> np.ndarray:
        """The plain patches (m', k) a scored match chooses from too, for ``note`` played at MIDI
        ``key`` (:func:`~deepdiva.core.plain.plain_patches`: the base preset first), each again with
        the amp envelope measured in ``note`` when one was."""
        return self._also_fitted(plain_patches(self.parameter_set, key), self._measured(note, envelope))

    def unscored(self, note: np.ndarray, pitch: Pitch, envelope: AmpEnvelope | None = None) -> np.ndarray:
        """What an unscored match answers (k,): the network's most confident answer (as :meth:`predict`
        gives it), with the amp envelope measured in ``note`` if the note dies away or is let go (a
        held patch is far from a pluck, whatever else it gets right: :meth:`enveloped_unscored`)."""
        return self.unscored_options(note, pitch, envelope)[0]

    def unscored_options(self, note: np.ndarray, pitch: Pitch, envelope: AmpEnvelope | None = None) -> np.ndarray:
        """Every answer of the network (h, k), most confident first (:meth:`unscored`), each played as
        :meth:`unscored` plays it (:meth:`enveloped_unscored`): one network pass gives all of them, and
        the rest are what an unscored match chooses from when the first is mute (h renders, only
        then; the pass costs what the most confident answer alone costs). On the 59 of 400 held-out builtin notes where
        it was, the closest of them that is heard was as close as the mute answer (median MR-STFT
        2.28 both, spectral convergence 1.00 both); the next most confident one was further (2.40),
        and with the plain patches beside them too (spectral convergence 1.16).
        ``scripts/experiments/silent_answers.py``."""
        return self.enveloped_unscored(self.hypotheses(note, pitch), self._measured(note, envelope))

    def enveloped_unscored(self, answers: np.ndarray, envelope: AmpEnvelope | None) -> np.ndarray:
        """``answers`` (h, k) as an unscored match plays them: with the measured amp ``envelope``
        written in when the note dies away or was let go within the render (full sustain, its
        release: :func:`~deepdiva.core.envelope.with_envelope`), else as they are. The network reads
        neither well; of a note held to the end, or falling to a level, its own reading was as close
        (``scripts/experiments/unscored_envelope.py``, against the measured envelope: of 778
        development GM notes the 483 let go came closer 389 / further 94; held, with its attack, the
        synth's renders 39 / 50 and the chords 6 / 15)."""
        if envelope is None or not (envelope.dies_away or envelope.release is not None):
            return answers
        fitted = with_envelope(self.parameter_set, answers, envelope)
        return answers if fitted is None else fitted

    def finished_unscored(self, guess: np.ndarray, note: np.ndarray, key: float, pitch: Pitch,
                          length: float | None = None, render: bool = True,
                          fallbacks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """What an unscored match makes of an answer ``guess`` (k,) for ``note``: rendered at MIDI
        ``key`` (let go after ``length`` s), if that is :func:`~deepdiva.core.level.mute` the closest
        of ``fallbacks`` (h', k) that is not (:meth:`closest`; e.g. :meth:`unscored_options`),
        repaired if it sounds off the ``pitch`` (:meth:`in_tune`), brought to the target's RMS level (:mod:`~deepdiva.core.level`) and, if ``render``, rendered
        again: the answer and its render (None when not rendered again after a level change)."""
        audio = self.renderer.render(guess[None, :], key, length)[0]
        if fallbacks is not None and mute(self.parameter_set, guess[None, :], audio[None, :], note)[0]:
            closest, rendered = self.closest(fallbacks, note, key, length=length)
            if not mute(self.parameter_set, closest[None, :], rendered[None, :], note)[0]:
                guess, audio = closest, rendered
        guess, audio = self.in_tune(guess, audio, note, key, pitch, None, length)
        guess, leveled, _ = self._leveled(guess, audio, note, key, None, render, length)
        return guess, leveled

    def _measured(self, note: np.ndarray, envelope: AmpEnvelope | None) -> AmpEnvelope | None:
        """``envelope`` if given, else the amp envelope measured in ``note``."""
        return amp_envelope(note, self.sample_rate) if envelope is None else envelope

    def _also_fitted(self, options: np.ndarray, envelope: AmpEnvelope | None) -> np.ndarray:
        """``options`` (h, k), then each again with ``envelope`` written in (none without one, or
        when the synth has no amp envelope roles)."""
        fitted = None if envelope is None else with_envelope(self.parameter_set, options, envelope)
        return options if fitted is None else np.concatenate([options, fitted])

    def warm_starts(self, note: np.ndarray, played: Pitch) -> np.ndarray | None:
        """The bank's patches nearest to ``note`` among those heard within 3 semitones of the key it
        is played at (unpitched among the unpitched), or None without a bank or when none is: a
        patch heard further off would be played transposed further from where it was heard (the
        bank's keys span 36-84)."""
        if not self.use_bank:
            return None
        if self.bank is None:
            self.bank = cached_bank(self.renderer, say=self._say, executor=self._executor)
        query = embed(note[None, :], self.model.card.feature_config)[0]
        rows = self.bank.nearest(query, WARM_STARTS, near=played.midi_float if played.pitched else float("nan"),
                                 strict=True)
        # a compact bank holds float16 values: snapped to the synth's steps again
        return self.parameter_set.quantise(self.bank.params[rows]) if rows.size else None

    @staticmethod
    def _warm_starts(answers: np.ndarray | None) -> np.ndarray | None:
        """Patches a search scores beside its start: what the choice chose from (:meth:`candidates`:
        the network's answers and the bank's nearest), or nothing when that was the start alone."""
        return answers if answers is not None and len(answers) > 1 else None

    def _leveled(self, guess: np.ndarray, audio: np.ndarray, note: np.ndarray, key: float,
                 target: SpectralTarget | None, render: bool = True, length: float | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None, float | None]:
        """The answer at the level that suits ``note`` best (:mod:`~deepdiva.core.level`), its
        render and its distance to the ``target``; the unchanged answer if the re-render is not
        closer. Unscored (no ``target``), the answer is simply brought to the target's RMS level,
        and rendered again only if ``render`` (else its render is None)."""
        if target is None:
            leveled = level_matched(self.parameter_set, guess, audio, note)
            if not render:
                return leveled, None, None
            if np.array_equal(leveled, guess):
                return guess, audio, None
            return leveled, self.renderer.render(leveled[None, :], key, length)[0], None
        gains, distances = scored_gains(audio, note, target.distance_at_gains)  # gains[0] == 1: as it is
        leveled = with_gain(self.parameter_set, guess, float(gains[int(np.argmin(distances))]))
        before = float(distances[0])
        if np.array_equal(leveled, guess):
            return guess, audio, before
        again = self.renderer.render(leveled[None, :], key, length)[0]
        after = float(target.distance(again[None, :])[0])
        return (leveled, again, after) if after < before else (guess, audio, before)

    def answer(self, notes: np.ndarray) -> tuple[np.ndarray, list[Pitch], np.ndarray]:
        """The network's answers for a batch of notes (n, samples): parameters (n, k), the pitches
        detected and the MIDI keys (with cents) the answers are played at (n,)."""
        pitches = self.detect(notes)
        keys = np.array([self.played_at(p).midi_float for p in pitches])
        return self.predict(notes, pitches), pitches, keys

    def match(self, note: np.ndarray, refine_seconds: float = 0.0, seed: int = 0, candidates: int = 1,
              score: bool = True, render: bool = True, lead_in: np.ndarray | None = None,
              after: np.ndarray | None = None) -> Match:
        """Match one prepared note (``core.audio.prepare_note``); refine for up to ``refine_seconds``.

        ``candidates`` > 1 (with refinement) also returns up to ``candidates - 1`` alternatives.
        ``lead_in``: what the take held before the note (``core.audio.prepare_take``), where its
        recording's noise floor may be read when the note does not end in it
        (:func:`~deepdiva.core.envelope.noise_floor`: every distance of the match looks through it).
        ``after``: what the take held after the note, where a note held through every render may
        be heard let go: answers that hold at full sustain then get the release heard
        (:func:`~deepdiva.core.envelope.with_release`; no render hears it, so none changes).
        Network only, ``score=False`` skips measuring the answer against the target (distances
        None), and with ``render=False`` too the answer's render is not returned (``audio`` None).
        The answer's oscillator volumes are then set to the level that suits the target best
        (:mod:`~deepdiva.core.level`): scored, the best of a few gains (one more render, kept only
        if it is closer); unscored, the target's RMS level, so the preset written does not
        depend on whether its render is kept (one render to measure the answer's level).
        Scored or refined, every answer of the network (a ``cnn3h`` model has 8), each again
        with the amp envelope measured in the target
        (:mod:`~deepdiva.core.envelope`), with a bank its patches nearest to the target
        (:meth:`warm_starts`) and the plain patches (:meth:`plain_options`: the base preset with
        each wave and a few cutoffs, nearer to simple sounds than any mix of medians) are rendered
        and the closest few that sound in tune are finished (for a note that dies away, with its
        low-pass closing as the note fades: :meth:`_swept`; leveled; for a clearly pitched one, as a
        detuned pair played a few cents flat when that is closer: :meth:`_paired`) and the closest
        by the full distance is kept (:meth:`_finished`), the network's and the
        bank's others join a search's warm starts; unscored, the network's
        most confident answer, with the measured envelope if the target dies away or is let go
        (:meth:`enveloped_unscored`). Neither writes an
        answer that is :func:`~deepdiva.core.level.mute` (no volume setting makes it heard at the
        target's level) while another is not: unscored, the closest of its other answers that is
        not. A target that holds a chord (:func:`~deepdiva.core.chord.detect_chord`: three or four notes) is matched
        with every render playing that chord, the answer's single note played from the chord's
        lowest note (a pad's sound, to play as that chord), without the in-tune rules that follow.
        Either way, for a clearly pitched target the answer must sound at the target's pitch (:meth:`in_tune`:
        otherwise it loses its vibrato and pitch modulation or moves an octave; scored, the
        closest option that does, :meth:`_chosen_in_tune`). A refinement
        always scores and renders, starting from that answer; for a pitched target it leaves the
        tuning and pitch modulation as they are (:func:`~deepdiva.core.tuning.pitch_columns`)
        and keeps a result that sounds off the pitch only if its start did too. Every render
        plays the key of :meth:`played_at` and lets go of it where the target was let go
        (:meth:`note_length`), so the answers are compared with the target as it was played.
        """
        began = time.perf_counter()
        pitch = self.detect(note[None, :])[0]
        chord = self.chord_in(note, pitch)
        if chord is not None:  # every render plays the chord; the preset is played from its lowest note
            root = Pitch.from_hz(chord.root_hz, pitch.clarity)
            chorded = self._playing(chord)
            result = chorded._match(note, root, began, refine_seconds, seed, candidates, score, render, lead_in,
                                    after)
            self.bank = chorded.bank  # a bank loaded on its first use stays loaded
            return result
        return self._match(note, pitch, began, refine_seconds, seed, candidates, score, render, lead_in, after)

    def _match(self, note: np.ndarray, pitch: Pitch, began: float, refine_seconds: float, seed: int,
               candidates: int, score: bool, render: bool, lead_in: np.ndarray | None = None,
               after: np.ndarray | None = None) -> Match:
        """:meth:`match` for a note of ``pitch`` (a chord's: its lowest note), begun at ``began``."""
        played = self.played_at(pitch)
        key = played.midi_float
        noise = noise_floor(note, self.sample_rate, lead_in)  # the take's hiss, if it can be told
        envelope = amp_envelope(note, self.sample_rate, noise, after)  # measured once for every step below
        length = self.note_length(note, envelope)
        late = None  # a note-off after every render's end: no render hears it, the preset's release will
        if envelope is not None and length is None and envelope.release is not None:
            late, envelope = envelope, replace(envelope, note_off=None, release=None)
        answers = self.candidates(note, pitch, envelope) if score or refine_seconds > 0 else None
        # unscored: the network's answers, most confident first; the rest stand in if that one is mute
        options = self.unscored_options(note, pitch, envelope) if answers is None else answers
        guess = options[0]
        alternatives: tuple[Alternative, ...] = ()
        distance: float | None = None
        network_distance: float | None = None
        audio = None
        target = SpectralTarget(note, noise=noise) if refine_seconds > 0 or score else None  # spectra cached once
        if answers is not None:  # scored: the answer (network, bank or plain patch) that sounds closest, in tune
            assert target is not None
            chosen, unpitched = self._chosen_in_tune(np.concatenate([answers, self.plain_options(note, key, envelope)]),
                                                     note, key, pitch, target, length)
            finished = [self._finished(g, a, note, key, pitch, target, length, envelope) for g, a in chosen]
            guess, audio, network_distance, shift = min(finished, key=lambda f: f[2])
            if unpitched is not None:  # closest of all, but heard without a pitch: only if closer by both measures
                other = self._finished(*unpitched, note, key, pitch, target, length, envelope)
                if self._heard_closer(other[1], other[2], audio, network_distance, target):
                    guess, audio, network_distance, shift = other
            if shift:  # a detuned pair is played off the key, centred on the note
                played = replace(played, cents=round(played.cents + 100.0 * shift, FINE_TUNE_DECIMALS))
                key = played.midi_float
        elif render or volume_columns(self.parameter_set):  # unscored: rendered to be leveled
            guess, audio = self.finished_unscored(guess, note, key, pitch, length, render,
                                                  fallbacks=options)
        if refine_seconds > 0:
            assert target is not None
            tuned = self.keeps_pitch(pitch)
            # asked for alternatives, the search spreads wider: from steps of SIGMA it seldom leaves
            # its start's neighbourhood far enough for a distinct one (MIN_DIFFERENCE)
            result = refine(self.renderer, target.distance, guess, refine_seconds, seed=seed,
                            sigma=FAR_SIGMA if candidates > 1 else SIGMA,
                            keep=max(candidates, PITCH_CHOICES) if tuned else candidates, executor=self._executor,
                            blocks=self.threads, note=key, warm_starts=self._warm_starts(answers),
                            fixed=pitch_columns(self.parameter_set) if tuned else None,
                            screen=self.screen(target, key, length), note_length=length)
            network_distance, evaluations = result.start_distance, result.evaluations
            found = list(result.alternatives) or [(result.params, result.distance)]  # best first
            if tuned:
                found, renders = self._searched_in_tune(found, candidates, guess, result.start_distance, key,
                                                        pitch, target, length)
            else:
                renders = self.renderer.render(np.stack([x for x, _ in found]), key, length)
            (params, distance), audio = found[0], renders[0]
            alternatives = tuple(Alternative(x, d, a) for (x, d), a in
                                 zip(found[1:candidates], renders[1:candidates], strict=True))
        else:
            params, evaluations = guess, 0
            distance = network_distance
        release = None
        if late is not None and late.release is not None:
            release = late.release if releases_at_decay(self.parameter_set, params)[0] else None
            params = with_release(self.parameter_set, params[None, :], late.release)[0]
            alternatives = tuple(replace(a, params=with_release(self.parameter_set, a.params[None, :],
                                                                 late.release)[0]) for a in alternatives)
        if render and audio is not None and after is not None and after.size:  # previews as long as the take
            off = length if length is not None else None if late is None else late.note_off
            audio, alternatives = self._lengthened(params, audio, alternatives, key, off, after.size)
        native = self.parameter_set.from_normalised(params[None, :])[0]
        return Match(params, native, distance, network_distance, audio, evaluations,
                     time.perf_counter() - began, alternatives, pitch, played, length, self.chord,
                     None if target is None else target.noise_dbfs(), None if late is None else late.note_off, release)
