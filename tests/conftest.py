"""Shared fixtures: reference data and small synthetic inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

try:  # DawDreamer 0.9 segfaults when imported after TensorFlow 2.21 in one process; the suite
    import dawdreamer  # noqa: F401  loads both, so DawDreamer goes first.
except ImportError:
    pass

DATA = Path(__file__).parent / "data"


def pytest_configure(config) -> None:
    """Daemons started by tests serve their web page on any free port, not on 9003."""
    from deepdiva.daemon import config as daemon_config

    daemon_config.DEFAULT_WEB_PORT = 0


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def base_preset_path() -> Path:
    return DATA / "MS-Rev1_deepdiva.h2p"


@pytest.fixture(scope="session")
def factory_preset_path() -> Path:
    return DATA / "HS-Brighton.h2p"
