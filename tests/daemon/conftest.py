"""A real JACK server for the MIDI and recorder tests (``jackd --no-realtime -d dummy``).

The server gets a name of its own (``deepdiva-test-N``) through ``JACK_DEFAULT_SERVER``,
which every JACK client in this process (rtmidi, PortAudio, JACK-Client) reads when it opens,
so a developer's running JACK is never touched. ``JACK_NO_START_SERVER`` stops libjack from
starting a server on its own if ours is down. The dummy driver runs on the wall clock with no
sound card: its capture ports deliver silence. Nothing here talks to anything off this machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemon_helpers import wait_until

SAMPLE_RATE = 44100
PERIOD = 1024  # 23 ms per cycle: slack for clients on a busy 2-core machine
START_TIMEOUT = 20.0
NAME_POOL = 4
ENV_KEYS = ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER", "JACK_NO_AUDIO_RESERVATION")


@dataclass
class JackServer:
    """A jackd process with the dummy backend, addressed by its server name."""

    name: str
    log_path: Path
    process: subprocess.Popen | None = None

    @classmethod
    def launch(cls, prefix: str, log_path: Path) -> JackServer:
        """Start a server named ``prefix-N``, the first N in a small pool that is free.

        A pool, not a unique name per run: jackd registers servers in a table of 8 slots and
        frees a dead server's slot only when a server of the same name starts again.
        """
        for i in range(NAME_POOL):
            server = cls(f"{prefix}-{i}", log_path)
            outcome = server.start(fail=False)
            if outcome == "full" and _clear_stale_registry():
                outcome = server.start(fail=False)
            if outcome == "ok":
                return server
            if outcome != "busy":  # "busy": a live server has that name (another test run)
                server.fail_to_start()
        pytest.fail(f"no free JACK server name {prefix}-0..{NAME_POOL - 1}")

    def env(self) -> dict[str, str]:
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def ports(self, *flags: str) -> list[str]:
        """``jack_lsp`` output (``[]`` while the server is down or does not answer)."""
        try:
            done = subprocess.run(["jack_lsp", "-s", self.name, *flags], capture_output=True, text=True,
                                  env=self.env(), timeout=5)
        except subprocess.TimeoutExpired:  # a wedged server of that name: treat as not ours
            return []
        return done.stdout.splitlines() if done.returncode == 0 else []

    def start(self, fail: bool = True) -> str:
        """Start jackd and wait until its ports are listed: ``"ok"``, ``"busy"`` or ``"full"``."""
        outcome = self._start()
        if fail and outcome != "ok":
            self.fail_to_start()
        return outcome

    def _start(self) -> str:
        if self.ports():  # someone else's server has this name: it would answer our jack_lsp
            return "busy"
        cmd = ["jackd", "--no-realtime", "-n", self.name,
               "-t", "5000",  # client timeout (ms): a loaded 2-core CI box must not get clients kicked
               "-d", "dummy", "-r", str(SAMPLE_RATE), "-p", str(PERIOD)]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env={**self.env(), "JACK_NO_AUDIO_RESERVATION": "1"},
                                            preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        while "system:capture_1" not in self.ports():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                text = self.log_path.read_text(errors="replace")[offset:]
                return "full" if "Too many servers" in text else "busy" if "already active" in text else "?"
            time.sleep(0.05)
        if self.process.poll() is not None:  # ours lost a race for the name to another server
            self.process = None
            return "busy"
        return "ok"

    def fail_to_start(self) -> None:
        tail = self.log_path.read_text(errors="replace")[-2000:]
        pytest.fail(f"jackd did not start (server {self.name!r}):\n{tail}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        # The server is gone once a client can no longer list its ports.
        deadline = time.monotonic() + START_TIMEOUT
        while self.ports() and time.monotonic() < deadline:
            time.sleep(0.05)
        # Semaphores of clients that never closed (e.g. ones left on a dead server) stay behind.
        for leftover in Path("/dev/shm").glob(f"jack*_{self.name}_*"):
            leftover.unlink(missing_ok=True)


def _clear_stale_registry() -> bool:
    """All 8 server slots taken but no jackd alive: the table is stale, remove it (jackd remakes it)."""
    procs = Path("/proc")
    if not procs.is_dir():
        return False
    for pid in procs.iterdir():
        try:
            if pid.name.isdigit() and (pid / "comm").read_text().strip() == "jackd":
                return False
        except OSError:
            continue
    for leftover in Path("/dev/shm").glob("jack[-_]*"):  # the table, dead servers' memory, sockets
        if not leftover.is_dir():
            leftover.unlink(missing_ok=True)
    return True


def _die_with_parent() -> None:
    """Linux: jackd gets SIGTERM if pytest dies, so a crashed run leaves no server behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _require_jackd() -> None:
    missing = [tool for tool in ("jackd", "jack_lsp", "jack_connect") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: apt-get install jackd2 (CI installs it)")


def _use_server(name: str) -> dict[str, str | None]:
    """Point this process's JACK clients at server ``name``; returns the previous settings."""
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1", JACK_NO_AUDIO_RESERVATION="1")
    return saved


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JackServer]:
    """One JACK dummy server for the session; this process's clients use it."""
    _require_jackd()
    server = JackServer.launch("deepdiva-test", tmp_path_factory.mktemp("jack") / "jackd.log")
    saved = _use_server(server.name)
    try:
        yield server
    finally:
        server.stop()
        _restore(saved)


@pytest.fixture
def private_jack_server(tmp_path: Path) -> Iterator[JackServer]:
    """A JACK server of the test's own, which the test may stop and restart.

    Only child processes (``env=server.env()``) talk to it: libjack keeps process-wide state,
    and a server dying under a process's clients leaves that state fragile.
    """
    _require_jackd()
    server = JackServer.launch("deepdiva-private", tmp_path / "jackd.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., object]:
    """:func:`wait_until` for tests (conftest modules are not importable by name)."""
    return wait_until
