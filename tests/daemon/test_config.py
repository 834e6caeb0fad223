"""Daemon settings: defaults, TOML round trip, one clear error naming each bad key, CLI commands."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from deepdiva.cli import cli
from deepdiva.core.errors import ConfigError
from deepdiva.daemon.config import (
    SETTINGS,
    build_config,
    flatten,
    load_config,
    overrides_from_flags,
    render_toml,
    write_default_config,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "config.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    cfg = build_config({})
    assert (cfg.osc_host, cfg.osc_port, cfg.osc_tcp_port, cfg.osc_reply_port) == ("127.0.0.1", 9000, 9001, 9002)
    assert cfg.midi_port == "deepdiva" and cfg.midi_cc_mode == "7bit" and cfg.midi_enabled
    assert cfg.presets_folder is None and cfg.model_path is None
    assert cfg.files_allowed_roots == (Path.home(),)
    assert cfg.queue_size == 16 and cfg.audio_max_buffer_seconds == 10.0
    assert cfg.input_device is None


def test_rendered_file_round_trips(tmp_path: Path) -> None:
    cfg = build_config({}, {"osc.port": 9100, "files.allowed_roots": [str(tmp_path)], "audio.input_device": "3"})
    again = load_config(write(tmp_path, render_toml(cfg)))
    assert again.as_dict() == cfg.as_dict()
    assert again.input_device == 3


@pytest.mark.parametrize("text, key, words", [
    ("[osc]\nprot = 9000\n", "osc.prot", "unknown key"),
    ("[oscc]\nport = 9000\n", "[oscc]", "unknown section"),
    ("[osc]\nport = \"9000\"\n", "osc.port", "must be an integer"),
    ("[osc]\nport = 70000\n", "osc.port", "between 0 and 65535"),
    ("[osc]\nreply_port = 0\n", "osc.reply_port", "between 1 and 65535"),
    ("[osc]\nhost = \"my laptop\"\n", "osc.host", "IP address"),
    ("[midi]\nenabled = \"yes\"\n", "midi.enabled", "true or false"),
    ("[midi]\ncc_mode = \"nrpn\"\n", "midi.cc_mode", "7bit, 14bit"),
    ("[midi]\nport = \"\"\n", "midi.port", "MIDI port"),
    ("[queue]\nsize = 0\n", "queue.size", "between 1 and 10000"),
    ("[queue]\nsize = 2.5\n", "queue.size", "integer"),
    ("[audio]\nmax_buffer_seconds = -1\n", "audio.max_buffer_seconds", "between"),
    ("[audio]\nrecord_seconds = nan\n", "audio.record_seconds", "finite"),
    ("[audio]\nprobe_seconds = 3\n", "audio.probe_seconds", "between"),
    ("[files]\nallowed_roots = []\n", "files.allowed_roots", "non-empty list"),
    ("[drop]\nfolder = 3\n", "drop.folder", "string"),
    ("[osc.extra]\nx = 1\n", "osc.extra", "unknown key"),
    ("port = 9000\n", "port", "unknown section"),
    ("[osc]\nport = 9000\nreply_port = 9000\n", "osc.reply_port", "must differ"),
    ("[model]\ncandidates = 3\n", "model.candidates", "needs model.refine_seconds > 0"),
    ("[model]\ncandidates = 11\nrefine_seconds = 1.0\n", "model.candidates", "between 1 and 10"),
    ("[model]\nsynth = \"surge\"\n", "model.synth", "builtin, vst, renderman"),
    ("[model]\nbank = \"yes\"\n", "model.bank", "auto, on, off"),
    ("[model]\nbank = 1\n", "model.bank", "must be a string"),
    ("[model]\nsynth = \"builtin\"\nplugin_path = \"amsynth_vst.so\"\n", "model.plugin_path", "hosts no plugin"),
])
def test_invalid_values_name_the_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert key in message and words in message and str(path) in message
    assert "\n" not in message  # one line for the CLI


@pytest.mark.parametrize("text, bank", [("", "auto"), ("bank = true", "on"), ("bank = false", "off"),
                                        ('bank = "off"', "off"), ('bank = "auto"', "auto")])
def test_the_bank_switch_takes_true_and_false_too(tmp_path: Path, text: str, bank: str) -> None:
    assert load_config(write(tmp_path, f"[model]\n{text}\n")).model_bank == bank


def test_all_problems_in_one_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "[osc]\nport = \"x\"\n[queue]\nsize = -3\n[midi]\nmode = 1\n"))
    for key in ("osc.port", "queue.size", "midi.mode"):
        assert key in str(err.value)


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[osc\nport = 1\n"))


def test_explicit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist.*config init"):
        load_config(tmp_path / "nope.toml")


def test_overrides_win_and_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "[osc]\nport = 9100\n")
    assert load_config(path, {"osc.port": 9200}).osc_port == 9200
    with pytest.raises(ConfigError, match=r"--port \(osc.port\) must be between"):
        load_config(path, {"osc.port": -1})
    flags = {s.attr: None for s in SETTINGS} | {"osc_port": 1234, "files_allowed_roots": (), "midi_enabled": False}
    assert overrides_from_flags(flags) == {"osc.port": 1234, "midi.enabled": False}


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[drop]\nfolder = \"inbox\"\n[files]\nallowed_roots = \"~\"\n"))
    assert cfg.drop_folder == tmp_path.resolve() / "inbox"
    assert cfg.files_allowed_roots == (Path.home(),)
    assert cfg.source == (tmp_path / "config.toml").resolve()


def test_init_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "config.toml"
    assert write_default_config(target) == target
    target.write_text("# mine\n")
    with pytest.raises(ConfigError, match="already exists.*--force"):
        write_default_config(target)
    assert target.read_text() == "# mine\n"
    write_default_config(target, force=True)
    assert load_config(target).as_dict() == build_config({}).as_dict()


def test_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    build_config(flatten(data), source=EXAMPLE)  # valid as shipped
    for s in SETTINGS:
        assert re.search(rf"^\[{s.section}\]", text, re.M), s.section
        assert re.search(rf"^#?\s*{s.name} = ", text, re.M), f"{s.key} is not in examples/config.toml"


# --------------------------------------------------------------------------- the CLI

def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_cli_config_commands(tmp_path: Path) -> None:
    target = tmp_path / "c.toml"
    result = run("config", "init", "--path", str(target))
    assert result.exit_code == 0 and result.stdout.strip() == str(target)
    again = run("config", "init", "--path", str(target))
    assert again.exit_code == 2 and "already exists" in again.stderr
    shown = run("config", "show", "--config", str(target), "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["osc"]["port"] == 9000
    text = run("config", "show", "--config", str(target))
    assert "port = 9000" in text.stdout
    path = run("config", "path")
    assert path.exit_code == 0 and path.stdout.strip().endswith("config.toml")


def test_serve_refuses_a_bad_config_before_starting(tmp_path: Path) -> None:
    bad = write(tmp_path, "[osc]\nport = 99999\n")
    result = run("serve", "--config", str(bad), "--dry-run")
    assert result.exit_code == 2
    assert "osc.port" in result.stderr and "Traceback" not in result.output
    flag = run("serve", "--dry-run", "--queue-size", "0", "--journal-dir", str(tmp_path / "j"))
    assert flag.exit_code == 2 and "--queue-size (queue.size)" in flag.stderr
