"""deepdiva evaluate (shipped model vs baselines) and deepdiva dataset inspect on a small real dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from deepdiva.cli import cli
from deepdiva.core.matcher import default_model_path
from deepdiva.training.dataset import DatasetSpec, generate
from deepdiva.training.evaluate import default_report_dir


@pytest.fixture(scope="module")
def medium33_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("eval") / "ds"
    generate(folder, DatasetSpec(parameter_set="medium33", sample_size=12, n_shards=2, seed=42, drop_silent=True))
    return folder


def test_evaluate_reports_model_and_baselines(medium33_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["evaluate", str(default_model_path()), str(medium33_dataset),
                                      "--out", str(out), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] + report["skipped_silent"] == 24
    # a model with several answers is also scored by the one a match keeps (model_closest)
    assert set(report["methods"]) - {"model_closest"} == {"model", "base_preset", "random_patch"}
    for scores in report["methods"].values():
        assert len(scores["mae_per_parameter"]) == 33
        assert all(scores[k] >= 0 for k in ("mae", "mrstft", "log_mel_l1", "mfcc"))
    # the shipped model must do better than guessing, even on a handful of clips
    assert report["methods"]["model"]["mrstft_median"] < report["methods"]["base_preset"]["mrstft_median"]
    assert {p.name for p in out.iterdir()} == {"report.json", "parameter_mae.png", "examples.png"}


def test_evaluate_writes_into_the_current_folder_by_default(medium33_dataset: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    model = default_model_path()  # inside the installed package: nothing may be written beside it
    beside_model = set(model.parent.iterdir())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["evaluate", str(model), str(medium33_dataset), "--limit", "4"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = tmp_path / "deepdiva-medium33-eval"
    assert (out / "report.json").is_file()
    assert f"report: {out}" in result.output
    assert set(model.parent.iterdir()) == beside_model


def test_default_report_dir_is_the_model_stem_in_the_current_folder(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_report_dir("/somewhere/else/my-model.onnx") == tmp_path / "my-model-eval"


def test_evaluate_refuses_a_mismatched_dataset(tmp_path: Path) -> None:
    ds = tmp_path / "tiny"
    generate(ds, DatasetSpec(parameter_set="tiny11", sample_size=2, n_shards=1))
    result = CliRunner().invoke(cli, ["evaluate", str(default_model_path()), str(ds)])
    assert result.exit_code == 2
    assert "medium33" in result.output and "Traceback" not in result.output


def test_inspect_summary_and_plots(medium33_dataset: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["dataset", "inspect", str(medium33_dataset), "--out", str(tmp_path),
                                      "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["patches"] == 24 and summary["shards"] == "2/2"
    assert summary["silent"] == 0  # made with drop_silent
    assert len(summary["parameter_histograms"]) == 33
    assert all(sum(c) == 24 for c in summary["parameter_histograms"].values())
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["examples.png", "parameter_histograms.png"]
    text = CliRunner().invoke(cli, ["dataset", "inspect", str(medium33_dataset), "--no-plots"]).output
    assert "silent" in text and "ENV1:Atk" in text
