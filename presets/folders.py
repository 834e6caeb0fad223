"""Where presets go: Diva's preset folders per OS (user presets, our subfolder, a fallback),
and amsynth's user banks folder.

Everything that depends on the machine (OS name, home folder, environment) can be passed in,
so the search is testable for every OS on any OS.
"""

from __future__ import annotations

import logging
import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import PresetError

log = logging.getLogger(__name__)

OUR_SUBFOLDER = "deepdiva"
AMSYNTH = "amsynth"
# Windows: where an installer may put Diva.data beside the plugin (relative to an env folder).
_WINDOWS_PLUGIN_DIRS = (
    ("CommonProgramFiles", r"C:\Program Files\Common Files", ("VST3", "Diva.data")),
    ("CommonProgramFiles", r"C:\Program Files\Common Files", ("VST3", "u-he", "Diva.data")),
    ("CommonProgramFiles", r"C:\Program Files\Common Files", ("VST2", "u-he", "Diva.data")),
    ("CommonProgramFiles", r"C:\Program Files\Common Files", ("CLAP", "u-he", "Diva.data")),
    ("ProgramFiles", r"C:\Program Files", ("VSTPlugins", "u-he", "Diva.data")),
    ("ProgramFiles", r"C:\Program Files", ("Steinberg", "VSTPlugins", "u-he", "Diva.data")),
    ("SystemDrive", "C:", ("VstPlugins", "u-he", "Diva.data")),
)
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


@dataclass(frozen=True)
class PresetLocation:
    """The folder deepdiva writes presets into, and how it was chosen.

    ``fallback`` is True when no Diva install was found and ``folder`` is deepdiva's own
    data folder; ``root`` is the Diva data folder that was found (``None`` otherwise).
    """

    folder: Path
    root: Path | None
    fallback: bool
    searched: tuple[Path, ...] = ()


def diva_root_candidates(system: str | None = None, home: Path | None = None,
                         env: Mapping[str, str] | None = None,
                         system_root: Path | None = None) -> list[Path]:
    """Diva data folders to look for, in order.

    ``system`` is ``platform.system()`` (Darwin, Windows, Linux); ``system_root`` stands in
    for ``/`` (macOS) in tests; on Windows the plugin folders come from ``env``.
    """
    system = system or platform.system()
    env = os.environ if env is None else env
    if system == "Windows":
        home = home or Path(env.get("USERPROFILE") or Path.home())
        found = [home / "Documents" / "u-he" / "Diva.data"]
        for var, default, parts in _WINDOWS_PLUGIN_DIRS:
            base = env.get(var) or default
            found.append(Path(base + "/" if base.endswith(":") else base).joinpath(*parts))
        return found
    home = home or Path.home()
    if system == "Darwin":
        system_root = system_root or Path("/")
        return [home / "Library/Audio/Presets/u-he/Diva", system_root / "Library/Audio/Presets/u-he/Diva"]
    return [home / ".u-he" / "Diva", home / ".u-he" / "Diva.data"]


def find_diva_root(system: str | None = None, home: Path | None = None,
                   env: Mapping[str, str] | None = None, system_root: Path | None = None) -> Path | None:
    """The first existing Diva data folder, or ``None`` when Diva seems not installed."""
    return next((p for p in diva_root_candidates(system, home, env, system_root) if p.is_dir()), None)


def amsynth_data_dir(home: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """amsynth's data folder, as amsynth finds it on every OS: ``$XDG_DATA_HOME/amsynth``, by
    default ``~/.local/share/amsynth`` (amsynth makes it on its first start)."""
    env = os.environ if env is None else env
    home = home or Path(env.get("HOME") or Path.home())
    return Path(env.get("XDG_DATA_HOME") or home / ".local" / "share") / "amsynth"


def amsynth_banks_dir(home: Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The folder amsynth lists banks from (every file in it that is a bank, not its subfolders)."""
    return amsynth_data_dir(home, env) / "banks"


def user_presets_dir(root: Path) -> Path:
    """``UserPresets/Diva`` under a Diva root (``Presets/Diva`` on older installs)."""
    current, older = root / "UserPresets" / "Diva", root / "Presets" / "Diva"
    return older if older.is_dir() and not current.is_dir() else current


def default_data_dir() -> Path:
    """deepdiva's own preset folder, used when no Diva install is found."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("deepdiva")) / "presets"


def preset_location(explicit: str | Path | None = None, *, system: str | None = None,
                    home: Path | None = None, env: Mapping[str, str] | None = None,
                    system_root: Path | None = None, data_dir: Path | None = None,
                    create: bool = True, synth: str = "diva") -> PresetLocation:
    """Resolve where to write presets of ``synth`` (a profile name): ``explicit`` (config /
    ``--preset-dir``) if given, else the synth's own folder if it is installed, else deepdiva's data
    folder (with a warning; ``presets/amsynth`` in it for amsynth).

    Diva: ``<Diva root>/UserPresets/Diva/deepdiva``. amsynth: its banks folder
    (:func:`amsynth_banks_dir`), which amsynth does not search below, so no subfolder.
    ``create`` makes the folder (and parents) if needed.
    """
    if explicit is not None:
        location = PresetLocation(Path(explicit).expanduser(), None, False)
    else:
        if synth == AMSYNTH:
            searched: tuple[Path, ...] = (amsynth_data_dir(home, env),)
            root = searched[0] if searched[0].is_dir() else None
            folder = None if root is None else root / "banks"
            name, fallback = "amsynth data", (data_dir or default_data_dir()) / AMSYNTH
        else:
            searched = tuple(diva_root_candidates(system, home, env, system_root))
            root = next((p for p in searched if p.is_dir()), None)
            folder = None if root is None else user_presets_dir(root) / OUR_SUBFOLDER
            name, fallback = "u-he Diva preset", data_dir or default_data_dir()
        if folder is not None:
            location = PresetLocation(folder, root, False, searched)
        else:
            log.warning("no %s folder found (looked in %s); writing presets to %s. "
                        "Use --preset-dir to choose a folder.", name, ", ".join(map(str, searched)), fallback)
            location = PresetLocation(fallback, None, True, searched)
    if create:
        make_dir(location.folder)
    return location


def make_dir(folder: Path) -> None:
    """Create ``folder`` and its parents; :class:`PresetError` with a hint when that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PresetError(f"cannot create preset folder {folder}: {exc.strerror or exc}; "
                          "choose another with --preset-dir") from None


def safe_name(text: str, default: str = "deepdiva") -> str:
    """A file name stem without path separators or characters Windows forbids."""
    name = _UNSAFE.sub("_", text).strip(" .")[:100].strip(" .")
    return name or default
def preset_target(out: str | Path, suffixes: tuple[str, ...], name: str | None = None,
                  source: str | Path | None = None) -> Path:
    """``out`` itself when it ends in one of ``suffixes``, else ``out/<name or source stem><first suffix>``."""
    out = Path(out).expanduser()
    if out.suffix.lower() in (s.lower() for s in suffixes):
        return out
    return out / f"{safe_name(name or (Path(source).stem if source is not None else 'deepdiva'))}{suffixes[0]}"


