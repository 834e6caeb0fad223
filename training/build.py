"""``deepdiva build-model``: one command from a synth to an exported, evaluated model.

A build is a folder; its stages run in order, each one resumable::

    BUILD/build.json           settings, and each stage: started, done, result (written atomically)
    BUILD/data/eval-notes/     held-out patches at random keys of the pitch range
    BUILD/data/eval-<set>/     held-out patches at one note (C3, or the range's nearest key)
    BUILD/data/train/          training patches (only the feature training reads, no audio)
    BUILD/runs/<name>/         the training run (checkpoints, history)
    BUILD/<name>.onnx, .json   the model and its card, with the evaluations
    BUILD/eval/<dataset>/      evaluation reports and plots

A stage recorded as done is skipped on a rerun (unless its outputs are gone or a stage before it
ran again). One cut short continues: finished dataset shards are kept (each shard draws from its
own seeded generator), training resumes from its last finished epoch and ends with the same
weights as an uninterrupted run (``training.train``), export and evaluation run again. The
settings are recorded as well, and a rerun asking for different ones is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from ..core.atomic import write_json_atomic
from ..core.errors import ConfigError, DatasetError
from ..core.names import FEATURE_NAMES, MODEL_NAMES, PATCH_PRIORS, RENDERER_KINDS
from ..core.profile import ParameterSet, load_profile
from ..core.render import RenderSettings
from .dataset import Dataset, DatasetSpec, ShardResult, generate

FORMAT = "deepdiva-build/1"
STATE_FILE = "build.json"
ONE_NOTE = 48  # C3, the original project's note
Logger = Callable[[str], None]
# Seeds of the build's random streams, added to --seed (0 gives scripts/build_model.sh's recipe).
TRAIN_DATA_SEED, EVAL_ONE_NOTE_SEED, EVAL_NOTES_SEED = 3, 1001, 1002


@dataclass(frozen=True)
class BuildConfig:
    """Everything that determines a build's result (defaults: the shipped model's recipe)."""

    profile: str = "diva"
    parameter_set: str = "medium33"
    renderer: str = "builtin"
    plugin_path: str | None = None
    samples: int = 240_000  # training patches, rounded up to whole shards
    shard_size: int = 5000
    eval_samples: int = 1000  # per held-out set
    pitch_range: tuple[int, int] = (36, 84)
    prior: str = "mixed"
    augment: bool = True
    feature: str = "mel_db_pitch"
    model: str = "cnn3"
    epochs: int = 10
    epoch_size: int | None = 40_000
    batch_size: int = 64
    validation_split: float = 0.02
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    loss: str = "mae"
    loss_weights: str = "sensitivity"
    decode: str = "median"
    seed: int = 0
    name: str = ""  # the model's file name; "" means <profile>-<set>

    def __post_init__(self) -> None:
        object.__setattr__(self, "pitch_range", tuple(int(v) for v in self.pitch_range))
        object.__setattr__(self, "name", self.name or default_name(self.profile, self.parameter_set))
        if self.plugin_path:
            object.__setattr__(self, "plugin_path", str(Path(self.plugin_path).expanduser().resolve()))
        for key, allowed in (("renderer", RENDERER_KINDS), ("prior", PATCH_PRIORS), ("feature", FEATURE_NAMES),
                             ("model", MODEL_NAMES)):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"unknown {key} {getattr(self, key)!r}; use one of {', '.join(allowed)}")
        if self.renderer != "builtin" and not self.plugin_path:
            raise ConfigError(f"--synth {self.renderer} needs --plugin-path: the plugin to render with")
        for key in ("samples", "shard_size", "eval_samples", "epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"--{key.replace('_', '-')} must be >= 1, got {getattr(self, key)}")
        if self.epoch_size is not None and self.epoch_size < 1:
            raise ConfigError(f"--epoch-size must be >= 1, got {self.epoch_size}")
        if not re.fullmatch(r"[\w.-]+", self.name):
            raise ConfigError(f"--name {self.name!r}: use letters, digits, '.', '-' and '_' only")
        self.parameter_set_resolved()  # unknown profile or set: a ProfileError now, not after the data

    def parameter_set_resolved(self) -> ParameterSet:
        return load_profile(self.profile).parameter_set(self.parameter_set)

    def to_dict(self) -> dict:
        """As stored in build.json (JSON types, so a reread compares equal)."""
        return json.loads(json.dumps(asdict(self)))


def default_name(profile: str, parameter_set: str) -> str:
    """``<profile>-<set>`` made safe as a file name (a set may be given as ids: '86 131')."""
    return re.sub(r"[^\w.-]+", "_", f"{profile}-{parameter_set}").strip("_")


def _shards(n: int, shard_size: int) -> tuple[int, int]:
    """(patches per shard, shards) for at least ``n`` patches."""
    count = math.ceil(n / shard_size)
    return min(shard_size, n), count


# --------------------------------------------------------------------------- dataset specs (pure)

def _synth_spec(cfg: BuildConfig, samples: int, **fields) -> DatasetSpec:
    """A dataset of ``samples`` patches of the build's synth and parameter set (silent ones redrawn)."""
    size, count = _shards(samples, cfg.shard_size)
    return DatasetSpec(profile=cfg.profile, parameter_set=cfg.parameter_set, renderer=cfg.renderer,
                       plugin_path=cfg.plugin_path, sample_size=size, n_shards=count, drop_silent=True, **fields)


