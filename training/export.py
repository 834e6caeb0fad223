"""Export a training run to ``NAME.onnx`` + ``NAME.json`` (the model card), after a parity check.

The Keras model is converted with tf2onnx and an explicit input signature (batch dim None;
Keras 3 models need one). Nothing is written unless onnxruntime reproduces the Keras outputs
on real validation inputs within the tolerance.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.atomic import write_bytes_atomic, write_json_atomic
from ..core.errors import DeepDivaError, ModelError
from ..core.features import PITCHED_FEATURES
from ..core.model_runtime import CARD_FORMAT, PARAMS_OUTPUT, ModelCard, make_session
from ..core.model_synth import TrainedSynth
from ..core.profile import load_profile
from .dataset import Dataset, DatasetSpec, base_preset_values
from .features_cache import split_for
from .train import best_model_path, open_store, read_json

DEFAULT_OPSET = 17
TOLERANCE = 1e-4
INPUT_NAME = "features"


def convert(model, input_shape: tuple[int, ...], opset: int = DEFAULT_OPSET) -> bytes:
    """Keras model -> serialized ONNX model with input ``features`` of shape (None, *input_shape)."""
    import tensorflow as tf
    import tf2onnx

    if opset < 15:
        raise ModelError(f"--opset must be >= 15, got {opset}")
    signature = (tf.TensorSpec((None, *input_shape), tf.float32, name=INPUT_NAME),)
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    except Exception as exc:  # tf2onnx raises a variety of errors
        raise ModelError(f"tf2onnx could not convert the model: {exc}") from exc
    return proto.SerializeToString()


def run_onnx(model_bytes: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of the ONNX model for input ``x``, by name."""
    session = make_session(model_bytes)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {INPUT_NAME: x}), strict=True))


def keras_outputs(model, x: np.ndarray) -> dict[str, np.ndarray]:
    out = model.predict(x, batch_size=64, verbose=0)
    out = out if isinstance(out, list | tuple) else [out]
    return {name: np.asarray(o) for name, o in zip(model.output_names, out, strict=True)}


def _near_ties(heads: np.ndarray, layout: list[int], tol: float, decode: str = "argmax") -> np.ndarray:
    """(n, k) mask of discrete parameters whose decoded step is a near tie: the two most likely
    steps within ``tol`` (argmax), or a cumulative probability within ``tol`` of one half (median)."""
    from .models import _head_slices

    ties = np.zeros((heads.shape[0], len(layout)), dtype=bool)
    _, disc = _head_slices(layout)
    for j, off, s in disc:
        probs = heads[:, off:off + s]
        if decode == "median":
            ties[:, j] = (np.abs(np.cumsum(probs, axis=1)[:, :-1] - 0.5) <= tol).any(axis=1)
        else:
            top2 = np.sort(probs, axis=1)[:, -2:]
            ties[:, j] = (top2[:, 1] - top2[:, 0]) <= tol
    return ties


def _tie_mask(model, ref: dict[str, np.ndarray], name: str, tol: float) -> np.ndarray | None:
    """Where output ``name`` may differ because a decoded step is a near tie: a discrete
    parameter's (:func:`_near_ties`), and for the chosen answer of a hypothesis model also a
    near tie between the two most confident hypotheses (the whole row)."""
    from .models import decode_layer, is_hypothesis_model

    if "heads" not in ref or name not in (PARAMS_OUTPUT, "hypotheses"):
        return None
    layer = decode_layer(model)
    heads = ref["heads"]
    if not is_hypothesis_model(model):
        return _near_ties(heads, layer.layout, tol, layer.decode) if name == PARAMS_OUTPUT else None
    n, k, width = heads.shape
    ties = _near_ties(heads[..., :width - 1].reshape(n * k, width - 1), layer.layout, tol,
                      layer.decode).reshape(n, k, -1)
    if name == "hypotheses":
        return ties
    confidence = ref["confidence"]
    top2 = np.sort(confidence, axis=1)[:, -2:]
    chosen = ties[np.arange(n), confidence.argmax(axis=1)]
    chosen[(top2[:, 1] - top2[:, 0]) <= tol] = True
    return chosen


