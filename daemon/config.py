"""The daemon's settings: one table of keys (type, default, range, help, CLI flag), read from TOML.

``SETTINGS`` is the single source: the loader validates against it, ``config init`` writes a
documented file from it and ``deepdiva serve`` makes one override flag per entry. Every problem
(unknown key, wrong type, value out of range) becomes one :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import ipaddress
import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..core.atomic import write_atomic
from ..core.errors import ConfigError
from ..core.limits import MAX_CANDIDATES, MAX_REFINE_SECONDS
from ..core.names import RENDERER_KINDS

APP = "deepdiva"
DEFAULT_WEB_PORT = 9003  # a name, so the test suite can make it 0 (any free port)
CC_MODES = ("7bit", "14bit")


def default_config_path() -> Path:
    """``<user config dir>/deepdiva/config.toml`` (platformdirs)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP)) / "config.toml"


def _data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP))


def _state_dir() -> Path:
    from platformdirs import user_state_dir

    return Path(user_state_dir(APP))


@dataclass(frozen=True)
class Setting:
    """One configuration key.

    ``kind``: bool, int, port, float, str, device (a name or an index), host, choice, path,
    optional_path (``""`` = automatic), paths (a list). ``default`` may be a callable for platform-dependent values.
    """

    key: str
    kind: str
    default: Any
    help: str
    flag: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def attr(self) -> str:
        return self.key.replace(".", "_")

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]

    def default_value(self) -> Any:
        value = self.default() if callable(self.default) else self.default
        return list(value) if isinstance(value, list | tuple) else value


