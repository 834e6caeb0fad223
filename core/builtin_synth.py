"""The builtin synth: a numba-compiled subtractive voice that plays Diva's ``medium33`` set.

Pure signal code, no I/O. One note per parameter vector; every parameter outside the set is
fixed at the base preset ``MS-Rev1_deepdiva.h2p`` (Dual VCO Eco oscillators, MS-20 "Bite"
high-pass and low-pass filters, ENV2 and LFO2 routed as in that preset). What each part
approximates and where it differs from Diva is in ``core/BUILTIN_SYNTH.md``.

Signal flow per voice::

    LFO1 --vibrato--> osc1, osc2 pitch          ENV2 --> osc1 pitch, HPF and VCF cutoff
    LFO2 --> osc2 pitch, VCF cutoff             osc1 audio --filter FM--> VCF cutoff
    osc1 + osc2 -> HPF (2-pole) -> drive -> VCF (2-pole low-pass) -> VCA (ENV1) -> soft clip

Modulation runs at a control rate of one value per ``BLOCK`` samples; oscillator pitch, the
amp envelope and both filter cutoffs ramp linearly between control points, so nothing steps.
The audio path runs per sample in small passes per block: oscillators and filter
coefficients in loops that vectorise, then the filter recursion (which bounds the speed) in
a lean loop that keeps its state in registers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import prange

from .errors import RenderError
from .numba_cache import cached_njit
from .render import per_row

# Columns of a native parameter matrix, in the order of the profile's medium33 set.
PARAM_IDS: tuple[int, ...] = (33, 34, 35, 44, 45, 46, 47, 55, 57, 62, 65, 67, 72, 86, 87, 89, 90,
                              91, 92, 97, 98, 104, 106, 131, 132, 140, 141, 145, 148, 149, 151, 153, 155)
N_PARAMS = len(PARAM_IDS)
COLUMN_NAMES = ("ENV1_ATK", "ENV1_DEC", "ENV1_SUS", "ENV2_ATK", "ENV2_DEC", "ENV2_SUS", "ENV2_REL",
                "LFO1_SYNC", "LFO1_WAVE", "LFO1_RATE", "LFO2_SYNC", "LFO2_WAVE", "LFO2_RATE",
                "TUNE1", "TUNE2", "VIBRATO", "PULSE_WIDTH", "SHAPE1", "SHAPE2", "VOL1", "VOL2", "TUNE1_MOD",
                "TUNE2_MOD", "WAVE1", "WAVE2", "HPF_FREQ", "HPF_RES", "HPF_MOD", "VCF_FREQ", "VCF_RES",
                "VCF_MOD", "VCF_MOD2", "FILTER_FM")
(ENV1_ATK, ENV1_DEC, ENV1_SUS, ENV2_ATK, ENV2_DEC, ENV2_SUS, ENV2_REL,
 LFO1_SYNC, LFO1_WAVE, LFO1_RATE, LFO2_SYNC, LFO2_WAVE, LFO2_RATE,
 TUNE1, TUNE2, VIBRATO, PULSE_WIDTH, SHAPE1, SHAPE2, VOL1, VOL2, TUNE1_MOD, TUNE2_MOD,
 WAVE1, WAVE2, HPF_FREQ, HPF_RES, HPF_MOD, VCF_FREQ, VCF_RES, VCF_MOD, VCF_MOD2, FILTER_FM) = range(N_PARAMS)

# Diva's native ranges of those columns (as in core/profiles/diva.toml; a test checks it).
PARAM_LOW = np.array([0, 0, 0, 0, 0, 0, 0, -3, 0, -5, -3, 0, -5, -24, -30, 0, 0, 1, 1, 0, 0, -24, -24,
                      1, 1, 30, 0, -120, 0, 0, -120, -120, -24], dtype=np.float64)
PARAM_HIGH = np.array([100, 100, 100, 100, 100, 100, 100, 23, 7, 5, 23, 7, 5, 24, 30, 100, 100, 9, 9,
                       100, 100, 24, 24, 4, 4, 150, 100, 120, 150, 100, 120, 120, 24], dtype=np.float64)

BLOCK = 32                 # samples per control-rate step (1.38 kHz at 44.1 kHz)
TEMPO_BPM = 120.0          # tempo assumed by tempo-synced LFOs (there is no host)
VIBRATO_SEMITONES = 2.0    # LFO1 pitch depth at Vibrato = 100
OUTPUT_GAIN = 0.8          # VCA gain before the output soft clip
RES_COMP = 0.3             # VCF output gain (k/2)**RES_COMP: resonance peaks rise less than Q
DRIVE = 2.0                # VCF input level around which its input stage saturates
MAX_LFO_HZ = 300.0         # LFO rate ceiling (and at most a quarter of the control rate)
ATTACK_TARGET = 1.3        # analog-style attack: RC charge towards 1.3, decay starts at 1.0
MAX_DT = 0.45              # oscillator phase step ceiling (0.45 fs): keeps PolyBLEP valid
G_MAX = 6.3                # filter g ceiling, tan(0.45 pi): cutoff FM cannot pass 0.45 fs

ECO_WAVES_OSC1 = ("triangle", "saw", "pulse", "noise")   # OSC:Wave1 = 1..4
ECO_WAVES_OSC2 = ("triangle", "saw", "pulse", "sine")    # OSC:Wave2 = 1..4
LFO_WAVES = ("sine", "triangle", "saw up", "saw down", "square hi-lo", "square lo-hi",
             "random hold", "random glide")               # LFO:Wave = 0..7


def _sync_table(tempo_bpm: float) -> tuple[tuple[str, float], ...]:
    """(label, period in seconds) for LFO Sync = -3..23: three free time bases, then note values."""
    whole = 4.0 * 60.0 / tempo_bpm
    straight = [("1/64", 1 / 64), ("1/32", 1 / 32), ("1/16", 1 / 16), ("1/8", 1 / 8), ("1/4", 1 / 4),
                ("1/2", 1 / 2), ("1/1", 1.0), ("2/1", 2.0), ("4/1", 4.0), ("8/1", 8.0), ("16/1", 16.0),
                ("32/1", 32.0)]
    table = [("0.1 s", 0.1), ("1 s", 1.0), ("10 s", 10.0)]
    table += [(label, whole * n) for label, n in straight]
    table += [(label + " dot", whole * n * 1.5) for label, n in straight[:6]]
    table += [(label + " trip", whole * n * 2.0 / 3.0) for label, n in straight[:6]]
    return tuple(table)


SYNC_TABLE = _sync_table(TEMPO_BPM)
SYNC_PERIODS = np.array([period for _, period in SYNC_TABLE], dtype=np.float64)
_POW2 = 2.0 ** np.arange(-64, 65, dtype=np.float64)  # exact 2**k for exp2_fast

# No nnan/ninf: the clamps below must keep their meaning. error_model="numpy" drops the
# ZeroDivisionError checks that would otherwise keep helpers from being inlined.
_FAST = {"nsz", "arcp", "contract", "afn"}
# Every kernel caches on disk in the user cache (core/numba_cache.py), not beside this file.
_SCALAR: dict[str, Any] = {"error_model": "numpy"}
_INLINE: dict[str, Any] = {"error_model": "numpy", "fastmath": _FAST, "inline": "always"}


# ---------------------------------------------------------------------------------------------
# Fast scalar math
# ---------------------------------------------------------------------------------------------

@cached_njit(**_INLINE)
def exp2_fast(x: float) -> float:
    """2**x for |x| <= 64, relative error < 4e-6 (0.007 cent): 2**round(x) times a series."""
    x = min(max(x, -64.0), 64.0)
    k = math.floor(x + 0.5)
    f = (x - k) * 0.6931471805599453
    p = 1.0 + f * (1.0 + f * (0.5 + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0)))))
    return p * _POW2[int(k) + 64]


@cached_njit(**_INLINE)
def exp_fast(x: float) -> float:
    """exp(x) for |x| <= 3, relative error < 1e-3: a 4th-order series of x/8, squared thrice."""
    y = x * 0.125
    e = 1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6.0 + y * (1.0 / 24.0))))
    e *= e
    e *= e
    return e * e


@cached_njit(**_INLINE)
def tan_fast(x: float) -> float:
    """tan(x) for 0 <= x <= 0.45 pi by a (5,4) Pade approximant, relative error < 1e-4."""
    x2 = x * x
    return x * (945.0 - x2 * (105.0 - x2)) / (945.0 - x2 * (420.0 - 15.0 * x2))


@cached_njit(**_INLINE)
def soft_clip(x: float) -> float:
    """Cubic soft clipper: slope 1 at 0, exactly +-1 beyond +-1.5; cheaper than tanh."""
    c = min(max(x, -1.5), 1.5)
    return c - (4.0 / 27.0) * c * c * c


@cached_njit(**_INLINE)
def fast_sin(t: float) -> float:
    """sin(2 pi t) for t in [0, 1): refined parabola, absolute error < 0.0011."""
    u = t - 0.5
    p = 8.0 * u - 16.0 * u * abs(u)
    p = 0.225 * (p * abs(p) - p) + p
    return -p


@cached_njit(**_INLINE)
def wrap(t: float) -> float:
    return t - math.floor(t)


@cached_njit(**_INLINE)
def lcg_next(state: int) -> int:
    """32-bit linear congruential step (Numerical Recipes constants); exact in int64."""
    return (state * 1664525 + 1013904223) & 0xFFFFFFFF


@cached_njit(**_INLINE)
def lcg_uniform(state: int) -> float:
    """An LCG state as a float in [-1, 1)."""
    return state * (2.0 / 4294967296.0) - 1.0


# ---------------------------------------------------------------------------------------------
# Parameter scales (documented in BUILTIN_SYNTH.md)
# ---------------------------------------------------------------------------------------------

@cached_njit(**_SCALAR)
def env_time(value: float) -> float:
    """Envelope knob 0..100 -> seconds: 1 ms * 10**(value/25) (1 ms, 10 ms, 0.1 s, 1 s, 10 s)."""
    return 0.001 * 10.0 ** (value / 25.0)


@cached_njit(**_INLINE)
def note_hz(semitones: float) -> float:
    """MIDI-note scale (69 = 440 Hz), also the scale of Diva's filter cutoffs."""
    return 440.0 * exp2_fast((semitones - 69.0) * (1.0 / 12.0))


