"""Augmentation: make rendered notes look like what musicians really record.

Pure numpy/scipy, driven by a ``numpy.random.Generator`` (the same seed gives the same result).
Two kinds of change:

- **at render time** (:func:`draw_performance`): the key is played slightly out of tune
  (detune, in cents) and released earlier than the end of the clip (the release is heard);
- **on the audio** (:func:`augment_audio`): gain and clipping, a room's reverb tail, added noise,
  an EQ tilt, a band limit (low sample-rate sources), a late start. Every note then goes through
  the same onset search and cut as a target at run time (:func:`deepdiva.core.audio.cut_note`).

A row's audio is changed at all with probability ``p_audio``; then each change applies with its
own probability. By default 70 % of the rows keep the synth's own sound: a first model trained
with every row exposed to every change (85 % of the rows altered) learnt the synth's own sounds
no better than one trained on 25x less clean data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.signal

from ..core.audio import cut_note
from ..core.errors import DatasetError


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each change; ``AugmentConfig.off()`` changes nothing."""

    p_detune: float = 0.2
    detune_cents: float = 30.0  # played up to this far off the key, uniformly
    p_short_note: float = 0.15
    short_note_seconds: tuple[float, float] = (0.15, 1.8)  # note-off time when released early
    p_audio: float = 0.35  # a row's audio is changed at all with this probability
    p_gain: float = 0.5
    gain_db: tuple[float, float] = (-6.0, 6.0)
    p_clip: float = 0.05
    clip_drive_db: tuple[float, float] = (6.0, 18.0)  # driven this much into a hard clip at full scale
    p_reverb: float = 0.3
    reverb_rt60: tuple[float, float] = (0.2, 2.0)  # seconds
    reverb_wet: tuple[float, float] = (0.1, 0.5)
    p_noise: float = 0.3
    noise_snr_db: tuple[float, float] = (20.0, 50.0)
    p_tilt: float = 0.3
    tilt_db_per_octave: float = 3.0  # up to this much brighter or darker, around 1 kHz
    p_band_limit: float = 0.1
    band_limit_hz: tuple[float, float] = (4000.0, 11025.0)
    p_late_start: float = 0.2
    late_start_seconds: float = 0.05  # leading silence before the note, up to this

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name.startswith("p_") and not 0.0 <= value <= 1.0:
                raise DatasetError(f"augmentation probability {name}={value} must be within 0..1")

    @classmethod
    def off(cls) -> AugmentConfig:
        off: dict[str, Any] = {k: 0.0 for k in asdict(cls()) if k.startswith("p_")}
        return cls(**off)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AugmentConfig:
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fields)


def draw_performance(cfg: AugmentConfig, rng: np.random.Generator, keys: np.ndarray,
                     note_length: float) -> tuple[np.ndarray, np.ndarray]:
    """How each note is played: MIDI pitch (key + detune) and note-off time, both (n,)."""
    n = len(keys)
    detune = np.where(rng.random(n) < cfg.p_detune, rng.uniform(-1, 1, n) * cfg.detune_cents / 100.0, 0.0)
    lo, hi = cfg.short_note_seconds
    short = rng.random(n) < cfg.p_short_note
    lengths = np.where(short, np.minimum(rng.uniform(lo, hi, n), note_length), note_length)
    return np.asarray(keys, dtype=np.float64) + detune, lengths


def _room(rng: np.random.Generator, rt60: float, sample_rate: int) -> np.ndarray:
    """A diffuse room: exponentially decaying noise (-60 dB at ``rt60``), unit energy."""
    n = max(16, int(min(rt60, 1.5) * sample_rate))
    t = np.arange(n) / sample_rate
    ir = rng.standard_normal(n) * 10 ** (-3.0 * t / rt60)
    return (ir / np.sqrt(np.sum(ir * ir))).astype(np.float32)


def _tilt(audio: np.ndarray, db_per_octave: float, sample_rate: int) -> np.ndarray:
    spec = np.fft.rfft(audio)
    f = np.fft.rfftfreq(audio.size, 1.0 / sample_rate)
    gain_db = np.clip(db_per_octave * np.log2(np.maximum(f, 20.0) / 1000.0), -12.0, 12.0)
    return np.fft.irfft(spec * 10 ** (gain_db / 20.0), n=audio.size).astype(np.float32)


def _band_limit(audio: np.ndarray, cutoff: float, sample_rate: int) -> np.ndarray:
    sos = scipy.signal.butter(8, cutoff, fs=sample_rate, output="sos")
    return scipy.signal.sosfiltfilt(sos, audio).astype(np.float32)


def augment_audio(cfg: AugmentConfig, rng: np.random.Generator, audio: np.ndarray,
                  sample_rate: int) -> np.ndarray:
    """Rendered notes (n, samples) -> recorded-like notes of the same shape, each cut at its
    onset as a target is at run time."""
    out = np.empty_like(audio, dtype=np.float32)
    n_samples = audio.shape[1]
    for i, clip in enumerate(np.asarray(audio, dtype=np.float32)):
        x = clip.copy()
        draws = rng.random(8)
        if rng.random() >= cfg.p_audio:
            draws[:] = 1.0  # this row keeps the synth's own sound (still cut at its onset)
        if draws[0] < cfg.p_reverb:
            ir = _room(rng, rng.uniform(*cfg.reverb_rt60), sample_rate)
            wet = rng.uniform(*cfg.reverb_wet)
            tail = scipy.signal.oaconvolve(x, ir)[:n_samples].astype(np.float32)
            dry_rms, wet_rms = np.sqrt(np.mean(x * x)), np.sqrt(np.mean(tail * tail))
            if wet_rms > 0:
                x = (1 - wet) * x + wet * tail * (dry_rms / wet_rms)
        if draws[1] < cfg.p_tilt:
            x = _tilt(x, rng.uniform(-1, 1) * cfg.tilt_db_per_octave, sample_rate)
        if draws[2] < cfg.p_band_limit:
            x = _band_limit(x, min(rng.uniform(*cfg.band_limit_hz), 0.45 * sample_rate), sample_rate)
        if draws[3] < cfg.p_noise:
            rms = np.sqrt(np.mean(x * x))
            if rms > 0:
                noise = rng.standard_normal((n_samples,)).astype(np.float32)
                if rng.random() < 0.5:  # pink-ish: integrate white noise gently
                    noise = scipy.signal.lfilter([1.0], [1.0, -0.95], noise).astype(np.float32)
                noise *= rms / np.sqrt(np.mean(noise * noise)) * 10 ** (-rng.uniform(*cfg.noise_snr_db) / 20)
                x = x + noise
        if draws[4] < cfg.p_gain:
            x = x * np.float32(10 ** (rng.uniform(*cfg.gain_db) / 20))
        if draws[5] < cfg.p_clip:
            x = np.clip(x * np.float32(10 ** (rng.uniform(*cfg.clip_drive_db) / 20)), -1.0, 1.0)
        if draws[6] < cfg.p_late_start:
            delay = int(rng.uniform(0, cfg.late_start_seconds) * sample_rate)
            x = np.concatenate([np.zeros(delay, dtype=np.float32), x])[:n_samples]
        out[i] = cut_note(x, sample_rate, n_samples)
    return out
