"""Talk to a running ``deepdiva serve`` over OSC (needs python-osc, and soundfile for buffers).

    python examples/osc_client.py ping
    python examples/osc_client.py match ~/Music/pluck.wav [--refine 2 [--candidates 3]]
    python examples/osc_client.py buffer ~/Music/pluck.wav          # audio over TCP (OSC 1.1, SLIP)
    python examples/osc_client.py buffer --udp ~/Music/pluck.wav    # chunked UDP fallback
    python examples/osc_client.py status | push | record [SECONDS]

match, buffer and record take ``--refine S`` and ``--candidates N`` (N > 1 needs --refine).

Replies come back over UDP: the client binds a free port and declares it with
``/deepdiva/hello`` (so it never clashes with the daemon's default reply port 9002). A buffer
sent over TCP is answered on the TCP connection. See daemon/OSC.md for the address space.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time

from pythonosc import slip
from pythonosc.osc_message import OscMessage
from pythonosc.tcp_client import SimpleTCPClient
from pythonosc.udp_client import SimpleUDPClient

FINAL = {"/deepdiva/result", "/deepdiva/error", "/deepdiva/busy", "/deepdiva/pong", "/deepdiva/status",
         "/deepdiva/pushed"}
CHUNK = 2048  # samples per UDP chunk: 8 KB, under macOS's default datagram limit


class Replies:
    """A UDP socket on a free port that the daemon is told about with /deepdiva/hello."""

    def __init__(self, client: SimpleUDPClient, timeout: float) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.timeout = timeout
        client.send_message("/deepdiva/hello", self.sock.getsockname()[1])
        self.wait_for({"/deepdiva/hello/ok"})

    def wait_for(self, addresses: set[str]) -> OscMessage:
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65536)
            except TimeoutError:
                break
            message = OscMessage(data)
            show(message)
            if message.address in addresses:
                return message
        raise SystemExit(f"no reply within {self.timeout:g} s: is 'deepdiva serve' running?")

    def linger(self, seconds: float) -> None:
        """Show whatever else arrives within ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                show(OscMessage(self.sock.recvfrom(65536)[0]))
            except TimeoutError:
                break


def show(message: OscMessage) -> None:
    args = [a if not isinstance(a, bytes) else f"<{len(a)} bytes>" for a in message.params]
    if message.address == "/deepdiva/params":
        args = [f"{a:.3f}" for a in args]
    print(message.address, *args, flush=True)


def read_mono(path: str) -> tuple[bytes, int]:
    import numpy as np
    import soundfile as sf

    data, rate = sf.read(path, dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.mean(axis=1), dtype="<f4").tobytes(), rate


def options(args: argparse.Namespace) -> list:
    """The optional ``[f:refine_seconds] [i:candidates]`` every match request takes."""
    if args.candidates > 1:
        return [args.refine if args.refine is not None else 0.0, args.candidates]
    return [args.refine] if args.refine is not None else []


def tcp_buffer(args: argparse.Namespace) -> int:
    """One /deepdiva/match/buffer message over TCP; replies arrive on the same connection."""
    blob, rate = read_mono(args.file)
    client = SimpleTCPClient(args.host, args.tcp_port, mode="1.1", timeout=args.timeout)
    message = [rate, blob] + options(args)
    client.send_message("/deepdiva/match/buffer", message)
    pending = b""
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        client.socket.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = client.socket.recv(65536)
        except TimeoutError:
            break
        if not data:
            break
        pending += data
        *frames, pending = pending.split(slip.END)  # END bytes only ever delimit frames
        for frame in frames:
            if frame:
                reply = OscMessage(slip.decode(slip.END + frame + slip.END))
                show(reply)
                if reply.address in FINAL:
                    client.close()
                    return 0 if reply.address == "/deepdiva/result" else 1
    client.close()
    raise SystemExit(f"no result within {args.timeout:g} s")


def udp_buffer(args: argparse.Namespace, client: SimpleUDPClient, replies: Replies) -> OscMessage:
    """The chunked UDP fallback: begin, numbered chunks (paced), end."""
    blob, rate = read_mono(args.file)
    step = CHUNK * 4
    chunks = [blob[i:i + step] for i in range(0, len(blob), step)]
    buffer_id = int.from_bytes(os.urandom(3), "big")
    begin = [buffer_id, rate, len(chunks)] + options(args)
    client.send_message("/deepdiva/match/buffer/begin", begin)
    for index, chunk in enumerate(chunks):
        client.send_message("/deepdiva/match/buffer/chunk", [buffer_id, index, chunk])
        time.sleep(0.001)  # a burst of datagrams can overflow the receiver's buffer
    client.send_message("/deepdiva/match/buffer/end", buffer_id)
    return replies.wait_for(FINAL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["ping", "match", "buffer", "status", "push", "record"])
    parser.add_argument("file", nargs="?", help="audio file (match, buffer) or seconds (record)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="daemon's UDP port")
    parser.add_argument("--tcp-port", type=int, default=9001, help="daemon's TCP (OSC 1.1) port")
    parser.add_argument("--refine", type=float, default=None, help="seconds of refinement")
    parser.add_argument("--candidates", type=int, default=1,
                        help="also get up to N-1 runners-up of the refinement (needs --refine)")
    parser.add_argument("--udp", action="store_true", help="buffer: chunked UDP instead of TCP")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the answer")
    args = parser.parse_intermixed_args(argv)
    if args.command in ("match", "buffer") and not args.file:
        parser.error(f"{args.command} needs an audio file")
    if args.command == "buffer" and not args.udp:
        return tcp_buffer(args)

    client = SimpleUDPClient(args.host, args.port)
    replies = Replies(client, args.timeout)
    if args.command == "ping":
        client.send_message("/deepdiva/ping", time.time())
        reply = replies.wait_for({"/deepdiva/pong"})
    elif args.command == "match":
        path = os.path.abspath(os.path.expanduser(args.file))  # the daemon wants absolute paths
        client.send_message("/deepdiva/match/file", [path] + options(args))
        reply = replies.wait_for(FINAL)
    elif args.command == "buffer":
        reply = udp_buffer(args, client, replies)
    elif args.command == "record":
        extra = options(args)  # seconds 0: the daemon's audio.record_seconds
        seconds = [float(args.file)] if args.file else [0.0] if extra else []
        client.send_message("/deepdiva/record", seconds + extra)
        reply = replies.wait_for(FINAL)
    else:
        client.send_message(f"/deepdiva/{args.command}", [])
        reply = replies.wait_for(FINAL)
    if reply.address == "/deepdiva/result":
        replies.wait_for({"/deepdiva/params"})
        replies.linger(0.5 if args.candidates > 1 else 0.0)  # /deepdiva/alternative
    return 1 if reply.address in ("/deepdiva/error", "/deepdiva/busy") else 0


if __name__ == "__main__":
    sys.exit(main())