@cached_njit(**_SCALAR)
def resonance_k(res: float) -> float:
    """Resonance 0..100 -> SVF k = 1/Q, Q = 0.5 * 40**(res/100) (0.5 .. 20)."""
    return 2.0 / 40.0 ** (min(max(res, 0.0), 100.0) / 100.0)


@cached_njit(**_SCALAR)
def lfo_hz(sync: float, rate: float, sr: float) -> float:
    """LFO frequency: 2**Rate cycles per period of the Sync entry, capped at MAX_LFO_HZ and at
    a quarter of the control rate (the LFOs are sampled once per block)."""
    index = min(max(int(round(sync)) + 3, 0), SYNC_PERIODS.shape[0] - 1)
    return min(2.0 ** rate / SYNC_PERIODS[index], MAX_LFO_HZ, 0.25 * sr / BLOCK)


@cached_njit(**_SCALAR)
def pulse_duty(pulse_width: float) -> float:
    """PulseWidth 0..100 -> duty cycle 0.5 (square) .. 0.04 (narrow pulse)."""
    return 0.5 - 0.46 * min(max(pulse_width, 0.0), 100.0) / 100.0


@cached_njit(**_INLINE)
def cutoff_g(semitones: float, inv_sr: float) -> float:
    """TPT integrator gain tan(pi f / fs) of a cutoff on the note scale, f in [5 Hz, 0.45 fs]."""
    f = min(max(note_hz(semitones), 5.0), 0.45 / inv_sr)
    return tan_fast(math.pi * f * inv_sr)


