"""CC map, CC encoding, learn sheet, and CCSender read back through a real JACK server."""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Callable

import numpy as np
import pytest
from daemon_helpers import run_child

from deepdiva.core.errors import ConfigError, MidiError, ParameterValueError
from deepdiva.core.profile import load_profile
from deepdiva.daemon.ccmap import (
    RESERVED_CCS,
    encode,
    encode_value,
    learn_sheet,
    load_cc_map,
    spread,
    write_learn_sheet,
)
from deepdiva.daemon.midi import CCSender, learn_steps, match_port, run_learn

PROFILE = load_profile("diva")
MEDIUM = PROFILE.parameter_set("medium33")


def match_params(seed: int = 7) -> np.ndarray:
    """Normalised parameters as a match returns them, with both extremes present."""
    params = np.random.default_rng(seed).random(len(MEDIUM)).astype(np.float32)
    params[0], params[-1] = 0.0, 1.0
    return MEDIUM.quantise(params[None, :])[0]


def expected_pairs(params: np.ndarray, mode: str) -> list[tuple[int, int]]:
    """What Diva should receive, computed straight from the MIDI rules."""
    cc_map = load_cc_map()
    out = []
    for p, x in zip(MEDIUM.parameters, params, strict=True):
        cc = cc_map.get(p).cc
        wide = mode == "14bit" and cc <= 31
        levels = 16384 if wide else 128
        if p.discrete:
            n = len(p.steps)
            value = min(levels - 1, int((round(x * (n - 1)) + 0.5) * levels / n))
        else:
            value = round(float(x) * (levels - 1))
        out += [(cc, value >> 7), (cc + 32, value & 127)] if wide else [(cc, value)]
    return out


# --------------------------------------------------------------------------- CC map (pure)

def test_profile_map_covers_medium33_without_reserved_ccs() -> None:
    cc_map = load_cc_map()
    assert {a.parameter.id for a in cc_map} == set(MEDIUM.ids)
    ccs = [a.cc for a in cc_map]
    assert len(set(ccs)) == 33
    assert not set(ccs) & set(RESERVED_CCS) and max(ccs) < 120
    high = [a for a in cc_map if a.high_res]
    assert len(high) == 20 and all(a.parameter.kind == "continuous" for a in high)
    assert not {a.lsb for a in high} & set(ccs)  # LSB slots stay free
    assert cc_map.get(PROFILE.find("VCF1:Freq")).high_res


def test_overrides_move_and_remove(tmp_path) -> None:
    cc_map = load_cc_map("diva", {"VCF1:Freq": 74, "OSC:VtoD": False, "149": 75})
    assert cc_map.get(PROFILE.find("VCF1:Freq")).cc == 74
    assert cc_map.get(PROFILE.find("VCF1:Res")).cc == 75
    assert cc_map.get(PROFILE.find("OSC:VtoD")) is None and len(cc_map) == 32
    path = tmp_path / "cc.toml"
    path.write_text('[cc]\n"VCF1:Freq" = 74\n"ENV1:Rel" = 3\n', encoding="utf-8")
    from_file = load_cc_map("diva", path)
    assert from_file.get(PROFILE.find("VCF1:Freq")).cc == 74 and len(from_file) == 34
    assert from_file.as_dict()["ENV1:Rel"] == 3