def train_data_spec(cfg: BuildConfig) -> DatasetSpec:
    from .augment import AugmentConfig

    return _synth_spec(cfg, cfg.samples, seed=cfg.seed + TRAIN_DATA_SEED, pitch_range=cfg.pitch_range,
                       augment=AugmentConfig().to_dict() if cfg.augment else None, features=(cfg.feature,),
                       keep_audio=False, prior=cfg.prior)


def eval_data_specs(cfg: BuildConfig) -> dict[str, DatasetSpec]:
    """The held-out sets by folder name: uniform patches at random keys, and at one note."""
    low, high = cfg.pitch_range
    one_note = RenderSettings(midi_pitch=min(max(ONE_NOTE, low), high))
    return {"eval-notes": _synth_spec(cfg, cfg.eval_samples, seed=cfg.seed + EVAL_NOTES_SEED,
                                      pitch_range=cfg.pitch_range),
            default_name("eval", cfg.parameter_set): _synth_spec(cfg, cfg.eval_samples,
                                                                 seed=cfg.seed + EVAL_ONE_NOTE_SEED, render=one_note)}


# --------------------------------------------------------------------------- progress

def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def eta(elapsed: float, done: int, left: int) -> str:
    """``ETA 12 min`` at the rate of the ``done`` items of ``elapsed`` seconds ('' before the first)."""
    return f"ETA {duration(elapsed / done * left)}" if done > 0 else ""


# --------------------------------------------------------------------------- the build

class Build:
    """A build folder: its settings, its state file and where each stage puts its outputs."""

    def __init__(self, folder: Path, cfg: BuildConfig, workers: int = 1, ray_address: str | None = None,
                 say: Logger | None = None) -> None:
        self.folder, self.cfg, self.workers, self.ray_address, self.say = folder, cfg, workers, ray_address, say
        self.state: dict = {}
        self.state_path = folder / STATE_FILE
        self.data = folder / "data"
        self.train_data = self.data / "train"
        self.run_dir = folder / "runs" / cfg.name
        self.model_path = folder / f"{cfg.name}.onnx"
        self.card_path = self.model_path.with_suffix(".json")
        self.reports = folder / "eval"

    def open(self, restart: bool = False) -> None:
        """Read build.json (refusing other settings), or start a new build in an empty folder."""
        settings = self.cfg.to_dict()
        for name in (STATE_FILE, self.model_path.name, self.card_path.name):  # temp files a kill left
            for stale in self.folder.glob(f".{name}.*.tmp"):
                stale.unlink()
        if self.state_path.exists():
            try:
                state = json.loads(self.state_path.read_text(encoding="utf-8"))
                old = state["settings"] if state.get("format") == FORMAT else None
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"cannot read {self.state_path} ({exc}); use a new --out folder") from None
            if old is None:
                raise ConfigError(f"{self.state_path} is not a {FORMAT} file; use a new --out folder")
            if restart:
                self._clear(old.get("name", self.cfg.name))
            elif old != settings:
                changed = sorted(k for k in settings if old.get(k) != settings[k])
                raise ConfigError(
                    f"{self.folder} holds a build made with other settings ({', '.join(changed)}); "
                    "use a new --out folder, or --restart to discard it and build again")
            else:
                self.state = state
                return
        elif self.folder.exists() and any(self.folder.iterdir()):
            raise ConfigError(f"{self.folder} is not empty and holds no {STATE_FILE}; use a new --out folder")
        self.state = {"format": FORMAT, "settings": settings, "stages": {}}
        self.folder.mkdir(parents=True, exist_ok=True)
        self._save()

    def _clear(self, name: str) -> None:
        """Remove what a build made (never anything else in the folder)."""
        for sub in ("data", "runs", "eval"):
            shutil.rmtree(self.folder / sub, ignore_errors=True)
        for path in (self.folder / f"{name}.onnx", self.folder / f"{name}.json", self.state_path):
            path.unlink(missing_ok=True)

    def _save(self) -> None:
        write_json_atomic(self.state_path, self.state)

    def run(self) -> None:
        """Run every stage that is not done; a stage that runs makes the ones after it run too."""
        _plugin_host_first(self.cfg.renderer)
        rerun = False
        for i, stage in enumerate(STAGES, start=1):
            record = self.state["stages"].get(stage.name, {})
            log = _StageLog(self.say, f"[{i}/{len(STAGES)}] {stage.name}")
            if record.get("done") and not rerun and all(p.exists() for p in stage.outputs(self)):
                log("done earlier")
                continue
            rerun = True
            started = time.monotonic()
            self.state["stages"][stage.name] = {"started": datetime.now().isoformat(timespec="seconds"),
                                                "done": False}
            self._save()
            log(stage.description)
            result = stage.run(self, log)
            seconds = round(time.monotonic() - started, 1)
            self.state["stages"][stage.name] = {**self.state["stages"][stage.name], "done": True,
                                                "seconds": seconds, "result": result}
            self._save()
            log(f"done in {duration(seconds)}")

    def usage(self) -> list[str]:
        """Where the model is and the commands that use it."""
        model = self.model_path.resolve()
        args = f"--model {shlex.quote(str(model))}"
        if self.cfg.renderer != "builtin":
            args += f" --synth {self.cfg.renderer} --plugin-path {shlex.quote(str(self.cfg.plugin_path))}"
        return [f"model: {model}", f"card:  {model.with_suffix('.json')}", "use it:",
                f"  deepdiva match SOUND.wav {args}", f"  deepdiva serve {args}"]