# ---------------------------------------------------------------------------------------------
# Oscillators
# ---------------------------------------------------------------------------------------------

@cached_njit(**_INLINE)
def blep(t: float, dt: float, inv_dt: float) -> float:
    """PolyBLEP residual of a unit upward step; t = phase since the step, dt = phase step.

    Written as selects, not branches, so that the wave loops vectorise (dt <= 0.45, so at
    most one of the two cases holds).
    """
    x1 = t * inv_dt - 1.0
    x2 = (t - 1.0) * inv_dt + 1.0
    r = 0.5 * x2 * x2 if t > 1.0 - dt else 0.0
    return -0.5 * x1 * x1 if t < dt else r


@cached_njit(**_INLINE)
def blamp(t: float, dt: float, inv_dt: float) -> float:
    """PolyBLAMP residual of a unit slope change per sample (the integral of :func:`blep`)."""
    d = min(t, 1.0 - t)
    x = 1.0 - d * inv_dt
    return x * x * x * (1.0 / 6.0) if d < dt else 0.0


@cached_njit(**_INLINE)
def saw_wave(t: float, dt: float, inv_dt: float) -> float:
    """Falling band-limited saw (fundamental in phase with sin(2 pi t))."""
    return 1.0 - 2.0 * t + 2.0 * blep(t, dt, inv_dt)


