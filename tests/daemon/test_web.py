"""The web page's server over real HTTP on loopback: uploads become jobs, the event stream, the
request rules (Host, Origin, token: 403 and nothing changes), the upload cap (413, nothing left).

The page itself in a real browser: ``test_web_browser.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from daemon_helpers import wait_until, write_saw

from deepdiva.daemon.config import build_config
from deepdiva.daemon.service import Service


def start(tmp_path: Path, **settings) -> Service:
    config = build_config({}, {"osc.port": 0, "osc.tcp_port": 0, "midi.enabled": False, "drop.enabled": False,
                               "presets.folder": str(tmp_path / "presets"), "queue.journal": str(tmp_path / "journal"),
                               **settings})
    return Service(config, dry_run=True).start()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    s = start(tmp_path, **{"web.max_upload_mb": 1.0})
    yield s
    s.stop()


class Client:
    """HTTP to the page as a browser on this machine would send it (Host and Origin set)."""

    def __init__(self, service: Service) -> None:
        assert service.web is not None
        self.port = service.web.address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.scheme = "https" if service.web.tls else "http"

    def connect(self) -> http.client.HTTPConnection:
        if self.scheme == "http":
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30,
                                           context=ssl._create_unverified_context())  # self-signed

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                origin: str | None = "same") -> tuple[int, bytes, http.client.HTTPResponse]:
        conn = self.connect()
        sent = {"Host": self.host, **(headers or {})}
        if origin == "same":
            sent["Origin"] = f"{self.scheme}://{sent['Host']}"
        elif origin is not None:
            sent["Origin"] = origin
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, data, response

    def json(self, path: str) -> dict:
        status, data, _ = self.request("GET", path)
        assert status == 200, data
        return json.loads(data)

    def upload(self, path: Path, name: str | None = None, **kw) -> tuple[int, dict]:
        query = urllib.parse.urlencode({"name": name or path.name})
        status, data, _ = self.request("POST", f"/api/upload?{query}", path.read_bytes(), **kw)
        return status, json.loads(data)


def leftovers(service: Service) -> list[str]:
    """Files an upload could have left: journal data and job records."""
    assert service.journal is not None
    return sorted(os.listdir(service.journal.data_dir)) + sorted(os.listdir(service.journal.jobs_dir))


def test_an_upload_is_a_job_like_any_other(service: Service, tmp_path: Path) -> None:
    client = Client(service)
    events: list[dict] = []
    threading.Thread(target=read_events, args=(client, events), daemon=True).start()
    wait_until(lambda: service.web is not None and service.web._listeners, 5)
    status, answer = client.upload(write_saw(tmp_path / "lead A3.wav"))
    assert status == 202 and answer["position"] >= 1
    wait_until(lambda: any(e["id"] == answer["id"] and e["state"] == "done" for e in events), 30)
    states = [e["state"] for e in events if e["id"] == answer["id"]]
    assert states == ["queued", "matching", "done"]
    assert service.status()["completed"] == 1  # what OSC's /deepdiva/status reports
    result = client.json(f"/api/results/{answer['id']}")
    assert result["origin"] == "web" and result["source"] == "lead A3.wav"
    assert result["pitch"]["note"] == "A3" and abs(result["pitch"]["cents"]) < 50
    assert Path(result["preset"]).is_file() and Path(result["preset"]).parent == tmp_path / "presets"
    assert [s["section"] for s in result["sections"]][:2] == ["ENV1", "ENV2"]
    status, data, response = client.request("GET", f"/api/results/{answer['id']}/preset/1")
    assert status == 200 and data == Path(result["preset"]).read_bytes()
    assert "attachment" in response.getheader("Content-Disposition")
    status, data, _ = client.request("GET", f"/api/results/{answer['id']}/audio/target.wav")
    assert status == 200 and data[:4] == b"RIFF"
    wait_until(lambda: leftovers(service) == [], 10, "the upload gone with its job")  # tidied after the reply


def read_events(client: Client, into: list[dict]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=60)
    conn.request("GET", "/api/events", headers={"Host": client.host})
    response = conn.getresponse()
    for raw in response:
        line = raw.decode().strip()
        if line.startswith("data: "):
            into.append(json.loads(line[6:]))


def test_history_survives_a_restart(tmp_path: Path) -> None:
    first = start(tmp_path)
    try:
        status, answer = Client(first).upload(write_saw(tmp_path / "a.wav"))
        assert status == 202
        wait_until(lambda: first.status()["completed"] == 1, 30)
    finally:
        first.stop()
    second = start(tmp_path)
    try:
        history = Client(second).json("/api/state")["history"]
        assert [h["id"] for h in history] == [answer["id"]] and history[0]["state"] == "done"
    finally:
        second.stop()


@pytest.mark.parametrize("body, name, message", [
    (b"this is not audio at all" * 50, "notes.txt", "not a readable audio file"),
    (b"", "empty.wav", "the upload was empty"),
])
def test_a_bad_file_is_refused_with_its_reason(service: Service, body: bytes, name: str, message: str) -> None:
    client = Client(service)
    status, data, _ = client.request("POST", f"/api/upload?name={name}", body)
    assert status == 400 and message in json.loads(data)["error"]
    if body:
        assert name in json.loads(data)["error"] and "journal" not in json.loads(data)["error"]
    assert leftovers(service) == [] and service.status()["completed"] == 0


def test_bad_options_are_refused(service: Service, tmp_path: Path) -> None:
    client = Client(service)
    for query, message in (("refine=abc", "refine must be a number"), ("refine=9999", "between 0 and"),
                           ("candidates=3", "needs refine seconds"), ("candidates=99&refine=1", "between 1 and")):
        status, data, _ = client.request("POST", f"/api/upload?name=a.wav&{query}", b"RIFF")
        assert status == 400 and message in json.loads(data)["error"], query
    assert leftovers(service) == []


def test_an_upload_over_the_cap_gets_413_and_leaves_nothing(service: Service, tmp_path: Path) -> None:
    client = Client(service)
    big = write_saw(tmp_path / "long.wav", seconds=12.0)  # ~2 MB of float32 > 1 MB cap
    status, answer = client.upload(big)
    assert status == 413 and "limit of 1 MB" in answer["error"]
    # without a Content-Length (chunked): refused once the stream passes the cap
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
    conn.putrequest("POST", "/api/upload?name=long.wav", skip_host=True)
    for k, v in (("Host", client.host), ("Origin", f"http://{client.host}"), ("Transfer-Encoding", "chunked")):
        conn.putheader(k, v)
    conn.endheaders()
    data = big.read_bytes()
    try:
        for i in range(0, len(data), 65536):
            chunk = data[i:i + 65536]
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may close once it has refused
    response = conn.getresponse()
    assert response.status == 413
    wait_until(lambda: leftovers(service) == [], 5)
    assert service.status()["completed"] == 0 and len(service.queue) == 0


@pytest.mark.parametrize("headers, origin", [
    ({}, "http://evil.example"),                             # another web site posting to us (CSRF)
    ({}, None),                                              # no Origin at all
    ({}, "null"),                                            # a sandboxed frame
    ({"Host": "rebind.example:{port}"}, "http://rebind.example:{port}"),  # DNS rebinding
    ({"Host": "127.0.0.1:1"}, "same"),                      # another port's name
])
def test_foreign_requests_get_403_and_change_nothing(service: Service, tmp_path: Path,
                                                     headers: dict, origin: str | None) -> None:
    client = Client(service)
    headers = {k: v.format(port=client.port) for k, v in headers.items()}
    origin = origin.format(port=client.port) if origin else origin
    status, data, _ = client.request("POST", "/api/upload?name=a.wav", write_saw(tmp_path / "a.wav").read_bytes(),
                                     headers=headers, origin=origin)
    assert status == 403, data
    assert "error" in json.loads(data)
    assert leftovers(service) == [] and service.status()["completed"] == 0 and len(service.queue) == 0
    if "Host" in headers:  # a rebinding page cannot read anything either
        status, _, _ = client.request("GET", "/api/state", headers=headers)
        assert status == 403


def test_other_sites_cannot_embed_results(service: Service) -> None:
    status, _, _ = Client(service).request("GET", "/api/state", headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403


def test_beyond_loopback_a_token_is_required(tmp_path: Path) -> None:
    s = start(tmp_path, **{"web.host": "0.0.0.0"})
    try:
        assert s.web is not None and s.web.guard.token
        token = s.web.guard.token
        assert s.describe()["web"].startswith("https://") and f"?token={token}" in s.describe()["web"]
        assert s.web_fingerprint and (tmp_path / "journal" / "web-key.pem").stat().st_mode & 0o077 == 0
        client = Client(s)
        wav = write_saw(tmp_path / "a.wav").read_bytes()
        for path in ("/", "/api/state"):
            assert client.request("GET", path)[0] == 403
        status, data, _ = client.request("POST", "/api/upload?name=a.wav", wav)
        assert status == 403 and "token" in json.loads(data)["error"]
        assert client.request("POST", "/api/upload?name=a.wav", wav, headers={"X-Deepdiva-Token": "x" * 24})[0] == 403
        assert leftovers(s) == []
        # the printed URL sets a cookie the page's later requests carry
        status, _, response = client.request("GET", f"/?token={token}")
        assert status == 200
        cookie = response.getheader("Set-Cookie")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        jar = cookie.split(";", 1)[0]
        assert client.request("GET", "/api/state", headers={"Cookie": jar})[0] == 200
        assert client.request("POST", "/api/upload?name=a.wav", wav, headers={"Cookie": jar})[0] == 202
        # the machine's own name and addresses are fine, other names are not
        name = socket.gethostname()
        assert client.request("GET", "/api/state", headers={"Cookie": jar, "Host": f"{name}:{client.port}"})[0] == 200
        assert client.request("GET", "/api/state", headers={"Cookie": jar, "Host": f"evil.example:{client.port}"})[0] == 403
    finally:
        s.stop()
    again = start(tmp_path, **{"web.host": "0.0.0.0"})  # the same token and certificate after a restart
    try:
        assert again.web is not None and again.web.guard.token == token and again.web_fingerprint == s.web_fingerprint
    finally:
        again.stop()


def test_the_page_has_no_outside_references_and_is_small(service: Service) -> None:
    client = Client(service)
    total = 0
    for path in ("/", "/static/app.js", "/static/app.css"):
        status, data, response = client.request("GET", path)
        assert status == 200, path
        total += len(data)
        text = data.decode()
        outside = re.findall(r"""(?:src|href|action)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//|"""
                             r"""(?:fetch|EventSource|import)\s*\(\s*[`"'](?:https?:)?//|@import""", text)
        assert outside == [], path  # the browser test also watches every request the page makes
        assert "default-src 'self'" in response.getheader("Content-Security-Policy")
    assert total < 300_000


