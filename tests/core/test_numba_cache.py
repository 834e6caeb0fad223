"""numba's on-disk cache lives in the user cache (or NUMBA_CACHE_DIR), never beside the module."""

from __future__ import annotations

import logging
from pathlib import Path

import numba
import numpy as np
import pytest

from deepdiva.core import builtin_synth as bs
from deepdiva.core import numba_cache


@pytest.fixture
def fresh_cache_dir(monkeypatch):
    """cache_dir() computed anew for the test, and again for whoever comes after it."""
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    numba_cache.cache_dir.cache_clear()
    yield
    numba_cache.cache_dir.cache_clear()


def test_default_is_the_user_cache_dir(fresh_cache_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert numba_cache.default_cache_dir() == tmp_path / "deepdiva" / "numba"


def test_numba_cache_dir_set_by_the_user_wins(fresh_cache_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert numba_cache.cache_dir() == tmp_path / "mine"
    assert (tmp_path / "mine").is_dir()


def test_cached_njit_writes_into_the_cache_dir_only(fresh_cache_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    config_before = numba.config.CACHE_DIR

    def twice(x):
        return 2.0 * x

    kernel = numba_cache.cached_njit(error_model="numpy")(twice)
    assert numba.config.CACHE_DIR == config_before  # applied around the decoration only
    assert kernel(np.float64(1.5)) == 3.0
    written = sorted(p.suffix for p in (tmp_path / "deepdiva" / "numba").rglob("*") if p.is_file())
    assert ".nbi" in written and ".nbc" in written
    assert not any(Path(__file__).parent.glob("__pycache__/*twice*.nb*"))


def test_unwritable_cache_dir_disables_caching_with_a_log_line(fresh_cache_dir, monkeypatch, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(blocker / "numba"))
    with caplog.at_level(logging.WARNING, logger=numba_cache.__name__):
        kernel = numba_cache.cached_njit()(lambda x: x + 1)
        numba_cache.cached_njit()(lambda x: x - 1)
    assert kernel(1) == 2
    assert isinstance(kernel._cache, numba.core.caching.NullCache)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "numba cache disabled" in warnings[0] and "not writable" in warnings[0]


def test_builtin_synth_kernels_do_not_cache_beside_the_module():
    module_dir = Path(bs.__file__).parent
    for kernel in (bs._render_serial, bs._render_parallel, bs.render_voice, bs.exp2_fast):
        cached_in = getattr(kernel._cache, "_cache_path", None)  # None: caching disabled
        if cached_in is not None:
            path = Path(cached_in)
            assert module_dir not in (path, *path.parents), path