@pytest.mark.parametrize(("overrides", "message"), [
    ({"VCF1:Freq": 1}, "CC 1 for 'VCF1:Freq' is reserved for Diva's ModWhl"),
    ({"VCF1:Freq": 64}, "reserved for a pedal"),
    ({"VCF1:Freq": 99}, "(N)RPN"),
    ({"VCF1:Freq": 120}, "channel mode"),
    ({"VCF1:Freq": 13}, "CC 13 is assigned to both"),
    ({"OSC:VtoD": 44}, "14-bit LSB of CC 12"),
    ({"No:Such": 40}, "'No:Such'"),
    ({"VCF1:Freq": "74"}, "must be a CC number"),
    ({"VCF1:Freq": True}, "must be a CC number"),
])
def test_bad_overrides_name_the_key(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        load_cc_map("diva", overrides)
    assert message in str(info.value)


def test_override_file_without_cc_table(tmp_path) -> None:
    path = tmp_path / "cc.toml"
    path.write_text('"VCF1:Freq" = 74\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no \[cc\] table"):
        load_cc_map("diva", path)
    with pytest.raises(ConfigError, match="not found"):
        load_cc_map("diva", tmp_path / "missing.toml")


@pytest.mark.parametrize("n_steps", range(2, 28))
def test_discrete_values_decode_back_either_way(n_steps: int) -> None:
    """Band centres survive both ways a synth may quantise a CC: floor bands and rounding."""
    for step in range(n_steps):
        v = spread(step, n_steps)
        assert 0 <= v <= 127
        assert int(v * n_steps / 128) == step
        assert round(v / 127 * (n_steps - 1)) == step


def test_encode_matches_midi_rules_in_both_modes() -> None:
    params = match_params()
    cc_map = load_cc_map()
    assert encode(cc_map, MEDIUM, params, "7bit") == expected_pairs(params, "7bit")
    wide = encode(cc_map, MEDIUM, params, "14bit")
    assert wide == expected_pairs(params, "14bit") and len(wide) == 53
    freq = cc_map.get(PROFILE.find("VCF1:Freq"))
    assert encode_value(freq, 1.0, "14bit") == [(12, 127), (44, 127)]
    assert encode_value(freq, 0.5, "14bit") == [(12, 64), (44, 0)]
    wave = cc_map.get(PROFILE.find("LFO1:Wave"))  # 8 steps
    assert [encode_value(wave, i / 7)[0][1] for i in range(8)] == [8, 24, 40, 56, 72, 88, 104, 120]


def test_encode_rejects_bad_vectors() -> None:
    with pytest.raises(ParameterValueError, match="expected 33"):
        encode(load_cc_map(), MEDIUM, np.zeros(5))
    with pytest.raises(ParameterValueError, match="NaN"):
        encode(load_cc_map(), MEDIUM, np.full(33, np.nan))


def test_learn_sheet_csv_and_markdown(tmp_path) -> None:
    cc_map = load_cc_map()
    rows = list(csv.DictReader(io.StringIO(learn_sheet(cc_map, "csv"))))
    assert len(rows) == 33
    assert rows[0] == {"cc": "12", "lsb_14bit": "44", "section": "VCF1", "label": "Freq",
                       "name": "Frequency", "range": "[0, 150]", "id": "148"}
    assert rows[-1]["cc"] == "114" and rows[-1]["lsb_14bit"] == ""
    md = write_learn_sheet(cc_map, tmp_path / "sheet.md").read_text(encoding="utf-8")
    assert "| 12 | 44 | VCF1 | Freq | Frequency | [0, 150] | 148 |" in md
    assert md.count("\n| ") == 34  # header + 33 rows
    assert not list(tmp_path.glob(".*tmp"))


def test_match_port_names() -> None:
    names = ["Midi Through:Midi Through Port-0 14:0", "deepdiva:deepdiva 128:0", "loopMIDI Port 1"]
    assert match_port(names, "deepdiva") == "deepdiva:deepdiva 128:0"
    assert match_port(names, "loopMIDI Port") == "loopMIDI Port 1"
    assert match_port(["reader:in"], "reader:in") == "reader:in"
    assert match_port(names, "nothing") is None
    with pytest.raises(MidiError, match="ambiguous"):
        match_port(["a:x", "b:x"], "x")


def test_sender_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="mode"):
        CCSender("x", mode="nrpn")
    with pytest.raises(ConfigError, match="channel"):
        CCSender("x", channel=17)
    with pytest.raises(MidiError, match="not available"):
        CCSender("x", api="no-such-api")
    with pytest.raises(ConfigError, match="reserved"):
        CCSender("x", cc_map={"VCF1:Freq": 0})


# --------------------------------------------------------------------------- through JACK

MARKER_CC = 119  # no CC map here uses it: frames each batch a test sends
MARKER = (MARKER_CC, 127)


class Reader:
    """A JACK MIDI input for reading back what a sender sent.

    It uses rtmidi's own queue (no callback), so JACK's process thread never waits for
    Python's GIL. JACK drops the MIDI events of a period that a late client misses (an xrun,
    common with ``--no-realtime`` on a busy 2-core machine) and those sent before a new
    connection is active, so :meth:`exchange` frames each batch with marker CCs and sends it
    again until one copy arrives whole: what arrived is then checked exactly.
    """

    def __init__(self, connect_to: str | None = None, virtual: str | None = None,
                 client: str = "dd-reader") -> None:
        import rtmidi

        self.rt = rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK, name=client)
        self.rt.ignore_types(sysex=True, timing=True, active_sense=True)
        if virtual is not None:
            self.rt.open_virtual_port(virtual)
        else:
            names = self.rt.get_ports()
            target = match_port(names, connect_to)
            assert target is not None, f"no JACK MIDI port {connect_to!r} in {names}"
            self.rt.open_port(names.index(target))

    def _read(self) -> list[tuple[int, int, int]]:
        out = []
        while (event := self.rt.get_message()) is not None:
            status, cc, value = event[0]
            assert status & 0xF0 == 0xB0, f"not a control change: {event[0]}"
            out.append((status & 0x0F, cc, value))
        return out

    def pending(self) -> list[tuple[int, int, int]]:
        """``(channel, cc, value)`` received so far, markers left out."""
        return [m for m in self._read() if m[1] != MARKER_CC]

    def exchange(self, sender: CCSender, send: Callable[[], int], attempts: int = 10,
                 timeout: float = 5.0) -> list[tuple[int, int, int]]:
        """Call ``send`` (returns how many messages it sent) between markers until a copy arrives whole."""
        stream: list[tuple[int, int, int]] = []
        for k in range(attempts):
            begin, end = (MARKER_CC, 2 * k), (MARKER_CC, 2 * k + 1)
            sender.send_pairs([begin])
            sent = send()
            sender.send_pairs([end])
            deadline = time.monotonic() + timeout
            while end not in [m[1:] for m in stream] and time.monotonic() < deadline:
                stream += self._read()
                time.sleep(0.01)
            marks = [m[1:] for m in stream]
            if begin in marks and end in marks:
                batch = stream[marks.index(begin) + 1: marks.index(end)]
                if len(batch) == sent:
                    return batch
        pytest.fail(f"no batch arrived whole in {attempts} attempts; received {stream}")

    def close(self) -> None:
        if self.rt is not None:  # deleting twice would crash inside rtmidi
            self.rt.close_port()
            self.rt.delete()
            self.rt = None


