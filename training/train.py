"""Training runs: cached features -> Keras model, with checkpoints, history and resume.

A run is a folder ``RUNS/<name>/``::

    config.json           settings, dataset summary, feature config, split, scaler, versions
    history.json          one record per epoch, appended across resumes; the dropout seeds' state
    checkpoints/last.keras          after every epoch (what --resume continues from)
    checkpoints/epoch-0005.keras    every --save-freq epochs
    best.keras            lowest validation loss so far (what export uses)
    metrics.json          validation MAE of best.keras (overall and per parameter)
    loss.png              loss and MAE curves

Resuming is exact: a run killed at any point and resumed ends with the same weights as one
never interrupted (CPU; the epoch that was cut short is redone). Epoch ``e`` trains on the same
rows whenever it runs (:func:`batches`), ``last.keras`` holds the weights and the optimizer state
(with the learning-rate schedule's step), and history.json the dropout layers' random state,
which Keras does not save. history.json is the commit point of an epoch: its checkpoint is
first saved as ``checkpoints/last-NNNN.keras`` and renamed to ``last.keras`` only after the
history records the epoch (:func:`committed_checkpoint` finishes a rename a kill cut short).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.atomic import unique_path, write_atomic, write_json_atomic
from ..core.audio import NOMINAL_PEAK_DBFS
from ..core.errors import DatasetError, ModelError
from ..core.metrics import parameter_mae
from ..core.scaler import MinMaxScaler
from .dataset import Dataset
from .features_cache import SCALED_FEATURES, CachedFeatures, Split, cached_config, scaler_for, split_for
from .sound_proxy import SOUND_WEIGHT

# TensorFlow is imported lazily, after this: keep its C++ INFO lines off the terminal
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
RUN_FORMAT = "deepdiva-run/1"
LR_SCHEDULES = ("constant", "cosine")
Logger = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``deepdiva train`` takes; stored in the run's config.json."""

    dataset: str
    model: str = "cnn"
    feature: str | None = None
    batch_size: int = 64
    epochs: int = 10
    save_freq: int = 5
    optimizer: str = "adam"
    learning_rate: float | None = None
    loss: str = "rmse"
    validation_split: float = 0.1
    seed: int = 0
    patience: int | None = None
    runs_dir: str = "runs"
    name: str | None = None
    lr_schedule: str = "constant"  # or "cosine": decays to 5 % of the rate over all epochs
    epoch_size: int | None = None  # rows per epoch (default: the whole training split)
    loss_weights: str = "equal"  # or "sensitivity": each parameter's error counted by how much it moves the sound
    init_from: str | None = None  # a run folder or NAME.onnx whose trained weights start this run where layers match
    diversify: float = 0.0  # with init_from: answers after the first start with output biases this far apart (logits)
    sound_proxy: str | None = None  # a sound proxy (.keras, training.sound_proxy): answers pulled toward the sound too
    sound_weight: float = SOUND_WEIGHT  # with sound_proxy: how much its summary distance counts beside the parameter error
    level_weight: float = 0.0  # with sound_proxy: how much the difference of the summaries' mean levels counts

    def __post_init__(self) -> None:
        for key in ("batch_size", "epochs", "save_freq"):
            if getattr(self, key) < 1:
                raise ModelError(f"--{key.replace('_', '-')} must be >= 1, got {getattr(self, key)}")
        if self.patience is not None and self.patience < 1:
            raise ModelError(f"--patience must be >= 1, got {self.patience}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ModelError(f"--learning-rate must be > 0, got {self.learning_rate}")
        if self.epoch_size is not None and self.epoch_size < 1:
            raise ModelError(f"--epoch-size must be >= 1, got {self.epoch_size}")
        if not 0 <= self.diversify <= 5:
            raise ModelError(f"--diversify must be within 0..5 (logits), got {self.diversify}")
        if self.diversify and not self.init_from:
            raise ModelError("--diversify moves the answers of a model it starts from: give --init-from")
        if self.loss_weights not in ("equal", "sensitivity"):
            raise ModelError(f"--loss-weights must be equal or sensitivity, got {self.loss_weights!r}")
        if not self.sound_weight > 0:
            raise ModelError(f"--sound-weight must be > 0, got {self.sound_weight}")
        if not self.level_weight >= 0:
            raise ModelError(f"--level-weight must be >= 0, got {self.level_weight}")
        if self.level_weight and self.sound_proxy is None:
            raise ModelError("--level-weight weighs the sound proxy's level: give --sound-proxy")
        if self.sound_proxy is not None and not Path(self.sound_proxy).is_file():
            raise ModelError(f"--sound-proxy {self.sound_proxy}: no such file (deepdiva sound-proxy makes one)")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ModelError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# --------------------------------------------------------------------------- data

def batches(store: CachedFeatures, rows: np.ndarray, batch_size: int, n_outputs: int, shuffle: bool,
            seed: int = 0, epoch: int = 0, epoch_size: int | None = None,
            extra: tuple[int, np.ndarray] | None = None):
    """A ``keras.utils.PyDataset`` of (features, params) over ``rows`` of memory-mapped shards.

    Shuffled, an epoch is ``epoch_size`` rows (default: all) taken in turn from a fresh
    permutation of ``rows`` per pass, so epoch ``e`` sees the same rows whenever it runs (a resumed
    run continues exactly) and a large dataset still gets frequent checkpoints. ``extra``: (output
    index, array with a row per dataset row) whose columns follow the parameters in that output's target.
    """
    import keras

    rows = np.sort(np.asarray(rows, dtype=np.int64))
    size = len(rows) if not (shuffle and epoch_size) else min(int(epoch_size), len(rows))

    def epoch_rows(e: int) -> np.ndarray:
        if not shuffle:
            return rows
        first = e * size
        passes = range(first // len(rows), (first + size - 1) // len(rows) + 1)
        stream = np.concatenate([np.random.default_rng([seed, p]).permutation(rows) for p in passes])
        offset = first - passes[0] * len(rows)
        return stream[offset:offset + size]

    class FeatureBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.epoch = epoch
            self.order = epoch_rows(epoch)

        def __len__(self) -> int:
            return math.ceil(size / batch_size)

        def __getitem__(self, i: int):
            picked = np.sort(self.order[i * batch_size:(i + 1) * batch_size])  # store.get's order
            x, y = store.get(picked)
            if n_outputs == 1:
                return x, y
            ys = [y] * n_outputs
            if extra is not None:
                ys[extra[0]] = np.concatenate([y, extra[1][picked]], axis=1)
            return x, tuple(ys)

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = epoch_rows(self.epoch)

    return FeatureBatches()


def open_store(ds: Dataset, feature: str, scaler: dict | None) -> CachedFeatures:
    return CachedFeatures(ds, feature, MinMaxScaler.from_dict(scaler) if scaler else None)


# --------------------------------------------------------------------------- run folder

def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path} is missing: is {path.parent} a deepdiva training run?") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None


def versions() -> dict:
    import keras
    import tensorflow as tf

    return {"deepdiva": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__}


def dataset_summary(ds: Dataset, split: Split) -> dict:
    spec = ds.spec
    return {"path": str(ds.folder.resolve()), "prefix": ds.prefix, "n": len(ds), "n_shards": len(ds.shards),
            "n_train": int(split.train.size), "n_val": int(split.val.size), "profile": spec.profile,
            "parameter_set": spec.parameter_set, "parameter_ids": ds.manifest["parameter_ids"],
            "parameter_names": ds.manifest["parameter_names"], "renderer": spec.renderer,
            "render": spec.render.to_dict(), "seed": spec.seed, "pitch_range": spec.pitch_range,
            "prior": spec.prior, "augment": spec.augment,
            **({"pseudo_labels": ds.manifest["pseudo_labels"]} if "pseudo_labels" in ds.manifest else {})}


def _new_run_dir(cfg: TrainConfig) -> Path:
    root = Path(cfg.runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    if cfg.name:
        path = root / cfg.name
        if path.exists():
            raise ModelError(f"run {path} already exists; use --resume {path} or another --name")
        return path
    return unique_path(root / f"{cfg.model}-{datetime.now():%Y%m%d-%H%M%S}")


def save_keras_atomic(model, path: Path) -> None:
    """``model.save`` to a temp ``.keras`` name beside ``path``, then rename."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def plot_history(epochs: list[dict], path: Path) -> Path:
    """Loss and MAE per epoch (training and validation) as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(9, 3.6))
    FigureCanvasAgg(fig)
    x = [e["epoch"] for e in epochs]
    for ax, key in zip(fig.subplots(1, 2), ("loss", "mae"), strict=True):
        for name, style in ((key, "-"), (f"val_{key}", "--")):
            ys = [e.get(name) for e in epochs]
            if any(y is not None for y in ys):
                ax.plot(x, [np.nan if y is None else y for y in ys], style, marker=".", label=name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


# --------------------------------------------------------------------------- recording callback

def _recorder(run_dir: Path, history: dict, save_freq: int, monitor: str, say: Logger | None):
    import keras

    class RunRecorder(keras.callbacks.Callback):
        """Per epoch: last.keras, periodic and best checkpoints, history.json, a log line."""

        def __init__(self) -> None:
            super().__init__()
            done = [e[monitor] for e in history["epochs"] if e.get(monitor) is not None]
            self.best = min(done) if done else math.inf
            self.t0 = time.monotonic()

        def on_epoch_begin(self, epoch: int, logs=None) -> None:
            self.t0 = time.monotonic()

        def on_epoch_end(self, epoch: int, logs=None) -> None:
            record = {"epoch": epoch + 1, "seconds": round(time.monotonic() - self.t0, 3),
                      "session": len(history["sessions"])}
            for key, value in (logs or {}).items():
                record[key.replace("params_mae", "mae")] = float(value)
            ckpt = run_dir / "checkpoints"
            pending = _pending_checkpoint(run_dir, epoch + 1)
            save_keras_atomic(self.model, pending)
            if (epoch + 1) % save_freq == 0:
                save_keras_atomic(self.model, ckpt / f"epoch-{epoch + 1:04d}.keras")
            value = record.get(monitor)
            if value is not None and value < self.best:
                self.best = value
                save_keras_atomic(self.model, run_dir / "best.keras")
                record["best"] = True
            history["epochs"].append(record)
            history["seed_state"] = seed_state(self.model)
            write_json_atomic(run_dir / "history.json", history)  # the epoch is committed
            os.replace(pending, ckpt / "last.keras")
            if say:
                parts = [f"{k} {record[k]:.4f}" for k in ("loss", "mae", "val_loss", "val_mae") if k in record]
                say(f"epoch {epoch + 1}/{self.params.get('epochs')}: {', '.join(parts)} "
                    f"({record['seconds']:.1f} s){' *' if record.get('best') else ''}")

    return RunRecorder()


def _pending_checkpoint(run_dir: Path, epoch: int) -> Path:
    return run_dir / "checkpoints" / f"last-{epoch:04d}.keras"


def committed_checkpoint(run_dir: Path, epochs_done: int) -> Path:
    """``checkpoints/last.keras`` as of the last epoch history.json records: a checkpoint saved
    for it but not yet renamed (killed in between) takes its place; one of an epoch the history
    does not record is dropped (that epoch is redone), as are half-written saves."""
    ckpt = run_dir / "checkpoints"
    pending = _pending_checkpoint(run_dir, epochs_done)
    if epochs_done and pending.exists():
        os.replace(pending, ckpt / "last.keras")
    for stale in [*ckpt.glob("last-*.keras"), *ckpt.glob(".*.tmp.keras")]:
        stale.unlink()
    return ckpt / "last.keras"


def seed_state(model) -> dict[str, list[int]]:
    """The state of every random seed generator (dropout) by variable path: Keras saves weights
    and optimizer but not these, and a resumed run needs them to draw the same dropout masks."""
    return {v.path: np.asarray(v.numpy()).tolist() for v in model.variables if v.name == "seed_generator_state"}


def restore_seed_state(model, state: dict[str, list[int]]) -> None:
    for v in model.variables:
        if v.path in state:
            v.assign(np.asarray(state[v.path]).astype(v.dtype))


# --------------------------------------------------------------------------- train / resume

@dataclass
class RunResult:
    run_dir: Path
    epochs_done: int
    metrics: dict


def train(cfg: TrainConfig, say: Logger | None = None) -> RunResult:
    """Start a new run from ``cfg``."""
    import keras

    from .models import build_model, compile_model, model_spec

    spec = model_spec(cfg.model)
    cfg = TrainConfig.from_dict({**asdict(cfg), "feature": cfg.feature or spec.feature,
                                 "dataset": str(Path(cfg.dataset).resolve())})
    feature = cfg.feature or spec.feature
    ds = Dataset.open(cfg.dataset)
    split = split_for(ds, cfg.validation_split, cfg.seed)
    feature_cfg = cached_config(ds, feature)
    scaler = scaler_for(ds, split, feature) if feature in SCALED_FEATURES else None
    store = open_store(ds, feature, scaler)
    keras.utils.set_random_seed(cfg.seed)
    n_train = split.train.size
    steps = cfg.epochs * math.ceil(min(cfg.epoch_size or n_train, n_train) / cfg.batch_size)
    weights = None
    if cfg.loss_weights == "sensitivity":
        from ..core.renderers import make_renderer
        from .sensitivity import loss_weights, parameter_sensitivity

        if say:
            say("measuring how much each parameter changes the sound (loss weights)")
        engine = make_renderer(ds.spec.renderer, ds.parameter_set, ds.spec.render, plugin_path=ds.spec.plugin_path)
        try:
            weights = loss_weights(parameter_sensitivity(engine, pitch_range=ds.spec.pitch_range or (
                ds.spec.render.midi_pitch, ds.spec.render.midi_pitch)))
        finally:
            engine.close()
    model = build_model(cfg.model, store.shape, ds.parameter_set)
    if cfg.init_from:
        copied = warm_start(model, _starting_model(Path(cfg.init_from), cfg, ds, store, split), cfg.seed,
                            diversify=cfg.diversify)
        if say:
            say(f"started from {cfg.init_from}: {copied} layers' weights")
    model = compile_model(model, cfg.optimizer,
                          cfg.learning_rate, cfg.loss, decay_steps=steps if cfg.lr_schedule == "cosine" else None,
                          weights=weights, sound_proxy=cfg.sound_proxy, sound_weight=cfg.sound_weight,
                          level_weight=cfg.level_weight)
    run_dir = _new_run_dir(cfg)
    (run_dir / "checkpoints").mkdir(parents=True)
    config = {"format": RUN_FORMAT, "created": datetime.now().isoformat(timespec="seconds"),
              "train": asdict(cfg), "dataset": dataset_summary(ds, split), "split": split.record(),
              "feature": {"name": cfg.feature, "config": feature_cfg.to_dict(), "scaler": scaler,
                          **({"nominal_peak_dbfs": NOMINAL_PEAK_DBFS} if ds.spec.nominal_level else {})},
              "input_shape": list(store.shape), "output_names": list(model.output_names), "loss_weights": weights,
              "versions": versions()}
    write_json_atomic(run_dir / "config.json", config)
    history: dict[str, list] = {"epochs": [], "sessions": []}
    if say:
        approximate = split.n - int(store.exact.sum())
        say(f"run {run_dir}: {cfg.model} on {cfg.feature} {tuple(store.shape)}, {model.count_params()} weights, "
            f"{split.train.size} train / {split.val.size} validation patches ({approximate} with tuning restated "
            f"as near as octave steps allow), {_device()}")
    return _fit(run_dir, model, cfg, ds, store, split, history, say)


def _starting_model(source: Path, cfg: TrainConfig, ds: Dataset, store, split):
    """The Keras model ``--init-from`` names: a run folder's best, or a shipped ``NAME.onnx`` rebuilt
    (:mod:`.onnx_import`, its batch statistics measured on this run's first training rows), which must
    read this run's feature and answer for its parameter set."""
    import keras

    if source.is_file() and source.suffix != ".onnx":
        raise ModelError(f"--init-from {source}: give a run folder or a shipped model (NAME.onnx beside its card)")
    if source.suffix != ".onnx":
        return keras.models.load_model(best_model_path(source))
    from ..core.model_runtime import ModelCard
    from .onnx_import import CALIBRATION_ROWS, keras_from_onnx

    card = ModelCard.load(source)
    if card.feature_name != cfg.feature or tuple(card.input_shape) != tuple(store.shape):
        raise ModelError(f"{source} reads {card.feature_name} {card.input_shape}; this run trains on "
                         f"{cfg.feature} {tuple(store.shape)}")
    if card.parameter_ids != list(ds.parameter_set.ids):
        raise ModelError(f"{source} answers for another parameter set than {cfg.dataset}'s")
    return keras_from_onnx(source, store.get(split.train[:CALIBRATION_ROWS])[0])


HYPOTHESIS_PREFIX = "hyp_"


def warm_start(model, source, seed: int = 0, noise: float = 0.05, diversify: float = 0.0) -> int:
    """Copy ``source``'s weights into ``model`` where they fit; returns how many layers got weights.

    The trunks' layers pair up in order while their kinds and weight shapes agree. A hypothesis
    head (``hyp_<name>``, k answers side by side) is copied from a ``source`` with the same head
    (fine-tuning a model with several answers), or else starts as k copies of ``source``'s
    ``<name>`` head plus a little noise (``noise`` x that weight's spread), so the answers start at
    the source's and the noise lets winner-takes-all tell them apart.

    ``diversify`` > 0 then pushes every answer but the first apart: their output biases (the
    logits of the sigmoids and softmaxes) move by normal draws of that spread. Answers that start
    (nearly) alike win examples at random, learn the same median and stay alike (v3's eight
    answers differed by 0.01 on average); answers that start in different places win different
    kinds of sound, so each learns one of the shapes a sound could have.
    """
    def trunk(m) -> list:
        return [layer for layer in m.layers if layer.weights and not layer.name.startswith(HYPOTHESIS_PREFIX)
                and layer.name not in HEAD_LAYERS and not layer.name.startswith("discrete_")]

    copied = 0
    for new, old in zip(trunk(model), trunk(source), strict=False):
        if type(new) is not type(old) or not _same_shapes(new, old):
            break
        new.set_weights(old.get_weights())
        copied += 1
    rng = np.random.default_rng(seed)
    names = {layer.name for layer in source.layers}
    for layer in model.layers:
        name = layer.name.removeprefix(HYPOTHESIS_PREFIX)
        if layer.name == name:
            continue
        if layer.name in names and _same_shapes(layer, source.get_layer(layer.name)):  # answers to answers
            layer.set_weights(source.get_layer(layer.name).get_weights())
            copied += 1
            continue
        if name not in names:
            continue
        kernel, bias = source.get_layer(name).get_weights()
        reps = layer.weights[0].shape[-1] // kernel.shape[-1]
        kernel = np.tile(kernel, (1, reps))
        bias = np.tile(bias, reps)
        layer.set_weights([kernel + rng.normal(0, noise * kernel.std(), kernel.shape).astype(kernel.dtype),
                           bias + rng.normal(0, noise * max(float(bias.std()), 0.1), bias.shape).astype(bias.dtype)])
        copied += 1
    if diversify > 0:
        _push_answers_apart(model, rng, diversify)
    return copied


def _push_answers_apart(model, rng: np.random.Generator, spread: float) -> None:
    """Move the output biases of every answer but the first by normal draws of ``spread``."""
    try:
        k = model.get_layer(f"{HYPOTHESIS_PREFIX}confidence").weights[0].shape[-1]
    except ValueError:
        raise ModelError("--diversify needs a model with several answers (cnn3h)") from None
    for layer in model.layers:
        if not layer.name.startswith(HYPOTHESIS_PREFIX) or layer.name == f"{HYPOTHESIS_PREFIX}confidence":
            continue
        kernel, bias = layer.get_weights()
        width = bias.shape[0] // k  # answer a's outputs are columns a * width .. (a + 1) * width
        bias = bias.copy()
        bias[width:] += rng.normal(0, spread, bias.shape[0] - width).astype(bias.dtype)
        layer.set_weights([kernel, bias])


def _same_shapes(a, b) -> bool:
    return [w.shape for w in a.weights] == [w.shape for w in b.weights]


HEAD_LAYERS = ("continuous",)  # a single-answer model's heads; discrete_<id> ones are matched by prefix


def resume(run: str | os.PathLike, epochs: int | None = None, say: Logger | None = None) -> RunResult:
    """Continue ``run`` from ``checkpoints/last.keras`` up to ``epochs`` (total) epochs."""
    import keras

    from . import models  # noqa: F401 - registers the custom layers and losses for loading

    run_dir = Path(run)
    config = read_json(run_dir / "config.json")
    history = read_json(run_dir / "history.json")
    cfg = TrainConfig.from_dict(config["train"])
    if epochs is not None:
        cfg = TrainConfig.from_dict({**asdict(cfg), "epochs": epochs})
    last = committed_checkpoint(run_dir, len(history["epochs"]))
    if not last.exists():
        raise ModelError(f"{run_dir} has no checkpoint to resume from (checkpoints/last.keras)")
    ds = Dataset.open(cfg.dataset)
    split = split_for(ds, cfg.validation_split, cfg.seed)
    if split.record() != config["split"]:
        raise DatasetError(f"the dataset of {run_dir} changed since the run started (its split differs); "
                           "start a new run")
    store = open_store(ds, config["feature"]["name"], config["feature"]["scaler"])
    model = keras.models.load_model(last)
    restore_seed_state(model, history.get("seed_state", {}))  # runs from before it was kept: new masks
    config["train"] = asdict(cfg)
    write_json_atomic(run_dir / "config.json", config)
    if say:
        say(f"resuming {run_dir} after epoch {len(history['epochs'])} of {cfg.epochs}")
    return _fit(run_dir, model, cfg, ds, store, split, history, say)


def _device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU ({len(gpus)})" if gpus else "CPU"


def _fit(run_dir: Path, model, cfg: TrainConfig, ds: Dataset, store: CachedFeatures, split: Split,
         history: dict, say: Logger | None) -> RunResult:
    import keras

    initial = len(history["epochs"])
    history["sessions"].append({"started": datetime.now().isoformat(timespec="seconds"),
                                "initial_epoch": initial, "epochs": cfg.epochs})
    n_out = len(model.outputs)
    monitor = "val_loss" if split.val.size else "loss"
    callbacks = [_recorder(run_dir, history, cfg.save_freq, monitor, say)]
    if cfg.patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=cfg.patience))
    if initial < cfg.epochs:
        extra = None
        if cfg.sound_proxy:  # the sound term's targets ride on the heads' (training.sound_proxy)
            from .sound_proxy import sound_targets

            extra = (list(model.output_names).index("heads"), sound_targets(ds))
        train_data = batches(store, split.train, cfg.batch_size, n_out, True, cfg.seed, initial,
                             cfg.epoch_size, extra)
        val_rows = split.val
        val_data = batches(store, val_rows, cfg.batch_size, n_out, False, extra=extra) if val_rows.size else None
        # shuffle=False: batches() already draws each epoch's rows from a seeded permutation, while
        # Keras would reorder the batches with Python's global random, which a resumed run does not continue
        model.fit(train_data, validation_data=val_data, epochs=cfg.epochs, initial_epoch=initial,
                  callbacks=callbacks, verbose=0, shuffle=False)
    elif say:
        say(f"{run_dir} already has {initial} epochs; pass a larger --epochs to train more")
    write_json_atomic(run_dir / "history.json", history)
    if history["epochs"]:
        plot_history(history["epochs"], run_dir / "loss.png")
    metrics = evaluate_run(run_dir, store, split, cfg.batch_size)
    if say and metrics.get("val_mae") is not None:
        say(f"validation MAE {metrics['val_mae']:.4f} ({metrics['model_file']}, epoch {metrics['epoch']})")
    return RunResult(run_dir, len(history["epochs"]), metrics)


