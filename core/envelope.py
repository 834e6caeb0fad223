"""The target's amp envelope, measured, and written into answers (attack, decay, sustain).

The network reads envelopes poorly: trained on patches whose amp sustain is uniform (a note that
dies away is rare among them), it answers a marimba, a plucked string or a synth bass with a
patch that holds its level, and every spectral distance punishes the sound it keeps where the
target has gone quiet. An envelope follower does not need training: the target's level in 10 ms
frames gives the time to its peak (the attack), how far it has fallen a second later and whether
it is still falling (the sustain: none when it dies away) and how fast (the decay, an
exponential's time constant). :func:`with_envelope` writes
those into answers through the profile's ``amp_attack``, ``amp_decay`` and ``amp_sustain`` roles
(and a release heard after the note's window through ``amp_release``: :func:`with_release`),
on the envelope knob of Diva as the builtin synth plays it (1 ms x 10**(knob/25), see
``core/BUILTIN_SYNTH.md``). A scored match renders these variants beside the network's answers and
keeps whichever is closest; an unscored one uses the measurement only for a note that dies away
or is let go (``Matcher.enveloped_unscored``).
The level also tells where the note was let go (:func:`note_off`) and whether the take ends in its
recording's steady noise floor (:func:`noise_floor`: after the note, or before it), which the
match's distance then looks through.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from .audio import spectral_flatness
from .profile import ParameterSet

FRAME_SECONDS = 0.01
PEAK_MARGIN_DB = 1.0  # the attack ends at the first frame this close to the peak
LATE_WINDOW = (1.0, 1.5)  # seconds after the onset where a note's held level is read
DECAYING_DB = 6.0  # a note that falls this far from its peak by then decays towards a sustain
DIES_AWAY_DB = 30.0  # ... and this far, or still falling then: it dies away (no sustain)
STILL_FALLING_DB_PER_S = 6.0
KNOB_SECONDS = (0.001, 25.0)  # envelope knob v -> 0.001 x 10**(v / 25) seconds (builtin synth, Diva-like)
SILENT_DB = -90.0
# A note-off: the level starts to fall at least RELEASE_DB within RELEASE_SECONDS, at least
# RELEASE_SPEEDUP times as fast as over the RELEASE_SECONDS before (a decaying pluck falls as fast
# before as after), and never comes back within RELEASE_DB of where the fall began (a tremolo's
# dip does). A release with the room's tail falls 40 dB/s or more (a GM organ let go: 50 dB/s).
RELEASE_DB = 12.0
RELEASE_SECONDS = 0.3
RELEASE_SPEEDUP = 3.0
RELEASE_RANGE_DB = 50.0  # ... starting no further than this below the peak
SETTLE_DB = 6.0  # a swell let go at its peak never rises more than this again once falling
LATE_SECONDS = 0.3  # before an early note-off, the stretch where the held level is read
# A recording's noise floor: the note ends in a tail at least NOISE_TAIL_SECONDS long whose level
# stays within NOISE_FLAT_DB of its median, NOISE_BELOW_PEAK_DB or more under the note's peak, no
# longer falling (a decay or a room's tail is), above digital silence (a clean render's end), and
# noise-like: the spectral flatness of its mean power spectrum (NOISE_BAND_HZ) at least
# NOISE_FLATNESS (a note's own sustain holds partials: far below).
NOISE_TAIL_SECONDS = 0.25
NOISE_FLAT_DB = 3.0
NOISE_BELOW_PEAK_DB = 12.0
NOISE_ABOVE_SILENCE_DB = 10.0
NOISE_BAND_HZ = (200.0, 16000.0)
NOISE_FLATNESS = 0.3
NOISE_SMOOTH_FRAMES = 5  # the levels the tail is read from: power averaged over 50 ms
FLATNESS_SECONDS = 0.5  # the stretch of a floor whose flatness is read (its last)
AMP_ENVELOPE_ROLES = ("amp_attack", "amp_decay", "amp_sustain")  # profile roles, in this order


@dataclass(frozen=True)
class AmpEnvelope:
    """A note's amp envelope as measured: ``decay`` and ``sustain`` are None for a held note."""

    attack: float  # seconds from the onset to the peak
    decay: float | None  # seconds, the time constant of the fall after the peak
    sustain: float | None  # the held level over the peak's, linear amplitude (0: dies away)
    note_off: float | None = None  # seconds from the onset to the note-off heard (None: held to the end of the take)
    release: float | None = None  # seconds, the time constant of the fall after the note-off

    @property
    def dies_away(self) -> bool:
        return self.sustain == 0.0


