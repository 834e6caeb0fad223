"""Plain patches: the base preset with each oscillator wave at a few low-pass cutoffs, a few high- or band-passed.

The network learned from random patches and the patch bank holds random patches, and a random
patch is seldom plain: one oscillator, the filter still, nothing moving but the amp envelope.
Many sounds musicians bring are close to a plain patch (a square lead, a saw bass, an organ, a
flute, a struck string with its top rolled off); on plain saws the base preset alone was closer
than every answer of the network (C3: 1.65 against 3.0 and more, median MR-STFT). So a scored
match renders these beside the network's answers and lets the distance choose: the base preset
with each oscillator setting of the profile's ``[plain]`` table (Diva: saw, triangle, square, a
narrower pulse, noise) and its low-pass (a cutoff on the MIDI note scale, as Diva's) open, at
fixed cutoffs and at cutoffs an octave, two and three above the key played (the brightness of an
instrument follows its note), then the table's ``highpassed`` waves (Diva: saw, square, pulse)
with the high-pass ``highpasses_above_key`` semitones above the key (two octaves: the fundamental
24 dB down), for bright notes whose fundamental is weak, as other synths' band-passed leads are,
then its ``bandpassed`` saw through each band of ``bands_above_key`` (high-pass one or two octaves
above the key, low-pass three or four), for notes whose partials peak in a band over a weaker
fundamental, as a reed's, a brass instrument's, an accordion's or a voice's do, then its
``noise_highpassed`` noise through the high-pass at each fixed frequency of ``highpasses`` (1.3 to
8.4 kHz, whatever the key), for hi-hats, shakers, tambourines and other synths' hissing patches;
the matcher adds each again with the amp envelope measured in the target
(:mod:`~deepdiva.core.envelope`). A profile without the table has the base preset alone.

The band-passed saws, side by side through ``Matcher.match``: development sets 31 GM notes 5 closer
and 2 further (geometric mean 0.989; bassoon 1.681 -> 1.462, SC 0.994 -> 0.783, accordion, sitar,
trombone, charang), 6 voices 3 / 1 (0.972, SC median 0.991 -> 0.923), 20 amsynth 1 / 0 (a lead
1.330 -> 1.040), 160 builtin renders 0 / 2 (1.001, 1.002), 112 GM notes at seven keys 28 / 2
(0.980), 72 chords 18 / 6 (0.994); square and pulse through the bands too, or a third band each way,
no better (0.987 and 0.988 on the GM notes, 3 builtin renders further).

The high-passed noise, side by side through ``Matcher.match``: 26 development drum sounds
(``dev_sets.py --sets drums``) 4 closer, 1 further (tambourine, maracas, cabasa, closed hi-hat), 20
amsynth patches 2 closer (a hissing one 1.957 -> 1.707), 160 builtin renders 4 / 1 (one 3.88 ->
2.06), no GM note, sound effect, voice or plain wave moved; held out, 38 drum sounds of other kits
3 closer, none further, and no note of the other benchmark sets moved. Five cutoffs or the
resonance at the base preset's 50 as well: the same.

The high-passed waves, measured side by side through ``Matcher.match`` on development sets: 20
amsynth patches 2 closer and 1 further (an A5 lead 2.244 -> 1.330 median MR-STFT, SC 0.93 ->
0.25; geometric mean of the ratio 0.959), 160 held-out builtin renders 4 closer and 2 further
(0.997, 1.000), 144 GM notes 2 closer (0.999), none of the 31 other GM notes, 6 voices or 8 plain
waves moved; an octave above the key instead: amsynth 0.968, builtin 0.995 and 1.002 (one render
1.88 -> 2.40); both: a builtin render 1.67 -> 2.17; the resonance at the base preset's 50 instead
of off: amsynth 0.982.

For a note that dies away, a scored match then also tries its choice with a *filter sweep*
(:func:`filter_sweeps`): the low-pass opening at the onset and closing as the note fades, as a
struck or plucked string loses its upper partials first. On the development sets 7 of 31 GM notes
came closer with two sweep times (geometric mean of the distance ratio 0.981 over all 31, none
further) and 5 more with five (0.988 again), the plain waves, voices and amsynth patches chose
none; on the benchmark's sets 4 of 40 instruments with two times (none further), 5 more with five
(0.994), the builtin renders about even (README, *Filter sweeps*).

A clearly pitched note is also tried with its choice as a *detuned pair* (:func:`detuned_pairs`):
two oscillators a few cents apart, centred on the note, beat as the commonest synth sound does
(two saws detuned), and as a chorus, an ensemble or detuned reeds do; the network's answers
cannot (for a periodic target oscillator 2 is put exactly on a harmonic: ``tuning.on_harmonics``).
On a builtin saw pair 5-20 c apart the match had answered one saw (MR-STFT 1.36-1.85; the pair
itself at the right detune, centred: 0.27-0.43). The pair is kept only when, leveled, its full
distance is smaller. Development sets, 14 detunes against 5 (4-35 c): 16 builtin pairs 3-45 c
apart 14 closer (median 1.645 -> 0.728; 5 detunes: 1.245), 8 of 31 GM notes closer (geometric mean
of the ratio 0.986; 0.990), amsynth 5 of 20 (0.993), 11 of 120 builtin renders (0.995), none of
the plain waves; ~25 ms more for a pitched scored match.

Chosen on development sets that the benchmarks do not report (31 GM notes of other instruments,
6 other espeak voices, 20 other amsynth patches, 8 plain waves made by numpy, 60 held-out builtin
renders): with these among the options, ``deepdiva match``'s median MR-STFT / spectral convergence
went from 1.485 / 0.761 to 1.369 / 0.639 on the instruments, 1.618 / 1.017 to 1.604 / 0.987 on the
voices, 1.948 / 0.894 to 1.948 / 0.853 on amsynth, 1.861 / 0.468 to 0.626 / 0.132 on the plain
waves and 1.969 / 0.896 to 1.977 / 0.901 on the builtin renders. Fixed cutoffs alone reached
1.411 on the instruments; cutoffs above the key alone 1.369, but 1.29 on the plain waves (0.91
with both); without the envelope variants 1.369 / 0.712; a sixth fixed cutoff or a fourth octave
above the key changed nothing; the square (pulse at width 0) took the plain waves from 0.91 to
0.63; the noise wave helped amsynth's SC a little (0.865 -> 0.853).
"""

