"""Shared fixtures: reference data and small synthetic inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

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
