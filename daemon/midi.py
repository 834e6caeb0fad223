"""MIDI CC output (mido + python-rtmidi): push matched parameters to Diva live.

:class:`CCSender` opens a virtual output port (``deepdiva``) on Linux/macOS, or an existing
port by name (Windows has no virtual ports: create one with loopMIDI). Sending never raises
into the caller's thread when the port goes away: the sender closes it, logs, and reconnects
on a later send with exponential backoff. Diva has no NRPN support, so neither do we.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError, MidiError
from ..core.profile import ParameterSet, Profile
from .ccmap import MODES, CCAssignment, CCMap, encode, encode_value, load_cc_map, unmapped

log = logging.getLogger(__name__)

DEFAULT_PORT = "deepdiva"
API_ALIASES = {
    "alsa": "LINUX_ALSA", "jack": "UNIX_JACK", "coremidi": "MACOSX_CORE", "core": "MACOSX_CORE",
    "winmm": "WINDOWS_MM", "windows": "WINDOWS_MM", "dummy": "RTMIDI_DUMMY",
}
_ALSA_SUFFIX = re.compile(r"\s+\d+:\d+$")
_probe_ids = itertools.count(1)
# rtmidi's JACK output queues messages for JACK's next process cycle: closing the client
# sooner drops them. A few periods of a slow setup (1024 frames at 44.1 kHz = 23 ms each).
JACK_LINGER = 0.25
DEAD_AFTER_CHECKS = 2

CCMapSource = CCMap | Mapping[str, object] | str | Path | None


# --------------------------------------------------------------------------- ports and APIs

def available_apis() -> list[str]:
    """rtmidi APIs compiled into this python-rtmidi (e.g. ``LINUX_ALSA``, ``UNIX_JACK``)."""
    import rtmidi

    names = {getattr(rtmidi, n): n.removeprefix("API_") for n in dir(rtmidi) if n.startswith("API_")}
    return [names[a] for a in rtmidi.get_compiled_api() if a in names]


def _api_name(api: str | None) -> str | None:
    if api is None:
        return None
    name = API_ALIASES.get(api.strip().lower(), api.strip().upper())
    if name not in available_apis():
        raise MidiError(f"MIDI API {api!r} is not available here; use one of: {', '.join(available_apis())}")
    return name


def _rtapi(api: str | None) -> int:
    import rtmidi

    return rtmidi.API_UNSPECIFIED if api is None else getattr(rtmidi, f"API_{api}")


def _candidate_apis(api: str | None) -> list[str | None]:
    """The API asked for, or rtmidi's default then every real compiled API (ALSA may be absent)."""
    if api is not None:
        return [api]
    return [None, *[a for a in available_apis() if a not in ("RTMIDI_DUMMY", "WEB_MIDI")]]


def _list_ports(api: str | None, inputs: bool = False) -> list[str]:
    """Port names from a fresh rtmidi client (outputs = destinations we can open)."""
    import rtmidi

    cls = rtmidi.MidiIn if inputs else rtmidi.MidiOut
    # A unique client name: JACK may refuse a name whose previous owner is still closing.
    client = cls(rtapi=_rtapi(api), name=f"deepdiva-probe-{os.getpid()}-{next(_probe_ids)}")
    try:
        return list(client.get_ports())
    finally:
        client.delete()


def output_ports(api: str | None = None) -> dict[str, list[str] | str]:
    """``{API: [output port, ...]}`` for one API or every compiled one; an error text if it fails."""
    out: dict[str, list[str] | str] = {}
    for name in [_api_name(api)] if api else [a for a in available_apis() if a != "WEB_MIDI"]:
        try:
            out[str(name)] = _list_ports(name)
        except Exception as exc:  # an absent MIDI system is a normal answer here
            out[str(name)] = f"unavailable ({exc})"
    return out


def _short_name(port: str) -> str:
    return _ALSA_SUFFIX.sub("", port)


def _same_port(listed: str, wanted: str) -> bool:
    short = _short_name(listed)
    return listed == wanted or short == wanted or short.rsplit(":", 1)[-1] == wanted


def match_port(names: Sequence[str], wanted: str) -> str | None:
    """The one listed port meaning ``wanted``: exact, ``client:port``'s port, prefix, then substring.

    Raises :class:`MidiError` when the name is ambiguous.
    """
    stages: list[Callable[[str], bool]] = [
        lambda n: n == wanted or _short_name(n) == wanted,
        lambda n: _short_name(n).rsplit(":", 1)[-1] == wanted,
        lambda n: n.startswith(wanted),
        lambda n: wanted.lower() in n.lower(),
    ]
    for test in stages:
        hits = list(dict.fromkeys(n for n in names if test(n)))
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise MidiError(f"MIDI port name {wanted!r} is ambiguous: {', '.join(hits)}; give the full name")
    return None