def _plugin_host_first(renderer: str) -> None:
    """DawDreamer crashes the process when it is imported after TensorFlow (0.9 with TF 2.21), and
    a build renders with the plugin after training (evaluation), so it is imported first."""
    if renderer == "vst":
        with contextlib.suppress(ImportError):  # missing: the vst renderer says how to install it
            import dawdreamer  # noqa: F401


class _StageLog:
    """Prefixes a stage's lines with ``[i/n] name:``; silent without a logger."""

    def __init__(self, say: Logger | None, prefix: str) -> None:
        self.say, self.prefix = say, prefix

    def __call__(self, text: str) -> None:
        if self.say:
            self.say(f"{self.prefix}: {text}")

    @property
    def quiet(self) -> bool:
        return self.say is None


# --------------------------------------------------------------------------- stages

def _shards_done(folder: Path) -> int:
    try:
        ds = Dataset.open(folder)
    except DatasetError:
        return 0
    return sum(1 for s in ds.shards if ds.shard_dir(s).is_dir())


def _generate(build: Build, folder: Path, spec: DatasetSpec, log: _StageLog) -> dict:
    """Render the missing shards of one dataset, a line with an ETA per shard."""
    before, started = _shards_done(folder), time.monotonic()
    left = spec.n_shards - before
    done = 0

    def progress(result: ShardResult) -> None:
        nonlocal done
        done += 1
        finished = before + done
        log(f"{folder.name} shard {finished}/{spec.n_shards} ({finished * spec.sample_size:,} patches)"
            + (f", {eta(time.monotonic() - started, done, left - done)}" if done < left else ""))

    ds = generate(folder, spec, workers=build.workers, ray_address=build.ray_address, progress=progress)
    return {"patches": len(ds), "shards": len(ds.shards), "silent": sum(s["silent"] for s in ds.shards)}


def _eval_data(build: Build, log: _StageLog) -> dict:
    return {name: _generate(build, build.data / name, spec, log) for name, spec in eval_data_specs(build.cfg).items()}


def _train_data(build: Build, log: _StageLog) -> dict:
    return _generate(build, build.train_data, train_data_spec(build.cfg), log)


def train_config(build: Build):
    from .train import TrainConfig

    cfg = build.cfg
    return TrainConfig(dataset=str(build.train_data.resolve()), model=cfg.model, feature=cfg.feature,
                       batch_size=cfg.batch_size, epochs=cfg.epochs, optimizer="adam",
                       learning_rate=cfg.learning_rate, loss=cfg.loss, validation_split=cfg.validation_split,
                       seed=cfg.seed, runs_dir=str(build.run_dir.parent), name=cfg.name,
                       lr_schedule=cfg.lr_schedule, epoch_size=cfg.epoch_size, loss_weights=cfg.loss_weights)