@cached_njit(**_INLINE)
def tri_wave(t: float, dt: float, inv_dt: float) -> float:
    """Band-limited triangle, peak at t = 0.25."""
    u = wrap(t + 0.25)  # corners at u = 0 (minimum) and u = 0.5 (maximum)
    tri = 1.0 - 4.0 * abs(u - 0.5)
    return tri + 8.0 * dt * (blamp(u, dt, inv_dt) - blamp(wrap(u + 0.5), dt, inv_dt))


@cached_njit(**_INLINE)
def pulse_wave(t: float, dt: float, inv_dt: float, duty: float) -> float:
    """Band-limited pulse, high for t < duty, minus its DC (AC-coupled like a VCO)."""
    naive = 1.0 if t < duty else -1.0
    edges = 2.0 * (blep(t, dt, inv_dt) - blep(wrap(t - duty), dt, inv_dt))
    return naive + edges - (2.0 * duty - 1.0)


@cached_njit(**_SCALAR)
def wave_weights(wave: int, shape: float, pulse_width: float, osc: int) -> tuple:
    """(sine, sine2, tri, saw, pulse, noise, duty, morph) of one oscillator.

    Shape 1..9 morphs the selected Eco wave: 5 is the pure wave, below 5 it fades towards a
    softer neighbour, above 5 towards a brighter one (table in BUILTIN_SYNTH.md). ``morph``
    is (Shape - 5) / 4, used as the noise colour.
    """
    m = (min(max(shape, 1.0), 9.0) - 5.0) / 4.0
    lo = max(-m, 0.0)
    hi = max(m, 0.0)
    duty = pulse_duty(pulse_width)
    sine = sine2 = tri = saw = pulse = noise = 0.0
    if wave <= 1:                       # triangle: sine <- tri -> saw
        sine, tri, saw = lo, 1.0 - lo - hi, hi
    elif wave == 2:                     # saw: tri <- saw -> pulse
        tri, saw, pulse = lo, 1.0 - lo - hi, hi
    elif wave == 3:                     # pulse: saw <- pulse -> narrower pulse
        saw, pulse = lo, 1.0 - lo
        duty = duty * (1.0 - 0.85 * hi)
    elif osc == 1:                      # noise: dark <- white -> thin
        noise = 1.0
    else:                               # sine: + octave <- sine -> triangle
        sine, sine2, tri = 1.0 - hi, 0.5 * lo, hi
    return sine, sine2, tri, saw, pulse, noise, duty, m


@cached_njit(**_INLINE)
def osc_block(buf: np.ndarray, tbuf: np.ndarray, dbuf: np.ndarray, n: int, phase: float, dt: float,
              ddt: float, w_sine: float, w_sine2: float, w_tri: float, w_saw: float, w_pulse: float,
              duty: float) -> float:
    """Fill buf[:n] with a weighted mix of waves; returns the phase at the block end.

    The phase step ramps by ``ddt`` per sample. The phase has a closed form within a block and
    each wave has its own branch-free loop, so every loop vectorises; ``tbuf``/``dbuf`` are
    scratch space. The fundamentals of all waves are in phase, so mixing never cancels them.
    """
    for j in range(n):
        jj = j + 1.0
        ph = phase + jj * dt + ddt * (jj * (jj + 1.0) * 0.5)
        tbuf[j] = ph - math.floor(ph)
        dbuf[j] = dt + jj * ddt
        buf[j] = 0.0
    if w_sine != 0.0:
        for j in range(n):
            buf[j] += w_sine * fast_sin(tbuf[j])
    if w_sine2 != 0.0:
        for j in range(n):
            buf[j] += w_sine2 * fast_sin(wrap(2.0 * tbuf[j]))
    if w_tri != 0.0:
        for j in range(n):
            buf[j] += w_tri * tri_wave(tbuf[j], dbuf[j], 1.0 / dbuf[j])
    if w_saw != 0.0:
        for j in range(n):
            buf[j] += w_saw * saw_wave(tbuf[j], dbuf[j], 1.0 / dbuf[j])
    if w_pulse != 0.0:
        for j in range(n):
            buf[j] += w_pulse * pulse_wave(tbuf[j], dbuf[j], 1.0 / dbuf[j], duty)
    end = phase + n * dt + ddt * (n * (n + 1.0) * 0.5)
    return end - math.floor(end)


