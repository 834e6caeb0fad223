"""Tuning that belongs to the sound, not to the key it was played at.

A preset is played at whatever key the user presses, so a target's pitch belongs in the note
it is rendered at, and the oscillators' tuning only carries what belongs to the sound: an
interval between the oscillators, or an octave the sound really has. The builtin synth has no
key tracking (filters and envelopes do not follow the key), so a patch played at note ``p``
sounds exactly like the same patch with both oscillators retuned by ``p - q`` played at note
``q``. :func:`relative_to_pitch` uses that to restate a patch for the pitch heard in its audio;
training labels are restated so (the network learns "osc1 at the pitch heard" rather than the
octave of the recording), and so is the evaluation's ground truth.

:func:`tidy` sets the tuning of an oscillator that is not heard to the base preset's, so a
written preset never carries a meaningless detune.
"""

from __future__ import annotations

import numpy as np

from .pitch import DEFAULT_MIDI
from .profile import ParameterSet

TRANSPOSE_ID = 14  # VCC:Trsp, the master transpose in semitones
FINE_TUNE_ID = 15  # VCC:FTun, the master fine tune in cents
FINE_TUNE_DECIMALS = 2  # as a Diva preset stores it
# The oscillators' tuning and volumes are found by the profile's roles (Diva: OSC:Tune1 86, octave
# steps; OSC:Tune2 87, semitones; OSC:Vol1 97 and OSC:Vol2 98, 0..100); a profile without them
# (amsynth) leaves its patches as they are.
OSC1_OCTAVE, OSC2_TUNE, OSC1_VOLUME, OSC2_VOLUME = "osc1_octave", "osc2_tune", "osc1_volume", "osc2_volume"
# What bends the pitch away from the key played (Diva: OSC:VtoD, the vibrato; OSC:TM1Dpt and
# OSC:TM2Dpt, the oscillators' pitch modulation): none of it where a note must sound in tune.
PITCH_MODULATION = "pitch_modulation"
SILENT_VOLUME = 2.0  # an oscillator below 2 % (-34 dB against one at full level) is not heard
# Harmonics 1-5 of a note, in semitones above it: where oscillator 2 can sit in a periodic sound
HARMONIC_INTERVALS = tuple(float(12.0 * np.log2(k)) for k in range(1, 6))
OCTAVE_TOLERANCE = 0.5  # semitones: how far a shift may lie from whole octaves for Tune1 to carry it


def _native_range(pset: ParameterSet, column: int) -> tuple[float, float]:
    p = pset.parameters[column]
    steps = p.steps
    return (float(steps.min()), float(steps.max())) if steps is not None else (p.low, p.high)