def test_push_without_midi_says_why(service: Service, tmp_path: Path) -> None:
    client = Client(service)
    status, answer = client.upload(write_saw(tmp_path / "a.wav"))
    # the worker counts a job completed just before the page keeps its result: wait for the result itself
    wait_until(lambda: client.request("GET", f"/api/results/{answer['id']}")[0] == 200, 30)
    status, data, _ = client.request("POST", f"/api/results/{answer['id']}/push/1", b"")
    assert status == 503 and "MIDI output is off" in json.loads(data)["error"]
    assert client.request("POST", f"/api/results/{answer['id']}/push/1", b"", origin="http://evil.example")[0] == 403
    assert client.request("GET", "/api/results/nope")[0] == 404
    assert client.request("GET", f"/api/results/{answer['id']}/preset/7")[0] == 404


def test_the_page_adds_no_thread_work_when_idle(service: Service) -> None:
    """Idle, the page's loop sleeps: its thread uses (almost) no CPU."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(1.0)
    after = resource.getrusage(resource.RUSAGE_SELF)
    assert (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) < 0.3


def test_hostile_names_and_lying_headers(service: Service, tmp_path: Path) -> None:
    client = Client(service)
    wav = write_saw(tmp_path / "a.wav")
    for name in ("../../../etc/passwd.wav", "a\x00b\x1b[31m.wav", "é" * 300 + ".wav", "CON.wav", ".hidden"):
        status, answer = client.upload(wav, name=name)
        assert status == 202, (name, answer)
    wait_until(lambda: service.status()["completed"] == 5, 60)
    presets = sorted(p.name for p in (tmp_path / "presets").iterdir() if not p.name.startswith(".deepdiva-"))
    assert len(presets) == 5 and all("/" not in p and "\x00" not in p and len(p.encode()) <= 255 for p in presets)
    assert not any((tmp_path / "presets").parent.glob("etc*"))
    sources = [h["source"] for h in client.json("/api/state")["history"]]
    assert all("\x1b" not in s and "\x00" not in s for s in sources)
    # a 36 KB FLAC of 34 million samples (8 channels at 384 kHz): refused from its header
    with sf.SoundFile(tmp_path / "bomb.flac", "w", 384000, 8, "PCM_16", format="FLAC") as f:
        for _ in range(11):
            f.write(np.zeros((384000, 8), np.int16))
    status, answer = client.upload(tmp_path / "bomb.flac")
    assert status == 400 and "more than the limit of 32 million" in answer["error"], answer
    wait_until(lambda: leftovers(service) == [], 10, "every upload gone with its job")  # tidied after the reply


def test_slow_writers_and_crowds_are_bounded(service: Service, tmp_path: Path, monkeypatch) -> None:
    from deepdiva.daemon import web

    monkeypatch.setattr(web, "READ_TIMEOUT", 0.5)
    monkeypatch.setattr(web, "MAX_LISTENERS", 3)
    client = Client(service)
    # a writer that stops sending: 408, its partial file removed
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=10)
    conn.putrequest("POST", "/api/upload?name=slow.wav", skip_host=True)
    for k, v in (("Host", client.host), ("Origin", f"http://{client.host}"), ("Content-Length", "100000")):
        conn.putheader(k, v)
    conn.endheaders()
    conn.send(b"RIFF" + b"\0" * 1000)
    assert conn.getresponse().status == 408
    wait_until(lambda: leftovers(service) == [], 5)
    # event streams beyond the cap are turned away; the page still answers
    streams = []
    for _ in range(3):
        s = http.client.HTTPConnection("127.0.0.1", client.port, timeout=10)
        s.request("GET", "/api/events", headers={"Host": client.host})
        assert s.getresponse().status == 200
        streams.append(s)
    assert client.request("GET", "/api/events")[0] == 503
    assert client.request("GET", "/api/state")[0] == 200
    for s in streams:
        s.close()


def test_garbage_requests_do_not_hurt_the_page(service: Service) -> None:
    """A bounded fuzz on loopback: random bytes, broken request lines, huge headers, odd methods."""
    client = Client(service)
    rng = np.random.default_rng(15)
    probes = [b"\x00" * 100, b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 100_000 + b"\r\n\r\n", b"BREW /api/state HTTP/1.1\r\n\r\n",
              b"POST /api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
              b"POST /api/upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"GET /%00%ff/../.. HTTP/1.1\r\n\r\n"]
    probes += [bytes(rng.integers(0, 256, int(rng.integers(1, 4000)), dtype=np.uint8)) for _ in range(200)]
    paths = ["/api/results/../../etc/passwd", "/static/../web.py", "/api/results/x/audio/../../result.json.wav",
             "/api/results/%2e%2e/preset/1", "/static/app.js%00.png"]
    for raw in probes:
        with socket.create_connection(("127.0.0.1", client.port), timeout=5) as s:
            try:
                s.sendall(raw)
                s.shutdown(socket.SHUT_WR)
                s.recv(65536)
            except OSError:
                pass
    for path in paths:
        status, data, _ = client.request("GET", path)
        assert status in (403, 404), (path, status)
        assert b"import" not in data and b"\"id\"" not in data
    assert client.request("GET", "/api/state")[0] == 200
    assert leftovers(service) == [] and service.status()["completed"] == 0


def test_the_page_hears_of_osc_and_drop_folder_jobs(tmp_path: Path) -> None:
    from pythonosc.osc_message_builder import build_msg

    from deepdiva.daemon import osc_server as osc

    replies = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    replies.bind(("127.0.0.1", 0))
    s = start(tmp_path, **{"drop.enabled": True, "drop.folder": str(tmp_path / "drop"), "drop.settle_seconds": 0.2,
                           "osc.reply_port": replies.getsockname()[1], "files.allowed_roots": [str(tmp_path)]})
    try:
        client = Client(s)
        events: list[dict] = []
        threading.Thread(target=read_events, args=(client, events), daemon=True).start()
        wait_until(lambda: s.web is not None and s.web._listeners, 5)
        assert s.udp is not None
        replies.sendto(build_msg(osc.MATCH_FILE, [str(write_saw(tmp_path / "from osc.wav"))]).dgram, s.udp.address)
        write_saw(tmp_path / "drop" / "dropped.wav")
        wait_until(lambda: {e["origin"] for e in events if e["state"] == "done"} == {"osc", "drop"}, 30)
        history = client.json("/api/state")["history"]
        assert sorted(h["source"].rsplit("/", 1)[-1] for h in history) == ["dropped.wav", "from osc.wav"]
    finally:
        s.stop()
        replies.close()


def test_an_accepted_upload_is_matched_after_a_restart(tmp_path: Path) -> None:
    """Accepted means journaled: a daemon stopped with the upload still queued matches it on its next start."""
    import threading as th

    from deepdiva.daemon.service import dry_run_match

    gate, fast = th.Event(), dry_run_match()

    def held(job):
        gate.wait(30)
        return fast(job)

    config = build_config({}, {"osc.enabled": False, "midi.enabled": False, "drop.enabled": False,
                               "presets.folder": str(tmp_path / "presets"),
                               "queue.journal": str(tmp_path / "journal")})
    first = Service(config, match=held).start()
    try:
        client = Client(first)
        ids = [client.upload(write_saw(tmp_path / f"take {i}.wav"))[1]["id"] for i in range(2)]
        wait_until(lambda: first.worker is not None and first.worker.current is not None, 10)
    finally:  # stop while the first is matching: it finishes, the second stays queued (journaled)
        stopping = th.Thread(target=first.stop)
        stopping.start()
        wait_until(lambda: first.worker is not None and first.worker._stop.is_set(), 10)
        gate.set()
        stopping.join(30)
    second = Service(config, match=fast).start()
    try:
        assert second.restored == 1
        wait_until(lambda: len(second.queue) == 0 and second.worker.current is None, 30)
        done = {h["id"] for h in Client(second).json("/api/state")["history"] if h["state"] == "done"}
        assert done == set(ids)
        assert sorted(p.name for p in (tmp_path / "presets").glob("*.h2p")) == ["take 0.h2p", "take 1.h2p"]
        # the worker is idle before it tidies up (it answers first: JobWorker), so wait for the tidying
        wait_until(lambda: leftovers(second) == [], 10, "the upload's journal data removed")
    finally:
        second.stop()


@pytest.mark.jack
def test_the_push_button_sends_the_preset_as_midi_cc(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Through a real JACK server: the match sends its 33 CCs, the page's push sends the same again."""
    import rtmidi

    try:
        request.getfixturevalue("jack_server")  # tests/daemon/conftest.py; it skips without jackd
    except pytest.fail.Exception as exc:
        pytest.skip(f"no JACK server for this test: {str(exc).splitlines()[0]}")
    port = f"dd-web-{os.getpid()}"
    s = start(tmp_path, **{"midi.enabled": True, "midi.port": port, "osc.enabled": False})
    reader = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name="dd-web-reader")
    try:
        assert s.describe()["midi"], s.describe()["midi_problem"]
        reader.open_port(next(i for i, n in enumerate(reader.get_ports()) if port in n))
        client = Client(s)
        assert client.json("/api/state")["daemon"]["midi"] is True
        status, answer = client.upload(write_saw(tmp_path / "a.wav"))
        wait_until(lambda: client.request("GET", f"/api/results/{answer['id']}")[0] == 200, 30)  # kept for the page
        got: list[tuple[int, int]] = []

        def received(n: int) -> bool:
            while (event := reader.get_message()) is not None:
                got.append((event[0][1], event[0][2]))
            return len(got) >= n

        wait_until(lambda: received(33), 20)
        status, data, _ = client.request("POST", f"/api/results/{answer['id']}/push/1", b"")
        assert status == 200 and json.loads(data) == {"sent": 33}
        wait_until(lambda: received(66), 20)
        assert got[:33] == got[33:]
    finally:
        reader.close_port()
        reader.delete()
        s.stop()