@pytest.fixture
def open_sender(jack_server):
    senders = []

    def _open(port_name: str, **kw) -> CCSender:
        kw = {"api": "jack", "check_interval": 0.0, "retry": (0.05, 0.2), **kw}
        sender = CCSender.open(port_name, **kw)
        senders.append(sender)
        return sender

    yield _open
    for sender in senders:
        sender.close()


@pytest.mark.jack
@pytest.mark.parametrize("mode", ["7bit", "14bit"])
def test_send_reads_back_every_cc_in_order(open_sender, mode: str) -> None:
    sender = open_sender(f"dd-{mode}", mode=mode)
    reader = Reader(f"dd-{mode}")
    params = match_params()
    try:
        expected = expected_pairs(params, mode)
        got = reader.exchange(sender, lambda: sender.send(MEDIUM, params))
        assert len(got) == len(expected) == (33 if mode == "7bit" else 53)
        assert got == [(0, c, v) for c, v in expected]
    finally:
        reader.close()


@pytest.mark.jack
def test_channel_and_raw_pairs(open_sender) -> None:
    sender = open_sender("dd-chan", channel=10)
    reader = Reader("dd-chan")
    try:
        assert reader.exchange(sender, lambda: sender.send_pairs([(12, 1), (102, 127)])) == [
            (9, 12, 1), (9, 102, 127)]
    finally:
        reader.close()