@cached_njit(**_INLINE)
def noise_block(buf: np.ndarray, n: int, rng: int, lp_coef: float, hp_coef: float, lp: float,
                hp: float) -> tuple:
    """Fill buf[:n] with coloured noise: a one-pole low-pass of white noise minus a one-pole
    low-pass of that (a high-pass); returns (rng, lp, hp)."""
    for j in range(n):
        rng = lcg_next(rng)
        lp += lp_coef * (lcg_uniform(rng) - lp)
        hp += hp_coef * (lp - hp)
        buf[j] = lp - hp
    return rng, lp, hp


# ---------------------------------------------------------------------------------------------
# Filters, mixer and VCA
# ---------------------------------------------------------------------------------------------

@cached_njit(**_INLINE)
def svf_coef_block(c: np.ndarray, row: int, n: int, g0: float, dg: float, k: float, fm: np.ndarray,
                   fm_depth: float) -> None:
    """Per-sample coefficients of a trapezoidal SVF into c[row:row+6, :n], see :func:`svf_step`.

    g = tan(pi f / fs) ramps linearly from ``g0`` by ``dg`` per sample and is scaled by
    exp(fm_depth * fm[j]) (audio-rate cutoff FM); k = 1/Q. Per-sample coefficients keep cutoff
    sweeps free of zipper noise; this loop vectorises, the filter loop does not, so everything
    that does not depend on the filter state is computed here.
    """
    for j in range(n):
        g = g0 + (j + 1.0) * dg
        if fm_depth != 0.0:  # loop-invariant: LLVM unswitches it
            g = min(g * exp_fast(fm_depth * fm[j]), G_MAX)
        a1 = 1.0 / (1.0 + g * (g + k))
        a2 = g * a1
        a3 = g * a2
        c[row, j] = a1
        c[row + 1, j] = a2
        c[row + 2, j] = a3
        c[row + 3, j] = 2.0 * a1 - 1.0
        c[row + 4, j] = 2.0 * a2
        c[row + 5, j] = 2.0 * a3


@cached_njit(**_INLINE)
def svf_step(v0: float, c: np.ndarray, row: int, j: int, k: float, ic1: float, ic2: float) -> tuple:
    """One step of a trapezoidal (TPT/ZDF) state-variable filter; returns (high, low, ic1, ic2).

    Simper's form with a1 = 1/(1 + g(g + k)), a2 = g a1, a3 = g a2 (in c[row:row+3, j], then
    2 a1 - 1, 2 a2, 2 a3); unconditionally stable for g, k > 0. The state update is written
    as a 2x2 matrix so that the states never wait for the outputs: the loop-carried chain is
    two FMAs, and this recursion is what bounds the speed of a voice.
    """
    v3 = v0 - ic2
    a2 = c[row + 1, j]
    b2 = c[row + 4, j]
    low = ic2 + a2 * ic1 + c[row + 2, j] * v3
    high = v0 - k * (c[row, j] * ic1 + a2 * v3) - low
    return high, low, c[row + 3, j] * ic1 + b2 * v3, ic2 + b2 * ic1 + c[row + 5, j] * v3


@cached_njit(**_INLINE)
def filter_block(b1: np.ndarray, b2: np.ndarray, c: np.ndarray, out: np.ndarray, vol1: float, vol2: float,
                 hk: float, lk: float, amp: float, damp: float, state: tuple) -> tuple:
    """Mixer -> HPF -> drive -> VCF -> VCA -> soft clip, into ``out``.

    ``c`` holds per-sample coefficients, rows 0-5 the HPF's and 6-11 the VCF's; ``amp`` ramps
    by ``damp`` (output gain included); ``state`` is (h1, h2, f1, f2), returned updated. The
    mix goes into ``b2`` first, in a loop that vectorises.
    """
    n = out.shape[0]
    for j in range(n):
        b2[j] = vol1 * b1[j] + vol2 * b2[j]
    h1, h2, f1, f2 = state
    for j in range(n):
        amp += damp
        hp, _, h1, h2 = svf_step(b2[j], c, 0, j, hk, h1, h2)
        # The saturating input stage sits outside the filter recursion: cheap and stable.
        x = DRIVE * soft_clip(hp * (1.0 / DRIVE))
        _, lp, f1, f2 = svf_step(x, c, 6, j, lk, f1, f2)
        out[j] = soft_clip(amp * lp)
    return h1, h2, f1, f2


# ---------------------------------------------------------------------------------------------
# Envelopes and LFOs (control rate)
# ---------------------------------------------------------------------------------------------