def frame_levels(note: np.ndarray, sample_rate: int) -> np.ndarray:
    """Level of each :data:`FRAME_SECONDS` frame of ``note`` in dB (RMS, re full scale)."""
    hop = max(1, int(round(FRAME_SECONDS * sample_rate)))
    n = len(note) // hop
    frames = np.asarray(note[: n * hop], dtype=np.float64).reshape(n, hop)
    return 10.0 * np.log10(np.mean(frames * frames, axis=1) + 10 ** (SILENT_DB / 10))


def note_off(levels: np.ndarray) -> int | None:
    """The frame of :func:`frame_levels` where the note was let go (see :data:`RELEASE_DB`), or
    None when it was held to the end or simply dies away."""
    w = int(round(RELEASE_SECONDS / FRAME_SECONDS))
    peak_at = int(np.argmax(levels))
    if len(levels) < 2 * w + 1:
        return None
    attacked = int(np.argmax(levels >= levels[peak_at] - PEAK_MARGIN_DB))  # the attack's end
    later_max = np.maximum.accumulate(levels[::-1])[::-1]  # the loudest frame from each one on
    # After a quick attack the stretch before lies after it (a pluck falls from its peak on). A note
    # that swelled for longer than that stretch may be let go at its peak (a pad let go while still
    # rising, a reversed cymbal) if, once falling, it never rises again (a tremolo's dips do).
    swelled = attacked >= w
    for i in range(attacked if swelled else attacked + w, len(levels) - w):
        fall, before = levels[i] - levels[i + w], levels[i - w] - levels[i]
        if (fall >= RELEASE_DB and before * RELEASE_SPEEDUP <= fall and later_max[i + w] <= levels[i] - RELEASE_DB
                and levels[i] >= levels[peak_at] - RELEASE_RANGE_DB
                and (i >= attacked + w or _never_rises(levels[i:]))):
            held = np.flatnonzero(levels[i: i + w + 1] >= levels[i] - PEAK_MARGIN_DB)
            return i + int(held[-1])  # the fall begins after the last frame still at that level
    return None


def noise_floor(note: np.ndarray, sample_rate: int, lead_in: np.ndarray | None = None) -> np.ndarray | None:
    """The take's recording noise floor alone (hiss, hum or room tone; see :data:`NOISE_TAIL_SECONDS`),
    or None when none can be told from the note: the tail of a prepared ``note`` once the note has
    gone (:func:`noise_tail`), else the ``lead_in`` recorded before it (the same rules, against the
    note's peak). What every recording of an answer would add too
    (:class:`~deepdiva.core.metrics.SpectralTarget`'s ``noise``)."""
    levels = _smoothed_levels(note, sample_rate)
    start = _tail_start(note, levels, sample_rate)
    if start is not None:
        return note[start:]
    if lead_in is None:
        return None
    lead_levels = _smoothed_levels(lead_in, sample_rate)
    n = int(round(NOISE_TAIL_SECONDS / FRAME_SECONDS))
    if lead_levels.size < n:
        return None
    # read from the lead-in's start: its end may hold the first of a slow attack
    steady = _steady_from(lead_levels[::-1], float(levels.max()), n)
    if steady is None:
        return None
    floor = lead_in[: (lead_levels.size - steady) * int(round(FRAME_SECONDS * sample_rate))]
    return floor if _noise_like(floor, sample_rate) else None


