"""``deepdiva preset show|diff|write|folder``: output, JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from deepdiva.cli import cli
from deepdiva.core.profile import load_profile
from deepdiva.presets.h2p import read_h2p


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_show_table(factory_preset_path: Path) -> None:
    result = run("preset", "show", str(factory_preset_path), "--set", "medium33")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "Author: Howard Scarr" in result.stdout
    header = next(i for i, line in enumerate(lines) if line.startswith("id "))
    assert lines[header].split() == ["id", "location", "name", "value", "normalised", "range"]
    assert len(lines) - header - 1 == 33
    assert any(line.split()[:4] == ["33", "ENV1:Atk", "Attack", "6.00"] for line in lines)


def test_show_base_json_all_located_parameters() -> None:
    result = run("preset", "show", "base", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["meta"]["Author"] == "DeepDiva"
    assert len(data["params"]) == sum(1 for p in load_profile("diva").parameters if p.location)
    assert {"id", "location", "name", "native", "normalised", "range"} <= set(data["params"][0])


def test_diff(factory_preset_path: Path) -> None:
    result = run("preset", "diff", "base", str(factory_preset_path), "--set", "medium33")
    assert result.exit_code == 0
    assert "18 parameter(s) differ" in result.stdout and "meta Author" in result.stdout
    data = json.loads(run("preset", "diff", "base", str(factory_preset_path), "--json").stdout)
    assert {"a", "b", "params", "meta"} <= set(data)
    assert "no differences" in run("preset", "diff", "base", "base").stdout


def test_write_then_show(tmp_path: Path) -> None:
    out = tmp_path / "mine.h2p"
    result = run("preset", "write", "--base", "base", "--set", "medium33",
                 "--params", '{"ENV1:Atk": 0.5, "86": 1.0, "VCF1:Freq": 0.2}', "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out) and "Rescan Folders" in result.stderr
    preset = read_h2p(out)
    assert (preset.get("ENV1", "Atk"), preset.get("OSC", "Tune1"), preset.get("VCF1", "Freq")) == \
        ("50.00", "24.00", "30.00")
    assert run("preset", "write", "--params", '{"ENV1:Atk": 0}', "-o", str(out)).stdout.strip() == \
        str(tmp_path / "mine (2).h2p")
    assert run("preset", "write", "--params", '{"ENV1:Atk": 0}', "-o", str(out),
               "--overwrite").stdout.strip() == str(out)
    assert read_h2p(out).get("ENV1", "Atk") == "0.00"


def test_write_params_file_and_preset_dir(tmp_path: Path) -> None:
    params = tmp_path / "p.json"
    params.write_text('{"Vibrato": 1}')
    folder = tmp_path / "presets"
    result = run("-q", "preset", "write", "--params", f"@{params}", "--preset-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(folder / "deepdiva.h2p") and result.stderr == ""
    assert read_h2p(folder / "deepdiva.h2p").get("OSC", "VtoD") == "100.00"
    assert run("preset", "folder", "--preset-dir", str(folder)).stdout.strip() == str(folder)


@pytest.mark.parametrize("args,message", [
    (["write", "--params", '{"FX1:Module": 0.5}'], "not in parameter set medium33"),
    (["write", "--params", '{"Nope": 0.5}'], "unknown diva parameter 'Nope'"),
    (["write", "--params", '{"ENV1:Atk": 2}'], "must be in [0, 1]"),
    (["write", "--params", '{"ENV1:Atk": NaN}'], "finite number"),
    (["write", "--params", "{oops"], "not valid JSON"),
    (["write", "--params", '{"ENV1:Atk": 0.5}', "--set", "huge"], "unknown parameter set 'huge'"),
    (["write", "--params", '{"ENV1:Atk": 0.5}', "--base", "BAD"], "bad.h2p: holds binary data"),
    (["write", "--params", '{"ENV1:Atk": 0.5}', "--base", "MISSING"], "no such preset file"),
    (["show", "BAD"], "holds binary data"),
    (["show", "base", "--set", "1 2 2"], "lists an id twice"),
    (["diff", "base", "MISSING"], "no such preset file"),
])
def test_user_errors_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    bad = tmp_path / "bad.h2p"
    bad.write_bytes(b"\x00\x01binary\x02" * 50)
    out = tmp_path / "out"
    args = [{"BAD": str(bad), "MISSING": str(tmp_path / "missing.h2p")}.get(a, a) for a in args]
    if args[0] == "write":
        args += ["-o", str(out)]
    result = run("preset", *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert files_in(tmp_path) == ["bad.h2p"]  # nothing written, not even a folder


def test_subprocess_error_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "sound.h2p"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    proc = subprocess.run([sys.executable, "-m", "deepdiva", "preset", "show", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {bad}: is a WAV (RIFF) audio file, not a Diva .h2p preset"
    assert "Traceback" not in proc.stderr and proc.stdout == ""
