"""Recording through sounddevice from the JACK dummy server: a tone, silence, errors.

PortAudio's JACK host API lists every JACK client with audio ports as a device; a client
with output ports is an *input* device. So a JACK-Client process playing a sine is a
microphone these tests control; the dummy driver's ``system`` capture ports are the silent one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from daemon_helpers import run_child

from deepdiva.core.errors import AudioError
from deepdiva.daemon import recorder
from deepdiva.daemon.recorder import list_input_devices, record

pytestmark = pytest.mark.jack

FREQ = 440.0


# The tone runs in a process of its own: a Python JACK process callback in the test process
# can deadlock with its own deactivate() under load, and would fight the recorder for the GIL.
TONE_SCRIPT = """
import os, sys
import numpy as np
import jack

name, amplitude, freq = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
client = jack.Client(name, no_start_server=True)
port = client.outports.register("out_1")
rate = client.samplerate
# One second of sine holds a whole number of cycles: loop it, no per-period math.
table = (amplitude * np.sin(2 * np.pi * freq * np.arange(rate) / rate)).astype(np.float32)
position = 0


@client.set_process_callback
def process(frames):
    global position
    port.get_array()[:] = table[(position + np.arange(frames)) % rate]
    position = (position + frames) % rate


client.activate()
print(client.name, flush=True)
sys.stdin.read()  # until the test closes our stdin
os._exit(0)  # the server drops a client whose process ended; no deactivate() to hang in
"""


class Tone:
    """A JACK client (in a child process) whose output port plays a sine forever."""

    def __init__(self, name: str, amplitude: float, env: dict[str, str] | None = None) -> None:
        pytest.importorskip("jack", reason="JACK-Client (pip, test extra) is needed to play a tone")
        self.proc = subprocess.Popen([sys.executable, "-c", TONE_SCRIPT, name, str(amplitude), str(FREQ)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        watchdog = threading.Timer(30, self.proc.kill)  # a child that never starts must not hang us
        watchdog.start()
        self.name = self.proc.stdout.readline().strip()
        watchdog.cancel()
        assert self.name, f"the tone client {name!r} did not start (exit code {self.proc.poll()})"

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def portaudio(jack_server) -> Iterator[None]:
    """PortAudio (re)initialised against the test server; released before the server stops."""
    list_input_devices(refresh=True)  # sounddevice may have been imported before the server ran
    yield
    import sounddevice as sd

    sd._terminate()  # the next user of deepdiva's recorder initialises PortAudio again


def tone_device(name: str, amplitude: float, wait_for) -> tuple[Tone, str]:
    tone = Tone(name, amplitude)
    found = wait_for(lambda: [d for d in list_input_devices(refresh=True) if d.name == tone.name],
                     10, f"PortAudio to list the JACK client {name!r}")
    return tone, found[0].name


@pytest.fixture
def sine(portaudio, wait_for) -> Iterator[str]:
    tone, device = tone_device(f"dd-sine-{os.getpid()}", 0.5, wait_for)
    yield device
    tone.close()


def test_records_a_tone(sine: str) -> None:
    clip = record(0.5, device=sine)
    assert clip.sample_rate == 44100  # the device's (JACK server's) native rate
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert clip.samples.size == 22050
    assert 0.4 < np.max(np.abs(clip.samples)) <= 0.51
    spectrum = np.abs(np.fft.rfft(clip.samples * np.hanning(clip.samples.size)))
    assert abs(np.argmax(spectrum) * clip.sample_rate / clip.samples.size - FREQ) < 5
    assert sine in clip.source


def test_records_on_a_worker_thread(sine: str) -> None:
    with ThreadPoolExecutor(1) as pool:
        clip = pool.submit(record, 0.3, sine).result(timeout=30)
    assert clip.samples.size == 13230 and np.max(np.abs(clip.samples)) > 0.4


def test_unsupported_rate_falls_back_to_native(sine: str) -> None:
    clip = record(0.2, device=sine, sample_rate=48000)
    assert clip.sample_rate == 44100 and clip.samples.size == 8820


def test_listed_devices(sine: str) -> None:
    devices = {d.name: d for d in list_input_devices()}
    assert devices[sine].channels == 1 and devices[sine].hostapi == "JACK Audio Connection Kit"
    assert devices["system"].channels == 2 and devices["system"].default


def test_audio_inputs_command_lists_the_jack_input(sine: str, jack_server, tmp_path) -> None:
    # The real command in a process of its own: a fresh PortAudio lists what JACK has now.
    def inputs(*flags: str) -> str:
        done = subprocess.run([sys.executable, "-m", "deepdiva", "audio", "inputs", *flags], cwd=tmp_path,
                              env=jack_server.env(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = {d["name"]: d for d in json.loads(inputs("--json"))}
    assert listed[sine]["channels"] == 1 and listed[sine]["default_samplerate"] == 44100
    assert not listed[sine]["default"] and listed["system"]["default"]
    lines = inputs().splitlines()
    assert any(line.startswith("*") and "system" in line for line in lines)
    tone_line = next(line for line in lines if sine in line)
    assert int(tone_line.split()[0]) == listed[sine]["index"] and "1 ch, 44100 Hz" in tone_line


def test_no_default_input_names_the_command_that_lists_them() -> None:
    class NoDefault:  # sounddevice as it is on a machine without a default input
        class default:
            device = (-1, -1)

    with pytest.raises(AudioError, match="no default audio input device") as refused:
        recorder._resolve(NoDefault, None)
    assert "`deepdiva audio inputs`" in str(refused.value) and "list_input_devices" not in str(refused.value)


def test_all_zero_input_is_reported_as_a_permission_problem(portaudio) -> None:
    list_input_devices(refresh=True)
    with pytest.raises(AudioError, match="the input is silent: check the input device / microphone permission"):
        record(1.0, device="system")  # the dummy driver captures exact zeros
    with pytest.raises(AudioError, match="silent"):
        record(0.3)  # the default input is the same silent one
    # without the probe (audio.probe_seconds = 0, for loopback inputs) the level check still refuses it
    with pytest.raises(AudioError, match="the audio is silent") as refused:
        record(0.3, device="system", probe_seconds=0)
    assert "permission" not in str(refused.value)


def test_quiet_recording_is_refused_by_the_level_check(portaudio, wait_for) -> None:
    tone, device = tone_device(f"dd-quiet-{os.getpid()}", 1e-4, wait_for)  # -80 dBFS: not zeros
    try:
        with pytest.raises(AudioError, match=r"the audio is silent \(peak -80"):
            record(0.3, device=device)
    finally:
        tone.close()


def test_bad_requests(portaudio) -> None:
    with pytest.raises(AudioError, match="recording length"):
        record(0)
    with pytest.raises(AudioError, match="recording length"):
        record(float("nan"))
    with pytest.raises(AudioError, match="'no-such-input'.*inputs: 0: system.*`deepdiva audio inputs`"):
        record(0.2, device="no-such-input")



def test_an_input_that_appears_later_is_found(portaudio, wait_for) -> None:
    list_input_devices()  # PortAudio's device list is now fixed ...
    tone = Tone(f"dd-late-{os.getpid()}", 0.5)  # ... and this input joins after it
    try:
        clip = wait_for(lambda: record(0.3, device=tone.name), 30, "the late input")
        assert np.max(np.abs(clip.samples)) > 0.4
    finally:
        tone.close()


# In a child process: libjack's process-wide state is fragile once a server dies under it.
RESTART_CHILD = """
import sys
from deepdiva.core.errors import AudioError
from deepdiva.daemon import recorder
from deepdiva.daemon.recorder import record