def noise_tail(note: np.ndarray, sample_rate: int) -> int | None:
    """The sample where a prepared ``note`` settles into its recording's steady noise floor after
    the note has gone (see :data:`NOISE_TAIL_SECONDS`), or None when it does not end in one: a
    note held or still sounding to the end, a tail still falling, a clean render's silence."""
    return _tail_start(note, _smoothed_levels(note, sample_rate), sample_rate)


def _tail_start(note: np.ndarray, levels: np.ndarray, sample_rate: int) -> int | None:
    """:func:`noise_tail` from the note's :func:`_smoothed_levels`."""
    n = int(round(NOISE_TAIL_SECONDS / FRAME_SECONDS))
    if len(levels) < 2 * n:
        return None
    start = _steady_from(levels, float(levels.max()), n)
    if start is None:
        return None
    begins = start * int(round(FRAME_SECONDS * sample_rate))
    return begins if _noise_like(note[begins:], sample_rate) else None


def _noise_like(audio: np.ndarray, sample_rate: int) -> bool:
    """Whether the last :data:`FLATNESS_SECONDS` of ``audio`` are noise-like (:data:`NOISE_FLATNESS`)."""
    return spectral_flatness(audio[-int(FLATNESS_SECONDS * sample_rate):], sample_rate, NOISE_BAND_HZ) >= NOISE_FLATNESS


