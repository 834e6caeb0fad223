"""A shipped ONNX model back as a Keras model, to train further (``deepdiva train --init-from MODEL.onnx``).

A run folder (its ``best.keras``) is what ``--init-from`` copies weights from, but run folders are
large, never committed, and gone on a fresh machine; the shipped ``models/NAME.onnx`` and its card
hold every trained weight. This rebuilds the card's architecture (:func:`~.models.build_model`) and
fills it from the ONNX graph:

- convolutions in graph order, their kernels from ONNX's (out, in, h, w) to Keras' (h, w, in, out);
- dense layers by their Keras names, which tf2onnx keeps in the initializers' names
  (``cnn3h_1/hyp_confidence_1/Cast/ReadVariableOp:0``); the one trunk layer by elimination;
- batch normalisation, which tf2onnx folded into the convolution before it (the kernel scaled, the
  shift as its bias), unfolded again: with the batch statistics ``mu``, ``var`` of the convolution's
  output measured on ``calibration`` features, gamma ``sqrt(var + eps)``, beta ``mu + bias``, moving
  mean ``mu`` and variance ``var``. Inference then gives the folded layer exactly whatever the
  statistics, and training (which normalises by each batch's own) starts where inference is.

The rebuilt model must give the ONNX model's ``heads`` on the calibration features (within
:data:`TOLERANCE`), or nothing is returned.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core.errors import ModelError
from ..core.model_runtime import ModelCard, make_session

TOLERANCE = 1e-3  # largest difference of the heads (probabilities and sigmoids) accepted
CALIBRATION_ROWS = 256  # feature rows the batch statistics are measured on
DENSE_WEIGHT = re.compile(r"^[^/]+/(?P<layer>.+?)_\d+/Cast/ReadVariableOp:0$")


def keras_from_onnx(path: str | Path, calibration: np.ndarray):
    """The Keras model ``path`` (NAME.onnx with its card) was exported from, its weights filled in
    (see the module); ``calibration``: network inputs (n, *input shape) as the model sees them."""
    import onnx
    from onnx import numpy_helper

    from .models import build_model

    path = Path(path)
    card = ModelCard.load(path)
    architecture = str(card.data.get("architecture") or "")
    calibration = np.asarray(calibration, dtype=np.float32)
    if calibration.shape[1:] != card.input_shape or len(calibration) < 2:
        raise ModelError(f"{path}: calibration features of shape {calibration.shape[1:]} (at least 2 rows) "
                         f"do not fit its input {card.input_shape}")
    data = path.read_bytes()  # read once: the graph's weights, then the session checked against
    try:
        graph = onnx.load_from_string(data).graph
    except Exception as exc:  # onnx raises decode errors of several kinds
        raise ModelError(f"{path}: not a readable ONNX model ({exc})") from None
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    model = build_model(architecture, card.input_shape, card.parameter_set)
    folded = _set_convolutions(model, graph, weights, path)
    _set_dense(model, graph, weights, path)
    _unfold_batch_norms(model, folded, calibration)
    _check(model, data, path, calibration)
    return model


def _set_convolutions(model, graph, weights: dict, path: Path) -> list[np.ndarray]:
    """Every Conv2D of ``model`` from the ONNX convolutions in order; returns the folded biases of the
    convolutions whose batch normalisation was folded into them (those without a bias of their own), in order."""
    import keras

    convs = [node for node in graph.node if node.op_type == "Conv"]
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if len(convs) != len(layers):
        raise ModelError(f"{path}: {len(convs)} convolutions, but its architecture has {len(layers)}")
    folded = []
    for node, layer in zip(convs, layers, strict=True):
        kernel = weights[node.input[1]].transpose(2, 3, 1, 0)
        bias = weights[node.input[2]] if len(node.input) > 2 else np.zeros(kernel.shape[-1], np.float32)
        if tuple(layer.kernel.shape) != kernel.shape:
            raise ModelError(f"{path}: convolution {node.name} has a kernel of {kernel.shape}, "
                             f"the architecture's {tuple(layer.kernel.shape)}")
        if layer.use_bias:
            layer.set_weights([kernel, bias])
        else:
            layer.set_weights([kernel])
            folded.append(bias)
    return folded


def _set_dense(model, graph, weights: dict, path: Path) -> None:
    """Every Dense layer of ``model`` from the ONNX MatMul of the same Keras name, the one left over
    (the trunk's, whose name depends on how many layers the exporting session had built) from the one
    MatMul no name claims."""
    import keras

    found = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in weights:
            match = DENSE_WEIGHT.match(node.input[1])
            if match:
                bias = node.input[1].replace("/Cast/ReadVariableOp:0", "/BiasAdd/ReadVariableOp:0")
                found[match["layer"]] = (weights[node.input[1]], weights[bias])
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    unnamed = [layer for layer in layers if layer.name not in found]
    unclaimed = [name for name in found if name not in {layer.name for layer in layers}]
    if len(found) != len(layers) or len(unnamed) != len(unclaimed) or len(unnamed) > 1:
        raise ModelError(f"{path}: dense layers {sorted(found)} do not fit the architecture's "
                         f"{[layer.name for layer in layers]}")
    for layer in layers:
        kernel, bias = found[layer.name] if layer.name in found else found[unclaimed[0]]
        if tuple(layer.kernel.shape) != kernel.shape:
            raise ModelError(f"{path}: dense layer {layer.name} is {kernel.shape} in the file, "
                             f"{tuple(layer.kernel.shape)} in the architecture")
        layer.set_weights([kernel, bias])


def _unfold_batch_norms(model, folded: list[np.ndarray], calibration: np.ndarray) -> None:
    """Each BatchNormalization, paired in order with the ``folded`` bias of the bias-free convolution
    before it, set as the module says, its statistics measured on ``calibration``."""
    import keras

    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if len(norms) != len(folded):
        raise ModelError(f"{len(norms)} batch normalisations for {len(folded)} convolutions without a bias")
    pairs = list(zip(norms, folded, strict=True))
    if not pairs:
        return
    for layer, bias in pairs:  # first the folded layer exactly, statistics aside: z + bias
        ones = np.ones_like(bias, dtype=np.float32)
        layer.set_weights([ones, bias.astype(np.float32), 0 * ones, (1.0 - layer.epsilon) * ones])
    probe = keras.Model(model.inputs, [layer.input for layer, _ in pairs])
    outputs = probe.predict(calibration, batch_size=64, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    for (layer, bias), z in zip(pairs, outputs, strict=True):
        axes = tuple(range(z.ndim - 1))
        mean = z.mean(axis=axes, dtype=np.float64)
        var = z.var(axis=axes, dtype=np.float64)
        gamma = np.sqrt(var + layer.epsilon)
        layer.set_weights([a.astype(np.float32) for a in (gamma, mean + bias, mean, var)])


def _check(model, data: bytes, path: Path, x: np.ndarray) -> None:
    """The rebuilt model's heads against those of the ONNX model ``data`` (read from ``path``) on ``x``."""
    session = make_session(data)
    names = [o.name for o in session.get_outputs()]
    if "heads" not in names or "heads" not in model.output_names:
        raise ModelError(f"{path}: no 'heads' output to check the rebuilt model against")
    ours = model.predict(x, batch_size=64, verbose=0)[model.output_names.index("heads")]
    theirs = session.run(["heads"], {session.get_inputs()[0].name: x})[0]
    worst = float(np.max(np.abs(np.asarray(ours) - theirs)))
    if not worst <= TOLERANCE:
        raise ModelError(f"{path}: the rebuilt Keras model differs from the ONNX model by {worst:.2g} "
                         f"(more than {TOLERANCE:g}); not used")