def best_model_path(run_dir: Path) -> Path:
    """``best.keras``, else ``checkpoints/last.keras``."""
    for path in (run_dir / "best.keras", run_dir / "checkpoints" / "last.keras"):
        if path.exists():
            return path
    raise ModelError(f"{run_dir} has no trained model (best.keras or checkpoints/last.keras)")


def predict_params(model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The ``params`` output of ``model`` for features ``x``."""
    out = model.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(out[0] if isinstance(out, list | tuple) else out)


def evaluate_run(run_dir: Path, store: CachedFeatures, split: Split, batch_size: int = 64) -> dict:
    """Validation MAE of the run's best model; written to metrics.json."""
    import keras

    path = best_model_path(run_dir)
    history = read_json(run_dir / "history.json")["epochs"]
    best = [e["epoch"] for e in history if e.get("best")]
    metrics: dict = {"model_file": str(path.relative_to(run_dir)),
                     "epoch": best[-1] if best and path.name == "best.keras" else len(history),
                     "val_mae": None, "val_mae_per_parameter": None}
    val_rows = split.val
    metrics["n_val"] = int(val_rows.size)
    if val_rows.size:
        model = keras.models.load_model(path)
        pred, true = [], []
        for i in range(0, val_rows.size, 512):
            x, y = store.get(val_rows[i:i + 512])
            pred.append(predict_params(model, x, batch_size))
            true.append(y)
        per = parameter_mae(np.concatenate(pred), np.concatenate(true))
        ids = read_json(run_dir / "config.json")["dataset"]["parameter_ids"]
        metrics["val_mae"] = float(per.mean())
        metrics["val_mae_per_parameter"] = {str(i): float(v) for i, v in zip(ids, per, strict=True)}
    write_json_atomic(run_dir / "metrics.json", metrics)
    return metrics