def _smoothed_levels(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """:func:`frame_levels` as power means over :data:`NOISE_SMOOTH_FRAMES` frames (a noise
    dominated by low frequencies swings by several dB from one 10 ms frame to the next)."""
    levels = frame_levels(audio, sample_rate)
    if levels.size == 0:
        return levels
    return 10.0 * np.log10(uniform_filter1d(10.0 ** (levels / 10.0), NOISE_SMOOTH_FRAMES, mode="nearest"))


def _steady_from(levels: np.ndarray, peak_db: float, n: int) -> int | None:
    """The first frame of the steady floor that ``levels`` end in (at least ``n`` frames within
    :data:`NOISE_FLAT_DB` of the median of their last ``n``, :data:`NOISE_BELOW_PEAK_DB` under
    ``peak_db``, above digital silence, not falling), or None."""
    median = float(np.median(levels[-n:]))
    if median > peak_db - NOISE_BELOW_PEAK_DB or median < SILENT_DB + NOISE_ABOVE_SILENCE_DB:
        return None
    louder = np.flatnonzero(levels > median + NOISE_FLAT_DB)
    start = int(louder[-1]) + 1 if louder.size else 0  # every frame from here on lies at the floor or under it
    tail = levels[start:]
    if tail.size < n or abs(np.polyfit(np.arange(tail.size) * FRAME_SECONDS, tail, 1)[0]) > STILL_FALLING_DB_PER_S:
        return None
    return start


def _never_rises(levels: np.ndarray) -> bool:
    """Whether ``levels`` (dB) never come back more than :data:`SETTLE_DB` above their lowest so far."""
    return bool(np.all(levels - np.minimum.accumulate(levels) <= SETTLE_DB))


def _levels(audio: np.ndarray, sample_rate: int, noise: np.ndarray | None) -> np.ndarray:
    """:func:`frame_levels` of ``audio``, the mean power of ``noise`` (the take's floor alone) taken out."""
    levels = frame_levels(audio, sample_rate)
    if noise is not None and noise.size:
        power = 10.0 ** (levels / 10.0) - float(np.mean(np.square(noise, dtype=np.float64)))
        levels = 10.0 * np.log10(np.maximum(power, 10 ** (SILENT_DB / 10)))
    return levels


def _note_off_in_take(levels: np.ndarray, note: np.ndarray, after: np.ndarray | None, sample_rate: int,
                      noise: np.ndarray | None) -> tuple[int | None, np.ndarray]:
    """The note-off frame and the levels it is read in: in the note's own ``levels``, else, when the
    take goes on (``after``), in the note and what follows it, if it comes no earlier than the note's
    last :data:`RELEASE_SECONDS` (where the note alone is too short to tell a fall from a dip)."""
    off = note_off(levels)
    if off is not None or after is None or not after.size:
        return off, levels
    whole = _levels(np.concatenate([note, after]), sample_rate, noise)
    late = note_off(whole)
    if late is None or late < len(levels) - int(round(RELEASE_SECONDS / FRAME_SECONDS)):
        return None, levels
    return late, whole


def amp_envelope(note: np.ndarray, sample_rate: int, noise: np.ndarray | None = None,
                 after: np.ndarray | None = None) -> AmpEnvelope | None:
    """The amp envelope of a prepared ``note`` (onset at its start, at least
    :data:`LATE_WINDOW`'s end long); None for silence or a note too short to tell.

    Only what sounds before the note-off counts (:func:`note_off`): a note held for 0.7 s and
    let go is held, not one that dies away; its held level is read over the :data:`LATE_SECONDS`
    before the note-off when that comes before :data:`LATE_WINDOW` ends (held when the note was
    let go within that stretch of its peak: too short to tell a fall). ``noise``: the take's
    recording noise floor alone (:func:`noise_floor`), whose mean power is taken out of every
    frame's first, so a pluck dying into hiss dies away instead of holding at the hiss's level.
    ``after``: what the take held after ``note``, where a note held to the end of ``note`` may be
    heard let go (its ``note_off`` then lies at or beyond ``note``'s end, and ``release`` is read
    there)."""
    levels = _levels(note, sample_rate, noise)
    lo, hi = (int(round(t / FRAME_SECONDS)) for t in LATE_WINDOW)
    if len(levels) < hi or levels.max() <= SILENT_DB + 1:
        return None
    off, heard = _note_off_in_take(levels, note, after, sample_rate, noise)
    let_go = {} if off is None else {"note_off": off * FRAME_SECONDS, "release": _release(heard[off:])}
    if off is not None and off < hi:
        levels = levels[:off]
        lo, hi = max(0, off - int(round(LATE_SECONDS / FRAME_SECONDS))), off
    peak_at = int(np.argmax(levels))
    peak = float(levels[peak_at])
    attack = max((int(np.argmax(levels >= peak - PEAK_MARGIN_DB)) + 0.5) * FRAME_SECONDS, 0.001)
    late = levels[lo:hi]
    drop = peak - float(np.mean(late))
    if drop < DECAYING_DB or peak_at >= lo:
        return AmpEnvelope(attack, None, None, **let_go)
    falling = np.polyfit(np.arange(len(late)) * FRAME_SECONDS, late, 1)[0] <= -STILL_FALLING_DB_PER_S
    sustain = 0.0 if drop >= DIES_AWAY_DB or falling else float(10 ** (-drop / 20))
    # an exponential from 1 towards the sustain passes sustain + (1 - sustain) / e after one time constant
    # (for a note that dies away: read 20 dB down, 2.3 time constants)
    if sustain == 0.0:
        mark_db, constants = -20.0, 20.0 / (20 * np.log10(np.e))
    else:
        mark_db, constants = 20 * np.log10(sustain + (1 - sustain) / np.e), 1.0
    after = levels[peak_at:] - peak
    below = np.flatnonzero(after <= mark_db)
    if below.size:
        decay = below[0] * FRAME_SECONDS / constants
    else:  # still above the mark at the end (a slow fall): the time constant of the mean slope so far
        decay = 20 * np.log10(np.e) * ((lo + hi) / 2 - peak_at) * FRAME_SECONDS / drop
    return AmpEnvelope(attack, max(float(decay), 0.002), sustain, **let_go)


def _release(after: np.ndarray) -> float:
    """The time constant (s) of the fall of the levels ``after`` a note-off (dB, from the note-off
    on): read 20 dB down (2.3 time constants), or from the mean slope when it never falls that far."""
    fall = after[0] - after
    below = np.flatnonzero(fall >= 20.0)
    if below.size:
        return max(float(below[0] * FRAME_SECONDS / np.log(10.0)), 0.002)
    seconds = max(len(after) - 1, 1) * FRAME_SECONDS
    return max(float(20 * np.log10(np.e) * seconds / max(float(fall[-1]), 1.0)), 0.002)


def knob(seconds: float) -> float:
    """The envelope knob (0..100) of a time in seconds (:data:`KNOB_SECONDS`)."""
    base, per_decade = KNOB_SECONDS
    return float(np.clip(per_decade * np.log10(max(seconds, 1e-6) / base), 0.0, 100.0))


def releases_at_decay(pset: ParameterSet, params: np.ndarray) -> np.ndarray:
    """Per row of ``params`` (h, k) normalised, whether a release written on the profile's
    ``amp_release`` knob is heard only after the note-off: always for a knob of its own; for an
    ADS envelope, whose release is its decay knob (Diva's ENV1 in the base preset, as the builtin
    synth plays it), only in rows that hold at full sustain, whose decay is never heard before it.
    None of them without the roles."""
    params = np.atleast_2d(params)
    column = pset.role_column("amp_release")
    if column is None:
        return np.zeros(len(params), dtype=bool)
    if column != pset.role_column("amp_decay"):
        return np.ones(len(params), dtype=bool)
    sustain = pset.role_column("amp_sustain")
    if sustain is None:
        return np.zeros(len(params), dtype=bool)
    p = pset.parameters[sustain]
    return pset.from_normalised(params)[:, sustain] >= p.high - 1e-6 * (p.high - p.low)


def with_release(pset: ParameterSet, params: np.ndarray, release: float) -> np.ndarray:
    """``params`` (h, k) normalised with ``release`` (seconds, the time constant of the fall after a
    note-off) on the amp release knob (the profile's ``amp_release`` role), quantised, in the rows
    where only a note-off lets it be heard (:func:`releases_at_decay`); the rest as they were."""
    params = np.atleast_2d(np.asarray(params, dtype=np.float64))
    rows = releases_at_decay(pset, params)
    if not rows.any():
        return params
    column = pset.role_column("amp_release")
    native = pset.from_normalised(params)
    native[:, column] = knob(release)
    return np.where(rows[:, None], pset.quantise(pset.to_normalised(native)), params)


def amp_envelope_columns(pset: ParameterSet) -> tuple[int, int, int] | None:
    """The columns of the amp attack, decay and sustain in ``pset`` (:data:`AMP_ENVELOPE_ROLES`),
    or None when the profile or the set lacks any of them."""
    attack, decay, sustain = (pset.role_column(r) for r in AMP_ENVELOPE_ROLES)
    return None if attack is None or decay is None or sustain is None else (attack, decay, sustain)


def with_envelope(pset: ParameterSet, params: np.ndarray, envelope: AmpEnvelope) -> np.ndarray | None:
    """``params`` (h, k) normalised with the measured envelope written in (attack always; decay
    and sustain when the note falls; a held note that was let go: full sustain, and its release
    time on the decay knob, which times the builtin synth's amp release, as a Minimoog's with its
    release switch on), quantised; None when the set lacks the amp envelope roles."""
    columns = amp_envelope_columns(pset)
    if columns is None:
        return None
    attack, decay, sustain = columns
    native = pset.from_normalised(np.atleast_2d(np.asarray(params, dtype=np.float64)))
    native[:, attack] = knob(envelope.attack)
    p = pset.parameters[sustain]
    if envelope.decay is not None and envelope.sustain is not None:
        native[:, decay] = knob(envelope.decay)
        native[:, sustain] = p.low + envelope.sustain * (p.high - p.low)
    elif envelope.release is not None:  # held until let go: full sustain, the decay knob times the release
        native[:, decay] = knob(envelope.release)
        native[:, sustain] = p.high
    return pset.quantise(pset.to_normalised(native))
