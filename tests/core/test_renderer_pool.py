"""The renderer pool: one renderer per worker process, rows split over them, failures said clearly.

Pool mechanics (order, kills, close, orphans) run on the builtin synth, which every machine has;
plugin behaviour (same audio as one host, start-up errors, refinement) on Debian's amsynth VST.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from test_vst_renderer import AMSYNTH, SHORT, needs_amsynth  # the same plugin and skip rules

from deepdiva.core.builtin_renderer import BuiltinRenderer
from deepdiva.core.errors import RenderError
from deepdiva.core.metrics import SpectralTarget
from deepdiva.core.profile import ParameterSet, load_profile
from deepdiva.core.refine import refine
from deepdiva.core.renderer_pool import RendererPool, pooled_renderer
from deepdiva.core.vst_renderer import VstRenderer

posix_only = pytest.mark.skipif(os.name != "posix", reason="kills processes with POSIX signals")


def alive(pid: int | None) -> bool:
    """Running (on Linux: not a zombie); never reaps it, which is the pool's business."""
    if pid is None:
        return False
    if Path("/proc/self/stat").exists():
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone_within(pids: list[int | None], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def medium33() -> ParameterSet:
    return load_profile("diva").parameter_set("medium33")


@pytest.fixture(scope="module")
def amsynth() -> ParameterSet:
    return load_profile("amsynth").parameter_set("medium")


@pytest.fixture(scope="module")
def builtin_pool(medium33: ParameterSet):
    with RendererPool("builtin", medium33, SHORT, workers=2) as pool:
        yield pool


def random_rows(pset: ParameterSet, n: int, seed: int = 0) -> np.ndarray:
    return pset.quantise(np.random.default_rng(seed).random((n, len(pset)))).astype(np.float32)


def pitched_rows(pset: ParameterSet, n: int, seed: int = 0) -> np.ndarray:
    """amsynth patches without its noise waveforms (noise differs from process to process)."""
    rows = random_rows(pset, n, seed)
    for j, p in enumerate(pset.parameters):
        if p.name.endswith("_waveform"):
            native = pset.from_normalised(rows)
            native[:, j] = np.arange(n) % 3  # sine, pulse, saw
            rows = pset.to_normalised(native).astype(np.float32)
    return rows


# -- mechanics, on the builtin synth ----------------------------------------------------------

def test_pool_gives_the_same_audio_in_row_order(builtin_pool: RendererPool, medium33: ParameterSet) -> None:
    rows = random_rows(medium33, 7)
    notes = np.array([40, 45, 48, 52, 60, 64.5, 70])
    lengths = np.linspace(0.5, 1.0, 7)
    pool = builtin_pool
    assert pool.kind == "builtin" and pool.thread_safe and len(set(pool.pids())) == 2
    got = pool.render(rows, notes, lengths)
    one = pool.render(rows[3])
    empty = pool.render(rows[:0])
    want = BuiltinRenderer(medium33, SHORT).render(rows, notes, lengths)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    assert np.array_equal(one[0], BuiltinRenderer(medium33, SHORT).render(rows[3], 48)[0])
    assert empty.shape == (0, SHORT.n_samples)


def test_bad_rows_are_refused_before_any_worker(builtin_pool: RendererPool, medium33: ParameterSet) -> None:
    with pytest.raises(RenderError, match=r"shape \(n, 33\)"):
        builtin_pool.render(np.zeros((2, 5), np.float32))
    with pytest.raises(RenderError, match="MIDI notes"):
        builtin_pool.render(random_rows(medium33, 1), notes=200)
    assert builtin_pool.render(random_rows(medium33, 1)).shape == (1, SHORT.n_samples)  # still serving


def test_renders_from_several_threads_at_once(builtin_pool: RendererPool, medium33: ParameterSet) -> None:
    rows = random_rows(medium33, 12, seed=1)
    want = BuiltinRenderer(medium33, SHORT).render(rows)
    with ThreadPoolExecutor(3) as threads:
        parts = list(threads.map(builtin_pool.render, np.array_split(rows, 6)))
    assert np.array_equal(np.concatenate(parts), want)


@posix_only
def test_killed_worker_fails_that_render_and_is_replaced(medium33: ParameterSet) -> None:
    rows = random_rows(medium33, 40, seed=2)
    with RendererPool("builtin", medium33, workers=2) as pool:
        old = pool.pids()
        errors: list[BaseException] = []

        def render_all() -> None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    pool.render(rows)
                except RenderError as exc:
                    errors.append(exc)
                    return

        busy = threading.Thread(target=render_all)
        busy.start()
        time.sleep(0.3)
        os.kill(old[1], signal.SIGKILL)  # type: ignore[arg-type]
        busy.join(40)
        assert not busy.is_alive(), "a render hung after its worker was killed"
        assert len(errors) == 1
        assert "renderer worker 1" in str(errors[0]) and "killed by SIGKILL" in str(errors[0])
        assert "restarted" in str(errors[0])
        assert np.array_equal(pool.render(rows[:4]), BuiltinRenderer(medium33).render(rows[:4]))
        new = pool.pids()
        assert new[0] == old[0] and new[1] not in (None, old[1])


@posix_only
def test_worker_killed_while_idle_fails_the_next_render_only(medium33: ParameterSet) -> None:
    with RendererPool("builtin", medium33, SHORT, workers=1) as pool:
        os.kill(pool.pids()[0], signal.SIGKILL)  # type: ignore[arg-type]
        time.sleep(0.5)  # dead before the render is sent
        with pytest.raises(RenderError, match=r"stopped while rendering \(killed by SIGKILL\)"):
            pool.render(random_rows(medium33, 2))
        assert pool.render(random_rows(medium33, 2)).shape == (2, SHORT.n_samples)


def test_close_and_garbage_collection_stop_the_workers(medium33: ParameterSet) -> None:
    pool = RendererPool("builtin", medium33, SHORT, workers=2)
    pids = pool.pids()
    assert all(alive(p) for p in pids)
    pool.close()
    assert gone_within(pids)
    with pytest.raises(RenderError, match="closed"):
        pool.render(random_rows(medium33, 1))
    pool.close()  # twice is fine

    pool = RendererPool("builtin", medium33, SHORT, workers=1)
    pids = pool.pids()
    del pool
    gc.collect()
    assert gone_within(pids)


@pytest.mark.slow
@posix_only
def test_workers_end_when_the_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from deepdiva.core.profile import load_profile
        from deepdiva.core.renderer_pool import RendererPool

        if __name__ == "__main__":
            pool = RendererPool("builtin", load_profile("diva").parameter_set("tiny11"), workers=2)
            print(*pool.pids(), flush=True)
            time.sleep(60)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(pids) == 2 and all(alive(p) for p in pids)
        parent.kill()
        parent.wait(10)
        assert gone_within(pids), "workers outlived their killed parent"
    finally:
        parent.kill()
        parent.wait()


def test_pooled_renderer_pools_plugin_hosts_only(medium33: ParameterSet) -> None:
    r = pooled_renderer("builtin", medium33, SHORT, workers=2)
    assert isinstance(r, BuiltinRenderer)
    with pytest.raises(RenderError, match="unknown renderer 'nope'"):
        RendererPool("nope", medium33)
    with pytest.raises(RenderError, match="at least one worker"):
        RendererPool("builtin", medium33, workers=0)


# -- on the amsynth plugin --------------------------------------------------------------------

@pytest.fixture(scope="module")
def amsynth_pool(amsynth: ParameterSet):
    with RendererPool("vst", amsynth, SHORT, plugin_path=AMSYNTH, workers=2) as pool:
        yield pool


class TestOnAmsynth:
    pytestmark = needs_amsynth

    def test_same_audio_as_one_plugin_host(self, amsynth_pool: RendererPool, amsynth: ParameterSet) -> None:
        rows = pitched_rows(amsynth, 8)
        notes = np.array([36, 48, 50, 55, 60, 62, 67, 72])
        got = amsynth_pool.render(rows, notes)
        with VstRenderer(amsynth, SHORT, plugin_path=AMSYNTH) as one:
            want = one.render(rows[::-1], notes[::-1])[::-1]  # another history: the same audio
        assert np.abs(want).max() > 0.01
        np.testing.assert_allclose(got, want, atol=1e-4)

    def test_one_worker(self, amsynth: ParameterSet) -> None:
        rows = pitched_rows(amsynth, 3, seed=3)
        with RendererPool("vst", amsynth, SHORT, plugin_path=AMSYNTH, workers=1) as pool:
            got = pool.render(rows)
        with VstRenderer(amsynth, SHORT, plugin_path=AMSYNTH) as one:
            np.testing.assert_allclose(got, one.render(rows), atol=1e-4)

    def test_pooled_renderer(self, amsynth: ParameterSet) -> None:
        one = pooled_renderer("vst", amsynth, SHORT, plugin_path=AMSYNTH, workers=1)
        assert isinstance(one, VstRenderer)
        one.close()
        pool = pooled_renderer("vst", amsynth, SHORT, plugin_path=AMSYNTH, workers=2)
        assert isinstance(pool, RendererPool) and pool.kind == "vst"
        pool.close()

    @pytest.mark.parametrize("plugin, message", [
        ("not_a_plugin.so", r"^cannot load plugin .*not_a_plugin.so"),
        ("missing.so", r"^plugin .*missing.so does not exist"),
    ])
    def test_start_up_error_is_one_render_error(self, amsynth: ParameterSet, tmp_path: Path,
                                                plugin: str, message: str) -> None:
        (tmp_path / "not_a_plugin.so").write_bytes(b"\x7fELF but not really")
        with pytest.raises(RenderError, match=message) as info:
            RendererPool("vst", amsynth, plugin_path=tmp_path / plugin, workers=2)
        assert "Traceback" not in str(info.value) and "\n" not in str(info.value)

    def test_profile_that_does_not_match_the_plugin(self) -> None:
        diva = load_profile("diva").parameter_set("tiny11")
        with pytest.raises(RenderError, match=r"not found in amsynth_vst.so .*41 parameters"):
            RendererPool("vst", diva, plugin_path=AMSYNTH, workers=2)

    @posix_only
    def test_worker_that_cannot_restart_stops_the_pool(self, amsynth: ParameterSet, tmp_path: Path) -> None:
        plugin = tmp_path / "amsynth_vst.so"
        shutil.copy(AMSYNTH, plugin)
        with RendererPool("vst", amsynth, SHORT, plugin_path=plugin, workers=2) as pool:
            plugin.unlink()  # loaded by both workers; a new one cannot load it
            os.kill(pool.pids()[0], signal.SIGKILL)  # type: ignore[arg-type]
            with pytest.raises(RenderError, match="stopped while rendering"):
                pool.render(pitched_rows(amsynth, 4))
            deadline = time.monotonic() + 30
            refusal = ""
            while not refusal and time.monotonic() < deadline:  # the other worker serves meanwhile
                try:
                    pool.render(pitched_rows(amsynth, 4))
                except RenderError as exc:
                    refusal = str(exc)
            assert "renderer worker 0 stopped and could not be started again (plugin" in refusal
            assert "does not exist" in refusal and "make a new renderer" in refusal
            with pytest.raises(RenderError, match="could not be started again"):
                pool.render(pitched_rows(amsynth, 1))

    @pytest.mark.parametrize("threads", [1, 2])
    def test_refine_keeps_its_guarantees(self, amsynth_pool: RendererPool, amsynth: ParameterSet,
                                         threads: int) -> None:
        pytest.importorskip("cma")  # imported before the clock starts: seconds under load, not budgeted
        target_row, start = pitched_rows(amsynth, 2, seed=4)
        target = SpectralTarget(amsynth_pool.render(target_row)[0])
        executor = ThreadPoolExecutor(threads) if threads > 1 else None
        began = time.perf_counter()
        result = refine(amsynth_pool, target.distance, start, 2.0, executor=executor, blocks=threads)
        wall = time.perf_counter() - began
        if executor is not None:
            executor.shutdown()
        assert result.distance <= result.start_distance
        assert result.start_distance == pytest.approx(float(target.distance(amsynth_pool.render(start))[0]),
                                                      rel=1e-3)
        assert result.evaluations > 8 and wall < 2.0 + 1.5
