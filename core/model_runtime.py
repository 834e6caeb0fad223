"""Run an exported model: ONNX + its JSON model card, with onnxruntime and numpy only.

``deepdiva export`` writes ``NAME.onnx`` and ``NAME.json`` side by side. The card says which
synth parameters the output columns are, which synth rendered the training data (``synth``:
profile, renderer, plugin, render settings, notes; see :mod:`.model_synth`), which feature (and
feature settings and scaler) the input is, and how the model was trained. :meth:`OnnxModel.features_for` computes the input with
:func:`deepdiva.core.features.extract`, the same function that made the training features.

Never imports TensorFlow: the daemon and ``deepdiva match`` use this module.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .audio import raised_to_nominal
from .errors import AudioError, DeepDivaError, ModelError
from .features import FEATURE_NAMES, FeatureConfig, as_batch, extract, feature_shape
from .model_synth import TrainedSynth
from .profile import ParameterSet, load_profile
from .scaler import MinMaxScaler

CARD_FORMAT = "deepdiva-model-card/1"
PARAMS_OUTPUT = "params"
HYPOTHESES_OUTPUTS = ("hypotheses", "confidence")  # models with several answers (cnn3h) have these too


def _require(data: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ModelError(f"model card {where} lacks '{key}'; re-export the model with 'deepdiva export'")
    value = data[key]
    if not isinstance(value, kind):
        raise ModelError(f"model card {where}: '{key}' has the wrong type ({type(value).__name__})")
    return value


def _shape(value: object, where: str) -> tuple[int | None, ...]:
    if not isinstance(value, list) or not all(d is None or (isinstance(d, int) and d > 0) for d in value):
        raise ModelError(f"model card {where}: shape {value!r} is not a list of positive ints / null")
    return tuple(value)


class ModelCard:
    """The JSON card that travels with an ONNX model; validated on construction."""

    def __init__(self, data: dict, path: Path | None = None) -> None:
        self.data = data
        self.path = path
        where = str(path) if path else "<dict>"
        if not isinstance(data, dict) or data.get("format") != CARD_FORMAT:
            raise ModelError(f"{where} is not a {CARD_FORMAT} model card")
        pset = _require(data, "parameter_set", dict, where)
        ids = _require(pset, "ids", list, where)
        if not ids or not all(isinstance(i, int) for i in ids):
            raise ModelError(f"model card {where}: parameter_set.ids must be a non-empty list of ints")
        names = pset.get("names")
        if names is not None and len(names) != len(ids):
            raise ModelError(f"model card {where}: {len(names)} parameter names for {len(ids)} ids")
        _require(data, "profile", str, where)
        if self.synth.profile != data["profile"]:
            raise ModelError(f"model card {where}: synth.profile {self.synth.profile!r} differs from "
                             f"profile {data['profile']!r}")
        feature = _require(data, "feature", dict, where)
        if _require(feature, "name", str, where) not in FEATURE_NAMES:
            raise ModelError(f"model card {where}: unknown feature {feature['name']!r}")
        _require(feature, "config", dict, where)
        inp = _require(data, "input", dict, where)
        _require(inp, "name", str, where)
        declared = _shape(_require(inp, "shape", list, where), where)[1:]
        outputs = _require(data, "outputs", list, where)
        params = [o for o in outputs if isinstance(o, dict) and o.get("name") == PARAMS_OUTPUT]
        if not params:
            raise ModelError(f"model card {where} lists no '{PARAMS_OUTPUT}' output")
        out_shape = _shape(params[0].get("shape"), where)
        if out_shape[-1] != len(ids):
            raise ModelError(f"model card {where}: output '{PARAMS_OUTPUT}' has {out_shape[-1]} columns "
                             f"but the parameter set has {len(ids)} parameters")
        try:
            self.feature_config  # noqa: B018 - validates the feature settings and the scaler now
            self.scaler  # noqa: B018
        except DeepDivaError as exc:
            raise ModelError(f"model card {where}: {exc}") from None
        level = feature.get("nominal_peak_dbfs")
        if level is not None and not (isinstance(level, int | float) and -120 <= level <= 0):
            raise ModelError(f"model card {where}: feature.nominal_peak_dbfs must be a level in dBFS "
                             f"(-120..0), got {level!r}")
        expected = feature_shape(feature["name"], self.n_samples, self.feature_config)
        if tuple(expected) != tuple(declared):
            raise ModelError(f"model card {where}: input shape {declared} does not match the "
                             f"'{feature['name']}' feature of {self.n_samples} samples {expected}")
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in expected)  # one input, batch excluded

    @classmethod
    def load(cls, path: str | os.PathLike) -> ModelCard:
        """Read a card from ``NAME.json`` (or the ``NAME.onnx`` beside it)."""
        path = Path(path)
        if path.suffix == ".onnx":
            path = path.with_suffix(".json")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"model card {path} is missing; it is written by 'deepdiva export' "
                             "beside the .onnx file") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read model card {path}: {exc}") from None
        return cls(data, path)

    # ------------------------------------------------------------------ views

    @property
    def name(self) -> str:
        return str(self.data.get("name") or (self.path.stem if self.path else "model"))

    @property
    def parameter_ids(self) -> list[int]:
        return list(self.data["parameter_set"]["ids"])

    @property
    def feature_name(self) -> str:
        return self.data["feature"]["name"]

    @cached_property
    def feature_config(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.data["feature"]["config"])

    @property
    def nominal_peak_dbfs(self) -> float | None:
        """The peak each input note is raised to if it peaks lower (trained on notes raised so:
        ``core.audio.raised_to_nominal``); None for a model trained on notes as rendered."""
        value = self.data["feature"].get("nominal_peak_dbfs")
        return None if value is None else float(value)

    @cached_property
    def scaler(self) -> MinMaxScaler | None:
        data = self.data["feature"].get("scaler")
        return MinMaxScaler.from_dict(data) if data else None

    @cached_property
    def synth(self) -> TrainedSynth:
        """The synth the training data was rendered with: the card's ``synth`` section, or for
        cards written before it (the first shipped model) what ``training`` and ``profile`` say."""
        where = str(self.path) if self.path else "<dict>"
        if "synth" in self.data:
            return TrainedSynth.from_dict(self.data["synth"], where)
        training = self.data.get("training", {})
        try:
            return TrainedSynth.of(str(self.data.get("profile")), str(training.get("renderer", "builtin")),
                                   str(self.data.get("parameter_set", {}).get("name", "")),
                                   training.get("render") or {}, training.get("pitch_range"))
        except (DeepDivaError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(f"model card {where}: cannot tell which synth it was trained on ({exc})") from None

    @property
    def render(self) -> dict:
        """Render settings of the training data (sample rate, note, lengths)."""
        return dict(self.synth.render)

    @property
    def sample_rate(self) -> int:
        return int(self.render.get("sample_rate", self.feature_config.sample_rate))

    @property
    def n_samples(self) -> int:
        r = self.render
        return int(round(float(r.get("render_length", 2.0)) * self.sample_rate))

    @property
    def pitch_range(self) -> tuple[int, int] | None:
        """The notes the training data was played at (None: one note, the render settings')."""
        return self.synth.pitch_range

    @property
    def input_name(self) -> str:
        return self.data["input"]["name"]

    @property
    def metrics(self) -> dict:
        return self.data.setdefault("metrics", {})

    @property
    def model_path(self) -> Path:
        """The ``.onnx`` file the card describes (beside the card)."""
        folder = self.path.parent if self.path else Path(".")
        return folder / self.data.get("model_file", f"{self.name}.onnx")

    @cached_property
    def parameter_set(self) -> ParameterSet:
        try:
            return load_profile(self.data["profile"]).parameter_set(self.parameter_ids)
        except DeepDivaError as exc:
            raise ModelError(f"model card {self.path}: {exc}") from None


def make_session(model: str | os.PathLike | bytes, intra_op_threads: int = 1, allow_spinning: bool = False):
    """An onnxruntime CPU session tuned for small batches (no spinning threads by default)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(intra_op_threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    opts.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"onnxruntime cannot load the model: {exc}") from None


class OnnxModel:
    """An exported model ready to predict normalised parameters from features or audio."""

    def __init__(self, session, card: ModelCard) -> None:
        self.session = session
        self.card = card
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = [o.name for o in session.get_outputs()]
        if card.input_name not in inputs or PARAMS_OUTPUT not in outputs:
            raise ModelError(f"the ONNX model has inputs {list(inputs)} and outputs {outputs}, but its card "
                             f"expects input '{card.input_name}' and output '{PARAMS_OUTPUT}'")
        got = tuple(d if isinstance(d, int) else None for d in inputs[card.input_name].shape[1:])
        if got != tuple(card.input_shape):
            raise ModelError(f"the ONNX model takes {got}, its card says {tuple(card.input_shape)}")

    @classmethod
    def load(cls, path: str | os.PathLike, intra_op_threads: int = 1, allow_spinning: bool = False,
             warm_up: bool = True, check_hash: bool = True) -> OnnxModel:
        """Load ``NAME.onnx`` + ``NAME.json`` (either path); one session, warmed up once."""
        card = ModelCard.load(path)
        onnx_path = card.model_path
        if not onnx_path.exists():
            raise ModelError(f"{onnx_path} is missing (named by model card {card.path})")
        data = onnx_path.read_bytes()
        expected = card.data.get("model_sha256")
        if check_hash and expected and hashlib.sha256(data).hexdigest() != expected:
            raise ModelError(f"{onnx_path} does not match its model card {card.path} (sha256 differs); "
                             "re-export the model")
        model = cls(make_session(data, intra_op_threads, allow_spinning), card)
        if warm_up:
            model.predict(np.zeros((1, *card.input_shape), dtype=np.float32))
        return model

    @property
    def parameter_set(self) -> ParameterSet:
        return self.card.parameter_set

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Features (n, *input_shape) -> normalised parameters float32 (n, k)."""
        x = self._input(features)
        if x.shape[0] == 0:
            return np.zeros((0, len(self.card.parameter_ids)), dtype=np.float32)
        (params,) = self.session.run([PARAMS_OUTPUT], {self.card.input_name: x})
        return np.asarray(params, dtype=np.float32)

    def _input(self, features: np.ndarray) -> np.ndarray:
        """``features`` as the session takes them: float32, contiguous, with a batch axis; checked."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == len(self.card.input_shape):
            x = x[None]
        if tuple(x.shape[1:]) != tuple(self.card.input_shape):
            raise ModelError(f"features of shape {x.shape} do not fit the model input "
                             f"(n, {', '.join(map(str, self.card.input_shape))})")
        return np.ascontiguousarray(x)

    @cached_property
    def has_hypotheses(self) -> bool:
        """Whether the model gives several answers and a confidence for each (e.g. ``cnn3h``)."""
        names = {o.name for o in self.session.get_outputs()}
        return all(name in names for name in HYPOTHESES_OUTPUTS)

    def predict_hypotheses(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features (n, *input_shape) -> every answer (n, h, k) and its confidence (n, h), most
        confident first. A model with one answer gives it with confidence 1 (h = 1)."""
        if not self.has_hypotheses:
            params = self.predict(features)
            return params[:, None, :], np.ones((len(params), 1), dtype=np.float32)
        hyps, confidence = self.session.run(list(HYPOTHESES_OUTPUTS), {self.card.input_name: self._input(features)})
        order = np.argsort(-confidence, axis=1, kind="stable")
        return (np.take_along_axis(np.asarray(hyps, dtype=np.float32), order[:, :, None], axis=1),
                np.take_along_axis(np.asarray(confidence, dtype=np.float32), order, axis=1))

    def features_for(self, audio: np.ndarray, f0_hz: np.ndarray | None = None) -> np.ndarray:
        """Audio (n, samples) or (samples,) at the card's rate and length -> model input.
        ``f0_hz``: each clip's fundamental (NaN unpitched) when known, for pitched features."""
        batch = as_batch(audio)
        if batch.shape[1] != self.card.n_samples:
            raise AudioError(f"the model takes clips of {self.card.n_samples} samples "
                             f"({self.card.n_samples / self.card.sample_rate:g} s at {self.card.sample_rate} Hz); "
                             f"got {batch.shape[1]}: trim/pad the note first (core.audio.prepare_note)")
        if self.card.nominal_peak_dbfs is not None:
            batch = raised_to_nominal(batch, self.card.nominal_peak_dbfs)
        x = extract(self.card.feature_name, batch, self.card.feature_config, f0_hz)
        return x if self.card.scaler is None else self.card.scaler.transform(x)

    def predict_audio(self, audio: np.ndarray) -> np.ndarray:
        """Audio (n, samples) -> normalised parameters (n, k)."""
        return self.predict(self.features_for(audio))
