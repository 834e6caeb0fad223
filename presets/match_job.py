"""One match job at the edge: audio file in, preset (and preview wav) written, report out.

Shared by ``deepdiva match`` and the daemon, so both validate, name and write files the same way.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.audio import DEFAULT_MAX_SECONDS, AudioClip, Take, prepare_take, read_audio
from ..core.errors import AudioError, DeepDivaError
from ..core.filenames import fit_name, inside_roots, printable
from ..core.matcher import Match, Matcher
from .formats import PresetFormat, preset_format
from .render import write_wav

AUDIO_SUFFIXES = {".wav", ".wave", ".flac", ".aif", ".aiff", ".ogg", ".oga", ".mp3", ".caf", ".w64"}


@dataclass(frozen=True)
class AlternativeReport:
    preset: Path
    preview: Path | None
    distance: float
    params: tuple[float, ...] = ()  # normalised

    def as_dict(self) -> dict:
        return {"preset": str(self.preset), "preview": str(self.preview) if self.preview else None,
                "distance": round(self.distance, 6), "normalised": [round(v, 6) for v in self.params]}


@dataclass(frozen=True)
class MatchReport:
    source: str
    preset: Path
    preview: Path | None
    match: Match
    take: Take  # the take as matched (core.audio.prepare_take)
    alternatives: tuple[AlternativeReport, ...] = ()

    @property
    def target(self) -> np.ndarray:
        """The prepared note that was matched (trimmed, mono, at the synth's rate) and what the take
        held after it (up to ``AFTER_SECONDS``): as long as the preview, to listen to side by side."""
        return np.concatenate([self.take.note, self.take.after]) if self.take.after.size else self.take.note

    @property
    def raised_db(self) -> float:
        """How far a quiet take was raised before matching."""
        return self.take.raised_db

    @property
    def restored(self) -> int:
        """Clipped samples of the take filled in before matching (core.declip)."""
        return self.take.restored

    @property
    def hiss_dbfs(self) -> float | None:
        """The noise floor the match looked through, as the take was recorded (before it was raised)."""
        return None if self.match.hiss_dbfs is None else self.match.hiss_dbfs - self.raised_db

    def as_dict(self, matcher: Matcher) -> dict:
        out = {"source": self.source, "preset": str(self.preset),
               "preview": str(self.preview) if self.preview else None,
               **self.match.as_dict(matcher.parameter_set), **self.take.as_dict()}
        if self.hiss_dbfs is not None:
            out["noise_floor_dbfs"] = round(self.hiss_dbfs, 1)
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


@contextmanager
def open_input(path: str | Path, roots: Sequence[Path] | None = None) -> Iterator[str]:
    """Open an input file once; yield a name for it that any library can open and that reaches
    this very file, however its folders change meanwhile.

    With ``roots`` the file actually opened must lie inside one of them (checked on the open
    file: a folder swapped for a symlink after a request was accepted gets nothing read). On
    POSIX the name is ``/dev/fd/N``: soundfile encodes names strictly (bytes that are not UTF-8
    fail) and opens by name again. Errors raised in the block name the file, not that alias.
    """
    shown = printable(str(path))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)  # a pipe must not block
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise AudioError(f"{shown}: no such audio file") from None
    except OSError as exc:
        raise AudioError(f"{shown}: cannot open it: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise AudioError(f"{shown}: not an audio file (a folder, device or pipe)")
        if roots is not None and not inside_roots(_opened_path(fd, Path(path)), roots):
            raise AudioError(f"refused: {shown} leads outside the folders deepdiva may read "
                             "(files.allowed_roots); nothing was read")
        alias = _fd_name(fd) or os.fspath(path)
        try:
            yield alias
        except DeepDivaError as exc:
            if alias == os.fspath(path) or alias not in str(exc):
                raise
            raise type(exc)(str(exc).replace(alias, shown)) from None
    finally:
        os.close(fd)


def _fd_name(fd: int) -> str | None:
    """``/dev/fd/N`` if it names the open file ``fd`` here (Linux, macOS, BSD), else None."""
    name = f"/dev/fd/{fd}"
    try:
        st, via = os.fstat(fd), os.stat(name)
    except OSError:
        return None
    return name if (st.st_dev, st.st_ino) == (via.st_dev, via.st_ino) else None


def _opened_path(fd: int, path: Path) -> Path:
    """The real path of the file open as ``fd`` (not of whatever ``path`` names by now)."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))  # Linux
    except OSError:
        pass
    try:
        import fcntl

        if hasattr(fcntl, "F_GETPATH"):  # macOS
            return Path(os.fsdecode(fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024)).split(b"\0", 1)[0]))
    except (ImportError, OSError):
        pass
    real = path.resolve()  # elsewhere: the name as it is now, if it still is the file opened
    st, now = os.fstat(fd), os.stat(real)
    if (st.st_dev, st.st_ino) != (now.st_dev, now.st_ino):
        raise AudioError(f"refused: {printable(str(path))} changed while it was being opened; nothing was read")
    return real