@cached_njit(**_INLINE)
def env_coefs(atk: float, dec: float, rel: float, n: int, sr: float) -> tuple:
    """Per-``n``-samples multipliers (attack, decay, release) of an exponential ADSR.

    The attack charges towards ATTACK_TARGET and reaches 1.0 after ``atk`` seconds; decay and
    release have time constants ``dec`` and ``rel`` seconds.
    """
    tau_a = atk / math.log(ATTACK_TARGET / (ATTACK_TARGET - 1.0))
    return math.exp(-n / (tau_a * sr)), math.exp(-n / (dec * sr)), math.exp(-n / (rel * sr))


@cached_njit(**_INLINE)
def env_step(level: float, stage: int, coefs: tuple, sus: float) -> tuple:
    """Advance an ADSR by one control step; stage 0 attack, 1 decay/sustain, 2 release."""
    ca, cd, cr = coefs
    if stage == 0:
        level = ATTACK_TARGET + (level - ATTACK_TARGET) * ca
        if level >= 1.0:
            return 1.0, 1
        return level, 0
    if stage == 1:
        return sus + (level - sus) * cd, 1
    return level * cr, 2


@cached_njit(**_INLINE)
def lfo_shape(phase: float, wave: int, r_prev: float, r_cur: float) -> float:
    """Bipolar LFO value at ``phase`` in [0, 1); r_prev/r_cur are the random steps."""
    if wave == 0:
        return fast_sin(phase)
    if wave == 1:
        return 4.0 * abs(wrap(phase + 0.75) - 0.5) - 1.0  # starts at 0, rising
    if wave == 2:
        return 2.0 * phase - 1.0
    if wave == 3:
        return 1.0 - 2.0 * phase
    if wave == 4:
        return 1.0 if phase < 0.5 else -1.0
    if wave == 5:
        return -1.0 if phase < 0.5 else 1.0
    if wave == 6:
        return r_cur
    return r_prev + (r_cur - r_prev) * phase


@cached_njit(**_INLINE)
def lfo_advance(phase: float, step: float, r_prev: float, r_cur: float, rng: int) -> tuple:
    """Advance an LFO phase by ``step`` cycles; a new random step at each cycle start."""
    phase += step
    while phase >= 1.0:
        phase -= 1.0
        rng = lcg_next(rng)
        r_prev, r_cur = r_cur, lcg_uniform(rng)
    return phase, r_prev, r_cur, rng


# ---------------------------------------------------------------------------------------------
# The voice
# ---------------------------------------------------------------------------------------------