@pytest.mark.jack
def test_learn_sends_one_control_at_a_time(open_sender) -> None:
    sender = open_sender("dd-learn", mode="14bit")
    reader = Reader("dd-learn")
    steps = learn_steps(load_cc_map(), "14bit", only=["VCF1:Freq", "LFO1:Wave"])
    seen: list[str] = []
    try:
        per_run = 2 * sum(len(step.pairs) for step in steps)  # two repeats of each step's CCs

        def learn() -> int:
            assert run_learn(sender, steps, lambda s: seen.append(s.describe()) or True, repeats=2, gap=0) == 2
            return per_run

        got = reader.exchange(sender, learn)
    finally:
        reader.close()
    assert seen[0].startswith("[1/2] CC 12 + LSB CC 44 -> VCF1 Freq (Frequency)")
    freq = encode_value(load_cc_map().get(PROFILE.find("VCF1:Freq")), 147 / 150, "14bit")
    assert [(c, v) for _, c, v in got[:4]] == freq * 2  # the base preset's cutoff
    assert [c for _, c, _ in got[4:]] == [111, 111]


@pytest.mark.jack
def test_named_port_disappears_and_sender_reconnects(jack_server, wait_for, caplog) -> None:
    sink = Reader(virtual="sink", client="dd-sink")  # stands in for a loopMIDI port
    sender = CCSender.open("dd-sink:sink", virtual=False, api="jack", retry=(0.05, 0.2), check_interval=0)
    params = match_params()
    try:
        assert len(sink.exchange(sender, lambda: sender.send(MEDIUM, params))) == 33
        sink.close()
        wait_for(lambda: "dd-sink:sink" not in jack_server.ports(), what="the sink port to go away")
        with caplog.at_level(logging.WARNING, logger="deepdiva.daemon.midi"):
            # No exception into the caller; the sender's own view of the graph may lag a little.
            wait_for(lambda: sender.send(MEDIUM, params) == 0, what="the sender to notice")
        assert not sender.connected
        assert "disappeared" in caplog.text and "retrying in" in caplog.text
        sink = Reader(virtual="sink", client="dd-sink")
        wait_for(lambda: sender.send_pairs([MARKER]) == 1, what="the sender to reconnect")
        assert sender.connected
        assert sink.exchange(sender, lambda: sender.send(MEDIUM, params)) == [
            (0, c, v) for c, v in expected_pairs(params, "7bit")]
    finally:
        sender.close()
        sink.close()


# A JACK server that dies under a process's clients leaves libjack's state in that process
# fragile (a later close of any client may crash, clients of another server misbehave), and one
# process should talk to one server only. So these scenarios run in a child process against a
# private server that the test stops and starts; the child reports each step on stdout.

RESTART_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from daemon_helpers import wait_until
from test_midi import MEDIUM, CCSender, Reader, expected_pairs, match_params

def step(text):
    print(text, flush=True)
    assert sys.stdin.readline().strip() == "go"

params = match_params()
expected = [(0, c, v) for c, v in expected_pairs(params, "7bit")]
sender = CCSender.open("dd-restart", api="jack", retry=(0.05, 0.2), check_interval=0)
reader = Reader("dd-restart")
assert reader.exchange(sender, lambda: sender.send(MEDIUM, params)) == expected
reader.close()
step("stop")
wait_until(lambda: sender.send(MEDIUM, params) == 0 and not sender.connected, 30, "the sender to notice")
step("start")
wait_until(lambda: sender.send(MEDIUM, params) == 33, 30, "the sender to reconnect after the restart")
reader = Reader("dd-restart")
assert reader.exchange(sender, lambda: sender.send(MEDIUM, params)) == expected
reader.close()
sender.close()
print("done", flush=True)
"""

ORPHAN_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from deepdiva.core.errors import MidiError
from test_midi import MEDIUM, CCSender, match_params

sender = CCSender.open("dd-orphan", api="jack", check_interval=60)
print("stop", flush=True)
assert sys.stdin.readline().strip() == "go"
try:
    CCSender.open("dd-other", api="jack")  # a failed jack_client_open, as a reconnect makes
    raise AssertionError("opened a port on a stopped server")
except MidiError:
    pass
sender.close()  # must abandon the dead client: closing it now segfaults inside libjack
assert not sender.connected and sender.send(MEDIUM, match_params()) == 0
print("done", flush=True)
"""