# --------------------------------------------------------------------------- sender

class _PortGone(Exception):
    """The port has left the MIDI system; ``dead``: its client is gone with the server."""

    def __init__(self, message: str, dead: bool = False) -> None:
        super().__init__(message)
        self.dead = dead


def _abandon(port: object) -> None:
    """Keep a port of a vanished MIDI server alive forever and never touch it again.

    Closing a JACK client whose server died, once libjack has failed to open another client
    (our probe or reconnect did), crashes the process (segfault in jack_client_close). So the
    dead client is leaked on purpose: an extra reference means neither mido's ``__del__`` nor
    interpreter shutdown ever closes it. One small object per server restart.
    """
    import ctypes

    port.closed = True  # type: ignore[attr-defined]  # mido's close() becomes a no-op
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(port))


class CCSender:
    """Sends parameter sets as MIDI CC on one output port; reconnects when the port goes away.

    Create it with :meth:`open`. ``send`` and ``close`` are thread-safe.
    """

    def __init__(self, port_name: str | None = None, virtual: bool = True, mode: str = "7bit", *,
                 channel: int = 1, cc_map: CCMapSource = None, api: str | None = None,
                 client_name: str | None = None, retry: tuple[float, float] = (0.5, 30.0),
                 check_interval: float = 2.0, profile: Profile | str = "diva") -> None:
        if mode not in MODES:
            raise ConfigError(f"MIDI mode must be one of {', '.join(MODES)}, got {mode!r}")
        if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 16:
            raise ConfigError(f"MIDI channel must be 1-16, got {channel!r}")
        self.port_name = port_name or DEFAULT_PORT
        self.virtual = virtual and sys.platform != "win32"
        if virtual and not self.virtual:
            log.info("virtual MIDI ports do not exist on Windows: opening the existing port %r "
                     "(create it with loopMIDI)", self.port_name)
        self.mode = mode
        self.channel = channel
        self.api = _api_name(api)
        self.client_name = client_name or self.port_name
        self.retry = retry
        self.check_interval = check_interval
        self._maps: dict[str, CCMap] = {}
        self._overrides: Mapping[str, object] | str | Path | None = None
        if isinstance(cc_map, CCMap):
            self._maps[cc_map.profile.name] = cc_map
        elif cc_map is not None:
            self._overrides = cc_map
            first = load_cc_map(profile, cc_map)  # validate now: a bad map is a start-up error
            self._maps[first.profile.name] = first
        self._lock = threading.RLock()
        self._port = None  # a mido output port while connected
        self._api_in_use: str | None = None
        self.target: str | None = None  # the port name the system shows
        self._probe_sees_port = False
        self._unreachable = 0  # health checks in a row whose probe client could not open
        self._last_check = 0.0
        self._backoff = retry[0]
        self._next_attempt = 0.0
        self._closed = False
        self._last_send = -math.inf
        self._ever_connected = False
        self._warned: set[str] = set()

    @classmethod
    def open(cls, port_name: str | None = None, virtual: bool = True, mode: str = "7bit", *,
             strict: bool = True, **kwargs) -> CCSender:
        """Open the port now; with ``strict`` a failure raises :class:`MidiError`, else it is retried."""
        sender = cls(port_name, virtual, mode, **kwargs)
        with sender._lock:
            try:
                sender._connect()
            except MidiError as exc:
                if strict:
                    raise
                sender._schedule_retry(exc)
        return sender

    # ----------------------------------------------------------------- public

    @property
    def connected(self) -> bool:
        return self._port is not None

    def cc_map(self, profile: Profile) -> CCMap:
        """The CC map used for ``profile`` (the profile's own, with the configured overrides)."""
        if profile.name not in self._maps:
            self._maps[profile.name] = load_cc_map(profile, self._overrides)
        return self._maps[profile.name]

    def send(self, parameter_set: ParameterSet, normalised: np.ndarray) -> int:
        """Send normalised parameters (k,) as CCs; returns the number of messages sent (0 if offline)."""
        cc_map = self.cc_map(parameter_set.profile)
        pairs = encode(cc_map, parameter_set, normalised, self.mode)
        missing = unmapped(cc_map, parameter_set)
        if missing and parameter_set.name not in self._warned:
            self._warned.add(parameter_set.name)
            log.warning("%d parameter(s) of %s have no CC and are not sent: %s", len(missing),
                        parameter_set.describe(), ", ".join(p.location or p.name for p in missing[:8]))
        return self.send_pairs(pairs)

    def send_pairs(self, pairs: Iterable[tuple[int, int]]) -> int:
        """Send raw ``(cc, value)`` pairs on the sender's channel; 0 if the port is unavailable."""
        import mido

        messages = [mido.Message("control_change", channel=self.channel - 1, control=int(c), value=int(v))
                    for c, v in pairs]
        with self._lock:
            if self._closed:
                log.warning("MIDI sender for %r is closed: nothing sent", self.port_name)
                return 0
            if not messages or not self._ensure_port():
                return 0
            try:
                self._write(messages)
                return len(messages)
            except Exception as exc:  # a vanished port shows up as any rtmidi/OS error
                self._drop(exc)
            try:
                self._connect()
                self._write(messages)
                return len(messages)
            except Exception as exc:
                self._drop(exc, quiet=True)
                if not isinstance(exc, MidiError):
                    log.warning("MIDI port %r failed right after reconnecting: %s", self.port_name, exc)
                self._schedule_retry(exc)
                return 0

    def close(self) -> None:
        """Close the port; on JACK first let the last messages go out (they leave on the next cycle)."""
        with self._lock:
            self._closed = True
            if self._port is not None and self._api_in_use == "UNIX_JACK":
                time.sleep(max(0.0, self._last_send + JACK_LINGER - time.monotonic()))
            self._close_port()

    def __enter__(self) -> CCSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"connected to {self.target!r}" if self.connected else "offline"
        return f"CCSender({self.port_name!r}, virtual={self.virtual}, mode={self.mode!r}, {state})"

    # ----------------------------------------------------------------- connection

    def _connect(self) -> None:
        """Open the port (first API that works) or raise :class:`MidiError`."""
        import mido

        errors: list[str] = []
        # Once connected, stay on that API: after a JACK restart do not wander off to ALSA.
        apis = [self._api_in_use] if self._ever_connected else _candidate_apis(self.api)
        for api in apis:
            backend = mido.Backend("mido.backends.rtmidi" + (f"/{api}" if api else ""), load=True)
            try:
                if self.virtual:
                    port = backend.open_output(self.port_name, virtual=True, client_name=self.client_name)
                    target = self.port_name
                else:
                    found = match_port(_list_ports(api), self.port_name)
                    if found is None:
                        errors.append(f"{api or 'default'}: no port {self.port_name!r}")
                        continue
                    port, target = backend.open_output(found), found
            except MidiError:
                raise
            except Exception as exc:  # rtmidi raises OSError/RuntimeError subclasses
                if not any(str(exc) in e for e in errors):  # the default API is one of the others
                    errors.append(f"{api or 'default'}: {exc}")
                continue
            self._port, self.target = port, target
            self._api_in_use = getattr(port, "api", api)
            self._probe_sees_port = self._probe() is True
            self._unreachable = 0
            self._last_check = time.monotonic()
            self._backoff = self.retry[0]
            log.log(logging.WARNING if self._ever_connected else logging.INFO,
                    "MIDI: %s %r (%s)", "reconnected to" if self._ever_connected else "opened",
                    target, self._api_in_use)
            self._ever_connected = True
            return
        kind = "virtual MIDI port" if self.virtual else "MIDI output port"
        hint = ("; on Windows create it with loopMIDI" if sys.platform == "win32" else
                "; list ports with `deepdiva midi ports`")
        raise MidiError(f"cannot open {kind} {self.port_name!r}: {'; '.join(errors)}{hint}")

    def _ensure_port(self) -> bool:
        if self._port is not None:
            return True
        if time.monotonic() < self._next_attempt:
            log.debug("MIDI port %r offline; next retry in %.1f s", self.port_name,
                      self._next_attempt - time.monotonic())
            return False
        try:
            self._connect()
            return True
        except MidiError as exc:
            self._schedule_retry(exc)
            return False

    def _schedule_retry(self, exc: Exception) -> None:
        self._next_attempt = time.monotonic() + self._backoff
        log.warning("MIDI port %r unavailable (%s); retrying in %.1f s", self.port_name, exc, self._backoff)
        self._backoff = min(self._backoff * 2, self.retry[1])

    def _write(self, messages: list) -> None:
        if self._port is None:
            raise _PortGone(f"port {self.port_name!r} is not open")
        self._check_alive()
        for message in messages:
            self._port.send(message)
        self._last_send = time.monotonic()

    def _check_alive(self) -> None:
        """Raise :class:`_PortGone` when the port has disappeared from the MIDI system."""
        rt = getattr(self._port, "_rt", None)  # mido's rtmidi object: listing on it is cheap
        if not self.virtual and rt is not None and self.target not in rt.get_ports():
            raise _PortGone(f"port {self.target!r} disappeared")
        now = time.monotonic()
        if self._probe_sees_port and now - self._last_check >= self.check_interval:
            # A fresh client sees what the system really has (an old one may keep a stale view,
            # e.g. after a JACK server restart); rate-limited because opening one costs ~50 ms.
            self._last_check = now
            seen = self._probe()
            self._unreachable = 0 if seen is not None else self._unreachable + 1
            # A listing without our port is final; a client that cannot open may be a busy
            # server, so only a second check in a row that cannot reach it counts as a dead one.
            if seen is False or self._unreachable >= DEAD_AFTER_CHECKS:
                raise _PortGone(f"port {self.target!r} disappeared with its MIDI server", dead=True)

    def _probe(self, attempts: int = 2) -> bool | None:
        """Whether a fresh client lists our port; ``None`` if no client could be opened."""
        for attempt in range(attempts):
            try:
                names = _list_ports(self._api_in_use, inputs=self.virtual)
            except Exception as exc:
                log.debug("MIDI probe %d failed: %s", attempt + 1, exc)
                continue
            return any(_same_port(n, self.target or self.port_name) for n in names)
        return None

    def _drop(self, exc: Exception, quiet: bool = False) -> None:
        if self._port is None:
            return
        if not quiet:
            log.warning("MIDI port %r failed (%s): closing it, will reconnect", self.target, exc)
        dead = exc.dead if isinstance(exc, _PortGone) else None
        self._close_port(dead)

    def _close_port(self, dead: bool | None = None) -> None:
        """Close the port, or abandon it when its MIDI server is gone (``None``: ask a probe)."""
        port, self._port = self._port, None
        if port is None:
            return
        if dead is None:  # unsure counts as dead: leaking a client beats crashing in libjack
            dead = self._probe_sees_port and self._probe() is not True
        if dead:
            _abandon(port)
            return
        try:
            port.close()
        except Exception as exc:  # a failing close must not take the caller down
            log.debug("closing MIDI port %r: %s", self.target, exc)