def refused():
    try:
        record(0.3, device="system")
    except AudioError as exc:
        return str(exc)
    raise AssertionError("recorded sound from a silent or stopped server")

assert "delivered only zeros" in refused()  # PortAudio holds a client on the running server
print("stop", flush=True)
assert sys.stdin.readline().strip() == "go"
message = refused()  # and must neither hang nor abort when that server is gone
assert "cannot record from 'system'" in message, message
assert "a fresh connection to the audio system failed too" in message, message
print("start", flush=True)
assert sys.stdin.readline().strip() == "go"
clip = record(0.3, device="dd-back")  # the restarted server's tone, recorded without a restart
assert abs(clip.samples).max() > 0.4, abs(clip.samples).max()
assert clip.source == "recording from dd-back"
assert recorder._KEEP_PORTAUDIO.is_set()  # so that came through a child process's fresh PortAudio
print("done", flush=True)
"""


def test_recording_recovers_after_the_audio_server_restarts(private_jack_server, tmp_path) -> None:
    tones: list[Tone] = []

    def start() -> None:
        private_jack_server.start()
        tones.append(Tone("dd-back", 0.5, env=private_jack_server.env()))
        assert tones[0].name == "dd-back"

    try:
        run_child(RESTART_CHILD, private_jack_server, tmp_path, {"stop": private_jack_server.stop, "start": start})
    finally:
        for tone in tones:
            tone.close()