def _epochs_done(run_dir: Path) -> list[dict]:
    try:
        return json.loads((run_dir / "history.json").read_text(encoding="utf-8"))["epochs"]
    except (OSError, ValueError, KeyError):
        return []


def _train(build: Build, log: _StageLog) -> dict:
    """A new run, or the run continued from its last finished epoch (a run killed before its first
    epoch ended has nothing to keep and starts again: the same seed gives the same start)."""
    from .train import best_model_path, resume, train

    run_dir, total = build.run_dir, build.cfg.epochs
    seen, started = len(_epochs_done(run_dir)), time.monotonic()
    first = seen

    def say(text: str) -> None:
        nonlocal seen
        epochs = _epochs_done(run_dir)
        if len(epochs) > seen and len(epochs) < total:  # this line reports an epoch that just ended
            text += f", {eta(time.monotonic() - started, len(epochs) - first, total - len(epochs))}"
        seen = len(epochs)
        log(text)

    if seen:
        result = resume(run_dir, say=None if log.quiet else say)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        result = train(train_config(build), say=None if log.quiet else say)
    return {"run": str(run_dir.relative_to(build.folder)), "epochs": result.epochs_done,
            "best_epoch": result.metrics.get("epoch"), "val_mae": result.metrics.get("val_mae"),
            "weights_sha256": weights_digest(best_model_path(run_dir))}


def weights_digest(path: Path) -> str:
    """sha256 of a Keras model's weights: equal weights, equal digest (the .keras file itself
    holds its save time, and the ONNX graph's node names differ from one export to the next)."""
    import keras

    from . import models  # noqa: F401 - registers the custom layers for loading

    digest = hashlib.sha256()
    for weight in keras.models.load_model(path).weights:
        digest.update(np.asarray(weight).tobytes())
    return digest.hexdigest()


def _export(build: Build, log: _StageLog) -> dict:
    from .export import export_run

    export_run(build.run_dir, build.model_path, overwrite=True, decode=build.cfg.decode,
               say=None if log.quiet else log)
    card = json.loads(build.card_path.read_text(encoding="utf-8"))
    return {"model": build.model_path.name, "card": build.card_path.name,
            "parity_max_abs_diff": card.get("parity", {}).get("max_abs_diff")}


def _evaluate(build: Build, log: _StageLog) -> dict:
    """Each held-out set, recorded in the card (a rerun records the same again)."""
    from ..core.model_runtime import OnnxModel
    from .evaluate import evaluate, update_card_metrics, write_outputs

    results = {}
    for name in eval_data_specs(build.cfg):
        model = OnnxModel.load(build.model_path)  # afresh: the card holds the sets evaluated so far
        ds = Dataset.open(build.data / name)
        report, examples = evaluate(model, ds, seed=build.cfg.seed)
        write_outputs(report, examples, build.reports / name, ds.spec.render.sample_rate)
        update_card_metrics(model, report)
        m = report["methods"]
        results[name] = {"n": report["n"], "mae": m["model"]["mae"], "mrstft_median": m["model"]["mrstft_median"],
                         "mrstft_median_base_preset": m["base_preset"]["mrstft_median"]}
        log(f"{name}: {report['n']} clips, parameter MAE {m['model']['mae']:.4f}, median MR-STFT "
            f"{m['model']['mrstft_median']:.3f} (base preset {m['base_preset']['mrstft_median']:.3f}), "
            f"report {build.reports / name}")
    return results


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    run: Callable[[Build, _StageLog], dict]
    outputs: Callable[[Build], list[Path]]


STAGES = (
    Stage("eval-data", "rendering the held-out sets", _eval_data,
          lambda b: [b.data / name / "manifest.json" for name in eval_data_specs(b.cfg)]),
    Stage("train-data", "rendering the training patches", _train_data,
          lambda b: [b.train_data / "manifest.json"]),
    Stage("train", "training", _train, lambda b: [b.run_dir / "metrics.json"]),
    Stage("export", "ONNX export with the parity check", _export, lambda b: [b.model_path, b.card_path]),
    Stage("evaluate", "evaluating on the held-out sets", _evaluate,
          lambda b: [b.reports / name / "report.json" for name in eval_data_specs(b.cfg)]),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def build_model(folder: str | Path, cfg: BuildConfig, workers: int = 1, ray_address: str | None = None,
                restart: bool = False, say: Logger | None = None) -> Build:
    """Run (or continue) the build in ``folder``; returns it finished."""
    build = Build(Path(folder), cfg, workers=workers, ray_address=ray_address, say=say)
    build.open(restart=restart)
    build.run()
    return build