@cached_njit(error_model="numpy", fastmath=_FAST)
def render_voice(p: np.ndarray, seed: int, sr: float, pitch: float, note_off: int, out: np.ndarray) -> None:
    """Render one note of native medium33 values ``p`` (float64[N_PARAMS]) into ``out``.

    The note starts at sample 0 and is released at ``note_off``; ``seed`` drives the noise
    and the random LFO waves.
    """
    n_total = out.shape[0]
    inv_sr = 1.0 / sr
    rng = (seed * 2654435761 + 12345) & 0xFFFFFFFF

    # Per-voice constants.
    a1t, d1t, sus1 = env_time(p[ENV1_ATK]), env_time(p[ENV1_DEC]), p[ENV1_SUS] / 100.0
    a2t, d2t, sus2, r2t = env_time(p[ENV2_ATK]), env_time(p[ENV2_DEC]), p[ENV2_SUS] / 100.0, env_time(p[ENV2_REL])
    env1_full = env_coefs(a1t, d1t, d1t, BLOCK, sr)  # ENV1 releases with its decay time (ADS)
    env2_full = env_coefs(a2t, d2t, r2t, BLOCK, sr)
    lfo1_step = lfo_hz(p[LFO1_SYNC], p[LFO1_RATE], sr) * inv_sr
    lfo2_step = lfo_hz(p[LFO2_SYNC], p[LFO2_RATE], sr) * inv_sr
    lfo1_wave, lfo2_wave = int(round(p[LFO1_WAVE])), int(round(p[LFO2_WAVE]))
    vib = VIBRATO_SEMITONES * p[VIBRATO] / 100.0
    base1, base2 = pitch + p[TUNE1], pitch + p[TUNE2]
    tm1, tm2 = p[TUNE1_MOD], p[TUNE2_MOD]
    vol1, vol2 = p[VOL1] / 100.0, p[VOL2] / 100.0
    wa1, wb1, wc1, wd1, we1, noise1, duty1, col1 = wave_weights(int(round(p[WAVE1])), p[SHAPE1], p[PULSE_WIDTH], 1)
    wa2, wb2, wc2, wd2, we2, _, duty2, _ = wave_weights(int(round(p[WAVE2])), p[SHAPE2], p[PULSE_WIDTH], 2)
    # Noise colour: the low-pass darkens below Shape 5 (20 kHz -> 220 Hz), the subtracted
    # low-pass thins it above (40 Hz -> 7 kHz).
    nz_lp_hz = min(20000.0 * 2.0 ** (6.5 * min(col1, 0.0)), 0.45 * sr)
    noise_lp = 1.0 - math.exp(-2.0 * math.pi * nz_lp_hz * inv_sr)
    noise_hp = 0.0 if col1 <= 0.0 else 1.0 - math.exp(-2.0 * math.pi * 40.0 * 2.0 ** (7.5 * col1) * inv_sr)
    hk, lk = resonance_k(p[HPF_RES]), resonance_k(p[VCF_RES])
    gain = OUTPUT_GAIN * (0.5 * lk) ** RES_COMP
    ffm = p[FILTER_FM] * (math.log(2.0) / 12.0)  # semitones per unit of osc 1 -> natural log
    hpf_freq, hpf_mod = p[HPF_FREQ], p[HPF_MOD]
    vcf_freq, vcf_mod, vcf_mod2 = p[VCF_FREQ], p[VCF_MOD], p[VCF_MOD2]

    # Control state at t = 0: envelopes at 0, LFOs restarted at phase 0 (Restart = gate).
    e1, st1, e2, st2 = 0.0, 0, 0.0, 0
    ph1, ph2 = 0.0, 0.0
    rng = lcg_next(rng)
    r1p, r1c = 0.0, lcg_uniform(rng)
    rng = lcg_next(rng)
    r2p, r2c = 0.0, lcg_uniform(rng)
    l1 = lfo_shape(0.0, lfo1_wave, r1p, r1c)
    l2 = lfo_shape(0.0, lfo2_wave, r2p, r2c)
    dt1 = min(note_hz(base1 + vib * l1) * inv_sr, MAX_DT)
    dt2 = min(note_hz(base2 + tm2 * l2 + vib * l1) * inv_sr, MAX_DT)
    gh = cutoff_g(hpf_freq, inv_sr)
    gl = cutoff_g(vcf_freq + vcf_mod2 * l2, inv_sr)

    # Audio state.
    o1_phase, o2_phase = 0.0, 0.0
    nz_lp = nz_hp = 0.0
    filters = (0.0, 0.0, 0.0, 0.0)
    buf1 = np.zeros(BLOCK)
    buf2 = np.zeros(BLOCK)
    tbuf = np.zeros(BLOCK)
    dbuf = np.zeros(BLOCK)
    coefs = np.zeros((12, BLOCK))

    start = 0
    while start < n_total:
        end = min(start + BLOCK, n_total)
        if start < note_off < end:
            end = note_off  # a block boundary exactly at note-off keeps the release sample-exact
        n = end - start
        if start == note_off:
            st1, st2 = 2, 2
        # Control values at the end of this block.
        if n == BLOCK:
            c1, c2 = env1_full, env2_full
        else:
            c1, c2 = env_coefs(a1t, d1t, d1t, n, sr), env_coefs(a2t, d2t, r2t, n, sr)
        e1n, st1 = env_step(e1, st1, c1, sus1)
        e2, st2 = env_step(e2, st2, c2, sus2)
        ph1, r1p, r1c, rng = lfo_advance(ph1, n * lfo1_step, r1p, r1c, rng)
        ph2, r2p, r2c, rng = lfo_advance(ph2, n * lfo2_step, r2p, r2c, rng)
        l1 = lfo_shape(ph1, lfo1_wave, r1p, r1c)
        l2 = lfo_shape(ph2, lfo2_wave, r2p, r2c)
        dt1n = min(note_hz(base1 + tm1 * e2 + vib * l1) * inv_sr, MAX_DT)
        dt2n = min(note_hz(base2 + tm2 * l2 + vib * l1) * inv_sr, MAX_DT)
        ghn = cutoff_g(hpf_freq + hpf_mod * e2, inv_sr)
        gln = cutoff_g(vcf_freq + vcf_mod * e2 + vcf_mod2 * l2, inv_sr)
        inv_n = 1.0 / n

        if noise1 != 0.0:
            rng, nz_lp, nz_hp = noise_block(buf1, n, rng, noise_lp, noise_hp, nz_lp, nz_hp)
        else:
            o1_phase = osc_block(buf1, tbuf, dbuf, n, o1_phase, dt1, (dt1n - dt1) * inv_n, wa1, wb1, wc1, wd1, we1, duty1)
        if vol2 != 0.0:
            o2_phase = osc_block(buf2, tbuf, dbuf, n, o2_phase, dt2, (dt2n - dt2) * inv_n, wa2, wb2, wc2, wd2, we2, duty2)
        else:
            buf2[:n] = 0.0
        svf_coef_block(coefs, 0, n, gh, (ghn - gh) * inv_n, hk, buf1, 0.0)
        svf_coef_block(coefs, 6, n, gl, (gln - gl) * inv_n, lk, buf1, ffm)
        filters = filter_block(buf1, buf2, coefs, out[start:end], vol1, vol2, hk, lk, gain * e1,
                               gain * (e1n - e1) * inv_n, filters)
        dt1, dt2, e1, gh, gl = dt1n, dt2n, e1n, ghn, gln
        start = end