def check_parity(model, model_bytes: bytes, x: np.ndarray, tol: float = TOLERANCE) -> dict:
    """Compare Keras and onnxruntime on ``x``; ModelError if any output differs by more than ``tol``.

    A decoded discrete parameter (argmax) may differ only where its two most likely steps are
    within ``tol`` of each other: there either answer is right.
    """
    ref = keras_outputs(model, x)
    got = run_onnx(model_bytes, x)
    if set(ref) - set(got):
        raise ModelError(f"the ONNX model lacks outputs {sorted(set(ref) - set(got))}")
    diffs = {}
    for name, expected in ref.items():
        diff = np.abs(np.asarray(got[name], dtype=np.float64) - expected)
        ties = _tie_mask(model, ref, name, tol)
        if ties is not None:
            diff[ties] = 0.0
        diffs[name] = float(diff.max()) if diff.size else 0.0
    worst = max(diffs.values())
    if not np.isfinite(worst) or worst > tol:
        raise ModelError(f"ONNX export does not reproduce the Keras model: max abs difference "
                         f"{worst:.3g} > {tol:g} ({diffs}); nothing was written")
    return {"max_abs_diff": worst, "per_output": diffs, "tolerance": tol, "n": int(len(x))}


def validation_inputs(config: dict, n: int = 32) -> np.ndarray:
    """Up to ``n`` real validation inputs of a run (training rows if it has no validation set)."""
    train = config["train"]
    try:
        ds = Dataset.open(train["dataset"])
    except DeepDivaError as exc:
        raise ModelError(f"export checks the model on the run's dataset, which cannot be opened: {exc}") from None
    split = split_for(ds, train["validation_split"], train["seed"])
    if split.record() != config["split"]:
        raise ModelError(f"the dataset {ds.folder} changed since training; cannot check the export")
    rows = split.val if split.val.size else split.train
    store = open_store(ds, config["feature"]["name"], config["feature"]["scaler"])
    return store.get(rows[:n])[0]


def pitch_card(config: dict) -> dict:
    """How the model treats the note: what it reads of it, how its labels relate to it, and the
    key its answers are played at (``core.matcher``)."""
    ds = config["dataset"]
    if ds.get("pitch_range") is None:
        return {"played_at": f"MIDI {ds['render']['midi_pitch']}, the one note of the training data",
                "input": "audio only"}
    pitched = config["feature"]["name"] in PITCHED_FEATURES
    return {
        "played_at": "the note detected in the target (core.pitch, YIN), its cents as the master fine tune "
                     "(VCC:FTun); C3 (MIDI 48) when the target is unpitched",
        "input": ("the mel spectrogram plus a second channel marking where the harmonics of the detected "
                  "note fall (feature mel_db_pitch)") if pitched else "audio only",
        "labels": "each training patch restated for the pitch heard in its audio (core.tuning.relative_to_pitch), "
                  "as near as Tune1's octave steps allow where the pitch heard is no whole number of octaves "
                  "from the key played; unpitched ones for C3",
        "training_notes": list(ds["pitch_range"]),
    }


def trained_synth(config: dict, spec: DatasetSpec | None = None) -> TrainedSynth:
    """The card's ``synth`` section: what rendered the run's dataset (``spec``: its manifest, for
    the plugin file and the base preset's values; without it, what the run's config records).

    The plugin's version is left out: DawDreamer reports none (the profile's ``synth_version``
    says which version the profile was made from)."""
    ds = config["dataset"]
    fixed: dict[int, float] = {}
    if spec is not None and spec.base_preset:
        profile = load_profile(ds["profile"])
        in_set = set(ds["parameter_ids"])
        try:
            values = base_preset_values(ds["profile"], spec.base_preset)
        except DeepDivaError as exc:
            raise ModelError(f"the dataset's base preset is needed for the model card: {exc}") from None
        fixed = {i: v for i, v in values.items() if i not in in_set and v != profile.by_id(i).default}
    return TrainedSynth.of(ds["profile"], ds["renderer"], ds["parameter_set"], ds["render"], ds.get("pitch_range"),
                           plugin_path=spec.plugin_path if spec is not None else None, fixed=fixed)


