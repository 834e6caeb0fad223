"""Supervised loops: a loop that dies is logged and run again; stopping ends it for good."""

from __future__ import annotations

import threading

from daemon_helpers import wait_until

from deepdiva.daemon.supervise import Supervised


def test_a_loop_that_raises_or_returns_early_is_restarted_and_logged(caplog) -> None:
    stop = threading.Event()
    runs: list[int] = []

    def loop() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("boom")
        if len(runs) == 2:
            return  # returned although nobody asked it to stop
        stop.wait()

    s = Supervised("test-loop", loop, stop, backoff=0.01)
    s.start()
    wait_until(lambda: len(runs) == 3, 5, "the third run")
    assert s.restarts == 2 and s.alive
    messages = [r.getMessage() for r in caplog.records]
    assert "test-loop died; restarting it" in messages
    assert "test-loop stopped unexpectedly; restarting it" in messages
    stop.set()
    s.join(2)
    assert not s.alive and len(runs) == 3


def test_the_worker_loop_survives_a_failure_outside_a_job(tmp_path, monkeypatch) -> None:
    from daemon_helpers import write_sine

    from deepdiva.daemon.config import build_config
    from deepdiva.daemon.service import Service, dry_run_match

    config = build_config({}, {"osc.enabled": False, "drop.enabled": True, "drop.folder": str(tmp_path / "drop"),
                               "drop.settle_seconds": 0.1, "midi.enabled": False,
                               "presets.folder": str(tmp_path / "presets"),
                               "queue.journal": str(tmp_path / "journal")})
    service = Service(config, match=dry_run_match()).start()
    try:
        queue = service.worker.queue
        real_take = queue.take
        failures = []

        def take_failing_once(*args, **kwargs):
            if not failures:
                failures.append(1)
                raise RuntimeError("the queue broke once")
            return real_take(*args, **kwargs)

        monkeypatch.setattr(queue, "take", take_failing_once)
        wait_until(lambda: failures, 5, "the failure")
        write_sine(tmp_path / "drop" / "a.wav")
        wait_until(lambda: list((tmp_path / "presets").glob("a*.h2p")), 30, "the preset")
        assert service.worker.alive and service.worker._thread.restarts == 1
    finally:
        service.stop()