def relative_to_pitch(pset: ParameterSet, params: np.ndarray, played: np.ndarray,
                      heard: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Restate patches played at MIDI notes ``played`` for the pitches ``heard`` in their audio.

    ``params`` (n, k) normalised; ``played`` and ``heard`` (n,) MIDI notes (fractions are cents;
    ``heard`` NaN for unpitched audio, which a match plays at the default note
    :data:`~deepdiva.core.pitch.DEFAULT_MIDI`). Both oscillators are retuned by ``played - heard``;
    Tune1 moves in octaves only, so a shift more than :data:`OCTAVE_TOLERANCE` from whole octaves,
    or one that leaves a tuning range, cannot be restated exactly. Returns the restated, tidied
    patches and a boolean (n,): False for pitched rows that could not be restated (unpitched rows
    are restated as near as the ranges allow, and kept).
    """
    x = np.array(params, dtype=np.float32, copy=True)
    heard = np.asarray(heard, dtype=np.float64)
    pitched = np.isfinite(heard)
    shift = np.asarray(played, dtype=np.float64) - np.where(pitched, heard, DEFAULT_MIDI)
    ok = np.ones(len(x), dtype=bool)
    native = pset.from_normalised(x)
    c1, c2 = pset.role_column(OSC1_OCTAVE), pset.role_column(OSC2_TUNE)
    if c1 is not None:
        octaves = 12.0 * np.round(shift / 12.0)
        ok &= np.abs(shift - octaves) <= OCTAVE_TOLERANCE
        tune1 = native[:, c1] + octaves
        low, high = _native_range(pset, c1)
        ok &= (tune1 >= low - 1e-6) & (tune1 <= high + 1e-6)
        native[:, c1] = np.clip(tune1, low, high)
    else:
        ok &= np.abs(shift) <= OCTAVE_TOLERANCE  # nothing can carry a transposition
    if c2 is not None:
        low, high = _native_range(pset, c2)
        tune2 = native[:, c2] + shift
        ok &= (tune2 >= low - 1e-6) & (tune2 <= high + 1e-6)
        native[:, c2] = np.clip(tune2, low, high)
    restated = pset.to_normalised(native).astype(np.float32)
    return tidy(pset, restated), ok | ~pitched


def tidy(pset: ParameterSet, params: np.ndarray) -> np.ndarray:
    """Patches (n, k) or (k,) normalised with the tuning of an unheard oscillator (volume below
    :data:`SILENT_VOLUME`) set to the base preset's; nothing else changes."""
    x = np.array(params, dtype=np.float32, copy=True)
    rows = x[None, :] if x.ndim == 1 else x
    defaults = pset.defaults_normalised()
    for volume, tune in ((OSC1_VOLUME, OSC1_OCTAVE), (OSC2_VOLUME, OSC2_TUNE)):
        cv, ct = pset.role_column(volume), pset.role_column(tune)
        if cv is None or ct is None:
            continue
        p = pset.parameters[cv]
        silent = rows[:, cv] * (p.high - p.low) + p.low < SILENT_VOLUME
        rows[silent, ct] = defaults[ct]
    return x


def on_harmonics(pset: ParameterSet, params: np.ndarray) -> np.ndarray:
    """Patches (n, k) or (k,) with oscillator 2 moved to the nearest harmonic of the note (unison,
    octave, octave + fifth, two octaves, two octaves + a major third).

    For targets that are clearly periodic at the pitch they are played at: a sound periodic at the
    note's fundamental has every partial on a harmonic of it, so oscillator 2 anywhere else
    (a detune the network was unsure of) cannot be part of it. Oscillator 1 is on the note already.
    """
    x = np.array(params, dtype=np.float32, copy=True)
    c2 = pset.role_column(OSC2_TUNE)
    if c2 is None:
        return x
    rows = x[None, :] if x.ndim == 1 else x
    native = pset.from_normalised(rows)
    intervals = np.asarray(HARMONIC_INTERVALS)
    tune2 = native[:, c2]
    native[:, c2] = intervals[np.argmin(np.abs(tune2[:, None] - intervals[None, :]), axis=1)]
    rows[:, c2] = pset.to_normalised(native)[:, c2]
    return x


def steady(pset: ParameterSet, params: np.ndarray) -> np.ndarray | None:
    """One patch (k,) with its pitch modulation (:data:`PITCH_MODULATION`) at 0, quantised; None
    when the set has none of it or it is 0 already."""
    columns = pset.role_columns(PITCH_MODULATION)
    native = pset.from_normalised(np.asarray(params, dtype=np.float64)[None, :])
    if not columns or not np.any(native[0, columns]):
        return None
    native[0, columns] = 0.0
    return pset.quantise(pset.to_normalised(native))[0]


def octaves_moved(pset: ParameterSet, params: np.ndarray, octaves: int) -> np.ndarray | None:
    """One patch (k,) with both oscillators moved by whole ``octaves`` (see
    :func:`relative_to_pitch`); None for 0 octaves, or when a tuning range would be left."""
    if octaves == 0:
        return None
    moved, ok = relative_to_pitch(pset, np.asarray(params)[None, :], np.array([12.0 * octaves]), np.zeros(1))
    return moved[0] if ok[0] else None


def pitch_repairs(pset: ParameterSet, params: np.ndarray, off: float | None) -> np.ndarray:
    """Variants of one patch (k,) that may sound at the key where it sounds ``off`` semitones
    from it (None: its pitch was not heard): without pitch modulation (:func:`steady`), moved
    by the whole octaves of ``off`` the other way, and both; (m, k), m in 0..3."""
    calm = steady(pset, params)
    octaves = 0 if off is None else -int(round(off / 12.0))
    rows = [calm] + [octaves_moved(pset, x, octaves) for x in (params, calm) if x is not None]
    kept = [np.asarray(x, dtype=np.float32) for x in rows if x is not None]
    return np.stack(kept) if kept else np.empty((0, len(pset)), dtype=np.float32)


def pitch_columns(pset: ParameterSet) -> list[int]:
    """The columns that set the pitch a patch sounds at against the key played: the oscillators'
    tuning and :data:`PITCH_MODULATION` (what a search must leave alone once a note is in tune)."""
    tuning = [pset.role_column(OSC1_OCTAVE), pset.role_column(OSC2_TUNE)]
    return [j for j in tuning if j is not None] + pset.role_columns(PITCH_MODULATION)