from __future__ import annotations

import numpy as np

from .envelope import knob
from .errors import ProfileError
from .profile import ParameterSet
from .tuning import OSC1_OCTAVE, OSC1_VOLUME, OSC2_TUNE, OSC2_VOLUME

SWEEP_ROLES = ("depth", "attack", "decay", "sustain")  # the [plain] table's ``sweep`` entries


def plain_patches(pset: ParameterSet, key: float) -> np.ndarray:
    """Plain patches (m, k) normalised, quantised, for a note played at MIDI ``key``: the base
    preset first, then each oscillator setting of the profile's ``[plain]`` table at each cutoff,
    then each of its high-passed settings at each high-pass frequency above the key, then its
    high-passed noise at each fixed high-pass frequency, then each of its band-passed settings at
    each (high-pass, low-pass) pair, each distinct patch once (settings of parameters outside
    ``pset`` are left out); the base preset alone for a profile without the table."""
    base = pset.defaults_native()
    table = pset.profile.meta.get("plain")
    rows = [base]
    if isinstance(table, dict):
        groups = (("oscillators", _filter_values(pset, table, key, "cutoff", "cutoffs", "cutoffs_above_key")),
                  ("highpassed", _filter_values(pset, table, key, "highpass", None, "highpasses_above_key")),
                  ("noise_highpassed", _filter_values(pset, table, key, "highpass", "highpasses", None)),
                  ("bandpassed", _band_values(pset, table, key)))
        for settings_name, filters in groups:
            for setting in _read_settings(pset, table, settings_name):
                for values in filters:
                    row = base.copy()
                    for j, v in {**setting, **values}.items():
                        row[j] = v
                    rows.append(row)
    patches = pset.quantise(pset.to_normalised(np.array(rows)))
    _, first = np.unique(patches, axis=0, return_index=True)
    return patches[np.sort(first)].astype(np.float32)


def _read_settings(pset: ParameterSet, table: dict, name: str) -> list[dict[int, float]]:
    """The ``[plain]`` table's list ``name`` of settings, each as {column of ``pset``: native value}
    (parameters outside the set left out)."""
    try:
        column = pset.columns
        settings = []
        for setting in table.get(name, []):
            for location in setting:
                pset.profile.find(location)  # an unknown parameter is an error in the profile
            settings.append({column[loc]: float(v) for loc, v in setting.items() if loc in column})
    except (TypeError, ValueError, AttributeError) as exc:
        raise ProfileError(f"{pset.profile.name}: [plain] table: {exc}") from None
    return settings


def _filter_values(pset: ParameterSet, table: dict, key: float, name: str, fixed: str | None,
                   above_key: str | None) -> list[dict[int, float]]:
    """The values of the table's filter ``name`` for ``key``, each as {column: native value}: the
    list ``fixed`` and ``key`` + each of the list ``above_key``, clipped to its range ([{}]: the
    base preset's, when the filter or its values are missing or outside the set)."""
    try:
        column = pset.columns.get(str(table[name])) if name in table else None
        values = [float(c) for c in table.get(fixed, [])] if fixed else []
        values += [key + float(a) for a in table.get(above_key, [])] if above_key else []
    except (TypeError, ValueError, AttributeError) as exc:
        raise ProfileError(f"{pset.profile.name}: [plain] table: {exc}") from None
    if column is None or not values:
        return [{}]
    return [{column: _clipped(pset, column, v)} for v in values]


