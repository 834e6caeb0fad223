"""Soak: a long day of mixed and hostile traffic compressed into a bounded run, on loopback only.

A ``deepdiva serve`` process (its own process, as for users; MIDI off) gets, for ``--seconds``:
OSC file requests over UDP (good, silent and garbage files), whole buffers over TCP (good, NaN,
too long), chunked UDP buffers from six loopback addresses (127.0.0.2-7; finished ones and big
abandoned ones that only the memory cap and the 30 s expiry clear), drop-folder files (whole,
garbage, and written in chunks by a writer that reopens the file for each), and random garbage
over UDP and TCP. Afterwards, once the queue is empty and unfinished buffers have expired, it
prints the daemon's resident memory at start (after a warm-up), peak and end, and the job
ledger: every job the daemon accepted (OSC ``/deepdiva/queued`` + drop files) must have ended
exactly once, as a result or as a failure with a reason; none lost.

    .venv/bin/python benchmarks/soak.py [--seconds 120] [--model PATH | --dry-run]
"""

from __future__ import annotations

import argparse
import os
import random
import selectors
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf
from daemon_process import SR, rss_mb, start_daemon, tone  # benchmarks/ is the script's folder
from pythonosc import slip
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import build_msg

from deepdiva.daemon import osc_server as osc
from deepdiva.daemon.osc_server import SlipDecoder

SHIPPED = Path(__file__).parents[1] / "models" / "deepdiva-medium33.onnx"
EXPIRY = 30.0  # unfinished chunked buffers are dropped this long after their last chunk
SENDERS = [f"127.0.0.{k}" for k in range(2, 8)]


class Ledger:
    """Every reply seen, by kind, and each job's outcomes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queued: set[str] = set()
        self.outcomes: Counter[str] = Counter()
        self.results = self.failures = 0
        self.replies: Counter[str] = Counter()

    def take(self, message: OscMessage) -> None:
        with self.lock:
            self.replies[message.address] += 1
            params = message.params
            if message.address == osc.QUEUED:
                self.queued.add(str(params[0]))
            elif message.address == osc.RESULT:
                self.outcomes[str(params[3])] += 1
                self.results += 1
            elif message.address == osc.ERROR and len(params) > 1:
                self.outcomes[str(params[1])] += 1
                self.failures += 1


class Listener(threading.Thread):
    """Reads every UDP reply socket and TCP connection and feeds the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(daemon=True)
        self.ledger = ledger
        self.selector = selectors.DefaultSelector()
        self.stop = threading.Event()

    def add_udp(self, sock: socket.socket) -> None:
        self.selector.register(sock, selectors.EVENT_READ, None)

    def add_tcp(self, sock: socket.socket) -> None:
        self.selector.register(sock, selectors.EVENT_READ, SlipDecoder(1 << 24))

    def run(self) -> None:
        while not self.stop.is_set():
            for key, _ in self.selector.select(0.2):
                sock = key.fileobj
                try:
                    data = sock.recv(1 << 16)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                frames = [data] if key.data is None else key.data.feed(data)
                if key.data is not None and not data:
                    self.selector.unregister(sock)
                for frame in frames:
                    if isinstance(frame, bytes) and frame:
                        try:
                            self.ledger.take(OscMessage(frame))
                        except Exception:  # noqa: BLE001 - not ours to judge
                            pass


