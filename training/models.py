"""Keras 3 models that map a feature array to normalised synth parameters.

Every model has an output named ``params``: float32 (n, k) normalised values in [0, 1], one
column per parameter of the set, in order. ``cnn2`` has a second output ``heads`` (sigmoids of
the continuous parameters, then one softmax per discrete parameter) that its loss trains;
``params`` decodes it (argmax step / (steps - 1)) inside the graph, so the exported ONNX model
needs no post-processing.

- ``cnn``: the seed's baseline on ``mel`` (4 conv blocks, flatten, Dense 128/64, dropout 0.3).
- ``lstm``: the seed's baseline on ``mfcc`` (bidirectional LSTM, highway layers).
- ``cnn2``: on ``mel_db`` (loudness kept); separable convs, a 1x1 bottleneck that keeps the
  time/frequency layout, classification heads for discrete parameters.
- ``cnn3``: on ``mel_db_pitch`` (``mel_db`` plus the harmonic comb of the detected note), a CPU-
  friendly strided front end, ``cnn2``'s bottleneck and heads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# before TensorFlow loads: its C++ INFO lines (oneDNN, CPU features) are noise on a CLI
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

from ..core.errors import ModelError  # noqa: E402
from ..core.profile import ParameterSet  # noqa: E402
from .sound_proxy import SOUND_WEIGHT  # noqa: E402

PACKAGE = "deepdiva"
# Keras' default 0.99 needs thousands of steps before the inference statistics are usable;
# runs on small datasets would otherwise predict a constant in inference mode.
BN_MOMENTUM = 0.9


# --------------------------------------------------------------------------- head layout

def head_layout(pset: ParameterSet) -> list[int]:
    """Steps per parameter in set order: 0 for a continuous one, the number of steps otherwise."""
    out = []
    for p in pset.parameters:
        steps = p.steps if p.discrete else None
        out.append(len(steps) if steps is not None and len(steps) >= 2 else 0)
    return out


def _head_slices(layout: Sequence[int]) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Continuous columns, and (column, offset in heads, steps) per discrete parameter.

    ``heads`` holds the continuous sigmoids first (in set order), then each softmax.
    """
    cont = [j for j, s in enumerate(layout) if s == 0]
    offset = len(cont)
    disc = []
    for j, s in enumerate(layout):
        if s:
            disc.append((j, offset, s))
            offset += s
    return cont, disc


# --------------------------------------------------------------------------- layers, losses

@keras.saving.register_keras_serializable(package=PACKAGE)
class Highway(layers.Layer):
    """Highway layer (Srivastava et al. 2015): ``T * relu(W_h x) + (1 - T) * x``, ``T = sigmoid(W_t x)``.

    The gate bias starts negative so the layer begins close to the identity.
    """

    def __init__(self, gate_bias: float = -2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gate_bias = gate_bias

    def build(self, input_shape) -> None:
        dim = int(input_shape[-1])
        self.transform = layers.Dense(dim, activation="relu", name="transform")
        self.gate = layers.Dense(dim, activation="sigmoid", name="gate",
                                 bias_initializer=keras.initializers.Constant(self.gate_bias))
        self.transform.build(input_shape)
        self.gate.build(input_shape)

    def call(self, x):
        t = self.gate(x)
        return t * self.transform(x) + (1.0 - t) * x

    def get_config(self) -> dict:
        return {**super().get_config(), "gate_bias": self.gate_bias}


DECODES = ("argmax", "median")


def decode_heads(heads, layout: Sequence[int], decode: str):
    """Heads (n, H) -> normalised parameters (n, k); see :class:`DecodeParams`."""
    cont, disc = _head_slices(layout)
    columns: dict[int, object] = {j: heads[:, i:i + 1] for i, j in enumerate(cont)}
    for j, off, s in disc:
        probs = heads[:, off:off + s]
        if decode == "median":
            below = ops.cast(ops.cumsum(probs, axis=-1) < 0.5, heads.dtype)
            step = ops.minimum(ops.sum(below, axis=-1), float(s - 1))
        else:
            # tf.argmax, not ops.argmax: Keras' TF argmax adds Bitcast ops that ONNX lacks
            step = ops.cast(tf.math.argmax(probs, axis=-1), heads.dtype)
        columns[j] = ops.expand_dims(step / float(s - 1), -1)
    return ops.concatenate([columns[j] for j in range(len(layout))], axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DecodeParams(layers.Layer):
    """``heads`` -> normalised parameters (n, k): sigmoids pass, each softmax becomes a step / (steps - 1).

    ``decode="argmax"`` takes the most likely step; ``"median"`` the step where the cumulative
    probability first reaches one half, the answer with the least expected absolute error. Where
    the network is sure they agree; where the audio cannot tell (an LFO's sync when the LFO
    modulates nothing), the median is a middle step instead of a coin toss between far ones.
    """

    def __init__(self, layout: Sequence[int], decode: str = "argmax", **kwargs) -> None:
        super().__init__(**kwargs)
        if decode not in DECODES:
            raise ModelError(f"unknown decode {decode!r}; use one of {', '.join(DECODES)}")
        self.layout = [int(s) for s in layout]
        self.decode = decode

    def call(self, heads):
        return decode_heads(heads, self.layout, self.decode)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.layout))

    def get_config(self) -> dict:
        return {**super().get_config(), "layout": self.layout, "decode": self.decode}


