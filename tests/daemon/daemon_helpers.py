"""Helpers shared by the daemon tests: polling with a deadline, and test tones."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 44100


def wait_until(condition: Callable[[], object], timeout: float = 60.0, what: str = "condition",
               interval: float = 0.02) -> object:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def sine(seconds: float = 0.5, freq: float = 220.0, amplitude: float = 0.4, rate: int = SR) -> np.ndarray:
    """A float32 sine."""
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_sine(path: Path, freq: float = 220.0, seconds: float = 0.3, amplitude: float = 0.4) -> Path:
    """A sine written as a wav file at ``path``."""
    sf.write(path, sine(seconds, freq, amplitude), SR)
    return path


def saw(seconds: float = 1.5, freq: float = 220.0, amplitude: float = 0.4, decay: float = 1.0) -> np.ndarray:
    """A naive float32 sawtooth fading as ``exp(-decay t)`` (0: held)."""
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * (2 * ((freq * t) % 1.0) - 1) * np.exp(-decay * t)).astype(np.float32)


def write_saw(path: Path, freq: float = 220.0, seconds: float = 1.5, amplitude: float = 0.4,
              decay: float = 1.0) -> Path:
    """A naive sawtooth fading as ``exp(-decay t)``, written as a wav file at ``path``: a plucked note."""
    sf.write(path, saw(seconds, freq, amplitude, decay), SR)
    return path


def run_child(script: str, server, tmp_path, actions: dict[str, Callable[[], None]]) -> None:
    """Run ``script`` against JACK ``server`` in a child process (its first argument: this folder).

    On each line the child prints that names an action, run the action and answer ``go``; the
    child must end by printing ``done`` and exiting 0.
    """
    errors = tmp_path / "child.stderr"
    with errors.open("w") as err:
        child = subprocess.Popen([sys.executable, "-c", script, str(Path(__file__).parent)], text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=server.env())
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x.strip()) for x in child.stdout] + [lines.put(None)],
                     daemon=True).start()
    seen = []
    try:
        while (line := lines.get(timeout=90)) is not None:
            seen.append(line)
            if line in actions:
                actions[line]()
                child.stdin.write("go\n")
                child.stdin.flush()
        code = child.wait(60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert code == 0 and seen[-1:] == ["done"], (
        f"child exited {code} after {seen}:\n{errors.read_text(errors='replace')[-3000:]}")
