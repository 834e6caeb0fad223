"""``deepdiva audio inputs``: the table (default marked), JSON, an empty list and a missing PortAudio.

The command against real devices (a dummy JACK server): tests/daemon/test_recorder.py.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from deepdiva.cli import cli
from deepdiva.core.errors import AudioError
from deepdiva.daemon import recorder
from deepdiva.daemon.recorder import InputDevice

DEVICES = [InputDevice(0, "Built-in Microphone", "Core Audio", 1, 48000, default=True),
           InputDevice(3, "Scarlett 2i2 USB", "Core Audio", 2, 44100)]


@pytest.fixture
def devices(monkeypatch) -> list[InputDevice]:
    found = list(DEVICES)
    monkeypatch.setattr(recorder, "list_input_devices", lambda refresh=False: found)
    return found


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_inputs_table_marks_the_default(devices) -> None:
    result = run("audio", "inputs")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    mic = next(line for line in lines if "Built-in Microphone" in line)
    usb = next(line for line in lines if "Scarlett" in line)
    assert mic.split()[:2] == ["*", "0"] and "1 ch" in mic and "48000 Hz" in mic
    assert usb.split()[0] == "3" and "2 ch" in usb and "44100 Hz" in usb


def test_inputs_json(devices) -> None:
    result = run("audio", "inputs", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [d["index"] for d in listed] == [0, 3]
    assert listed[0] == {"index": 0, "name": "Built-in Microphone", "hostapi": "Core Audio", "channels": 1,
                         "default_samplerate": 48000, "default": True}
    assert listed[1]["default"] is False


def test_no_inputs(devices) -> None:
    devices.clear()
    assert run("audio", "inputs").stdout.strip() == "no audio input devices"
    assert json.loads(run("audio", "inputs", "--json").stdout) == []


def test_missing_portaudio_is_a_one_line_error(monkeypatch) -> None:
    def unavailable(refresh=False):
        raise AudioError("audio input is unavailable: no PortAudio (on Debian/Ubuntu: apt install libportaudio2)")

    monkeypatch.setattr(recorder, "list_input_devices", unavailable)
    result = run("audio", "inputs")
    assert result.exit_code == 2
    assert "error: audio input is unavailable" in result.output and "Traceback" not in result.output


def test_a_wrong_input_device_in_the_config_names_the_command(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[audio]\ninput_device = -1\n", encoding="utf-8")
    result = run("config", "show", "--config", str(config))
    assert result.exit_code == 2
    assert "audio.input_device" in result.output and "`deepdiva audio inputs`" in result.output