def _band_values(pset: ParameterSet, table: dict, key: float) -> list[dict[int, float]]:
    """The table's ``bands_above_key`` pairs for ``key``: the high-pass (``highpass``) and the
    low-pass (``cutoff``) that many semitones above it, each pair as {column: native value}; none
    when either filter is outside the set."""
    bands = table.get("bands_above_key", [])
    if not bands:
        return []
    try:
        high, low = (pset.columns.get(str(table[name])) for name in ("highpass", "cutoff"))
        pairs = [(float(above_high), float(above_low)) for above_high, above_low in bands]
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ProfileError(f"{pset.profile.name}: [plain] table's bands: {exc}") from None
    if high is None or low is None:  # a band needs both filters
        return []
    return [{high: _clipped(pset, high, key + above_high), low: _clipped(pset, low, key + above_low)}
            for above_high, above_low in pairs]


def _clipped(pset: ParameterSet, column: int, value: float) -> float:
    p = pset.parameters[column]
    return float(np.clip(value, p.low, p.high))


def filter_sweeps(pset: ParameterSet, patch: np.ndarray, decay: float) -> np.ndarray:
    """Variants (m, k) of ``patch`` (k,) normalised whose low-pass closes as a note that dies away
    with time constant ``decay`` (seconds) fades: a struck or plucked string loses its upper
    partials first, and a still filter keeps them to the end. For each ``sweeps`` pair (settle,
    depth) of the profile's ``[plain]`` table and each ``sweep_times`` factor, the cutoff settles
    ``settle`` semitones below the patch's and starts ``depth`` above that, its envelope (the
    table's ``sweep``: attack 0, sustain 0) decaying in factor x ``decay``. No rows (0, k) for a
    profile or set without them."""
    table = pset.profile.meta.get("plain")
    none = np.zeros((0, len(pset)), dtype=np.float32)
    if not isinstance(table, dict) or "sweep" not in table or "cutoff" not in table:
        return none
    try:
        column = pset.columns
        for role in SWEEP_ROLES:
            pset.profile.find(str(table["sweep"][role]))  # an unknown parameter is an error in the profile
        roles = {role: column.get(str(table["sweep"][role])) for role in SWEEP_ROLES}
        cutoff = column.get(str(table["cutoff"]))
        sweeps = [(float(settle), float(depth)) for settle, depth in table.get("sweeps", [])]
        times = [float(t) for t in table.get("sweep_times", [])]
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ProfileError(f"{pset.profile.name}: [plain] table's sweeps: {exc}") from None
    if cutoff is None or any(j is None for j in roles.values()):
        return none
    native = pset.from_normalised(np.asarray(patch, dtype=np.float64)[None, :])[0]
    low = pset.parameters[cutoff].low
    rows = []
    for settle, depth in sweeps:
        for factor in times:
            row = native.copy()
            row[cutoff] = max(low, native[cutoff] - settle)
            row[roles["depth"]], row[roles["attack"]], row[roles["sustain"]] = depth, 0.0, 0.0
            row[roles["decay"]] = knob(factor * decay)
            rows.append(row)
    if not rows:
        return none
    return pset.quantise(pset.to_normalised(np.array(rows))).astype(np.float32)


def detuned_pairs(pset: ParameterSet, patch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Variants (m, k) of ``patch`` (k,) normalised as a detuned pair, and the semitones (m,) each
    is to be played off the key: for each ``detunes`` value d (cents) of the profile's ``[plain]``
    table, oscillator 2 moved d sharper (first made a copy of oscillator 1 by the table's ``pair``
    entries when it is quieter than a quarter of it) and the note played d / 2 flat, so the pair is
    centred where the patch was (at the top of oscillator 2's range: d flatter, played d / 2 sharp).
    No rows for a profile or set without them."""
    table = pset.profile.meta.get("plain")
    none = np.zeros((0, len(pset)), dtype=np.float32), np.zeros(0)
    columns = [pset.role_column(r) for r in (OSC1_OCTAVE, OSC2_TUNE, OSC1_VOLUME, OSC2_VOLUME)]
    if not isinstance(table, dict) or "detunes" not in table or any(j is None for j in columns):
        return none
    tune1, tune2, volume1, volume2 = (int(j) for j in columns if j is not None)
    try:
        column = pset.columns
        for location in (*table.get("pair", {}).keys(), *table.get("pair", {}).values()):
            pset.profile.find(str(location))  # an unknown parameter is an error in the profile
        copies = [(column[str(to)], column[str(source)]) for to, source in table.get("pair", {}).items()
                  if str(to) in column and str(source) in column]
        detunes = [float(d) for d in table["detunes"]]
    except (TypeError, ValueError, AttributeError) as exc:
        raise ProfileError(f"{pset.profile.name}: [plain] table's detuned pair: {exc}") from None
    native = pset.from_normalised(np.asarray(patch, dtype=np.float64)[None, :])[0]
    silent = native[volume2] < 0.25 * native[volume1]
    start = native[tune1] if silent else native[tune2]
    rows, shifts = [], []
    for cents in detunes:
        sharper = start + cents / 100.0 <= pset.parameters[tune2].high  # else flatter, at the top of its range
        row = native.copy()
        if silent:
            for to, source in copies:
                row[to] = native[source]
        row[tune2] = start + (cents if sharper else -cents) / 100.0
        rows.append(row)
        shifts.append((-cents if sharper else cents) / 200.0)
    if not rows:
        return none
    return pset.quantise(pset.to_normalised(np.array(rows))).astype(np.float32), np.array(shifts)
