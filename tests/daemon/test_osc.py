"""The OSC server over real UDP and TCP sockets on 127.0.0.1: every address, bad input, limits.

The service runs with the fast real match function (``dry_run_match``: read, validate, write the
base preset), so the replies carry real preset paths.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import soundfile as sf
from daemon_helpers import sine, wait_until
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import build_msg
from pythonosc.tcp_client import SimpleTCPClient

from deepdiva.core.audio import AudioClip, mix_down
from deepdiva.daemon import osc_server as osc
from deepdiva.daemon.config import build_config
from deepdiva.daemon.jobs import Job
from deepdiva.daemon.osc_server import BufferAssembler, SlipDecoder, check_path
from deepdiva.daemon.service import Service, dry_run_match

SR = 44100
ROOT = Path(__file__).parents[2]
OSC_MD = ROOT / "daemon" / "OSC.md"


def tone(seconds: float = 0.5, freq: float = 220.0, rate: int = SR) -> np.ndarray:
    return sine(seconds, freq, rate=rate)


class Client:
    """Sends UDP requests; receives replies on its own socket (the daemon's reply port)."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, address: str, *args) -> None:
        self.out.sendto(build_msg(address, list(args)).dgram, self.server)

    def raw(self, data: bytes) -> None:
        self.out.sendto(data, self.server)

    def expect(self, *addresses: str, timeout: float = 30.0) -> OscMessage:
        """The next reply with one of ``addresses`` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {addresses} within {timeout:g} s")
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            message = OscMessage(data)
            if message.address in addresses:
                return message

    def drain(self) -> None:
        self.sock.settimeout(0.01)
        try:
            while True:
                self.sock.recvfrom(65536)
        except (TimeoutError, OSError):
            pass

    def close(self) -> None:
        self.sock.close()
        self.out.close()


class TcpClient:
    """python-osc's SimpleTCPClient (OSC 1.1) with a SLIP reader that tolerates split frames."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.client = SimpleTCPClient(*server, mode="1.1")
        self.decoder = SlipDecoder(1 << 24)
        self.pending: list[bytes | str] = []  # frames read but not looked at yet

    def send(self, address: str, *args) -> None:
        self.client.send_message(address, list(args))

    def expect(self, *addresses: str, timeout: float = 30.0) -> OscMessage:
        deadline = time.monotonic() + timeout
        while True:
            while self.pending:  # frames after a match in the same read stay for the next call
                message = OscMessage(self.pending.pop(0))
                if message.address in addresses:
                    return message
            if time.monotonic() >= deadline:
                break
            self.client.socket.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.client.socket.recv(65536)
            except TimeoutError:
                break
            self.pending.extend(self.decoder.feed(data))
        raise AssertionError(f"no {addresses} within {timeout:g} s")

    def close(self) -> None:
        self.client.close()


class Daemon:
    def __init__(self, root: Path, reply_port: int, match=None, **overrides) -> None:
        self.root = root
        self.allowed = root / "allowed"
        self.allowed.mkdir()
        self.presets = root / "presets"
        config = build_config({}, {
            "osc.port": 0, "osc.tcp_port": 0, "osc.reply_port": reply_port, "drop.enabled": False,
            "midi.enabled": False, "presets.folder": str(self.presets), "queue.journal": str(root / "journal"),
            "files.allowed_roots": [str(self.allowed)], "audio.max_buffer_seconds": 3.0, **overrides})
        self.service = Service(config, match=match or dry_run_match()).start()
        self.udp = self.service.udp.address
        self.tcp = self.service.tcp.address

    def wav(self, name: str, seconds: float = 0.5) -> Path:
        path = self.allowed / name
        sf.write(path, tone(seconds), SR)
        return path


@pytest.fixture()
def client() -> Iterator[Client]:
    c = Client(("127.0.0.1", 0))
    yield c
    c.close()


@pytest.fixture()
def daemon(tmp_path: Path, client: Client) -> Iterator[Daemon]:
    d = Daemon(tmp_path, client.port)
    client.server = d.udp
    yield d
    d.service.stop()


def test_ping_pong_and_hello(daemon: Daemon, client: Client) -> None:
    client.send(osc.PING)
    assert client.expect(osc.PONG).params == []
    client.send(osc.PING, 7, "x")
    assert client.expect(osc.PONG).params == [7, "x"]
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    other.settimeout(10)
    client.send(osc.HELLO, other.getsockname()[1])
    assert OscMessage(other.recvfrom(65536)[0]).params == [other.getsockname()[1]]
    client.send(osc.PING)
    assert OscMessage(other.recvfrom(65536)[0]).address == osc.PONG  # replies follow the declared port
    client.send(osc.HELLO, 0)  # forget it again
    assert client.expect(osc.HELLO_OK).params == [client.port]
    other.close()


def test_match_file_result(daemon: Daemon, client: Client) -> None:
    path = daemon.wav("lead.wav")
    client.send(osc.MATCH_FILE, str(path), 0.0)
    job_id, position = client.expect(osc.QUEUED).params
    assert position == 1
    (preset, distance, params_json, result_id, note, midi_pitch, cents, held_for, keys, raised_db, restored,
     hiss_dbfs, let_go_at, release) = client.expect(osc.RESULT).params
    assert result_id == job_id and Path(preset) == daemon.presets / "lead.h2p" and Path(preset).is_file()
    assert raised_db == 0.0 and restored == 0 and np.isnan(hiss_dbfs)  # a clean sine peaking at -8 dBFS
    assert note == "A3" and midi_pitch == -1 and cents == 0.0  # the 220 Hz sine; a dry run plays no key
    assert keys == ""
    assert np.isnan(held_for) and np.isnan(let_go_at) and np.isnan(release)  # ... and hears no note-off
    params = json.loads(params_json)
    assert len(params) == 33 and all(0 <= v <= 1 for v in params.values())
    assert np.isnan(distance)  # the dry run measures nothing
    assert len(client.expect(osc.PARAMS).params) == 33
    client.send(osc.STATUS)
    queued, state, uptime, completed, failed, last, last_distance = client.expect(osc.STATUS).params
    assert (queued, state, completed, failed, last) == (0, "idle", 1, 0, preset) and uptime > 0


def test_a_quiet_or_clipped_take_says_so(daemon: Daemon, client: Client) -> None:
    quiet, hot = daemon.allowed / "quiet.wav", daemon.allowed / "hot.wav"
    sf.write(quiet, sine(0.5, 220.0, amplitude=0.01), SR)  # -40 dBFS: raised to -18 dBFS
    sf.write(hot, np.clip(sine(0.5, 220.0, amplitude=4.0), -1, 1), SR)  # driven 12 dB into full scale
    client.send(osc.MATCH_FILE, str(quiet))
    assert client.expect(osc.RESULT).params[9:11] == [pytest.approx(22.0, abs=0.1), 0]
    client.send(osc.MATCH_FILE, str(hot))
    raised_db, restored = client.expect(osc.RESULT).params[9:11]
    assert raised_db == 0.0 and restored > 1000


def test_a_recording_clipped_in_one_channel_is_restored(daemon: Daemon, client: Client) -> None:
    """A stereo recording whose left channel clipped (the right one did not: the mix has no flat
    tops) reaches the match with its channels, through the journal's copy, and is restored."""
    left = np.clip(sine(1.0, 220.0, amplitude=1.4), -1, 1)
    stereo = np.stack([left, sine(1.0, 330.0, amplitude=0.3)], axis=1)
    recorder = daemon.service.recorder
    recorder.problem = None
    recorder._record = lambda seconds, device, probe_seconds: mix_down(stereo, SR, "recording from test")
    client.send(osc.RECORD, 1.0)
    client.expect(osc.RECORDING)
    raised_db, restored = client.expect(osc.RESULT).params[9:11]
    assert raised_db == 0.0 and restored > 1000


def test_bad_audio_gets_an_error_with_the_job_id(daemon: Daemon, client: Client) -> None:
    bad = daemon.allowed / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    client.send(osc.MATCH_FILE, str(bad))
    job_id, _ = client.expect(osc.QUEUED).params
    reason, failed_id = client.expect(osc.ERROR).params
    assert failed_id == job_id and "not a readable audio file" in reason


def test_path_traversal_and_symlinks_are_refused(daemon: Daemon, client: Client, tmp_path: Path) -> None:
    secret = tmp_path / "secret.wav"
    sf.write(secret, tone(), SR)
    (daemon.allowed / "sub").mkdir()
    (daemon.allowed / "link.wav").symlink_to(secret)
    attempts = [f"{daemon.allowed}/../secret.wav", f"{daemon.allowed}/sub/../../secret.wav",
                str(daemon.allowed / "link.wav"), str(secret), "/etc/passwd", "../secret.wav", "secret.wav",
                f"{daemon.allowed}/../nothing-here.wav"]
    for text in attempts:
        client.send(osc.MATCH_FILE, text)
        (reason,) = client.expect(osc.ERROR).params
        assert "refused" in reason or "absolute" in reason, reason
        assert "no such file" not in reason  # existence outside the roots is not revealed
    client.send(osc.MATCH_FILE, f"{daemon.allowed}/sub/../missing.wav")
    assert "no such file" in client.expect(osc.ERROR).params[0]
    assert daemon.service.worker.completed == 0 and len(daemon.service.queue) == 0


def test_check_path_resolves_before_checking(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.wav").write_bytes(b"x")
    assert check_path(f"{root}/a/../a/x.wav", [root]) == (root / "a" / "x.wav").resolve()
    with pytest.raises(osc.ArgError, match="refused"):
        check_path(f"{root}/../root2/x.wav", [root])
    with pytest.raises(osc.ArgError, match="non-empty"):
        check_path("bad\x00path", [root])


@pytest.mark.parametrize("address, args, words", [
    (osc.MATCH_FILE, [], "expects s:path [f:refine_seconds] [i:candidates], got no arguments"),
    (osc.MATCH_FILE, [3], "path must be a string, got int"),
    (osc.MATCH_FILE, ["/x", "fast"], "refine_seconds must be a float"),
    (osc.MATCH_FILE, ["/x", 1.0, 2, 3], "expects"),
    (osc.MATCH_FILE, ["/x", 1.0, 11], "candidates must be between 1 and 10"),
    (osc.MATCH_FILE, ["/x", 0.0, 3], "candidates > 1 needs refine_seconds > 0"),
    (osc.MATCH_FILE, ["/x", -1.0], "refine_seconds must be between 0 and 600"),
    (osc.MATCH_FILE, ["/x", 1.0], "refused"),
    (osc.HELLO, ["9002"], "port must be a int"),
    (osc.HELLO, [70000], "port must be between"),
    (osc.MATCH_BUFFER, [SR], "expects i:sample_rate b:samples"),
    (osc.MATCH_BUFFER, [SR, b"\x00" * 8, 0.0, 2], "candidates > 1 needs refine_seconds > 0"),
    (osc.MATCH_BUFFER, [100, b"\x00" * 8], "sample_rate must be between"),
    (osc.MATCH_BUFFER, [SR, b"\x00" * 7], "not whole float32 samples"),
    (osc.RECORD, [100.0], "seconds must be between"),
    (osc.RECORD, ["long"], "seconds must be a float"),
    ("/deepdiva/nope", [], "unknown address /deepdiva/nope"),
])
def test_malformed_requests_get_an_error(daemon: Daemon, client: Client, address: str, args: list,
                                         words: str) -> None:
    client.send(address, *args)
    (reason,) = client.expect(osc.ERROR).params
    assert words in reason, reason


def test_garbage_and_foreign_messages(daemon: Daemon, client: Client) -> None:
    client.raw(b"\x00\x01garbage")
    assert "malformed OSC packet" in client.expect(osc.ERROR).params[0]
    client.send("/some/other/app", 1.0)  # not ours: ignored, no error
    client.send(osc.PING)
    assert client.expect(osc.PONG, osc.ERROR).address == osc.PONG


def test_bundles_are_handled(daemon: Daemon, client: Client) -> None:
    from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder

    bundle = OscBundleBuilder(IMMEDIATELY)
    bundle.add_content(build_msg(osc.PING, ["in a bundle"]))
    client.raw(bundle.build().dgram)
    assert client.expect(osc.PONG).params == ["in a bundle"]


def test_hostile_bundle_sizes_are_refused_and_the_server_keeps_answering(daemon: Daemon, client: Client) -> None:
    from deepdiva.daemon.osc_guard import packet_problem

    tag = b"\x00" * 8
    hostile = [b"#bundle\x00" + tag + struct.pack(">i", -4),  # python-osc loops forever on this one
               b"#bundle\x00" + tag + struct.pack(">i", 0),
               b"#bundle\x00" + tag + struct.pack(">i", 6) + b"/x\x00\x00,\x00",
               b"#bundle\x00" + tag + struct.pack(">i", 4096) + b"/x\x00\x00,\x00\x00\x00"]
    nested = build_msg(osc.PING, []).dgram
    for _ in range(6):
        nested = b"#bundle\x00" + tag + struct.pack(">i", len(nested)) + nested
    for packet in [*hostile, nested]:
        assert packet_problem(packet) is not None
        client.raw(packet)
        assert "malformed OSC packet" in client.expect(osc.ERROR).params[0]
    began = time.monotonic()
    client.send(osc.PING, "after")
    assert client.expect(osc.PONG).params == ["after"] and time.monotonic() - began < 1.0
    assert packet_problem(build_msg(osc.PING, []).dgram) is None


def _random_packets(n: int, seed: int = 1) -> Iterator[bytes]:
    """Random bytes, truncated and bit-flipped valid messages, wrong type tags, fake bundles."""
    rng = random.Random(seed)
    valid = [build_msg(osc.MATCH_FILE, ["/tmp/x.wav", 1.0]).dgram, build_msg(osc.PING, [1, 2.0, "s"]).dgram,
             build_msg(osc.BUFFER_CHUNK, [1, 0, b"\x00" * 64]).dgram, build_msg(osc.HELLO, [9]).dgram]
    for i in range(n):
        kind = i % 6
        if kind == 0:
            yield rng.randbytes(rng.randint(0, 300))
        elif kind == 1:
            msg = rng.choice(valid)
            yield msg[: rng.randint(0, len(msg))]
        elif kind == 2:
            msg = bytearray(rng.choice(valid))
            for _ in range(3):
                msg[rng.randrange(len(msg))] = rng.randrange(256)
            yield bytes(msg)
        elif kind == 3:
            tags = "".join(rng.choice("ifsbhdtTFNIc[]m r") for _ in range(rng.randint(0, 8)))
            yield osc.ROOT.encode() + b"/match/file\x00\x00\x00\x00," + tags.encode() + b"\x00" + rng.randbytes(16)
        elif kind == 4:
            size = rng.choice([-4, -8, -1, 0, 6]) if rng.random() < 0.3 else rng.randint(1, 5000)
            yield b"#bundle\x00" + rng.randbytes(8) + struct.pack(">i", size) + rng.randbytes(20)
        else:
            yield b"/deepdiva/" + rng.randbytes(rng.randint(0, 40))


def _osc_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith(("deepdiva-osc", "Thread-")))


def test_ten_thousand_malformed_packets_do_not_stop_the_server(daemon: Daemon, client: Client) -> None:
    """10,000 random and mutated packets over UDP and 2,000 over TCP (several connections): both
    servers answer a ping within 1 s afterwards, no thread is left behind and the CPU is idle."""
    threads_before = _osc_threads()
    for i, packet in enumerate(_random_packets(10_000)):
        client.raw(packet)
        if i % 500 == 0:
            client.drain()  # keep our own receive buffer from overflowing
    decoder_garbage = [b"\xc0\xdb\x01\xc0", os.urandom(3000), b"\xc0" * 50, b"\xdb\xc0"]
    for connection in range(4):
        tcp = TcpClient(daemon.tcp)
        for chunk in decoder_garbage + list(_random_packets(500, seed=2 + connection)):
            tcp.client.socket.sendall(b"\xc0" + chunk + b"\xc0")
        tcp.send(osc.PING, "tcp")
        pongs = [tcp.expect(osc.PONG).params]  # mutated packets may themselves be pings
        while pongs[-1] != ["tcp"] and len(pongs) < 500:
            pongs.append(tcp.expect(osc.PONG).params)
        assert pongs[-1] == ["tcp"]
        tcp.close()
    client.drain()
    client.send(osc.HELLO, client.port)  # the garbage may have declared another reply port: take it back
    client.expect(osc.HELLO_OK)
    wait_until(lambda: daemon.service.tcp.connections == 0, 10, "the TCP connections to close")
    wait_until(lambda: _osc_threads() == threads_before, 10, "the connection threads to end")
    cpu = time.process_time()
    time.sleep(1.0)
    assert time.process_time() - cpu < 0.3, "the daemon keeps a core busy after the fuzzing"
    began = time.monotonic()
    client.send(osc.PING, "still here")
    assert client.expect(osc.PONG, timeout=1.0).params == ["still here"]
    tcp = TcpClient(daemon.tcp)
    tcp.send(osc.PING, "tcp after")
    assert tcp.expect(osc.PONG, timeout=1.0).params == ["tcp after"] and time.monotonic() - began < 2.0
    tcp.close()
    app = daemon.service.udp.app
    assert app.packets >= 1000 and app.malformed >= 1000  # most arrived and were recognised as bad
    assert daemon.service.worker.alive
    assert daemon.service.udp.restarts == 0 and daemon.service.tcp.restarts == 0


def test_a_dying_server_loop_is_restarted_and_logged(daemon: Daemon, client: Client, caplog) -> None:
    class Boom(BaseException):
        pass

    udp, tcp, app = daemon.service.udp, daemon.service.tcp, daemon.service.udp.app
    real_handle, real_watch = app.handle_packet, udp._watch
    fired: list[str] = []

    def handle_once(*args):
        if "handler" not in fired:
            fired.append("handler")
            raise Boom("the handler thread dies")
        return real_handle(*args)

    def watch_once():
        if "receiver" not in fired:
            fired.append("receiver")
            raise RuntimeError("the receiving thread dies")
        return real_watch()

    app.handle_packet = handle_once
    udp._watch = watch_once
    tcp._server.service_actions = lambda: (_ for _ in ()).throw(RuntimeError("the TCP accept loop dies"))
    client.send(osc.PING, "lost with the handler")
    wait_until(lambda: udp.restarts >= 2 and tcp.restarts >= 1, 10, "the loops to be restarted")
    tcp._server.service_actions = lambda: None
    client.send(osc.PING, "after")
    assert client.expect(osc.PONG, timeout=2.0).params == ["after"]
    conn = TcpClient(daemon.tcp)
    conn.send(osc.PING, "tcp after")
    assert conn.expect(osc.PONG, timeout=2.0).params == ["tcp after"]
    conn.close()
    assert sum("restarting it" in r.getMessage() for r in caplog.records) >= 3


def test_a_stuck_handler_does_not_stop_the_udp_server(tmp_path: Path, client: Client) -> None:
    d = Daemon(tmp_path, client.port)
    client.server = d.udp
    gate = threading.Event()
    real_status = d.service.status

    def stuck_status():
        gate.wait(30)
        return real_status()

    d.service.udp.handler_timeout = 0.5
    d.service.udp.app.backend.status = stuck_status  # type: ignore[method-assign]
    try:
        client.send(osc.STATUS)
        time.sleep(0.1)
        began = time.monotonic()
        client.send(osc.PING, "not stuck")
        assert client.expect(osc.PONG, timeout=3.0).params == ["not stuck"]
        assert time.monotonic() - began < 2.0
    finally:
        gate.set()
        d.service.stop()
    assert client.expect(osc.STATUS, timeout=5.0)  # the stuck request still got its answer


def _sender(ip: str) -> Client:
    """A client sending from and receiving on ``ip`` (127.0.0.x: another loopback sender)."""
    c = Client(("127.0.0.1", 0))
    for sock in (c.sock, c.out):
        sock.close()
    c.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.sock.bind((ip, 0))
    c.port = c.sock.getsockname()[1]
    c.out = c.sock
    return c


def test_unfinished_buffers_share_one_memory_cap_across_senders(tmp_path: Path, client: Client) -> None:
    """Six loopback senders each start a big chunked buffer: together they never hold more than
    osc.max_pending_mb; the oldest are dropped first and told, the newest still matches."""
    d = Daemon(tmp_path, client.port, **{"osc.max_pending_mb": 1.0})
    senders = [_sender(f"127.0.0.{k}") for k in range(2, 8)]
    cap = d.service.udp.app.budget.cap
    try:
        peak = 0
        chunk = np.zeros(2048, dtype="<f4").tobytes()  # 8 KB
        for s in senders:
            s.server = d.udp
            s.send(osc.HELLO, s.port)
            s.expect(osc.HELLO_OK)
            s.send(osc.BUFFER_BEGIN, 1, SR, 40)
        for index in range(40):  # 320 KB per sender, 1.9 MB in all
            for s in senders:
                s.send(osc.BUFFER_CHUNK, 1, index, chunk)
            time.sleep(0.005)
            peak = max(peak, d.service.udp.app.budget.total)
        wait_until(lambda: d.service.udp._packets.empty(), 10, "the chunks to be handled")
        peak = max(peak, d.service.udp.app.budget.total)
        assert peak <= cap
        assert "osc.max_pending_mb" in senders[0].expect(osc.ERROR, timeout=5).params[0]  # the oldest went first
        newest = senders[-1]
        newest.send(osc.BUFFER_END, 1)
        assert newest.expect(osc.QUEUED, osc.ERROR, timeout=5).address == osc.QUEUED
    finally:
        d.service.stop()
        for s in senders:
            s.sock.close()


def test_unfinished_buffers_expire_and_free_their_bytes_without_new_requests(tmp_path: Path, client: Client) -> None:
    d = Daemon(tmp_path, client.port)
    client.server = d.udp
    app = d.service.udp.app
    app.buffers.ttl = 0.5
    try:
        client.send(osc.BUFFER_BEGIN, 3, SR, 4)
        client.send(osc.BUFFER_CHUNK, 3, 0, b"\x00" * 4096)
        wait_until(lambda: app.budget.total == 4096, 5, "the chunk to be held")
        assert "expired" in client.expect(osc.ERROR, timeout=5).params[0]  # no other request needed
        assert app.budget.total == 0 and len(app.buffers) == 0
    finally:
        d.service.stop()


def test_tcp_packets_in_progress_count_against_the_cap(tmp_path: Path, client: Client) -> None:
    d = Daemon(tmp_path, client.port, **{"osc.max_pending_mb": 1.0})
    conns = [TcpClient(d.tcp) for _ in range(3)]
    try:
        budget = d.service.udp.app.budget
        for n, conn in enumerate(conns):  # 600 KB of a packet that never ends, one connection after the other
            conn.client.socket.sendall(b"\xc0" + b"/x" * 300_000)
            wait_until(lambda n=n: budget.evictions == n and budget.total == 600_000, 10, "the bytes to arrive")
        assert budget.total <= budget.cap
        for older in conns[:2]:  # the oldest were dropped first, each told
            assert "osc.max_pending_mb" in older.expect(osc.ERROR, timeout=5).params[0]
        conns[-1].client.socket.sendall(b"\xc0")  # the newest ends its (garbage) packet: malformed, not dropped
        assert "malformed" in conns[-1].expect(osc.ERROR, timeout=5).params[0]
    finally:
        for conn in conns:
            conn.close()
        d.service.stop()


def test_idle_tcp_connections_are_closed_and_a_full_server_says_so(tmp_path: Path, client: Client,
                                                                  monkeypatch) -> None:
    from deepdiva.daemon import osc_transports

    monkeypatch.setattr(osc_transports, "MAX_TCP_CONNECTIONS", 2)
    d = Daemon(tmp_path, client.port, **{"osc.tcp_idle_seconds": 1.5})
    try:
        idle = [TcpClient(d.tcp) for _ in range(2)]
        for conn in idle:
            conn.send(osc.PING, "in")
            conn.expect(osc.PONG)
        refused = TcpClient(d.tcp)
        assert "too many TCP connections" in refused.expect(osc.ERROR, timeout=5).params[0]
        refused.close()
        for conn in idle:
            assert "idle" in conn.expect(osc.ERROR, timeout=10).params[0]
            conn.client.socket.settimeout(5)
            assert conn.client.socket.recv(100) == b""  # closed by the daemon
            conn.close()
        later = TcpClient(d.tcp)
        later.send(osc.PING, "room again")
        assert later.expect(osc.PONG, timeout=5).params == ["room again"]
        later.close()
    finally:
        d.service.stop()


def test_a_tcp_connection_owed_a_result_is_not_idle() -> None:
    from deepdiva.daemon.osc_replies import TcpTarget

    a, b = socket.socketpair()
    target = TcpTarget(a, osc.UdpReplier(9), ("127.0.0.1", 1))
    target.send(osc.QUEUED, "job1", 1)
    target.send(osc.ERROR, "bad arguments")  # not about the job
    assert target.in_flight == 1
    target.send(osc.RESULT, "p.h2p", 1.0, "{}", "job1", "A4", 69, 0.0)
    assert target.in_flight == 0
    target.send(osc.QUEUED, "job2", 1)
    target.send(osc.ERROR, "the audio is silent", "job2")
    assert target.in_flight == 0 and target.last_sent > 0
    a.close()
    b.close()


def test_buffer_over_tcp_is_answered_on_the_connection(daemon: Daemon) -> None:
    tcp = TcpClient(daemon.tcp)
    samples = tone(2.0)
    tcp.send(osc.MATCH_BUFFER, SR, samples.astype("<f4").tobytes())
    job_id, _ = tcp.expect(osc.QUEUED).params
    preset, _, _, result_id, *_ = tcp.expect(osc.RESULT).params
    assert result_id == job_id and job_id in Path(preset).name and Path(preset).is_file()
    tcp.close()


def test_oversized_buffers_are_refused(daemon: Daemon, client: Client) -> None:
    tcp = TcpClient(daemon.tcp)
    too_long = tone(3.5)  # limit: 3 s
    tcp.send(osc.MATCH_BUFFER, SR, too_long.tobytes())
    assert "longer than 3 s" in tcp.expect(osc.ERROR).params[0]
    huge = b"\xc0" + b"\x01" * (daemon.service.tcp.max_packet * 2 + 10) + b"\xc0"  # no valid frame at all
    tcp.client.socket.sendall(huge)
    assert "larger than" in tcp.expect(osc.ERROR).params[0]
    tcp.send(osc.PING)
    assert tcp.expect(osc.PONG).params == []  # the connection survives
    tcp.close()
    client.send(osc.BUFFER_BEGIN, 5, SR, 4)
    for i, piece in enumerate(np.split(tone(8000 / SR), 4)):
        client.send(osc.BUFFER_CHUNK, 5, i, piece.astype("<f4").tobytes())
    client.send(osc.BUFFER_END, 5)
    assert client.expect(osc.QUEUED, osc.ERROR).address == osc.QUEUED  # 4 x 2000 samples: fine
    client.expect(osc.RESULT)
    client.send(osc.BUFFER_BEGIN, 6, 8000, 30)
    chunk = np.zeros(1000, dtype="<f4").tobytes()
    for i in range(30):  # 30000 samples at 8 kHz = 3.75 s > 3 s
        client.send(osc.BUFFER_CHUNK, 6, i, chunk)
    assert "longer than 3 s" in client.expect(osc.ERROR).params[0]


def _send_chunked(client: Client, buffer_id: int, samples: np.ndarray, chunk: int, order: list[int],
                  skip: int | None = None, options: tuple = ()) -> int:
    pieces = [samples[i:i + chunk] for i in range(0, len(samples), chunk)]
    client.send(osc.BUFFER_BEGIN, buffer_id, SR, len(pieces), *options)
    for i in order or range(len(pieces)):
        if i != skip:
            client.send(osc.BUFFER_CHUNK, buffer_id, i, pieces[i].astype("<f4").tobytes())
            time.sleep(0.0005)  # pace the datagrams a little, as a real client should
    client.send(osc.BUFFER_END, buffer_id)
    return len(pieces)


def test_chunked_buffer_out_of_order(daemon: Daemon, client: Client) -> None:
    samples = tone(1.0, 330.0)
    n = -(-len(samples) // 1024)
    order = list(range(n))
    random.Random(3).shuffle(order)
    _send_chunked(client, 42, samples, 1024, order)
    job_id, _ = client.expect(osc.QUEUED).params
    assert client.expect(osc.RESULT).params[3] == job_id
    stored = None
    for outcome in [daemon.service.worker.last]:
        stored = outcome.job
    assert stored is not None and stored.kind == "buffer"


def test_chunked_buffers_and_recordings_ask_for_refine_and_candidates(daemon: Daemon, client: Client) -> None:
    _send_chunked(client, 46, tone(0.5), 1024, [], options=(1.5, 3))
    client.expect(osc.RESULT)
    assert daemon.service.worker.last is not None
    job = daemon.service.worker.last.job
    assert (job.kind, job.refine_seconds, job.candidates) == ("buffer", 1.5, 3)
    _send_chunked(client, 47, tone(0.5), 1024, [], options=(0.0, 3))
    assert "candidates > 1 needs refine_seconds > 0" in client.expect(osc.ERROR).params[0]

    recorder = daemon.service.recorder
    recorder.problem = None
    recorder._record = lambda seconds, device, probe_seconds: AudioClip(tone(seconds), SR, "recording from test")
    client.send(osc.RECORD, 0.0, 2.5, 4)  # seconds 0: audio.record_seconds
    assert client.expect(osc.RECORDING).params == [2.0]
    client.expect(osc.RESULT)
    job = daemon.service.worker.last.job
    assert (job.kind, job.refine_seconds, job.candidates) == ("buffer", 2.5, 4)
    client.send(osc.RECORD, 1.0, 0.0, 2)
    assert "candidates > 1 needs refine_seconds > 0" in client.expect(osc.ERROR).params[0]
    client.send(osc.RECORD, 61.0)
    assert "seconds must be between 0 and 60" in client.expect(osc.ERROR).params[0]


def test_chunked_buffer_missing_chunk(daemon: Daemon, client: Client) -> None:
    n = _send_chunked(client, 43, tone(0.5), 1024, [], skip=5)
    (reason,) = client.expect(osc.ERROR).params
    assert f"missing chunk(s) 5 of {n}" in reason
    client.raw(b"/deepdiva/match/buffer\x00\x00,ib\x00" + struct.pack(">ii", SR, 0))  # an empty blob
    assert "the buffer is empty" in client.expect(osc.ERROR).params[0]
    client.send(osc.BUFFER_CHUNK, 44, 0, b"\x00" * 8)
    assert "was not begun" in client.expect(osc.ERROR).params[0]
    client.send(osc.BUFFER_BEGIN, 45, SR, 2)
    client.send(osc.BUFFER_CHUNK, 45, 2, b"\x00" * 8)
    assert "out of range 0..1" in client.expect(osc.ERROR).params[0]
    assert len(daemon.service.queue) == 0


def test_assembler_limits() -> None:
    a = BufferAssembler(max_seconds=1.0, max_open=2, ttl=0.0)
    a.begin(("h", 1), 8000, 2, None)
    a.begin(("h", 2), 8000, 2, None)
    a.begin(("h", 3), 8000, 2, None)  # ttl 0: the others expired
    assert len(a) == 1
    with pytest.raises(osc.ArgError, match="n_chunks"):
        a.begin(("h", 4), 8000, 10**9, None)
    b = BufferAssembler(max_seconds=1.0, max_open=1)
    b.begin(("h", 1), 8000, 2, None)
    with pytest.raises(osc.ArgError, match="too many unfinished"):
        b.begin(("h", 2), 8000, 2, None)
    b.begin(("other", 1), 8000, 2, None)  # per sender


def test_slip_decoder_streaming() -> None:
    from pythonosc import slip

    frames = [b"abc", bytes([0xC0, 0xDB, 1]), b"x" * 5000]
    stream = b"".join(slip.encode(f) for f in frames)
    d = SlipDecoder(10_000)
    got = [item for i in range(0, len(stream), 7) for item in d.feed(stream[i:i + 7])]
    assert got == frames
    assert d.feed(b"\xc0\xdb\x01\xc0") == ["malformed SLIP frame (bad escape sequence)"]
    small = SlipDecoder(10)
    assert small.feed(b"\xc0" + b"y" * 100) == []
    assert small.feed(b"\xc0" + slip.encode(b"ok")) == ["packet larger than 10 bytes refused (audio.max_buffer_seconds)",
                                                       b"ok"]


def test_queue_full_gets_busy(tmp_path: Path, client: Client) -> None:
    gate = threading.Event()
    fast = dry_run_match()

    def blocked(job: Job) -> dict:
        gate.wait(60)
        return fast(job)

    d = Daemon(tmp_path, client.port, match=blocked, **{"queue.size": 2})
    client.server = d.udp
    try:
        path = d.wav("a.wav")
        for _ in range(3):  # one running, two waiting
            client.send(osc.MATCH_FILE, str(path))
            client.expect(osc.QUEUED)
            if d.service.worker.current is None:
                deadline = time.monotonic() + 10
                while d.service.worker.current is None and time.monotonic() < deadline:
                    time.sleep(0.01)
        client.send(osc.MATCH_FILE, str(path))
        assert "queue is full" in client.expect(osc.BUSY, osc.QUEUED).params[0]
        client.send(osc.STATUS)
        status = client.expect(osc.STATUS).params
        assert status[:2] == [2, "matching"]
        gate.set()
        for _ in range(3):
            client.expect(osc.RESULT)
        assert sorted(p.name for p in d.presets.glob("*.h2p")) == ["a (2).h2p", "a (3).h2p", "a.h2p"]
    finally:
        gate.set()
        d.service.stop()


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[np.ndarray] = []

    def send(self, parameter_set, normalised) -> int:
        self.sent.append(np.asarray(normalised))
        return len(normalised)

    def close(self) -> None:
        pass


def test_push_and_record(daemon: Daemon, client: Client) -> None:
    client.send(osc.PUSH)
    assert "nothing to push" in client.expect(osc.ERROR).params[0]
    client.send(osc.MATCH_FILE, str(daemon.wav("x.wav")))
    client.expect(osc.RESULT)
    client.send(osc.PUSH)
    assert "MIDI output is off" in client.expect(osc.ERROR).params[0]
    sender = FakeSender()
    daemon.service.midi.sender = sender
    client.send(osc.PUSH, 1.0)
    assert client.expect(osc.PUSHED).params == [33]
    client.send(osc.PUSH, 0.0)  # a button release: ignored
    client.send(osc.PING)
    client.expect(osc.PONG)
    assert len(sender.sent) == 1

    recorder = daemon.service.recorder
    recorder.problem = None
    probes: list[float] = []
    recorder._record = lambda seconds, device, probe_seconds: (
        probes.append(probe_seconds) or AudioClip(tone(seconds), SR, "recording from test input"))
    client.send(osc.RECORD, 0.5)
    assert client.expect(osc.RECORDING).params == [0.5]
    preset = client.expect(osc.RESULT).params[0]
    assert Path(preset).name.startswith("recording ")
    assert len(sender.sent) == 2  # sent after each match while MIDI is on
    assert probes == [0.2]  # audio.probe_seconds reaches the recorder
    recorder._record = lambda seconds, device, probe_seconds: (_ for _ in ()).throw(
        __import__("deepdiva.core.errors", fromlist=["AudioError"]).AudioError("the input is silent"))
    client.send(osc.RECORD)
    assert client.expect(osc.RECORDING).params == [2.0]  # audio.record_seconds
    assert client.expect(osc.ERROR).params[0] == "the input is silent"


# --------------------------------------------------------------------------- docs and examples

def documented_addresses() -> set[str]:
    return set(re.findall(r"`(/deepdiva[a-z/]*)", OSC_MD.read_text(encoding="utf-8")))


def test_every_address_is_documented() -> None:
    documented = documented_addresses()
    app_addresses = {osc.PING, osc.HELLO, osc.STATUS, osc.MATCH_FILE, osc.MATCH_BUFFER, osc.BUFFER_BEGIN,
                     osc.BUFFER_CHUNK, osc.BUFFER_END, osc.RECORD, osc.PUSH}
    replies = {osc.PONG, osc.HELLO_OK, osc.QUEUED, osc.RESULT, osc.PARAMS, osc.ERROR, osc.BUSY, osc.RECORDING,
               osc.PUSHED, osc.ALTERNATIVE}
    assert app_addresses | replies <= documented
    assert documented <= app_addresses | replies


def test_max_patch_uses_documented_addresses() -> None:
    patch = json.loads((ROOT / "examples" / "deepdiva.maxpat").read_text(encoding="utf-8"))
    texts = [b["box"].get("text", "") for b in patch["patcher"]["boxes"]]
    used = {w for t in texts for w in t.split() if w.startswith("/deepdiva")}
    assert {osc.PING, osc.MATCH_FILE, osc.RECORD, osc.PUSH, osc.RESULT, osc.HELLO, osc.ALTERNATIVE} <= used
    assert used <= documented_addresses()
    assert "udpsend 127.0.0.1 9000" in texts and "udpreceive 9002" in texts
    boxes = {b["box"]["id"]: b["box"] for b in patch["patcher"]["boxes"]}
    for box in boxes.values():
        if box.get("text", "").startswith("route "):  # one outlet per address, then the reject outlet
            assert box["numoutlets"] == len(box["text"].split()) == len(box["outlettype"])
    for line in patch["patcher"]["lines"]:
        (src, outlet), (dst, inlet) = line["patchline"]["source"], line["patchline"]["destination"]
        assert outlet < boxes[src]["numoutlets"] and inlet < boxes[dst]["numinlets"], line
    # the result is unpacked into every argument OSC.md gives it, each shown
    (result_row,) = [r for r in OSC_MD.read_text(encoding="utf-8").splitlines() if r.startswith(f"| `{osc.RESULT}` |")]
    documented_types = re.findall(r"\b([sfi]):[a-z_]+", result_row.split("|")[2].split("—")[0])
    (route,) = [k for k, b in boxes.items() if b.get("text", "").startswith("route ")]
    result_outlet = boxes[route]["text"].split()[1:].index(osc.RESULT)
    (unpack,) = [line["patchline"]["destination"][0] for line in patch["patcher"]["lines"]
                 if line["patchline"]["source"] == [route, result_outlet]]
    assert boxes[unpack]["text"].split()[1:] == documented_types
    shown = {line["patchline"]["source"][1] for line in patch["patcher"]["lines"]
             if line["patchline"]["source"][0] == unpack}
    assert shown >= set(range(len(documented_types))) - {3}  # all but the job id


def test_touchosc_layout_uses_documented_addresses() -> None:
    with zipfile.ZipFile(ROOT / "examples" / "deepdiva.touchosc") as z:
        root = ElementTree.fromstring(z.read("index.xml"))
    addresses = {base64.b64decode(c.get("osc_cs")).decode() for c in root.iter("control") if c.get("osc_cs")}
    assert {osc.PING, osc.RECORD, osc.PUSH, osc.RESULT, osc.ALTERNATIVE} <= addresses
    assert addresses <= documented_addresses()


def test_example_client_against_a_running_daemon(daemon: Daemon) -> None:
    wav = daemon.wav("client.wav", 1.0)
    script = ROOT / "examples" / "osc_client.py"
    common = ["--port", str(daemon.udp[1]), "--tcp-port", str(daemon.tcp[1]), "--timeout", "60"]
    for args in (["ping"], ["match", str(wav)], ["buffer", str(wav)], ["buffer", "--udp", str(wav)], ["status"]):
        run = subprocess.run([sys.executable, str(script), *args, *common], capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, (args, run.stdout, run.stderr)
        if args[0] in ("match", "buffer"):
            assert "/deepdiva/result" in run.stdout and ".h2p" in run.stdout
