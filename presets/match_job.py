"""One match job at the edge: audio file in, preset (and preview wav) written, report out.

Shared by ``deepdiva match`` and the daemon, so both validate, name and write files the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.audio import DEFAULT_MAX_SECONDS, AudioClip, prepare_note, read_audio
from ..core.matcher import Match, Matcher
from .diva import write_diva_preset
from .render import write_wav

AUDIO_SUFFIXES = {".wav", ".wave", ".flac", ".aif", ".aiff", ".ogg", ".oga", ".mp3", ".caf", ".w64"}


@dataclass(frozen=True)
class MatchReport:
    source: str
    preset: Path
    preview: Path | None
    match: Match

    def as_dict(self, matcher: Matcher) -> dict:
        return {"source": self.source, "preset": str(self.preset),
                "preview": str(self.preview) if self.preview else None,
                **self.match.as_dict(matcher.parameter_set)}


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
               preview: bool = True, refine_seconds: float = 0.0, seed: int = 0) -> MatchReport:
    """Match an in-memory clip and write its preset (+ preview) into ``out`` (folder or .h2p)."""
    note = prepare_note(clip, matcher.sample_rate, matcher.seconds)
    result = matcher.match(note, refine_seconds, seed=seed)
    preset = write_diva_preset(matcher.parameter_set, result.params, out, name=name, source=clip.source,
                               distance=result.distance)
    wav = None
    if preview:
        wav = write_wav(preset.with_suffix(".wav"), np.asarray(result.audio), matcher.sample_rate)
    return MatchReport(clip.source, preset, wav, result)


def match_file(matcher: Matcher, path: str | Path, out: str | Path, name: str | None = None,
               preview: bool = True, refine_seconds: float = 0.0, seed: int = 0,
               max_seconds: float = DEFAULT_MAX_SECONDS) -> MatchReport:
    """Read, validate and match one audio file; nothing is written when the input is bad."""
    clip = read_audio(path, max_seconds)
    return match_clip(matcher, clip, out, name, preview, refine_seconds, seed)