def with_decode(model: keras.Model, decode: str) -> keras.Model:
    """The same network with its ``params`` output decoded by ``decode`` (weights shared)."""
    layer = decode_layer(model)
    if layer.decode == decode:
        return model
    heads = model.get_layer("heads").output
    if is_hypothesis_model(model):
        return keras.Model(model.inputs, _hypothesis_outputs(heads, layer.layout, decode), name=model.name)
    params = DecodeParams(layer.layout, decode=decode, name="params")(heads)
    return keras.Model(model.inputs, [params, heads], name=model.name)


@keras.saving.register_keras_serializable(package=PACKAGE)
def rmse(y_true, y_pred):
    """Root mean squared error over every value of the batch."""
    return ops.sqrt(ops.mean(ops.square(y_pred - y_true)) + 1e-12)


def head_errors(layout: Sequence[int], weights: Sequence[float], y_true, y_pred):
    """Per-sample head loss with an absolute error on the continuous columns.

    ``y_true`` (n, k) normalised parameters; ``y_pred`` (n, ..., H) heads (continuous sigmoids,
    then the softmaxes; extra middle axes such as hypotheses broadcast). Returns (n, ...): the
    weighted mean absolute error and each cross-entropy / log(steps), combined by parameter
    counts as in :class:`HeadLoss`.
    """
    cont, disc = _head_slices(layout)
    k = float(len(layout))
    truth = y_true
    for _ in range(len(y_pred.shape) - 2):
        truth = ops.expand_dims(truth, 1)
    total = ops.zeros_like(y_pred[..., 0])
    if cont:
        idx = ops.convert_to_tensor(cont, dtype="int32")
        w = ops.convert_to_tensor([weights[j] for j in cont], dtype=y_pred.dtype)
        diff = ops.take(truth, idx, axis=-1) - y_pred[..., :len(cont)]
        total = total + (len(cont) / k) * ops.mean(ops.abs(diff) * w, axis=-1)
    for j, off, s in disc:
        cls = ops.cast(ops.round(truth[..., j] * (s - 1)), "int32")
        probs = ops.clip(y_pred[..., off:off + s], 1e-7, 1.0)
        picked = ops.sum(ops.one_hot(cls, s, dtype=y_pred.dtype) * probs, axis=-1)
        total = total - weights[j] * ops.log(picked) / (math.log(s) * k)
    return total