class Traffic:
    """The senders: one UDP socket per loopback address, TCP connections, the drop folder."""

    def __init__(self, info: dict, root: Path, drop: Path, listener: Listener, rng: random.Random) -> None:
        self.udp_server = tuple(info["udp"])
        self.tcp_server = tuple(info["tcp"])
        self.root, self.drop, self.rng = root, drop, rng
        self.listener = listener
        self.udp: dict[str, socket.socket] = {}
        for ip in ["127.0.0.1", *SENDERS]:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((ip, 0))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.udp[ip] = sock
            sock.sendto(build_msg(osc.HELLO, [sock.getsockname()[1]]).dgram, self.udp_server)
            listener.add_udp(sock)
        self.tcp = [self._connect() for _ in range(3)]
        self.files = {"good": [tone(root / f"good{i}.wav", 1.0, 110.0 * (i + 1)) for i in range(4)]}
        sf.write(root / "silent.wav", np.zeros(SR, dtype=np.float32), SR)
        (root / "garbage.wav").write_bytes(os.urandom(5000))
        self.files["bad"] = [root / "silent.wav", root / "garbage.wav"]
        self.buffer_id = 0
        self.drop_files = 0
        self.sent: Counter[str] = Counter()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.tcp_server)
        self.listener.add_tcp(sock)
        return sock

    def _udp(self, ip: str, address: str, *args) -> None:
        self.udp[ip].sendto(build_msg(address, list(args)).dgram, self.udp_server)

    def _tcp(self, data: bytes) -> None:
        index = self.rng.randrange(len(self.tcp))
        try:
            self.tcp[index].sendall(slip.encode(data))
        except OSError:  # closed by the daemon (idle, or dropped): open another
            self.tcp[index] = self._connect()

    def round(self) -> None:
        rng = self.rng
        kind = rng.choices(["file", "buffer", "chunked", "abandoned", "drop", "garbage"],
                           weights=[4, 2, 2, 1, 2, 3])[0]
        self.sent[kind] += 1
        if kind == "file":
            path = rng.choice(self.files["good"] if rng.random() < 0.8 else self.files["bad"])
            self._udp("127.0.0.1", osc.MATCH_FILE, str(path))
        elif kind == "buffer":
            samples = (0.3 * np.sin(np.arange(SR) * 2 * np.pi * rng.uniform(80, 900) / SR)).astype("<f4")
            if rng.random() < 0.1:
                samples[::7] = np.nan
            if rng.random() < 0.05:
                samples = np.zeros(SR * 30, dtype="<f4")  # longer than audio.max_buffer_seconds
            self._tcp(build_msg(osc.MATCH_BUFFER, [SR, samples.tobytes()]).dgram)
        elif kind in ("chunked", "abandoned"):
            ip = rng.choice(SENDERS)
            self.buffer_id += 1
            rate, seconds = (SR, 0.5) if kind == "chunked" else (96000, 9.0)  # abandoned: 3.5 MB each
            n = int(seconds * rate) // 2048
            self._udp(ip, osc.BUFFER_BEGIN, self.buffer_id, rate, n)
            tone_chunk = (0.3 * np.sin(np.arange(2048) * 2 * np.pi * 330 / SR)).astype("<f4").tobytes()
            for index in range(n):
                self._udp(ip, osc.BUFFER_CHUNK, self.buffer_id, index, tone_chunk)
                if index % 64 == 63:
                    time.sleep(0.002)  # pace, as a client on a real network must
            if kind == "chunked":
                self._udp(ip, osc.BUFFER_END, self.buffer_id)
        elif kind == "drop":
            self.drop_files += 1
            name = f"take {self.drop_files:05d}.wav"
            source = rng.choice(self.files["good"] + self.files["bad"])
            if rng.random() < 0.3:  # a writer that reopens the file for every chunk
                data = source.read_bytes()
                step = len(data) // 4 + 1
                for i in range(0, len(data), step):
                    with open(self.drop / name, "ab") as f:
                        f.write(data[i:i + step])
                    time.sleep(0.1)
            else:
                shutil.copyfile(source, self.root / name)
                os.replace(self.root / name, self.drop / name)
        else:
            junk = os.urandom(rng.randint(1, 2000))
            if rng.random() < 0.5:
                self.udp[rng.choice(SENDERS)].sendto(junk, self.udp_server)
            else:
                self._tcp(junk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the load runs")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second, on average")
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--dry-run", action="store_true", help="the daemon's --dry-run match instead of a model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (drop/, presets/, journal/)")
    args = parser.parse_args()
    model = None if args.dry_run else (args.model or (SHIPPED if SHIPPED.exists() else None))
    root = Path(tempfile.mkdtemp(prefix="deepdiva-soak-"))
    drop = root / "drop"
    ledger = Ledger()
    listener = Listener(ledger)
    reply_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # replies before a sender's hello
    reply_sock.bind(("127.0.0.1", 0))
    listener.add_udp(reply_sock)
    config = {"osc.port": 0, "osc.tcp_port": 0, "web.port": 0, "osc.reply_port": reply_sock.getsockname()[1],
              "drop.enabled": True, "drop.folder": str(drop), "drop.settle_seconds": 0.5,
              "drop.rescan_seconds": 2.0, "midi.enabled": False, "presets.folder": str(root / "presets"),
              "queue.journal": str(root / "journal"), "files.allowed_roots": [str(root)], "queue.size": 64,
              "presets.preview": False}
    proc, info = start_daemon(config, model, preview=False)
    listener.start()
    try:
        report(args, model, proc.pid, Traffic(info, root, drop, listener, random.Random(args.seed)), ledger, drop)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        listener.stop.set()
        if args.keep:
            print(f"  kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def report(args, model: Path | None, pid: int, traffic: Traffic, ledger: Ledger, drop: Path) -> None:
    print(f"deepdiva soak: {args.seconds:g} s of mixed traffic at ~{args.rate:g} requests/s, "
          f"{'model ' + model.name if model else 'dry-run match'}")
    for path in traffic.files["good"][:2] * 5:  # warm-up: model session, numba, file cache
        traffic._udp("127.0.0.1", osc.MATCH_FILE, str(path))
    _wait(lambda: ledger.results >= 10, 120)
    start = rss_mb(pid) or 0.0
    peak = start
    began = time.monotonic()
    while time.monotonic() - began < args.seconds:
        traffic.round()
        peak = max(peak, rss_mb(pid) or 0.0)
        time.sleep(traffic.rng.expovariate(args.rate))
    load_end = time.monotonic()
    print(f"  load: {dict(traffic.sent)} in {load_end - began:.0f} s")

    def settled() -> bool:
        with ledger.lock:
            done = all(ledger.outcomes[j] for j in ledger.queued)
        left = [p for p in drop.iterdir() if p.is_file()] if drop.exists() else []
        return done and not left

    _wait(settled, 600)
    time.sleep(max(0.0, EXPIRY + 3 - (time.monotonic() - load_end)))  # unfinished buffers expire
    for _ in range(10):
        peak = max(peak, rss_mb(pid) or 0.0)
        time.sleep(0.2)
    end = rss_mb(pid) or 0.0
    with ledger.lock:
        queued, outcomes = set(ledger.queued), Counter(ledger.outcomes)
    lost = [j for j in queued if not outcomes[j]]
    doubled = [j for j in queued if outcomes[j] > 1]
    done_dir, failed_dir = drop / "done", drop / "failed"
    drop_done, drop_failed = (len(list(d.glob("*.wav"))) if d.exists() else 0 for d in (done_dir, failed_dir))
    reasons = len(list(failed_dir.glob("*.wav.txt"))) if failed_dir.exists() else 0
    print(f"  OSC jobs accepted {len(queued)} = results {ledger.results} + failures with a reason "
          f"{ledger.failures}; lost {len(lost)}, answered twice {len(doubled)}")
    print(f"  drop files written {traffic.drop_files} = done {drop_done} + failed {drop_failed} (with a reason "
          f"{reasons}); left in drop/ {traffic.drop_files - drop_done - drop_failed}")
    print(f"  replies: {dict(ledger.replies)}")
    print(f"  RSS start {start:.1f} MB, peak {peak:.1f} MB, end {end:.1f} MB: end/start {end / start:.3f} "
          f"({'within' if end <= 1.10 * start else 'NOT within'} 10 %)")
    ok = (not lost and not doubled and drop_done + drop_failed == traffic.drop_files and reasons == drop_failed
          and end <= 1.10 * start)
    print("  PASS" if ok else "  FAIL")


def _wait(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)


if __name__ == "__main__":
    main()