def build_card(name: str, model_bytes: bytes, config: dict, metrics: dict, parity: dict,
               outputs: list[dict], synth: TrainedSynth | None = None) -> dict:
    """The model card for ``name``.onnx (validated by :class:`ModelCard` before it is written);
    ``synth`` defaults to :func:`trained_synth` of the run's config alone."""
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    ds, train = config["dataset"], config["train"]
    keep = ("val_mae", "val_mae_per_parameter", "n_val", "epoch")
    return {
        "format": CARD_FORMAT,
        "name": name,
        "model_file": f"{name}.onnx",
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "created": datetime.now().isoformat(timespec="seconds"),
        "architecture": train["model"],
        "profile": ds["profile"],
        "parameter_set": {"name": ds["parameter_set"], "ids": ds["parameter_ids"], "names": ds["parameter_names"]},
        "synth": (synth or trained_synth(config)).as_dict(),
        "feature": config["feature"],
        "input": {"name": INPUT_NAME, "shape": [None, *config["input_shape"]], "dtype": "float32"},
        "outputs": outputs,
        "training": {
            # names, not this machine's paths: the card ships with the model
            "run": config.get("run_dir", ""), "dataset": Path(ds["path"]).name, "n": ds["n"], "n_train": ds["n_train"],
            "n_val": ds["n_val"], "renderer": ds["renderer"], "render": ds["render"], "split": config["split"],
            "pitch_range": ds.get("pitch_range"), "prior": ds.get("prior", "uniform"),
            "augment": ds.get("augment"),
            "model": train["model"], **loss_card(config),
            "optimizer": train["optimizer"], "learning_rate": train["learning_rate"],
            "batch_size": train["batch_size"], "epochs": metrics.get("epochs_done"),
            # recordings labelled by a scored match among the data (scripts/pseudo_labels.py), if any
            **({"pseudo_labels": ds["pseudo_labels"]} if ds.get("pseudo_labels") else {}),
        },
        "pitch": pitch_card(config),
        "metrics": {k: metrics[k] for k in keep if metrics.get(k) is not None},
        "parity": parity,
        "versions": {"deepdiva": __version__, "tensorflow": tf.__version__, "keras": _keras_version(),
                     "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__,
                     "onnxruntime": onnxruntime.__version__, "numpy": np.__version__},
    }


def loss_card(config: dict) -> dict:
    """The card's words for a run's loss: its name, and for a run trained toward the sound through
    a proxy, its weight and the proxy's file name; a run started from another model names it."""
    train, outputs = config["train"], config.get("output_names", [])
    if "hypotheses" in outputs:
        name = "sound_proxy_loss" if train.get("sound_proxy") else "hypotheses_loss"
    else:
        name = "head_loss" if "heads" in outputs else train["loss"]
    out: dict = {"loss": name}
    if train.get("sound_proxy"):
        out.update(sound_proxy=Path(train["sound_proxy"]).name, sound_weight=train.get("sound_weight"))
        if train.get("level_weight"):
            out["level_weight"] = train["level_weight"]
    if train.get("init_from"):
        out["started_from"] = Path(train["init_from"]).name
    return out


def _keras_version() -> str:
    import keras

    return keras.__version__


def export_run(run: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False,
               opset: int = DEFAULT_OPSET, tolerance: float = TOLERANCE, n_check: int = 32,
               say: Callable[[str], None] | None = None, decode: str | None = None) -> tuple[Path, Path]:
    """Convert ``run``'s best model to ``out`` (.onnx) and write the card beside it. ``decode``:
    how discrete parameters are read from their softmax (``models.DecodeParams``; default: as
    trained, argmax)."""
    import keras

    from . import models  # noqa: F401 - registers the custom layers for loading

    run_dir, out = Path(run), Path(out)
    if out.suffix != ".onnx":
        raise ModelError(f"the output must end in .onnx, got {out}")
    card_path = out.with_suffix(".json")
    existing = [p for p in (out, card_path) if p.exists()]
    if existing and not overwrite:
        raise ModelError(f"{', '.join(map(str, existing))} already exist(s); pass --overwrite to replace")
    config = read_json(run_dir / "config.json")
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").exists() else {}
    metrics["epochs_done"] = len(read_json(run_dir / "history.json")["epochs"])
    config["run_dir"] = run_dir.resolve().name
    model_file = best_model_path(run_dir)
    model = keras.models.load_model(model_file)
    if decode is not None and "heads" in model.output_names:
        model = models.with_decode(model, decode)
    model_bytes = convert(model, tuple(config["input_shape"]), opset)
    x = validation_inputs(config, n_check)
    parity = check_parity(model, model_bytes, x, tolerance)
    if say:
        say(f"parity: max |keras - onnxruntime| = {parity['max_abs_diff']:.2e} on {parity['n']} "
            f"validation inputs (tolerance {tolerance:g})")
    session = make_session(model_bytes)
    outputs = [{"name": o.name, "shape": [d if isinstance(d, int) else None for d in o.shape],
                "dtype": "float32"} for o in session.get_outputs()]
    card = build_card(out.stem, model_bytes, config, metrics, parity, outputs,
                      trained_synth(config, Dataset.open(config["train"]["dataset"]).spec))
    card["training"]["checkpoint"] = model_file.name
    if "heads" in model.output_names:
        card["training"]["decode"] = models.decode_layer(model).decode
    ModelCard(card, card_path)  # validate before writing anything
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out, model_bytes)
    try:
        write_json_atomic(card_path, card)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out, card_path
