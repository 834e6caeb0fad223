"""`deepdiva refit-confidence`: fresh renders and recordings scored in worker processes, a model written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from click.testing import CliRunner

from deepdiva.cli import cli
from deepdiva.core.matcher import Matcher, default_model_path


def test_refit_writes_a_model_that_matches(tmp_path: Path) -> None:
    recordings = tmp_path / "takes"
    recordings.mkdir()
    t = np.arange(44100) / 44100
    for i, hz in enumerate((110.0, 220.0, 330.0, 440.0, 660.0)):
        sf.write(recordings / f"saw{i}.wav", (0.4 * (2 * ((hz * t) % 1) - 1)).astype(np.float32), 44100)
    (recordings / "notes.txt").write_text("not audio")
    out = tmp_path / "models" / "refit.onnx"  # the folder is made
    result = CliRunner().invoke(cli, ["refit-confidence", str(default_model_path()), "-o", str(out), "--targets", "100",
                                      "--workers", "2", "--recordings", str(recordings), "--cache", str(tmp_path / "c")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    note = json.loads(result.output)
    assert note["renders"] >= 90 and note["recordings"] == 5 and set(note["held_out"]) == {"renders", "recordings"}
    digest = hashlib.sha256(default_model_path().read_bytes()).hexdigest()[:12]
    # one shard of renders, kept for a rerun with this model file (another model's answers score differently)
    assert [p.name for p in (tmp_path / "c").glob("scores-*.npz")] == [f"scores-{digest}-5-100-00000.npz"]
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["confidence_refit"] == note and card["model_file"] == "refit.onnx"
    matcher = Matcher.load(out, bank=False)
    note_audio = matcher.renderer.render(matcher.parameter_set.defaults_normalised()[None, :], 57.0)[0]
    assert matcher.match(note_audio, score=False).params.shape == (len(matcher.parameter_set),)


def test_refit_refuses_a_name_that_is_not_onnx(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["refit-confidence", str(default_model_path()), "-o", str(tmp_path / "x.json"),
                                      "--targets", "100"])
    assert result.exit_code != 0 and ".onnx" in result.output