SETTINGS: tuple[Setting, ...] = (
    Setting("drop.enabled", "bool", True, "Watch the drop folder.", "--watch/--no-watch"),
    Setting("drop.folder", "path", lambda: _data_dir() / "drop",
            "Drop folder: audio files put here are matched, then moved to done/ or failed/.", "--drop-folder"),
    Setting("drop.settle_seconds", "float", 1.0, "A dropped file counts as complete once its size and "
            "mtime stay unchanged this long, on every OS (writers that reopen the file for each chunk "
            "pause between chunks; keep it above their pauses).", "--settle-seconds",
            0.05, 600.0),
    Setting("drop.rescan_seconds", "float", 30.0, "Rescan the drop folder this often (events can be missed).",
            "--rescan-seconds", 0.5, 86400.0),
    Setting("presets.folder", "optional_path", "", "Where presets go; empty: Diva's "
            "UserPresets/Diva/deepdiva folder, amsynth's banks folder for an amsynth model (or deepdiva's "
            "data folder when the synth's folder is not found).", "--preset-dir"),
    Setting("presets.preview", "bool", True, "Also write a preview .wav of each matched preset.",
            "--preview/--no-preview"),
    Setting("model.path", "optional_path", "", "ONNX model with its .json card; empty: the shipped model.",
            "--model"),
    Setting("model.synth", "choice", "", "Renderer of each answer's score, the refinement and the preview: "
            "builtin, vst (a plugin through DawDreamer) or renderman; empty: the synth the model card names. "
            "One that cannot play the model's synth stops the daemon at start.", "--synth",
            choices=("", *RENDERER_KINDS)),
    Setting("model.plugin_path", "optional_path", "", "The plugin for model.synth vst or renderman; its file "
            "name must contain the model's synth profile (diva, amsynth).", "--plugin-path"),
    Setting("model.render_workers", "int", 1, "Plugin hosts the refinement renders on, one process each "
            "(model.synth vst or renderman; a plugin is not thread-safe): 2 uses both cores of a 2-core machine.",
            "--render-workers", 1, 64),
    Setting("model.refine_seconds", "float", 0.0, "Seconds of search refinement per match (0: network only).",
            "--refine", 0.0, MAX_REFINE_SECONDS),
    Setting("model.candidates", "int", 1, "Presets per match: with refinement, also publish up to N-1 "
            "clearly different runners-up of the search ('<name> alt 2.h2p', ...); an OSC request may ask "
            "for its own number.", "--candidates", 1, MAX_CANDIDATES),
    Setting("model.bank", "choice", "auto", "Also choose each answer among (and start each search from) the "
            "8 of 20,000 rendered patches that sound nearest to the target: auto = with the bank that ships "
            "for the model's parameter set (the shipped model's does), on = also with one built once into the "
            "user cache for other models (before the first match: about half a minute for the builtin "
            "synth), off. true and false mean on and off.", "--bank", choices=("auto", "on", "off")),
    Setting("model.score", "bool", True, "Network only: re-render each answer and measure its distance to "
            "the target (in /deepdiva/result and the preset's description); off: distance NaN, the preset "
            "~10 ms sooner. A refinement always measures.", "--score/--no-score"),
    Setting("osc.enabled", "bool", True, "Run the OSC servers (UDP and TCP).", "--osc/--no-osc"),
    Setting("osc.host", "host", "127.0.0.1", "Interface to listen on; 0.0.0.0 listens beyond this machine.",
            "--host"),
    Setting("osc.port", "port", 9000, "UDP port for OSC requests (0: any free port).", "--port", 0, 65535),
    Setting("osc.tcp_port", "port", 9001, "TCP port for OSC 1.1 (SLIP) requests, e.g. audio buffers "
            "(0: any free port).", "--tcp-port", 0, 65535),
    Setting("osc.reply_port", "port", 9002, "UDP port replies go to on the sender's host, unless it "
            "declared another with /deepdiva/hello.", "--reply-port", 1, 65535),
    Setting("osc.tcp_idle_seconds", "float", 300.0, "A TCP connection that sends and receives nothing for "
            "this long is closed (one still owed a result waits up to an hour).", "--tcp-idle-seconds",
            1.0, 86400.0),
    Setting("osc.max_pending_mb", "float", 128.0, "Memory for unfinished chunked buffers and partly received "
            "TCP packets, all senders together; past it the oldest are dropped and their senders told.",
            "--max-pending-mb", 1.0, 65536.0),
    Setting("web.enabled", "bool", True, "Serve the web page: drop or record a sound, hear target and match "
            "back to back, see their spectrograms, pick a candidate.", "--web/--no-web"),
    Setting("web.host", "host", "127.0.0.1", "Interface the web page listens on; beyond this machine "
            "(e.g. 0.0.0.0, for a phone) it needs the token printed at start (in the URL).", "--web-host"),
    Setting("web.port", "port", lambda: DEFAULT_WEB_PORT, "TCP port of the web page (0: any free port).",
            "--web-port", 0, 65535),
    Setting("web.tls", "choice", "auto", "HTTPS for the page with a self-signed certificate made once (a "
            "browser lets a page record from the microphone only over HTTPS or on this machine): auto = "
            "when web.host listens beyond this machine, on, off.", "--web-tls", choices=("auto", "on", "off")),
    Setting("web.max_upload_mb", "float", 64.0, "Largest audio file the page accepts.", "--max-upload-mb",
            0.1, 2048.0),
    Setting("web.history", "int", 50, "Finished matches the page keeps to listen to again (also after a "
            "restart), in the journal folder's results/.", "--web-history", 1, 10000),
    Setting("midi.enabled", "bool", True, "Send matched parameters as MIDI CC.", "--midi/--no-midi"),
    Setting("midi.port", "str", "deepdiva", "MIDI output port: a virtual port of this name (macOS, Linux) "
            "or an existing port (Windows: e.g. a loopMIDI port).", "--midi-port"),
    Setting("midi.cc_mode", "choice", "7bit", "7bit: one CC per parameter; 14bit: MSB on CC n, LSB on n+32.",
            "--cc-mode", choices=CC_MODES),
    Setting("midi.cc_map", "optional_path", "", "CC map file; empty: the profile's map.", "--cc-map"),
    Setting("audio.input_device", "device", "", "Input device for /deepdiva/record: a name or an index as "
            "'deepdiva audio inputs' lists them; empty: the system default.", "--input-device"),
    Setting("audio.record_seconds", "float", 2.0, "Default recording length.", "--record-seconds", 0.1, 60.0),
    Setting("audio.probe_seconds", "float", 0.2, "Length of the check, before each recording, that the "
            "input delivers anything but exact zeros (a missing microphone permission records zeros "
            "without an error); 0 turns it off, e.g. for a loopback input that is digitally silent "
            "until you play.", "--probe-seconds", 0.0, 2.0),
    Setting("audio.max_buffer_seconds", "float", 10.0, "Longest audio buffer accepted over OSC.",
            "--max-buffer-seconds", 0.1, 600.0),
    Setting("files.allowed_roots", "paths", lambda: [Path.home()], "/deepdiva/match/file only reads files "
            "inside these folders (symlinks and '..' are resolved first).", "--allow-root"),
    Setting("queue.size", "int", 16, "Jobs waiting at most; more requests get /deepdiva/busy.",
            "--queue-size", 1, 10000),
    Setting("queue.journal", "path", lambda: _state_dir() / "journal",
            "Journal folder: accepted jobs survive a crash here and are redone after a restart.",
            "--journal-dir"),
)
BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(s.section for s in SETTINGS))


