"""The daemon end to end over real OSC sockets: latency, burst throughput and memory, side by side.

A ``deepdiva serve`` process (drop folder and MIDI off) answers a client on 127.0.0.1, once with
its journal and presets on disk (the temp folder) and once in memory (/dev/shm, where it exists),
so the cost of the journal's fsyncs shows. Printed side by side in one run:

- latency p50/p95: UDP ping (the floor), the match function alone (in this process),
  ``/deepdiva/match/file`` -> ``/deepdiva/result`` one request at a time (paced like a user, and
  back to back) and a 2 s buffer over TCP -> result; the daemon's overhead is the difference to
  the match function alone;
- throughput: a burst of requests sent at once vs. back-to-back requests, and how many of a
  burst the default queue (16) turns away with ``/deepdiva/busy``;
- the daemon's resident memory (RSS) after 100 jobs vs. after 1,000 jobs (flat = no leak);
- the web page off vs. on and open but idle (its event stream connected, as a browser keeps it):
  UDP ping and paced match/file -> result, alternating between the two daemons so that drift of
  the machine hits both alike; and the page's first load in bytes and whether it names any other
  machine (it must not: no CDN).

Network only (no refinement). It uses the shipped model (models/deepdiva-medium33.onnx, or
``--model``) when present; otherwise the fast real match function of ``deepdiva serve --dry-run``
(read + validate the audio, write the base preset) and says so: the figures then measure the
daemon's own plumbing. Each request names a different file, as when users match different sounds.

    .venv/bin/python benchmarks/daemon.py [--latency 200] [--burst 200] [--jobs 1000] [--model PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from daemon_process import rss_mb, start_daemon, tone  # benchmarks/ is the script's folder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import build_msg
from pythonosc.tcp_client import SimpleTCPClient

from deepdiva.daemon import osc_server as osc
from deepdiva.daemon.jobs import Job, new_job_id
from deepdiva.daemon.osc_server import SlipDecoder
from deepdiva.daemon.service import dry_run_match, matcher_match

SR = 44100
SHIPPED = Path(__file__).parents[1] / "models" / "deepdiva-medium33.onnx"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


class Client:
    def __init__(self, udp: tuple[str, int]) -> None:
        self.udp = udp
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.port = self.sock.getsockname()[1]
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, address: str, *args) -> None:
        self.out.sendto(build_msg(address, list(args)).dgram, self.udp)

    def expect(self, *addresses: str, timeout: float = 120.0) -> OscMessage:
        self.sock.settimeout(timeout)
        while True:
            message = OscMessage(self.sock.recvfrom(65536)[0])
            if message.address in addresses:
                return message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=int, default=200, help="sequential requests for the latency figures")
    parser.add_argument("--burst", type=int, default=200, help="requests sent at once")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs for the memory figure")
    parser.add_argument("--pause", type=float, default=0.05,
                        help="think time between paced requests (s): the daemon tidies its journal after replying")
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the shipped one)")
    parser.add_argument("--preview", action="store_true", help="also write preview wavs (as the daemon does)")
    args = parser.parse_args()

    model = args.model or (SHIPPED if SHIPPED.exists() else None)
    if model is not None:
        from deepdiva.core.matcher import Matcher

        match = matcher_match(Matcher.load(model), 0.0, preview=args.preview)  # for "match function alone"
        print(f"deepdiva daemon benchmark with the real matcher ({model.name}, network only)")
    else:
        match = dry_run_match()
        print("deepdiva daemon benchmark with the injected dry-run match (read + validate + write the base "
              f"preset): the shipped model {SHIPPED.relative_to(SHIPPED.parents[1])} is not there yet, so these "
              "figures measure the daemon's plumbing, not the network")
    places = [("journal on disk", Path(tempfile.gettempdir()))]
    if Path("/dev/shm").is_dir():
        places.append(("in memory (tmpfs)", Path("/dev/shm")))
    columns = []
    for index, (label, base) in enumerate(places):
        root = Path(tempfile.mkdtemp(prefix="deepdiva-bench-", dir=base))
        try:
            columns.append((label, run(args, model, match, root, memory=index == 0)))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    columns.append(("web page off vs on (disk)", web_rows(args, model, Path(tempfile.mkdtemp(prefix="deepdiva-bench-web-")))))
    names = list(dict.fromkeys(name for _, rows in columns for name in rows))
    width = max(map(len, names))
    print()
    print(f"  {'':<{width}}  " + "  ".join(f"{label:>24}" for label, _ in columns))
    for name in names:
        cells = [rows.get(name, ("-", ""))[0] for _, rows in columns]
        print(f"  {name:<{width}}  " + "  ".join(f"{c:>24}" for c in cells))
    print()
    for name in names:
        notes = [f"{label}: {rows[name][1]}" for label, rows in columns if name in rows and rows[name][1]]
        if notes:
            print(f"  {name}: " + "; ".join(notes))


def run(args: argparse.Namespace, model: Path | None, match, root: Path, memory: bool) -> dict[str, tuple[str, str]]:
    audio_dir = root / "audio"
    audio_dir.mkdir()
    wav = tone(audio_dir / "target.wav")
    client = Client(("127.0.0.1", 0))
    config = {"osc.port": 0, "osc.tcp_port": 0, "osc.reply_port": client.port, "drop.enabled": False,
              "midi.enabled": False, "presets.folder": str(root / "presets"), "queue.journal": str(root / "journal"),
              "files.allowed_roots": [str(root)], "queue.size": 16, "presets.preview": args.preview,
              "web.enabled": False}  # the page's own rows: web_rows
    big = dict(config, **{"queue.journal": str(root / "journal-big"), "queue.size": max(args.burst, 16) + 8})
    proc, info = start_daemon(big, model, args.preview)
    try:
        client.udp = tuple(info["udp"])
        rows = measure(args, client, match, wav, root, Path(info["preset_folder"]), proc.pid if memory else None,
                       tuple(info["tcp"]))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    proc, info = start_daemon(config, model, args.preview)  # the default queue size
    try:
        client.udp = tuple(info["udp"])
        busy = accepted = finished = 0
        targets = Targets(wav.with_name("burst.wav"))
        shutil.copyfile(wav, targets.wav)
        names = [targets() for _ in range(args.burst)]
        for name in names:
            client.send(osc.MATCH_FILE, name)
        while busy + accepted < args.burst or finished < accepted:
            message = client.expect(osc.QUEUED, osc.BUSY, osc.RESULT, osc.ERROR)
            busy += message.address == osc.BUSY
            accepted += message.address == osc.QUEUED
            finished += message.address in (osc.RESULT, osc.ERROR)
        rows["burst into queue.size 16"] = (f"{accepted} queued, {busy} busy", "")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    return rows


def web_rows(args: argparse.Namespace, model: Path | None, root: Path) -> dict[str, tuple[str, str]]:
    """OSC latency with the web page off vs. on and idle (an event stream open), side by side."""
    import http.client
    import re
    import threading

    rows: dict[str, tuple[str, str]] = {}
    daemons = {}
    try:
        for web in (False, True):
            client = Client(("127.0.0.1", 0))
            config = {"osc.port": 0, "osc.tcp_port": 0, "osc.reply_port": client.port, "drop.enabled": False,
                      "midi.enabled": False, "presets.folder": str(root / f"presets-{web}"),
                      "queue.journal": str(root / f"journal-{web}"), "files.allowed_roots": [str(root)],
                      "presets.preview": args.preview, "web.enabled": web, "web.port": 0}
            proc, info = start_daemon(config, model, args.preview)
            client.udp = tuple(info["udp"])
            daemons[web] = (proc, info, client, Targets(tone(root / f"target-{'web' if web else 'plain'}.wav")))
        page = urlparse_port(daemons[True][1]["web"])
        events: list[bytes] = []

        def listen() -> None:  # an open page: its event stream stays connected
            conn = http.client.HTTPConnection("127.0.0.1", page, timeout=600)
            conn.request("GET", "/api/events", headers={"Host": f"127.0.0.1:{page}"})
            for line in conn.getresponse():
                if line.startswith(b"data: "):
                    events.append(line)

        threading.Thread(target=listen, daemon=True).start()
        ping: dict[bool, list[float]] = {False: [], True: []}
        paced: dict[bool, list[float]] = {False: [], True: []}
        for _, _, client, target in daemons.values():
            for _ in range(5):
                client.send(osc.MATCH_FILE, target())
                client.expect(osc.RESULT)
        for i in range(args.latency):
            for web, (_, _, client, target) in daemons.items():  # alternate: drift hits both alike
                began = time.perf_counter()
                client.send(osc.PING, i)
                client.expect(osc.PONG)
                ping[web].append(time.perf_counter() - began)
                time.sleep(args.pause)
                began = time.perf_counter()
                client.send(osc.MATCH_FILE, target())
                client.expect(osc.RESULT, osc.ERROR)
                paced[web].append(time.perf_counter() - began)
        rows["web page off: UDP ping (p50 / p95)"] = (ms(ping[False]), "")
        rows["web page open, idle: UDP ping"] = (ms(ping[True]), f"{pct(ping[True], 50) / pct(ping[False], 50):.2f}x off")
        rows["web page off: match/file -> result, paced"] = (ms(paced[False]), "")
        rows["web page open: match/file -> result, paced"] = (
            ms(paced[True]), f"{pct(paced[True], 50) - pct(paced[False], 50):+.2f} ms p50 vs off; the page heard "
            f"{len(events)} job events (queued, matching, done) over its event stream")
        rss = [rss_mb(daemons[web][0].pid) for web in (False, True)]
        if None not in rss:
            rows["daemon RSS, web page off / on"] = (f"{rss[0]:.1f} / {rss[1]:.1f} MB", f"after {args.latency + 5} "
                                                     "jobs each; on: aiohttp loaded, results archive written")
        total, outside = 0, []
        for path in ("/", "/static/app.js", "/static/app.css"):
            conn = http.client.HTTPConnection("127.0.0.1", page, timeout=30)
            conn.request("GET", path, headers={"Host": f"127.0.0.1:{page}"})
            body = conn.getresponse().read()
            total += len(body)
            outside += re.findall(rb"(?:src|href)\s*=\s*[\"']?https?://|url\(\s*[\"']?https?://|@import", body)
        rows["web page first load"] = (f"{total / 1024:.1f} KB", f"index.html + app.js + app.css, target < 300 KB; "
                                       f"references to other machines: {len(outside)}")
    finally:
        for proc, _, _, _ in daemons.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
        shutil.rmtree(root, ignore_errors=True)
    return rows


def urlparse_port(url: str) -> int:
    from urllib.parse import urlparse

    port = urlparse(url).port
    assert port is not None, url
    return port


def ms(values: list[float]) -> str:
    return f"{pct(values, 50):.2f} / {pct(values, 95):.2f} ms"


class Targets:
    """A new file name (a hard link to the same audio) per request, as when users match different
    sounds: repeating one name would measure the search for a free ``name (n).h2p`` instead."""

    def __init__(self, wav: Path) -> None:
        self.wav = wav
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        path = self.wav.with_name(f"{self.wav.stem}-{self.n:05d}.wav")
        os.link(self.wav, path)
        return str(path)


def measure(args, client: Client, match, wav: Path, root: Path, presets: Path, pid: int | None,
            tcp_address: tuple[str, int]) -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    target = Targets(wav)
    for _ in range(5):  # warm-up (model session, numba, file cache)
        client.send(osc.MATCH_FILE, target())
        client.expect(osc.RESULT)

    ping = []
    for i in range(args.latency):
        began = time.perf_counter()
        client.send(osc.PING, i)
        client.expect(osc.PONG)
        ping.append(time.perf_counter() - began)

    def match_alone(pause: float) -> list[float]:
        out = []
        for _ in range(args.latency):
            job = Job(new_job_id(), "file", "bench", str(wav), str(wav), "alone", str(root / "alone"))
            job.stage = str(root / "stage-alone")
            shutil.rmtree(job.stage, ignore_errors=True)
            os.makedirs(job.stage)
            time.sleep(pause)
            began = time.perf_counter()
            match(job)
            out.append(time.perf_counter() - began)
        return out

    alone = match_alone(0.0)
    alone_paced = match_alone(args.pause)  # an idle pause costs time on some machines (VMs): compare like with like

    def file_requests(pause: float) -> list[float]:
        out = []
        for _ in range(args.latency):
            time.sleep(pause)
            name = target()
            began = time.perf_counter()
            client.send(osc.MATCH_FILE, name)
            client.expect(osc.RESULT, osc.ERROR)
            out.append(time.perf_counter() - began)
        return out

    began = time.perf_counter()
    back_to_back = file_requests(0.0)
    sequential = args.latency / (time.perf_counter() - began)
    paced = file_requests(args.pause)

    samples = sf.read(wav, dtype="float32")[0].astype("<f4").tobytes()
    tcp = SimpleTCPClient(*tcp_address, mode="1.1")
    decoder = SlipDecoder(1 << 24)
    buffers = []
    for _ in range(max(20, args.latency // 4)):
        time.sleep(args.pause)
        began = time.perf_counter()
        tcp.send_message(osc.MATCH_BUFFER, [SR, samples])
        done = False
        while not done:
            for frame in decoder.feed(tcp.socket.recv(65536)):
                done = done or OscMessage(frame).address in (osc.RESULT, osc.ERROR)
        buffers.append(time.perf_counter() - began)
    tcp.close()

    overhead = pct(paced, 50) - pct(alone_paced, 50)
    rows["UDP ping -> pong (p50 / p95)"] = (ms(ping), "the floor")
    rows["match function alone"] = (ms(alone), "no daemon")
    rows["match function alone, paced"] = (ms(alone_paced), f"no daemon, {args.pause * 1000:.0f} ms between calls")
    rows["match/file -> result, paced"] = (ms(paced), f"{args.pause * 1000:.0f} ms between requests; "
                                           f"daemon overhead {overhead:.2f} ms; target p50 <= 25 ms")
    rows["match/file -> result, back to back"] = (ms(back_to_back), "the next request waits for the journal "
                                                  "tidy-up of the previous one")
    rows["2 s buffer over TCP -> result"] = (ms(buffers), f"paced, {len(samples) / 1024:.0f} KB per request")

    names = [target() for _ in range(args.burst)]
    began = time.perf_counter()  # burst: everything at once; the queue is big enough to take it all
    for name in names:
        client.send(osc.MATCH_FILE, name)
    results = busy = 0
    while results + busy < args.burst:
        message = client.expect(osc.RESULT, osc.ERROR, osc.BUSY)
        busy += message.address == osc.BUSY
        results += message.address != osc.BUSY
    burst_rate = results / (time.perf_counter() - began)
    rows["burst throughput"] = (f"{burst_rate:.1f} jobs/s", f"{args.burst} at once, {busy} busy, "
                                f"{burst_rate / sequential:.2f}x one at a time ({sequential:.1f} jobs/s)")

    if pid is not None:  # the daemon's RSS after 100 jobs and after `jobs` jobs (presets deleted as they come)
        marks: dict[int, float | None] = {}
        for n in range(1, args.jobs + 1):
            client.send(osc.MATCH_FILE, target())
            client.expect(osc.RESULT, osc.ERROR)
            if n % 100 == 0:
                for p in presets.glob("[!.]*"):  # finished presets; the daemon's hidden files are its own
                    p.unlink(missing_ok=True)
            if n in (100, args.jobs):
                marks[n] = rss_mb(pid)
        first, last = marks[100], marks[args.jobs]
        if first is None or last is None:
            rows[f"daemon RSS after 100 / {args.jobs} jobs"] = ("n/a", "needs /proc or psutil")
        else:
            rows[f"daemon RSS after 100 / {args.jobs} jobs"] = (
                f"{first:.1f} / {last:.1f} MB",
                f"{last / first:.3f}x, {(last - first) * 1024 / max(args.jobs - 100, 1):+.2f} KB per job")
    return rows


if __name__ == "__main__":
    main()
