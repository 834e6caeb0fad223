"""Shared fixtures: reference data and small synthetic inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

try:  # DawDreamer 0.9 segfaults when imported after TensorFlow 2.21 in one process; the suite
    import dawdreamer  # noqa: F401  loads both, so DawDreamer goes first.
except ImportError:
    pass

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def base_preset_path() -> Path:
    return DATA / "MS-Rev1_deepdiva.h2p"


@pytest.fixture(scope="session")
def factory_preset_path() -> Path:
    return DATA / "HS-Brighton.h2p"