# nogil: other threads (the daemon's OSC and watcher inputs) keep running while a batch renders
@cached_njit(error_model="numpy", nogil=True)
def _render_serial(params: np.ndarray, seeds: np.ndarray, sr: float, pitches: np.ndarray, note_offs: np.ndarray,
                   out: np.ndarray) -> None:
    for v in range(params.shape[0]):
        render_voice(params[v], seeds[v], sr, pitches[v], note_offs[v], out[v])


@cached_njit(error_model="numpy", parallel=True, nogil=True)
def _render_parallel(params: np.ndarray, seeds: np.ndarray, sr: float, pitches: np.ndarray, note_offs: np.ndarray,
                     out: np.ndarray) -> None:
    for v in prange(params.shape[0]):
        render_voice(params[v], seeds[v], sr, pitches[v], note_offs[v], out[v])


# ---------------------------------------------------------------------------------------------
# Python entry points
# ---------------------------------------------------------------------------------------------

def voice_seeds(native: np.ndarray) -> np.ndarray:
    """One noise seed per row, an FNV-style hash of the values: a patch always sounds the
    same whatever batch it is rendered in, and no global RNG is touched."""
    bits = (np.ascontiguousarray(native, dtype=np.float64) + 0.0).view(np.uint64)  # -0.0 -> 0.0
    h = np.full(bits.shape[0], 0xCBF29CE484222325, dtype=np.uint64)
    for j in range(bits.shape[1]):
        h = (h ^ bits[:, j]) * np.uint64(0x100000001B3)  # uint64 products wrap, as intended
        h ^= h >> np.uint64(29)
    return (h & np.uint64(0x7FFFFFFF)).astype(np.int64)


def render_batch(native: np.ndarray, sample_rate: int = 44100, midi_pitch: float | np.ndarray = 48,
                 velocity: int = 127, note_length: float | np.ndarray = 2.0, render_length: float = 2.0,
                 parallel: bool = False) -> np.ndarray:
    """Render native medium33 values (n, N_PARAMS) -> float32 (n, samples), peak <= 1.

    ``midi_pitch`` (fractional: cents) and ``note_length`` (seconds to the note-off) are one
    value for the batch or one per row. Values are clipped to Diva's ranges. Velocity 0 is no
    note (silence); any other velocity sounds the same, as the base preset routes velocity
    nowhere. ``parallel`` spreads the batch over numba's threads (``NUMBA_NUM_THREADS``); the
    default stays on one core, since dataset workers already run one process per core. The
    first call compiles (cached on disk in the user cache, see ``numba_cache``).
    """
    params = np.asarray(native, dtype=np.float64)
    if params.ndim == 1:
        params = params[None, :]
    if params.ndim != 2 or params.shape[1] != N_PARAMS:
        raise RenderError(f"expected native parameters of shape (n, {N_PARAMS}), got {np.shape(native)}")
    if not np.isfinite(params).all():
        raise RenderError("native parameters contain NaN or infinite values")
    params = np.ascontiguousarray(np.clip(params, PARAM_LOW, PARAM_HIGH))
    n_samples = int(round(render_length * sample_rate))
    out = np.zeros((params.shape[0], n_samples), dtype=np.float32)
    if velocity <= 0 or params.shape[0] == 0 or n_samples == 0:
        return out
    n = params.shape[0]
    pitches = per_row(midi_pitch, n, "MIDI pitch")
    note_offs = np.rint(per_row(note_length, n, "note length") * sample_rate).astype(np.int64)
    seeds = voice_seeds(params)
    kernel = _render_parallel if parallel else _render_serial
    kernel(params, seeds, float(sample_rate), pitches, note_offs, out)
    return out