def read_input(path: str | Path, max_seconds: float = DEFAULT_MAX_SECONDS,
               roots: Sequence[Path] | None = None) -> AudioClip:
    """:func:`~deepdiva.core.audio.read_audio` for any name the OS allows (see :func:`open_input`)."""
    with open_input(path, roots) as name:
        clip = read_audio(name, max_seconds, printable(str(path)))
    return clip.named(os.fspath(path))


def preset_target(out: str | Path, name: str | None = None, source: str | Path | None = None,
                  fmt: PresetFormat | None = None) -> Path:
    """Where a preset of format ``fmt`` (default: Diva's) goes (``out`` or ``out/<name or source
    stem>.h2p``), its name printable and short enough for the file system."""
    fmt = fmt or preset_format("diva")
    path = fmt.target(out, printable(name) if name else None, printable(os.fspath(source)) if source else None)
    return path.with_name(fit_name(path.stem, path.suffix))


def match_clip(matcher: Matcher, clip: AudioClip, out: str | Path, name: str | None = None,
               preview: bool = True, refine_seconds: float = 0.0, seed: int = 0,
               candidates: int = 1, score: bool = True) -> MatchReport:
    """Match an in-memory clip and write its preset (+ preview) into ``out`` (folder or preset file),
    in the format of the model's synth (:mod:`.formats`: ``.h2p`` for Diva, ``.bank`` for amsynth).

    With ``candidates`` > 1 the search's distinct runners-up are written beside it as
    ``<name> alt 2.h2p``, ``<name> alt 3.h2p``, ... (each with its preview). ``score=False``
    (network only) skips measuring the answer's distance to the target.
    """
    take = prepare_take(clip, matcher.sample_rate, matcher.seconds)
    result = matcher.match(take.note, refine_seconds, seed=seed, candidates=candidates, score=score, render=preview,
                           lead_in=take.lead_in, after=take.after)
    preset, wav = _write(matcher, result.params, result.audio, result.distance, out, name, clip.source, preview,
                         result)
    alternatives = []
    for rank, alt in enumerate(result.alternatives, start=2):
        path, alt_wav = _write(matcher, alt.params, alt.audio, alt.distance,
                               preset.parent / fit_name(preset.stem, preset.suffix, f" alt {rank}"), None, clip.source,
                               preview, result)
        alternatives.append(AlternativeReport(path, alt_wav, alt.distance, tuple(float(v) for v in alt.params)))
    return MatchReport(clip.source, preset, wav, result, take, tuple(alternatives))


def _write(matcher: Matcher, params: np.ndarray, audio: np.ndarray | None, distance: float | None,
           out: str | Path, name: str | None, source: str, preview: bool, match: Match) -> tuple[Path, Path | None]:
    """One preset of ``match`` (the answer's or an alternative's ``params``) and its preview."""
    fmt = preset_format(matcher.parameter_set.profile.name)
    preset = fmt.write(matcher.parameter_set, params, preset_target(out, name, source, fmt), source=printable(source),
                       distance=distance, pitch=match.played, fixed=matcher.renderer.fixed,  # what the preview played
                       chord=match.chord)
    wav = write_wav(preset.with_suffix(".wav"), audio, matcher.sample_rate) if preview and audio is not None else None
    return preset, wav


def match_file(matcher: Matcher, path: str | Path, out: str | Path, name: str | None = None,
               preview: bool = True, refine_seconds: float = 0.0, seed: int = 0,
               max_seconds: float = DEFAULT_MAX_SECONDS, candidates: int = 1, score: bool = True) -> MatchReport:
    """Read, validate and match one audio file; nothing is written when the input is bad."""
    clip = read_input(path, max_seconds)
    return match_clip(matcher, clip, out, name, preview, refine_seconds, seed, candidates, score)
