"""One match job at the edge: audio file in, preset (and preview wav) written, report out.

Shared by ``deepdiva match`` and the daemon, so both validate, name and write files the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.audio import DEFAULT_MAX_SECONDS, AudioClip, prepare_note, read_audio
from ..core.matcher import Match, Matcher
from ..core.pitch import Pitch
from .diva import write_diva_preset
from .render import write_wav

AUDIO_SUFFIXES = {".wav", ".wave", ".flac", ".aif", ".aiff", ".ogg", ".oga", ".mp3", ".caf", ".w64"}


@dataclass(frozen=True)
class AlternativeReport:
    preset: Path
    preview: Path | None
    distance: float

    def as_dict(self) -> dict:
        return {"preset": str(self.preset), "preview": str(self.preview) if self.preview else None,
                "distance": round(self.distance, 6)}


@dataclass(frozen=True)
class MatchReport:
    source: str
    preset: Path
    preview: Path | None
    match: Match
    alternatives: tuple[AlternativeReport, ...] = ()

    def as_dict(self, matcher: Matcher) -> dict:
        out = {"source": self.source, "preset": str(self.preset),
               "preview": str(self.preview) if self.preview else None,
               **self.match.as_dict(matcher.parameter_set)}
        if self.alternatives:
            out["alternatives"] = [a.as_dict() for a in self.alternatives]
        return out


def expand_targets(targets: list[str | Path]) -> list[Path]:
    """Files as given; folders expanded to the audio files directly inside them, sorted."""
    out: list[Path] = []
    for t in targets:
        p = Path(t).expanduser()
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES
                              and not f.name.startswith(".")))
        else:
            out.append(p)
    return out


def match_clip(matcher: Matcher, clip: AudioClip, out: str | Path, name: str | None = None,
               preview: bool = True, refine_seconds: float = 0.0, seed: int = 0,
               candidates: int = 1, score: bool = True) -> MatchReport:
    """Match an in-memory clip and write its preset (+ preview) into ``out`` (folder or .h2p).

    With ``candidates`` > 1 the search's distinct runners-up are written beside it as
    ``<name> alt 2.h2p``, ``<name> alt 3.h2p``, ... (each with its preview). ``score=False``
    (network only) skips measuring the answer's distance to the target.
    """
    note = prepare_note(clip, matcher.sample_rate, matcher.seconds)
    result = matcher.match(note, refine_seconds, seed=seed, candidates=candidates, score=score, render=preview)
    preset, wav = _write(matcher, result.params, result.audio, result.distance, out, name, clip.source, preview,
                         result.played)
    alternatives = []
    for rank, alt in enumerate(result.alternatives, start=2):
        path, alt_wav = _write(matcher, alt.params, alt.audio, alt.distance, preset.parent,
                               f"{preset.stem} alt {rank}", clip.source, preview, result.played)
        alternatives.append(AlternativeReport(path, alt_wav, alt.distance))
    return MatchReport(clip.source, preset, wav, result, tuple(alternatives))


def _write(matcher: Matcher, params: np.ndarray, audio: np.ndarray | None, distance: float | None,
           out: str | Path, name: str | None, source: str, preview: bool, played: Pitch) -> tuple[Path, Path | None]:
    preset = write_diva_preset(matcher.parameter_set, params, out, name=name, source=source, distance=distance,
                               pitch=played)
    wav = write_wav(preset.with_suffix(".wav"), audio, matcher.sample_rate) if preview and audio is not None else None
    return preset, wav


def match_file(matcher: Matcher, path: str | Path, out: str | Path, name: str | None = None,
               preview: bool = True, refine_seconds: float = 0.0, seed: int = 0,
               max_seconds: float = DEFAULT_MAX_SECONDS, candidates: int = 1, score: bool = True) -> MatchReport:
    """Read, validate and match one audio file; nothing is written when the input is bad."""
    clip = read_audio(path, max_seconds)
    return match_clip(matcher, clip, out, name, preview, refine_seconds, seed, candidates, score)