@pytest.mark.jack
def test_virtual_port_survives_a_jack_restart(private_jack_server, tmp_path) -> None:
    run_child(RESTART_CHILD, private_jack_server, tmp_path,
              {"stop": private_jack_server.stop, "start": private_jack_server.start})


@pytest.mark.jack
def test_close_after_the_server_died_does_not_crash(private_jack_server, tmp_path) -> None:
    run_child(ORPHAN_CHILD, private_jack_server, tmp_path, {"stop": private_jack_server.stop})


@pytest.mark.jack
def test_unknown_named_port(jack_server) -> None:
    with pytest.raises(MidiError, match="cannot open MIDI output port 'dd-nowhere'"):
        CCSender.open("dd-nowhere", virtual=False, api="jack")
    lazy = CCSender.open("dd-nowhere", virtual=False, api="jack", strict=False, retry=(10.0, 10.0))
    assert not lazy.connected
    assert lazy.send(MEDIUM, match_params()) == 0
    lazy.close()


# --------------------------------------------------------------------------- CLI

def run_cli(*args: str):
    from click.testing import CliRunner

    from deepdiva.cli import cli

    return CliRunner().invoke(cli, list(args))


def test_cli_sheet(tmp_path) -> None:
    result = run_cli("midi", "sheet", "--format", "md")
    assert result.exit_code == 0, result.output
    assert "| 12 | 44 | VCF1 | Freq | Frequency | [0, 150] | 148 |" in result.output
    overrides = tmp_path / "cc.toml"
    overrides.write_text('[cc]\n"VCF1:Freq" = 74\n', encoding="utf-8")
    result = run_cli("midi", "sheet", "--cc-map", str(overrides), "-o", str(tmp_path / "sheet.csv"))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "sheet.csv").open(encoding="utf-8")))
    assert [r["cc"] for r in rows if r["section"] == "VCF1" and r["label"] == "Freq"] == ["74"]
    ccs = [int(r["cc"]) for r in rows]
    assert ccs == sorted(ccs) and 12 not in ccs
    overrides.write_text('[cc]\n"VCF1:Freq" = 1\n', encoding="utf-8")
    result = run_cli("midi", "sheet", "--cc-map", str(overrides))
    assert result.exit_code == 2 and "reserved for Diva's ModWhl" in result.output


@pytest.mark.jack
def test_cli_ports_and_learn(jack_server, wait_for) -> None:
    sink = Reader(virtual="in", client="dd-clisink")
    try:
        result = run_cli("midi", "ports", "--api", "jack")
        assert result.exit_code == 0 and "UNIX_JACK:\n" in result.output and "  dd-clisink:in" in result.output
        result = run_cli("midi", "learn", "--api", "jack", "--existing", "--port", "dd-clisink:in",
                         "--delay", "0", "--only", "VCF1:Freq", "--only", "LFO2:Sync")
        assert result.exit_code == 0, result.output
        assert "[1/2] CC 12 -> VCF1 Freq (Frequency)" in result.output
        assert "right-click LFO2 Sync (Sync) > MIDI Learn" in result.output
        # The CLI's port connects and sends at once: JACK may drop the first sends of the new
        # connection, so the three repeats per control are what makes learning reliable.
        got: list = []
        wait_for(lambda: got.extend(sink.pending()) or (0, 114, spread(1, 27)) in got, 20, "CC 114")
        freq = (0, 12, round(147 / 150 * 127))  # the base preset: cutoff 147, LFO2 sync -2
        assert set(got) == {freq, (0, 114, spread(1, 27))} or set(got) == {(0, 114, spread(1, 27))}
        assert got == sorted(got, key=lambda m: m[1]) and len(got) <= 6
        result = run_cli("midi", "learn", "--api", "jack", "--existing", "--port", "dd-nowhere", "--delay", "0")
        assert result.exit_code == 2 and "cannot open MIDI output port 'dd-nowhere'" in result.output
    finally:
        sink.close()
