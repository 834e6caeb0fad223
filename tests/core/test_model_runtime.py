"""The ONNX runtime wrapper and model card, on a hand-built ONNX graph (no TensorFlow)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepdiva.core.errors import AudioError, ModelError
from deepdiva.core.features import FeatureConfig, extract
from deepdiva.core.model_runtime import CARD_FORMAT, ModelCard, OnnxModel
from deepdiva.core.scaler import MinMaxScaler

IDS = [33, 34, 35, 86]  # ENV1:Atk, ENV1:Dec, ENV1:Sus, OSC:Tune1
N_SAMPLES = 88200


def tiny_onnx(k: int = len(IDS), frames: int = 87, coefs: int = 13) -> bytes:
    """features (N, frames, coefs) -> mean over time -> dense -> sigmoid -> params (N, k)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(coefs, k)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(k, dtype=np.float32), "b")
    nodes = [helper.make_node("ReduceMean", ["features"], ["m"], axes=[1], keepdims=0),
             helper.make_node("MatMul", ["m", "w"], ["z"]),
             helper.make_node("Add", ["z", "b"], ["zb"]),
             helper.make_node("Sigmoid", ["zb"], ["params"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", frames, coefs])],
        [helper.make_tensor_value_info("params", TensorProto.FLOAT, ["N", k])], initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def tone(n: int = 2, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(44100 * seconds)) / 44100
    return np.stack([0.5 * np.sin(2 * np.pi * 110 * (i + 1) * t) for i in range(n)]).astype(np.float32)


def card_dict(model_bytes: bytes, scaler: MinMaxScaler) -> dict:
    return {
        "format": CARD_FORMAT, "name": "tiny", "model_file": "tiny.onnx",
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(), "architecture": "test", "profile": "diva",
        "parameter_set": {"name": "test", "ids": IDS, "names": ["ENV1:Atk", "ENV1:Dec", "ENV1:Sus", "OSC:Tune1"]},
        "feature": {"name": "mfcc", "config": FeatureConfig().to_dict(), "scaler": scaler.to_dict()},
        "input": {"name": "features", "shape": [None, 87, 13], "dtype": "float32"},
        "outputs": [{"name": "params", "shape": [None, len(IDS)], "dtype": "float32"}],
        "training": {"render": {"sample_rate": 44100, "render_length": 2.0}},
        "metrics": {"val_mae": 0.1},
    }


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    data = tiny_onnx()
    scaler = MinMaxScaler().fit(extract("mfcc", tone(3)))
    (tmp_path / "tiny.onnx").write_bytes(data)
    (tmp_path / "tiny.json").write_text(json.dumps(card_dict(data, scaler)))
    return tmp_path


def test_load_and_predict(model_dir: Path) -> None:
    model = OnnxModel.load(model_dir / "tiny.onnx")
    assert model.card.parameter_ids == IDS and model.parameter_set.ids == tuple(IDS)
    x = np.random.default_rng(1).random((5, 87, 13), dtype=np.float32)
    p = model.predict(x)
    assert p.shape == (5, 4) and p.dtype == np.float32 and np.all((p > 0) & (p < 1))
    assert model.predict(x[0]).shape == (1, 4)
    same = OnnxModel.load(model_dir / "tiny.json", intra_op_threads=2, warm_up=False)
    np.testing.assert_allclose(same.predict(x), p, atol=1e-6)


def test_features_for_uses_the_shared_extractor_and_the_card_scaler(model_dir: Path) -> None:
    model = OnnxModel.load(model_dir / "tiny.onnx")
    audio = tone(2)
    expected = model.card.scaler.transform(extract("mfcc", audio, FeatureConfig()))
    np.testing.assert_array_equal(model.features_for(audio), expected)
    np.testing.assert_allclose(model.predict_audio(audio), model.predict(expected), atol=1e-6)
    with pytest.raises(AudioError, match="88200 samples"):
        model.features_for(tone(1, seconds=1.0))


def test_a_card_trained_at_the_nominal_level_raises_quiet_notes_before_its_features(model_dir: Path) -> None:
    """A model trained on notes raised to -18 dBFS (dataset --nominal-level) reads a quiet note as
    the match raises it; a card without the field reads notes as they are."""
    as_rendered = OnnxModel.load(model_dir / "tiny.onnx")
    quiet = tone(2) * np.float32(0.001)  # -66 dBFS
    good = json.loads((model_dir / "tiny.json").read_text())
    _edit_card(model_dir, feature={**good["feature"], "nominal_peak_dbfs": -18.0})
    nominal = OnnxModel.load(model_dir / "tiny.onnx")
    assert nominal.card.nominal_peak_dbfs == -18.0 and as_rendered.card.nominal_peak_dbfs is None
    raised = quiet * np.float32(10 ** (-18 / 20) / np.abs(quiet).max(axis=1, keepdims=True))
    np.testing.assert_allclose(nominal.features_for(quiet), as_rendered.features_for(raised), atol=1e-4)
    assert not np.allclose(as_rendered.features_for(quiet), as_rendered.features_for(raised), atol=1e-2)
    _edit_card(model_dir, feature={**good["feature"], "nominal_peak_dbfs": "loud"})
    with pytest.raises(ModelError, match="nominal_peak_dbfs"):
        ModelCard.load(model_dir / "tiny.json")


def test_predict_rejects_wrong_feature_shape(model_dir: Path) -> None:
    model = OnnxModel.load(model_dir / "tiny.onnx")
    with pytest.raises(ModelError, match="do not fit"):
        model.predict(np.zeros((2, 128, 173, 1), dtype=np.float32))


def _edit_card(folder: Path, **changes) -> None:
    data = json.loads((folder / "tiny.json").read_text())
    data.update(changes)
    (folder / "tiny.json").write_text(json.dumps(data))


def test_missing_or_inconsistent_cards_raise_model_error(model_dir: Path) -> None:
    good = json.loads((model_dir / "tiny.json").read_text())
    with pytest.raises(ModelError, match="missing"):
        ModelCard.load(model_dir / "other.onnx")
    _edit_card(model_dir, format="something-else")
    with pytest.raises(ModelError, match="model card"):
        ModelCard.load(model_dir / "tiny.json")
    _edit_card(model_dir, **{**good, "outputs": [{"name": "params", "shape": [None, 7]}]})
    with pytest.raises(ModelError, match="7 columns"):
        ModelCard.load(model_dir / "tiny.json")
    _edit_card(model_dir, **{**good, "input": {"name": "features", "shape": [None, 40, 13]}})
    with pytest.raises(ModelError, match="input shape"):
        ModelCard.load(model_dir / "tiny.json")
    _edit_card(model_dir, **{**good, "feature": {**good["feature"], "scaler": {"format": "pickle"}}})
    with pytest.raises(ModelError, match="scaler"):
        ModelCard.load(model_dir / "tiny.json")
    (model_dir / "tiny.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        ModelCard.load(model_dir / "tiny.json")


def test_card_must_match_the_onnx_file(model_dir: Path) -> None:
    good = json.loads((model_dir / "tiny.json").read_text())
    _edit_card(model_dir, model_sha256="0" * 64)
    with pytest.raises(ModelError, match="sha256"):
        OnnxModel.load(model_dir / "tiny.onnx")
    _edit_card(model_dir, **{**good, "input": {"name": "audio", "shape": [None, 87, 13]}})
    with pytest.raises(ModelError, match="expects input 'audio'"):
        OnnxModel.load(model_dir / "tiny.onnx")
    (model_dir / "tiny.onnx").unlink()
    with pytest.raises(ModelError, match="missing"):
        OnnxModel.load(model_dir / "tiny.json")


def test_runtime_and_daemon_never_import_tensorflow() -> None:
    code = ("import sys, deepdiva.core, deepdiva.core.model_runtime, deepdiva.daemon; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