def test_many_idle_connections_are_capped_and_osc_keeps_working(service: Service, monkeypatch) -> None:
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import build_msg

    from deepdiva.daemon import osc_server as osc
    from deepdiva.daemon import web

    monkeypatch.setattr(web, "MAX_CONNECTIONS", 8)
    client = Client(service)
    idle = [socket.create_connection(("127.0.0.1", client.port)) for _ in range(8)]
    try:
        time.sleep(0.3)
        status, data, _ = client.request("GET", "/api/state")
        assert status == 503 and "too many connections" in json.loads(data)["error"]
        replies = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # OSC is untouched
        replies.bind(("127.0.0.1", 0))
        replies.settimeout(5)
        assert service.udp is not None
        replies.sendto(build_msg(osc.HELLO, [replies.getsockname()[1]]).dgram, service.udp.address)
        replies.sendto(build_msg(osc.PING, [7]).dgram, service.udp.address)
        while OscMessage(replies.recvfrom(65536)[0]).address != osc.PONG:
            pass
        replies.close()
    finally:
        for s in idle:
            s.close()
    wait_until(lambda: client.request("GET", "/api/state")[0] == 200, 10)


def test_a_page_that_falls_behind_is_cut_off_and_can_reconnect(service: Service) -> None:
    """Events for one stream are bounded (256): a stream that cannot keep up is ended, not buffered."""
    client = Client(service)
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=10)
    conn.request("GET", "/api/events", headers={"Host": client.host})
    response = conn.getresponse()
    assert response.status == 200
    wait_until(lambda: service.web is not None and len(service.web._listeners) == 1, 5)
    assert service.web is not None
    for i in range(2000):  # queued faster than the stream's coroutine gets a turn
        service.web.publish({"id": f"flood-{i}", "state": "queued"})
    wait_until(lambda: not service.web._listeners, 10)
    body = response.read()  # the server ended the stream: read returns
    assert body.count(b"event: job") < 2000
    again = http.client.HTTPConnection("127.0.0.1", client.port, timeout=10)
    again.request("GET", "/api/events", headers={"Host": client.host})
    assert again.getresponse().status == 200
    again.close()
