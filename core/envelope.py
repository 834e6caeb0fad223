"""The target's amp envelope, measured, and written into answers (attack, decay, sustain).

The network reads envelopes poorly: trained on patches whose amp sustain is uniform (a note that
dies away is rare among them), it answers a marimba, a plucked string or a synth bass with a
patch that holds its level, and every spectral distance punishes the sound it keeps where the
target has gone quiet. An envelope follower does not need training: the target's level in 10 ms
frames gives the time to its peak (the attack), how far it has fallen a second later and whether
it is still falling (the sustain: none when it dies away) and how fast (the decay, an
exponential's time constant). :func:`with_envelope` writes
those into answers through the profile's ``amp_attack``, ``amp_decay`` and ``amp_sustain`` roles,
on the envelope knob of Diva as the builtin synth plays it (1 ms x 10**(knob/25), see
``core/BUILTIN_SYNTH.md``). A scored match renders these variants beside the network's answers and
keeps whichever is closest; an unscored one uses the measurement only for a note that dies away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .profile import ParameterSet

FRAME_SECONDS = 0.01
PEAK_MARGIN_DB = 1.0  # the attack ends at the first frame this close to the peak
LATE_WINDOW = (1.0, 1.5)  # seconds after the onset where a note's held level is read
DECAYING_DB = 6.0  # a note that falls this far from its peak by then decays towards a sustain
DIES_AWAY_DB = 30.0  # ... and this far, or still falling then: it dies away (no sustain)
STILL_FALLING_DB_PER_S = 6.0
KNOB_SECONDS = (0.001, 25.0)  # envelope knob v -> 0.001 x 10**(v / 25) seconds (builtin synth, Diva-like)
SILENT_DB = -90.0
AMP_ENVELOPE_ROLES = ("amp_attack", "amp_decay", "amp_sustain")  # profile roles, in this order


@dataclass(frozen=True)
class AmpEnvelope:
    """A note's amp envelope as measured: ``decay`` and ``sustain`` are None for a held note."""

    attack: float  # seconds from the onset to the peak
    decay: float | None  # seconds, the time constant of the fall after the peak
    sustain: float | None  # the held level over the peak's, linear amplitude (0: dies away)

    @property
    def dies_away(self) -> bool:
        return self.sustain == 0.0


def frame_levels(note: np.ndarray, sample_rate: int) -> np.ndarray:
    """Level of each :data:`FRAME_SECONDS` frame of ``note`` in dB (RMS, re full scale)."""
    hop = max(1, int(round(FRAME_SECONDS * sample_rate)))
    n = len(note) // hop
    frames = np.asarray(note[: n * hop], dtype=np.float64).reshape(n, hop)
    return 10.0 * np.log10(np.mean(frames * frames, axis=1) + 10 ** (SILENT_DB / 10))


def amp_envelope(note: np.ndarray, sample_rate: int) -> AmpEnvelope | None:
    """The amp envelope of a prepared ``note`` (onset at its start, at least
    :data:`LATE_WINDOW`'s end long); None for silence or a note too short to tell."""
    levels = frame_levels(note, sample_rate)
    lo, hi = (int(round(t / FRAME_SECONDS)) for t in LATE_WINDOW)
    if len(levels) < hi or levels.max() <= SILENT_DB + 1:
        return None
    peak_at = int(np.argmax(levels))
    peak = float(levels[peak_at])
    attack = max((int(np.argmax(levels >= peak - PEAK_MARGIN_DB)) + 0.5) * FRAME_SECONDS, 0.001)
    late = levels[lo:hi]
    drop = peak - float(np.mean(late))
    if drop < DECAYING_DB or peak_at >= lo:
        return AmpEnvelope(attack, None, None)
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
    return AmpEnvelope(attack, max(float(decay), 0.002), sustain)


def knob(seconds: float) -> float:
    """The envelope knob (0..100) of a time in seconds (:data:`KNOB_SECONDS`)."""
    base, per_decade = KNOB_SECONDS
    return float(np.clip(per_decade * np.log10(max(seconds, 1e-6) / base), 0.0, 100.0))


def amp_envelope_columns(pset: ParameterSet) -> tuple[int, int, int] | None:
    """The columns of the amp attack, decay and sustain in ``pset`` (:data:`AMP_ENVELOPE_ROLES`),
    or None when the profile or the set lacks any of them."""
    attack, decay, sustain = (pset.role_column(r) for r in AMP_ENVELOPE_ROLES)
    return None if attack is None or decay is None or sustain is None else (attack, decay, sustain)


def with_envelope(pset: ParameterSet, params: np.ndarray, envelope: AmpEnvelope) -> np.ndarray | None:
    """``params`` (h, k) normalised with the measured envelope written in (attack always; decay
    and sustain when the note falls), quantised; None when the set lacks the amp envelope roles."""
    columns = amp_envelope_columns(pset)
    if columns is None:
        return None
    attack, decay, sustain = columns
    native = pset.from_normalised(np.atleast_2d(np.asarray(params, dtype=np.float64)))
    native[:, attack] = knob(envelope.attack)
    if envelope.decay is not None and envelope.sustain is not None:
        native[:, decay] = knob(envelope.decay)
        p = pset.parameters[sustain]
        native[:, sustain] = p.low + envelope.sustain * (p.high - p.low)
    return pset.quantise(pset.to_normalised(native))