@dataclass(frozen=True)
class DaemonConfig:
    """Validated settings; attribute names are the keys with ``.`` -> ``_`` (``osc.port`` -> ``osc_port``)."""

    drop_enabled: bool
    drop_folder: Path
    drop_settle_seconds: float
    drop_rescan_seconds: float
    presets_folder: Path | None
    presets_preview: bool
    model_path: Path | None
    model_synth: str
    model_plugin_path: Path | None
    model_render_workers: int
    model_refine_seconds: float
    model_candidates: int
    model_bank: str
    model_score: bool
    osc_enabled: bool
    osc_host: str
    osc_port: int
    osc_tcp_port: int
    osc_reply_port: int
    osc_tcp_idle_seconds: float
    osc_max_pending_mb: float
    web_enabled: bool
    web_host: str
    web_port: int
    web_tls: str
    web_max_upload_mb: float
    web_history: int
    midi_enabled: bool
    midi_port: str
    midi_cc_mode: str
    midi_cc_map: Path | None
    audio_input_device: str
    audio_record_seconds: float
    audio_probe_seconds: float
    audio_max_buffer_seconds: float
    files_allowed_roots: tuple[Path, ...]
    queue_size: int
    queue_journal: Path
    source: Path | None = None  # the file read, if any

    def get(self, key: str) -> Any:
        return getattr(self, BY_KEY[key].attr)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Nested ``{section: {name: value}}`` with plain TOML/JSON types."""
        out: dict[str, dict[str, Any]] = {}
        for s in SETTINGS:
            out.setdefault(s.section, {})[s.name] = _plain(self.get(s.key))
        return out

    @property
    def input_device(self) -> str | int | None:
        """The device as sounddevice wants it: an index, a name, or ``None`` for the default."""
        text = self.audio_input_device.strip()
        return None if not text else int(text) if text.isdigit() else text


assert {f.name for f in fields(DaemonConfig)} - {"source"} == {s.attr for s in SETTINGS}


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- validation

def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str | int | float | bool) else repr(value)


def convert(setting: Setting, value: Any, base: Path | None = None) -> Any:
    """Check and convert one raw value; raises ``ValueError`` with the reason (without the key).

    ``base`` resolves relative paths (the config file's folder; the working folder for flags).
    """
    kind = setting.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {_shown(value)} ({_type_name(value)})")
        return value
    if kind in ("int", "port"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, got {_shown(value)} ({_type_name(value)})")
        _check_range(setting, value)
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {_shown(value)} ({_type_name(value)})")
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"must be a finite number, got {value}")
        _check_range(setting, value)
        return float(value)
    if kind == "device" and not isinstance(value, str):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return str(value)
        raise ValueError(f"must be an input device's name or index (`deepdiva audio inputs` lists them), "
                         f"got {_shown(value)} ({_type_name(value)})")
    if kind == "paths":
        if isinstance(value, str | Path):
            value = [value]
        elif isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list) or not value:
            raise ValueError(f"must be a non-empty list of folders, got {_shown(value)}")
        return tuple(_path(v, base) for v in value)
    if kind == "choice" and isinstance(value, bool) and {"on", "off"} <= set(setting.choices):
        value = "on" if value else "off"  # a switch with an automatic setting also takes true / false
    if not isinstance(value, str | Path):
        raise ValueError(f"must be a string, got {_shown(value)} ({_type_name(value)})")
    text = str(value)
    if kind == "choice":
        if text not in setting.choices:
            raise ValueError(f"must be one of {', '.join(setting.choices)}, got {_shown(text)}")
        return text
    if kind == "host":
        return _host(text)
    if kind == "optional_path":
        return None if not text.strip() else _path(text, base)
    if kind == "path":
        if not text.strip():
            raise ValueError("must be a folder path, got an empty string")
        return _path(text, base)
    if kind == "str" and setting.key == "midi.port" and not text.strip():
        raise ValueError("must name a MIDI port, got an empty string (use midi.enabled = false to turn MIDI off)")
    return text


def _check_range(setting: Setting, value: float) -> None:
    if setting.low is not None and value < setting.low or setting.high is not None and value > setting.high:
        low = int(setting.low) if float(setting.low).is_integer() else setting.low  # type: ignore[arg-type]
        high = int(setting.high) if float(setting.high).is_integer() else setting.high  # type: ignore[arg-type]
        raise ValueError(f"must be between {low} and {high}, got {value}")


def _path(value: Any, base: Path | None) -> Path:
    if not isinstance(value, str | Path) or not str(value).strip():
        raise ValueError(f"must be a folder path, got {_shown(value)}")
    path = Path(str(value)).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return path


def _host(text: str) -> str:
    if text == "localhost":
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"must be an IP address like 127.0.0.1 or 0.0.0.0, got {_shown(text)}") from None


def _cross_checks(values: Mapping[str, Any]) -> list[str]:
    problems = []
    reply, port = values["osc.reply_port"], values["osc.port"]
    if reply == port and values["osc.host"] in ("127.0.0.1", "::1", "0.0.0.0", "::"):
        problems.append(f"osc.reply_port must differ from osc.port ({port}): replies would come back to "
                        "deepdiva itself")
    web = values["web.port"]
    if values["web.enabled"] and web and web in (values["osc.tcp_port"], values["osc.port"]):
        problems.append(f"web.port ({web}) must differ from osc.port and osc.tcp_port")
    if values["model.plugin_path"] is not None and values["model.synth"] == "builtin":
        problems.append("model.plugin_path is set but model.synth = builtin hosts no plugin: use vst or renderman")
    if values["model.candidates"] > 1 and values["model.refine_seconds"] <= 0:
        problems.append("model.candidates > 1 needs model.refine_seconds > 0: the alternatives come from the search")
    return problems


def build_config(raw: Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
                 source: Path | None = None, where: str = "config") -> DaemonConfig:
    """Validate flat ``{key: value}`` from a file (``raw``) and from flags (``overrides``).

    Every problem is collected; one :class:`ConfigError` lists them, each naming its key.
    """
    problems: list[str] = []
    values: dict[str, Any] = {}
    base: Path | None = source.parent if source is not None else None
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    for key in list(raw) + list(overrides):
        if key not in BY_KEY:
            problems.append(_unknown_key(key))
    for s in SETTINGS:
        value_base: Path | None
        if s.key in overrides:
            value, value_base, origin = overrides[s.key], Path.cwd(), f"{s.flag.split('/')[0]} ({s.key})"
        elif s.key in raw:
            value, value_base, origin = raw[s.key], base, s.key
        else:
            values[s.key] = convert(s, s.default_value())
            continue
        try:
            values[s.key] = convert(s, value, value_base)
        except ValueError as exc:
            problems.append(f"{origin} {exc}")
    if not problems:
        problems += _cross_checks(values)
    if problems:
        head = f"invalid {where}" + (f" {source}" if source is not None else "")
        raise ConfigError(f"{head}: " + "; ".join(dict.fromkeys(problems)))
    return DaemonConfig(**{BY_KEY[k].attr: v for k, v in values.items()}, source=source)


def _unknown_key(key: str) -> str:
    section = key.split(".", 1)[0]
    if section not in SECTIONS:
        return f"unknown section [{section}] (key {key}; sections: {', '.join(SECTIONS)})"
    known = ", ".join(s.name for s in SETTINGS if s.section == section)
    return f"unknown key {key} (keys in [{section}]: {known})"


def flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """``{section: {name: value}}`` -> ``{"section.name": value}``; a top-level scalar stays as is."""
    flat: dict[str, Any] = {}
    for section, body in data.items():
        if isinstance(body, Mapping):
            for name, value in body.items():
                if isinstance(value, Mapping):
                    flat[f"{section}.{name}.*"] = value  # too deep: reported as an unknown key
                else:
                    flat[f"{section}.{name}"] = value
        else:
            flat[section] = body
    return flat


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> DaemonConfig:
    """Read ``path`` (default: the platform config file, if it exists) and apply ``overrides``.

    An explicitly given file must exist; the default file is optional (defaults apply).
    """
    explicit = path is not None
    file = Path(path).expanduser() if path is not None else default_config_path()
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist; create one with 'deepdiva config init'")
        return build_config({}, overrides)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid config {file}: not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {file}: {exc}") from None
    return build_config(flatten(data), overrides, source=file.resolve())


# --------------------------------------------------------------------------- writing

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string


def render_toml(config: DaemonConfig | None = None, comments: bool = True) -> str:
    """A complete config file: every key with its value (default: the defaults) and its help."""
    values = (config or build_config({})).as_dict()
    lines = ["# deepdiva daemon settings ('deepdiva serve'); every key can also be set with a flag,",
             "# e.g. --port 9000 (see 'deepdiva serve --help'). Relative paths are relative to this file.", ""]
    if not comments:
        lines = []
    for section in SECTIONS:
        lines.append(f"[{section}]")
        for s in (s for s in SETTINGS if s.section == section):
            if comments:
                lines.extend(f"# {line}" for line in _wrap(s.help + _default_note(s)))
            lines.append(f"{s.name} = {_toml_value(values[section][s.name])}")
        lines.append("")
    return "\n".join(lines)


def _default_note(s: Setting) -> str:
    if callable(s.default):
        return " (default depends on the platform)"
    return f" Flag: {s.flag}." if s.flag else ""


def _wrap(text: str, width: int = 96) -> Iterable[str]:
    import textwrap

    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def write_default_config(path: str | Path | None = None, force: bool = False,
                         text: Callable[[], str] = render_toml) -> Path:
    """``deepdiva config init``: write a documented config; never replaces a file unless ``force``."""
    target = Path(path).expanduser() if path is not None else default_config_path()
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists; edit it, or use --force to replace it with the defaults")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        content = text()
        return write_atomic(target, lambda tmp: tmp.write_text(content, encoding="utf-8"), overwrite=True)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None


def show_config(config: DaemonConfig, as_json: bool = False) -> str:
    """``deepdiva config show``: the effective settings as TOML (or JSON)."""
    if as_json:
        return json.dumps({"source": str(config.source) if config.source else None, **config.as_dict()},
                          indent=2)
    head = f"# from {config.source}" if config.source else "# defaults (no config file)"
    return head + "\n" + render_toml(config, comments=False)


def overrides_from_flags(values: Mapping[str, Any]) -> dict[str, Any]:
    """``deepdiva serve`` flag values (by attribute name) -> ``{key: value}`` for those given."""
    return {s.key: values[s.attr] for s in SETTINGS
            if values.get(s.attr) is not None and values.get(s.attr) != ()}
