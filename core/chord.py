"""Chords: the keys of a target that holds three or more notes at once (a pad, a piano chord).

The synth plays one note per key, and a chord is several keys: the preset a musician wants for a
pad chord is one whose single note has the pad's sound, played as that chord. :mod:`.pitch` reads
a chord at its notes' common period (a C major triad, 4:5:6, as C1, two octaves below its root; a
minor one mostly as "unpitched"), which no single key plays. So a match first looks for the
notes themselves (:func:`detect_chord`) and, when it finds a chord, renders every answer as that
chord (:class:`ChordRenderer`) and plays the preset at its lowest note.

The notes come from the partials of the note's first :data:`WINDOW_SECONDS`, by iterative
estimation and cancellation (Klapuri, 2003, much simplified): of the fundamentals the loudest
partials not yet explained suggest, the one whose harmonics hold the most of those partials is a
note, provided its fundamental and one more harmonic are among them; its harmonics are taken out,
and again, while a note still holds :data:`STOP_SHARE` of the first one's weight. Harmonic k
weighs 1/sqrt(k): with 1/k a note lost to its octave above, which collects its even harmonics
(strings C4 E4 G4 read as C4 G4 E5), and a sub-octave cannot win, having no fundamental of its own.

A **chord** is :data:`MIN_NOTES` to :data:`MAX_CHORD_NOTES` such notes of different pitch classes
(a pitch class found again is an ensemble's detuned voice or an octave's remains), each on a key
(within :data:`KEY_CENTS` of the lowest note's tuning), no two a semitone apart, spanning at most
:data:`MAX_SPAN`, their harmonics holding :data:`EXPLAINED_SHARE` of the partials' power (noise and
wildly modulated patches hold less); and not when the pitch reads clearly at one of the notes, or
below them with a partial of its own (:func:`_one_note`). Two notes are no chord: a synth note with
its second oscillator a fifth or a third up sounds exactly like two keys, and the match plays that
as one key with an interval. Chosen on ``benchmarks/dev_sets.py --sets chords`` (51 of 54 chords
read, none of the fifths) and checked on single notes (``--sets gm-wide``: 1 of 778 read as a
chord, a glockenspiel at E2; 9 of 2,000 held-out builtin renders); README, *Chords*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pitch import Pitch, Spectrum, hz_to_midi, midi_to_hz, note_name
from .render import Renderer

WINDOW_SECONDS = 0.7  # about the first 0.7 s (a power of 2 samples): partials 5 Hz apart (E2-F2) stand apart
SPECTRUM_PAD = 2  # zero-padded to twice its length
LOWEST_HZ, HIGHEST_HZ = 60.0, 2100.0  # a chord's notes lie between B1 and C7
PARTIALS_MIN_HZ, PARTIALS_MAX_HZ = 26.0, 5000.0  # partials between these are weighed (from A0: a note's own)
FLOOR_DB = 50.0  # partials within 50 dB of the strongest count ...
MAX_PARTIALS = 120  # ... the strongest 120 of them (an ensemble's detuned voices make hundreds)
PROMINENCE_DB = 10.0  # ... when they stand 10 dB above the spectrum around them
WEIGHT_POWER = 0.5  # harmonic k weighs 1 / k ** WEIGHT_POWER
CANDIDATE_PARTIALS = 24  # a note's fundamental, 2nd or 3rd harmonic is among the loudest partials left
HARMONICS = 12  # a note's harmonics weighed (below PARTIALS_MAX_HZ)
REACH = 0.015  # a partial belongs to a harmonic within 1.5 % (26 c) of it (and 3 Hz)
STOP_SHARE = 0.15  # a further note holds at least this share of the first note's weight
MAX_NOTES = 6  # found at most; a chord is MIN_NOTES to MAX_CHORD_NOTES of them
MIN_NOTES, MAX_CHORD_NOTES = 3, 4
EXPLAINED_SHARE = 0.85  # of the partials' power, on the chord notes' harmonics (noise: less)
MAX_SPAN = 24  # semitones from the lowest note to the highest: two octaves
CLARITY = 0.8  # a pitch this clear (pitch.CLARITY) tells a single note from a chord
OWN_DB = 40.0  # a pitch below the chord with a partial this strong is a single note's
KEY_CENTS = 30.0  # every note within 30 c of a key of the lowest note's tuning


@dataclass(frozen=True)
class Chord:
    """A chord: the lowest note's fundamental (Hz) and every note's key above it, in semitones."""

    root_hz: float
    intervals: tuple[int, ...]  # (0, 4, 7) for a major triad

    @property
    def root_midi(self) -> float:
        """The lowest note on the MIDI scale (a fraction is cents)."""
        return float(hz_to_midi(self.root_hz))

    @property
    def keys(self) -> np.ndarray:
        """Every note on the MIDI scale, lowest first (a fraction is the lowest note's cents)."""
        return self.root_midi + np.array(self.intervals, dtype=np.float64)

    def names(self) -> list[str]:
        """The keys to play, ``["C3", "E3", "G3"]``."""
        root = int(round(self.root_midi))
        return [note_name(root + i) for i in self.intervals]

    def describe(self) -> str:
        return " ".join(self.names())


def detect_chord(note: np.ndarray, sample_rate: int, pitch: Pitch | None = None) -> Chord | None:
    """The chord ``note`` (mono, from its onset) holds, or None for a single note, an interval of
    two notes, or a sound without clear partials (see the module's rule). ``pitch``: the note's
    pitch (:func:`~deepdiva.core.pitch.detect_pitches`), if read already."""
    partials_hz, amplitude = _partials(note, sample_rate)
    chord = _as_chord(_notes(partials_hz, amplitude))
    if chord is None or _explained(chord, partials_hz, amplitude) < EXPLAINED_SHARE:
        return None
    if pitch is not None and pitch.hz is not None and pitch.clarity >= CLARITY and \
            _one_note(chord, pitch.hz, partials_hz, amplitude):
        return None
    return chord


def _notes(partials_hz: np.ndarray, amplitude: np.ndarray) -> list[float]:
    """The fundamentals (Hz) found by estimation and cancellation (see the module), strongest first."""
    unexplained = np.ones(partials_hz.size, dtype=bool)
    notes: list[float] = []
    first = 0.0
    for _ in range(MAX_NOTES):
        found = _strongest_note(partials_hz, amplitude, unexplained)
        if found is None:
            break
        hz, weight, members = found
        if notes and weight < STOP_SHARE * first:
            break
        first = first or weight
        unexplained[members] = False
        notes.append(hz)
    return notes


def _explained(chord: Chord, partials_hz: np.ndarray, amplitude: np.ndarray) -> float:
    """The share of the partials' power on the harmonics of the chord's notes."""
    on = _harmonics_of(midi_to_hz(chord.keys), partials_hz)[1].any(axis=0)
    power = amplitude**2
    return float(power[on].sum() / power.sum())


def _one_note(chord: Chord, hz: float, partials_hz: np.ndarray, amplitude: np.ndarray) -> bool:
    """Whether a sound whose notes read as ``chord`` is one note at ``hz`` (its pitch, clearly
    periodic): ``hz`` is one of the chord's notes, or lies below them with a partial of its own
    within :data:`OWN_DB` of the strongest (a sitar's E2, -25 dB, whose 2nd, 3rd and 5th harmonics
    read as E3 B3 G#4). A chord repeats at its notes' common period, below them, where nothing
    sounds (a C major triad at C1) or only a faint sub-octave does (a pad's, -49 dB)."""
    keys = chord.keys
    reading = float(hz_to_midi(hz))
    if np.min(np.abs(keys - reading)) <= 0.5:
        return True
    own = (np.abs(partials_hz - hz) <= REACH * hz) & (amplitude >= amplitude.max() * 10 ** (-OWN_DB / 20))
    return reading < keys[0] and bool(own.any())


def _partials(note: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The frequencies (Hz) and magnitudes of the spectrum's peaks in the note's first
    :data:`WINDOW_SECONDS` (see the module's thresholds), lowest first."""
    n = 1 << int(np.ceil(np.log2(WINDOW_SECONDS * sample_rate)))  # 32768 at 44.1 kHz: 0.74 s
    spectrum = Spectrum.of(note, sample_rate, n, SPECTRUM_PAD)
    bins = spectrum.partials(PARTIALS_MIN_HZ, PARTIALS_MAX_HZ, FLOOR_DB, PROMINENCE_DB)
    bins = bins[np.sort(np.argsort(spectrum.magnitude[bins])[::-1][:MAX_PARTIALS])]  # the strongest, lowest first
    return spectrum.peak_hz(bins), spectrum.magnitude[bins].astype(np.float64)


def _strongest_note(partials_hz: np.ndarray, amplitude: np.ndarray, unexplained: np.ndarray
                    ) -> tuple[float, float, np.ndarray] | None:
    """Of the fundamentals the loudest unexplained partials suggest (each of the
    :data:`CANDIDATE_PARTIALS` loudest as the 1st, 2nd or 3rd harmonic), the one whose harmonics
    hold the most weight (sum of amplitude / k ** :data:`WEIGHT_POWER`), with its fundamental and
    one more harmonic among them: its frequency (Hz, fitted to its partials), weight and the
    partials it explains; None when none has."""
    free = np.flatnonzero(unexplained)
    loudest = free[np.argsort(amplitude[free])[::-1][:CANDIDATE_PARTIALS]]
    hz = (partials_hz[loudest][:, None] / np.arange(1, 4)).ravel()
    hz = np.unique(hz[(hz >= LOWEST_HZ) & (hz <= HIGHEST_HZ)])
    if hz.size == 0:
        return None
    k, on = _harmonics_of(hz, partials_hz[free])  # (candidates, partials)
    valid = (on & (k == 1)).any(axis=1) & (on & (k >= 2)).any(axis=1)
    if not valid.any():
        return None
    weight = np.where(on, amplitude[free] / np.maximum(k, 1.0) ** WEIGHT_POWER, 0.0).sum(axis=1)
    best = int(np.argmax(np.where(valid, weight, -1.0)))
    members = np.flatnonzero(on[best])
    fitted = float(np.median(partials_hz[free][members] / k[best, members]))
    return fitted, float(weight[best]), free[members]


def _harmonics_of(hz: np.ndarray, partials_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each fundamental of ``hz`` (m,), which of ``partials_hz`` (n,) lie on one of its
    harmonics (up to :data:`HARMONICS`): their harmonic numbers and whether they do, both (m, n)."""
    f = np.asarray(hz, dtype=np.float64)[:, None]
    k = np.rint(partials_hz[None, :] / f)
    on = (k >= 1) & (k <= HARMONICS) & (np.abs(partials_hz[None, :] - k * f) <= np.maximum(REACH * k * f, 3.0))
    return k, on


def _as_chord(notes: list[float]) -> Chord | None:
    """A :class:`Chord` of the notes found (Hz), if they make one (see the module's rule): each
    pitch class once, at its lowest (a note found again an octave up, or a few cents off, is the
    remains of one found already: an ensemble's detuned voices)."""
    midi = np.sort(hz_to_midi(np.array(notes, dtype=np.float64)))
    kept: list[float] = []
    for m in midi:
        if all(abs((m - k + 6.0) % 12.0 - 6.0) > 0.5 for k in kept):
            kept.append(float(m))
    if not MIN_NOTES <= len(kept) <= MAX_CHORD_NOTES:
        return None
    above = np.array(kept) - kept[0]
    keys = np.rint(above)
    if np.any(np.abs(above - keys) * 100.0 > KEY_CENTS) or keys[-1] > MAX_SPAN or np.any(np.diff(keys) < 2):
        return None
    return Chord(float(midi_to_hz(kept[0])), tuple(int(k) for k in keys))


class ChordRenderer(Renderer):
    """Plays every patch of another renderer as a chord: each note at the key asked for plus each
    interval, summed."""

    kind = "chord"

    def __init__(self, renderer: Renderer, intervals: tuple[int, ...]) -> None:
        super().__init__(renderer.parameter_set, renderer.settings, renderer.fixed)
        self.renderer = renderer
        self.intervals = intervals
        self.thread_safe = renderer.thread_safe

    def lengthened(self, render_length: float) -> ChordRenderer | None:
        inner = self.renderer.lengthened(render_length)
        return None if inner is None else ChordRenderer(inner, self.intervals)

    def _render_native(self, native: np.ndarray, notes: np.ndarray, note_lengths: np.ndarray) -> np.ndarray:
        audio = self.renderer._render_native(native, notes + self.intervals[0], note_lengths)
        for interval in self.intervals[1:]:
            audio = audio + self.renderer._render_native(native, notes + interval, note_lengths)
        return audio
