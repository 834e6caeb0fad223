"""Helpers shared by the daemon tests: polling with a deadline, and test tones."""

from __future__ import annotations

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