@keras.saving.register_keras_serializable(package=PACKAGE)
class HeadLoss(keras.losses.Loss):
    """Loss for ``heads``: an error over the continuous columns plus cross-entropy per discrete head.

    ``y_true`` is the normalised parameter matrix (n, k); a discrete target's class is
    ``round(value * (steps - 1))``. Each cross-entropy is divided by ``log(steps)`` (1.0 for a
    uniform guess) and the parts are weighted by their parameter counts, so the loss is on the
    same scale for any set. ``continuous``: ``"rmse"`` (the conditional mean) or ``"mae"`` (the
    conditional median: where the audio cannot tell, one plausible value rather than the mean
    of several). ``weights`` (k,): how much each parameter's error counts (mean 1), e.g. by how
    much the parameter changes the sound (``training.sensitivity``).
    """

    def __init__(self, layout: Sequence[int], name: str = "head_loss", continuous: str = "rmse",
                 weights: Sequence[float] | None = None, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.layout = [int(s) for s in layout]
        if continuous not in ("rmse", "mae"):
            raise ModelError(f"the head loss takes rmse or mae for continuous parameters, not {continuous!r}")
        self.continuous = continuous
        self.weights = [1.0] * len(self.layout) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.layout):
            raise ModelError(f"{len(self.weights)} loss weights for {len(self.layout)} parameters")

    def call(self, y_true, y_pred):
        if self.continuous == "mae":
            # one value per sample is what Loss expects; their mean is the batch's loss
            return head_errors(self.layout, self.weights, y_true, y_pred)
        cont, disc = _head_slices(self.layout)
        k = float(len(self.layout))
        total = 0.0
        if cont:
            idx = ops.convert_to_tensor(cont, dtype="int32")
            weights = ops.convert_to_tensor([self.weights[j] for j in cont], dtype=y_pred.dtype)
            diff = ops.take(y_true, idx, axis=1) - y_pred[:, :len(cont)]
            error = ops.sqrt(ops.mean(ops.square(diff) * weights) + 1e-12)
            total = total + (len(cont) / k) * error
        for j, off, s in disc:
            cls = ops.cast(ops.round(y_true[:, j] * (s - 1)), "int32")
            probs = ops.clip(y_pred[:, off:off + s], 1e-7, 1.0)
            ce = keras.losses.sparse_categorical_crossentropy(cls, probs)
            total = total + self.weights[j] * ops.mean(ce) / (math.log(s) * k)
        # one value per sample is what Loss expects; the batch mean is the same number
        return ops.zeros_like(y_true[:, 0]) + total

    def get_config(self) -> dict:
        return {"layout": self.layout, "name": self.name, "continuous": self.continuous, "weights": self.weights}


# --------------------------------------------------------------------------- builders

def _params_head(x, k: int):
    return layers.Dense(k, activation="sigmoid", name="params")(x)


def build_cnn(input_shape: Sequence[int], pset: ParameterSet, dropout: float = 0.3) -> keras.Model:
    """The seed's CNN: 4 x (Conv2D 3x3 relu, batch-norm, max-pool 2x2), flatten, Dense 128, 64."""
    inp = keras.Input(shape=tuple(input_shape), name="features")
    x = inp
    for filters in (32, 64, 128, 128):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inp, _params_head(x, len(pset)), name="cnn")


def build_lstm(input_shape: Sequence[int], pset: ParameterSet, units: int = 64, n_highway: int = 4,
               dropout: float = 0.3) -> keras.Model:
    """The seed's LSTM: bidirectional LSTM over MFCC frames, highway layers, sigmoid output."""
    inp = keras.Input(shape=tuple(input_shape), name="features")
    x = layers.Bidirectional(layers.LSTM(units))(inp)
    for _ in range(n_highway):
        x = Highway()(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inp, _params_head(x, len(pset)), name="lstm")