# --------------------------------------------------------------------------- learn helper

@dataclass(frozen=True)
class LearnStep:
    """One control to MIDI-learn: its CC assignment and the (cc, value) pairs sent for it."""

    number: int
    total: int
    assignment: CCAssignment
    pairs: tuple[tuple[int, int], ...]

    def describe(self) -> str:
        a, p = self.assignment, self.assignment.parameter
        ccs = f"CC {a.cc}" + (f" + LSB CC {a.lsb}" if len(self.pairs) == 2 else "")
        return f"[{self.number}/{self.total}] {ccs} -> {a.control}, range {p.describe_range()}"


def learn_steps(cc_map: CCMap, mode: str = "7bit", only: Sequence[str] = ()) -> list[LearnStep]:
    """One step per CC (or per parameter in ``only``); each sends the parameter's default value."""
    chosen = list(cc_map)
    if only:
        wanted = {cc_map.profile.find(ref).id for ref in only}
        chosen = [a for a in chosen if a.parameter.id in wanted]
        if len(chosen) < len(wanted):
            raise ConfigError("some parameters given to learn have no CC in the map")
    steps = []
    for i, a in enumerate(chosen, 1):
        default = cc_map.profile.parameter_set([a.parameter.id]).defaults_normalised()[0]
        steps.append(LearnStep(i, len(chosen), a, tuple(encode_value(a, float(default), mode))))
    return steps


def run_learn(sender: CCSender, steps: Sequence[LearnStep], before: Callable[[LearnStep], bool],
              repeats: int = 3, gap: float = 0.1) -> int:
    """For each step call ``before`` (announce + wait; False stops), then send its CC ``repeats`` times."""
    done = 0
    for step in steps:
        if not before(step):
            break
        for i in range(repeats):
            if i:
                time.sleep(gap)  # pacing, so Diva sees the control move even if learn opened late
            sender.send_pairs(step.pairs)
        done += 1
    return done
