"""Fixtures for preset tests."""

from __future__ import annotations

import pytest

from deepdiva.core.profile import Profile, load_profile


@pytest.fixture(scope="session")
def profile() -> Profile:
    return load_profile("diva")