def build_cnn2(input_shape: Sequence[int], pset: ParameterSet, width: int = 32, dense: int = 256,
               dropout: float = 0.3) -> keras.Model:
    """Separable conv net on ``mel_db``; softmax heads for discrete parameters.

    Pooling is coarser along time than along frequency late in the net, and a 1x1 bottleneck
    before flattening keeps *where* energy sits (pitch, cutoff, envelope timing) at little
    cost, unlike global pooling.
    """
    inp = keras.Input(shape=tuple(input_shape), name="features")
    x = layers.Conv2D(width, 3, padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(2)(x)
    for mult, pool in ((2, (2, 2)), (3, (2, 2)), (4, (2, 2)), (4, (1, 2))):
        x = layers.SeparableConv2D(width * mult, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(pool, padding="same")(x)
    x = layers.Conv2D(width, 1, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    params, heads = _heads(x, pset)
    return keras.Model(inp, [params, heads], name="cnn2")


def _heads(x, pset: ParameterSet):
    """Sigmoid regression for continuous parameters, one softmax per discrete one; ``params``
    decodes them inside the graph (see :class:`DecodeParams`)."""
    layout = head_layout(pset)
    cont, disc = _head_slices(layout)
    parts = []
    if cont:
        parts.append(layers.Dense(len(cont), activation="sigmoid", name="continuous")(x))
    for j, _, s in disc:
        parts.append(layers.Dense(s, activation="softmax", name=f"discrete_{pset.ids[j]}")(x))
    heads = layers.Concatenate(name="heads")(parts) if len(parts) > 1 else layers.Identity(name="heads")(parts[0])
    return DecodeParams(layout, name="params")(heads), heads


def _cnn3_trunk(inp, dense: int = 384, dropout: float = 0.2):
    """``cnn3``'s layers up to its heads: the strided front end, three conv blocks, the 1x1
    bottleneck, Dense ``dense`` and dropout."""
    x = layers.Conv2D(24, 4, strides=2, padding="same", activation="relu")(inp)
    x = layers.Conv2D(48, 3, strides=2, padding="same", activation="relu")(x)
    for filters, pool in ((64, (2, 2)), (96, (2, 2)), (128, (1, 2))):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(pool, padding="same")(x)
    x = layers.Conv2D(32, 1, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense, activation="relu")(x)
    return layers.Dropout(dropout)(x)


def build_cnn3(input_shape: Sequence[int], pset: ParameterSet, dense: int = 384, dropout: float = 0.2) -> keras.Model:
    """CNN for ``mel_db_pitch`` (the spectrogram and the harmonic comb of the detected note),
    sized for training on a CPU: two strided convolutions shrink the image 4x per side before
    anything wide runs (5x the training speed of ``cnn2``'s full-resolution first layer and
    depthwise convolutions on this machine), batch normalisation only where the maps are small,
    then ``cnn2``'s 1x1 bottleneck, which keeps where energy sits, and its heads.
    """
    inp = keras.Input(shape=tuple(input_shape), name="features")
    params, heads = _heads(_cnn3_trunk(inp, dense, dropout), pset)
    return keras.Model(inp, [params, heads], name="cnn3")


HYPOTHESES = 8


def _hypothesis_heads(x, pset: ParameterSet, k: int):
    """``k`` sets of heads and a confidence logit each: (n, k, H + 1), H as in :func:`_heads`."""
    layout = head_layout(pset)
    cont, disc = _head_slices(layout)
    parts = []
    if cont:
        c = layers.Dense(k * len(cont), activation="sigmoid", name="hyp_continuous")(x)
        parts.append(layers.Reshape((k, len(cont)))(c))
    for j, _, s in disc:
        d = layers.Reshape((k, s))(layers.Dense(k * s, name=f"hyp_discrete_{pset.ids[j]}")(x))
        parts.append(layers.Softmax(axis=-1)(d))
    parts.append(layers.Reshape((k, 1))(layers.Dense(k, name="hyp_confidence")(x)))
    return layers.Concatenate(axis=-1, name="heads")(parts)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DecodeHypotheses(DecodeParams):
    """Hypothesis heads (n, k, H + 1) -> [params (n, p) of the most confident hypothesis,
    hypotheses (n, k, p), confidence (n, k) softmax]; each decoded as :class:`DecodeParams`."""

    def call(self, heads):
        k, width = heads.shape[1], heads.shape[2]
        flat = ops.reshape(heads[..., :width - 1], (-1, width - 1))
        hyps = ops.reshape(decode_heads(flat, self.layout, self.decode), (-1, k, len(self.layout)))
        confidence = ops.softmax(heads[..., width - 1], axis=-1)
        best = ops.one_hot(tf.math.argmax(confidence, axis=-1), k, dtype=heads.dtype)
        params = ops.sum(hyps * ops.expand_dims(best, -1), axis=1)
        return params, hyps, confidence

    def compute_output_shape(self, input_shape):
        n, k = input_shape[0], input_shape[1]
        return (n, len(self.layout)), (n, k, len(self.layout)), (n, k)


def _hypothesis_outputs(heads, layout: Sequence[int], decode: str = "argmax") -> list:
    params, hyps, confidence = DecodeHypotheses(layout, decode, name="decode_hypotheses")(heads)
    return [layers.Identity(name="params")(params), heads, layers.Identity(name="hypotheses")(hyps),
            layers.Identity(name="confidence")(confidence)]


def build_cnn3h(input_shape: Sequence[int], pset: ParameterSet, hypotheses: int = HYPOTHESES) -> keras.Model:
    """``cnn3`` with ``hypotheses`` answers and a confidence for each (multiple-choice learning).

    Where the audio cannot tell several patches apart, one answer per parameter (a median) mixes
    them into a patch that sounds like none; trained winner-takes-all (:class:`HypothesesLoss`),
    each hypothesis specialises in one kind of answer, the confidence says which one is likely,
    and a match can render them all and keep the one that sounds closest. ``params`` is the most
    confident hypothesis, so the model answers like any other.
    """
    inp = keras.Input(shape=tuple(input_shape), name="features")
    heads = _hypothesis_heads(_cnn3_trunk(inp), pset, hypotheses)
    return keras.Model(inp, _hypothesis_outputs(heads, head_layout(pset)), name="cnn3h")


@keras.saving.register_keras_serializable(package=PACKAGE)
class HypothesesLoss(keras.losses.Loss):
    """Winner-takes-all loss for hypothesis heads (n, k, H + 1).

    Per sample: ``(1 - spread)`` x the best hypothesis' :func:`head_errors` + ``spread`` x their
    mean (every hypothesis keeps learning) + ``confidence_weight`` x the cross-entropy of the
    confidence against the index of the best hypothesis.
    """

    def __init__(self, layout: Sequence[int], weights: Sequence[float] | None = None, spread: float = 0.05,
                 confidence_weight: float = 0.1, name: str = "hypotheses_loss", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.layout = [int(s) for s in layout]
        self.weights = [1.0] * len(self.layout) if weights is None else [float(w) for w in weights]
        self.spread = float(spread)
        self.confidence_weight = float(confidence_weight)

    def call(self, y_true, y_pred):
        width = y_pred.shape[-1]
        errors = self.answer_errors(y_true, y_pred[..., :width - 1])  # (n, k)
        best = ops.stop_gradient(ops.argmin(errors, axis=-1))
        k = errors.shape[-1]
        wta = ops.min(errors, axis=-1)
        logits = y_pred[..., width - 1]
        confidence = keras.losses.sparse_categorical_crossentropy(best, logits, from_logits=True)
        return ((1.0 - self.spread) * wta + self.spread * ops.sum(errors, axis=-1) / k
                + self.confidence_weight * confidence)

    def answer_errors(self, y_true, heads):
        """Each answer's error (n, k) against the truth ``y_true``; ``heads`` (n, k, H)."""
        return head_errors(self.layout, self.weights, y_true, heads)

    def get_config(self) -> dict:
        return {"layout": self.layout, "weights": self.weights, "spread": self.spread,
                "confidence_weight": self.confidence_weight, "name": self.name}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SoundProxyLoss(HypothesesLoss):
    """:class:`HypothesesLoss` whose answer errors add ``sound_weight`` x how far each answer sounds
    from the truth by a frozen sound proxy (``training.sound_proxy``): the mean absolute difference
    of the level-centred summaries the proxy makes of the answer (its heads as they are) and of the
    true patch's clean render. The winner is the answer closest by the sum, so answers are kept
    apart, and pulled toward the truth, by their sound as well as their parameters. With
    ``level_weight`` each answer also pays that much x the difference of the two summaries' mean
    levels, so an answer far quieter than the truth (one no volume setting makes heard: ``core.level.mute``)
    costs what it sounds like.

    ``y_true`` (n, p + 1 + S): the parameters, the proxy's key column and the clean summary
    (``training.sound_proxy.sound_targets``). ``proxy_path``: the proxy (.keras), loaded here.
    """

    def __init__(self, layout: Sequence[int], proxy_path: str, weights: Sequence[float] | None = None,
                 sound_weight: float = SOUND_WEIGHT, spread: float = 0.05, confidence_weight: float = 0.1,
                 level_weight: float = 0.0, name: str = "sound_proxy_loss", **kwargs) -> None:
        super().__init__(layout, weights, spread, confidence_weight, name=name, **kwargs)
        self.proxy_path = str(proxy_path)
        self.sound_weight = float(sound_weight)
        self.level_weight = float(level_weight)
        try:
            self.proxy = keras.models.load_model(self.proxy_path)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the sound proxy {self.proxy_path}: {exc}") from None
        self.proxy.trainable = False

    def answer_errors(self, y_true, heads):
        n_params = len(self.layout)
        params, key, sound = y_true[:, :n_params], y_true[:, n_params:n_params + 1], y_true[:, n_params + 1:]
        errors = super().answer_errors(params, heads)
        k, width = heads.shape[1], heads.shape[2]
        keys = ops.repeat(ops.expand_dims(key, 1), k, axis=1)
        guess = self.proxy(ops.reshape(ops.concatenate([heads, keys], axis=-1), (-1, width + 1)))
        guess = ops.reshape(guess, (-1, k, sound.shape[-1]))
        guess_level = ops.mean(guess, axis=-1, keepdims=True)
        truth_level = ops.expand_dims(ops.mean(sound, axis=-1, keepdims=True), 1)
        shape = ops.mean(ops.abs((guess - guess_level) - (ops.expand_dims(sound, 1) - truth_level)), axis=-1)
        errors = errors + self.sound_weight * shape
        if self.level_weight:
            errors = errors + self.level_weight * ops.abs(guess_level - truth_level)[..., 0]
        return errors

    def get_config(self) -> dict:
        return {**super().get_config(), "proxy_path": self.proxy_path, "sound_weight": self.sound_weight,
                "level_weight": self.level_weight}


def is_hypothesis_model(model: keras.Model) -> bool:
    return "hypotheses" in model.output_names


def decode_layer(model: keras.Model):
    """The layer that decodes a model's heads (``layout`` and ``decode`` attributes)."""
    return model.get_layer("decode_hypotheses" if is_hypothesis_model(model) else "params")


@dataclass(frozen=True)
class ModelSpec:
    """A model name, the feature it reads by default and its builder."""

    name: str
    feature: str
    build: Callable[..., keras.Model]
    description: str


MODELS: dict[str, ModelSpec] = {
    "cnn": ModelSpec("cnn", "mel", build_cnn, "seed CNN on the per-clip mel spectrogram"),
    "lstm": ModelSpec("lstm", "mfcc", build_lstm, "seed bidirectional LSTM + highway on MFCC"),
    "cnn2": ModelSpec("cnn2", "mel_db", build_cnn2,
                      "separable CNN on the loudness-keeping mel spectrogram, classification heads"),
    "cnn3": ModelSpec("cnn3", "mel_db_pitch", build_cnn3,
                      "strided CNN on the mel spectrogram plus the detected note's harmonic comb"),
    "cnn3h": ModelSpec("cnn3h", "mel_db_pitch", build_cnn3h,
                       f"cnn3 with {HYPOTHESES} answers and a confidence each (winner-takes-all)"),
}


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; use one of {', '.join(MODELS)}") from None


def build_model(name: str, input_shape: Sequence[int], pset: ParameterSet) -> keras.Model:
    """Build model ``name`` for features of ``input_shape`` (without the batch dim)."""
    spec = model_spec(name)
    rank = 2 if spec.feature == "mfcc" else 3
    if len(input_shape) != rank:
        kind = "(frames, coefficients) sequences such as mfcc" if rank == 2 else "spectrogram images such as mel"
        raise ModelError(f"model {name!r} reads {kind}; got features of shape {tuple(input_shape)}")
    return spec.build(tuple(int(d) for d in input_shape), pset)


LOSSES: dict[str, Callable] = {"rmse": rmse, "mse": keras.losses.mean_squared_error,
                               "mae": keras.losses.mean_absolute_error}


def compile_model(model: keras.Model, optimizer: str = "adam", learning_rate: float | None = None,
                  loss: str = "rmse", decay_steps: int | None = None,
                  weights: Sequence[float] | None = None, sound_proxy: str | None = None,
                  sound_weight: float = SOUND_WEIGHT, level_weight: float = 0.0) -> keras.Model:
    """Compile with ``loss`` on ``params`` (or :class:`HeadLoss` on ``heads``, its continuous part MAE
    for ``loss="mae"``, else RMSE, each parameter counted by ``weights``) and MAE on ``params``;
    with ``decay_steps`` the learning rate follows a cosine down to 5 % over that many steps. A
    model with several answers trains with :class:`HypothesesLoss`, or with ``sound_proxy`` (a
    .keras file) :class:`SoundProxyLoss` (``sound_weight``, ``level_weight``: its terms), whose
    ``heads`` target then carries the sound too."""
    if loss not in LOSSES:
        raise ModelError(f"unknown loss {loss!r}; use one of {', '.join(LOSSES)}")
    config: dict = {} if learning_rate is None else {"learning_rate": learning_rate}
    if decay_steps:
        rate = learning_rate or 1e-3
        config["learning_rate"] = keras.optimizers.schedules.CosineDecay(rate, decay_steps, alpha=0.05)
    try:
        opt = keras.optimizers.get({"class_name": optimizer, "config": config})
    except (ValueError, TypeError) as exc:
        raise ModelError(f"unknown optimizer {optimizer!r}: {exc}") from None
    if sound_proxy is not None and not is_hypothesis_model(model):
        raise ModelError("a sound proxy trains a model with several answers (cnn3h)")
    if is_hypothesis_model(model):
        layout = decode_layer(model).layout
        heads_loss = (HypothesesLoss(layout, weights=weights) if sound_proxy is None
                      else SoundProxyLoss(layout, sound_proxy, weights=weights, sound_weight=sound_weight,
                                          level_weight=level_weight))
        model.compile(optimizer=opt, loss={"params": None, "heads": heads_loss,
                                           "hypotheses": None, "confidence": None},
                      metrics={"params": ["mae"]})
    elif "heads" in model.output_names:
        layout = model.get_layer("params").layout
        head_loss = HeadLoss(layout, continuous="mae" if loss == "mae" else "rmse", weights=weights)
        model.compile(optimizer=opt, loss={"params": None, "heads": head_loss}, metrics={"params": ["mae"]})
    else:
        model.compile(optimizer=opt, loss=LOSSES[loss], metrics=["mae"])
    return model


def targets(model: keras.Model, params):
    """The ``y`` a model trains on: the parameter matrix once per output."""
    return params if len(model.outputs) == 1 else tuple(params for _ in model.outputs)
