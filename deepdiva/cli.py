"""The ``deepdiva`` command: one click group; each subcommand calls into the packages."""

from __future__ import annotations

import logging
import sys

import click

from . import __version__
from .core.errors import DeepDivaError
from .core.limits import MAX_CANDIDATES
from .core.names import FEATURE_NAMES, MODEL_NAMES, PATCH_PRIORS, RENDERER_KINDS


class DeepDivaGroup(click.Group):
    """A click group that turns user errors into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except DeepDivaError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=DeepDivaGroup)
@click.version_option(__version__, prog_name="deepdiva")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """deepdiva: turn a sound into a u-he Diva preset."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr,
                        force=True)
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet


def main() -> None:
    cli(prog_name="deepdiva")


# --------------------------------------------------------------------------- shared options

def render_settings_options(f):
    """The original project's note options, shared by every command that renders."""
    options = [
        click.option("--sample-rate", default=44100, show_default=True, help="Sample rate for rendering."),
        click.option("--midi-note-pitch", "--midi-pitch", "midi_note_pitch", default=48, show_default=True,
                     help="MIDI note (C3 is 48)."),
        click.option("--midi-note-velocity", default=127, show_default=True, help="MIDI velocity (0-127)."),
        click.option("--note-length-seconds", default=2.0, show_default=True, help="Note length in seconds."),
        click.option("--render-length-seconds", default=2.0, show_default=True,
                     help="Rendered audio length in seconds."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _render_settings(kw: dict):
    from .core.render import RenderSettings

    return RenderSettings(sample_rate=kw.pop("sample_rate"), midi_pitch=kw.pop("midi_note_pitch"),
                          velocity=kw.pop("midi_note_velocity"), note_length=kw.pop("note_length_seconds"),
                          render_length=kw.pop("render_length_seconds"))


def _progress(total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="shard", disable=quiet or not sys.stderr.isatty())


# --------------------------------------------------------------------------- match

@cli.command("match")
@click.argument("targets", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="ONNX model (with its .json card beside it); default: the shipped model.")
@click.option("--refine", "refine_seconds", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds of search refinement per target after the network's answer.")
@click.option("--out", type=click.Path(), default=None,
              help="Folder or preset file (.h2p; amsynth: .bank or .amSynthPreset). Default: Diva's "
                   "UserPresets/Diva/deepdiva folder, or amsynth's banks folder for an amsynth model.")
@click.option("--preset-dir", type=click.Path(file_okay=False), default=None,
              help="Preset folder to use instead of the one found on this machine.")
@click.option("--name", default=None, help="Preset name (default: the target's file name).")
@click.option("--preview/--no-preview", default=True, show_default=True,
              help="Also write a wav of the matched preset beside it.")
@click.option("--score/--no-score", default=True, show_default=True,
              help="Network only: re-render the answer with the model's synth and measure its distance to the "
                   "target. --no-score leaves that out (2-3x faster for big batches; distance null).")
@click.option("--synth", "synth", type=click.Choice(RENDERER_KINDS), default=None,
              help="Renderer of the answer's score, the refinement's candidates and the preview: the builtin "
                   "synth, a plugin through DawDreamer (vst) or RenderMan. Default: the synth the model card "
                   "names (builtin for the shipped model). A synth that cannot play the model's is refused.")
@click.option("--plugin-path", "--vst-path", "plugin_path", type=click.Path(), default=None,
              help="The plugin for --synth vst or renderman; its file name must contain the model's synth "
                   "profile (diva, amsynth), e.g. /usr/lib/vst/amsynth_vst.so for an amsynth model.")
@click.option("--render-workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Plugin hosts the refinement renders on, one process each (a plugin is not thread-safe): "
                   "2 uses both cores of a 2-core machine. The builtin synth uses every core anyway.")
@click.option("--seed", default=0, show_default=True, help="Seed of the search.")
@click.option("--candidates", type=click.IntRange(1, MAX_CANDIDATES), default=1, show_default=True,
              help="With --refine: also write up to N-1 clearly different runners-up of the search "
                   "('NAME alt 2.h2p', ...) to audition.")
@click.option("--bank/--no-bank", default=None,
              help="Also choose among (and start --refine from) the 8 of 20,000 rendered patches that sound "
                   "nearest to the target; not with --no-score. Default: with the bank that ships for the "
                   "model's parameter set (the shipped model's does), without one for other models; --bank "
                   "builds theirs once into the user cache (about half a minute for the builtin synth).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report (path, params, distance).")
@click.option("--push-midi", "push_midi", default=None, metavar="PORT",
              help="Also send the parameters as MIDI CC to this existing port (e.g. a DAW input, IAC, loopMIDI).")
@click.option("--max-seconds", type=click.FloatRange(min=0.1), default=600.0, show_default=True,
              help="Refuse inputs longer than this.")
@click.pass_context
def match_cmd(ctx: click.Context, targets: tuple[str, ...], model_path: str | None, refine_seconds: float,
              out: str | None, preset_dir: str | None, name: str | None, preview: bool, score: bool, seed: int,
              candidates: int, as_json: bool, push_midi: str | None, max_seconds: float, bank: bool | None,
              synth: str | None, plugin_path: str | None, render_workers: int) -> None:
    """Match sounds: write a preset of the model's synth for each target file (or folder of files):
    a Diva .h2p, or an amsynth .bank in amsynth's banks folder."""
    import json

    from tqdm import tqdm

    from .core.errors import AudioError
    from .core.filenames import printable, printable_data
    from .core.matcher import Matcher
    from .presets.folders import preset_location
    from .presets.formats import preset_format
    from .presets.match_job import expand_targets, match_file

    files = expand_targets(list(targets))
    if not files:
        raise AudioError(f"no audio files in {', '.join(targets)}")
    if name and len(files) > 1:
        raise click.UsageError("--name needs a single target")
    if candidates > 1 and refine_seconds <= 0:
        raise click.UsageError("--candidates needs --refine SECONDS: the alternatives come from the search")
    quiet = ctx.obj["quiet"]
    matcher = Matcher.load(model_path, bank=bank if score or refine_seconds > 0 else False,
                           say=None if quiet else lambda text: click.echo(text, err=True),
                           synth=synth, plugin_path=plugin_path,  # a refused synth stops here, before any file
                           workers=render_workers, refine=refine_seconds > 0)
    ctx.call_on_close(matcher.close)
    if matcher.synth_note and not quiet:
        click.echo(f"note: {matcher.synth_note}", err=True)
    profile = matcher.parameter_set.profile.name
    destination = out if out is not None else preset_location(preset_dir, synth=profile).folder
    sender = None
    if push_midi:
        from .daemon.midi import CCSender

        sender = CCSender.open(push_midi, virtual=False)  # a one-shot command: send to an existing port
    reports, failures = [], []
    for path in tqdm(files, desc="matching", unit="file", disable=quiet or len(files) < 2 or not sys.stderr.isatty()):
        try:
            report = match_file(matcher, path, destination, name=name, preview=preview,
                                refine_seconds=refine_seconds, seed=seed, max_seconds=max_seconds,
                                candidates=candidates, score=score)
        except DeepDivaError as exc:
            if len(files) == 1:
                raise
            failures.append({"source": str(path), "error": str(exc)})
            click.echo(f"error: {printable(str(exc))}", err=True)
            continue
        if sender is not None:
            sender.send(matcher.parameter_set, report.match.params)
        reports.append(report.as_dict(matcher))
        if not as_json and not quiet:
            held = report.match.note_length
            heard = (f"the chord {report.match.chord.describe()}" if report.match.chord is not None
                     else report.match.pitch.describe())
            keys = report.match.keys()
            click.echo(f"{printable(path.name)}: {heard}; play the preset at {keys[0]}"
                       + (f" as the chord {' '.join(keys)}" if len(keys) > 1 else "")
                       + (f" (compared as played: let go after {held:.2f} s)" if held is not None else "")
                       + (f" (let go at {report.match.let_go_at:.2f} s, after the {matcher.seconds:g} s compared:"
                          f" the preset releases as the take did, {report.match.release:.2f} s)"
                          if report.match.release is not None and report.match.let_go_at is not None else "")
                       + (f"; {report.restored} clipped samples restored" if report.restored else "")
                       + (f"; raised {report.raised_db:.0f} dB, a quiet take" if report.raised_db >= 0.5 else "")
                       + (f"; compared through the take's hiss at {report.hiss_dbfs:.0f} dBFS"
                          if report.hiss_dbfs is not None else ""))
            for preset, distance, wav in [(report.preset, report.match.distance, report.preview)] + [
                    (a.preset, a.distance, a.preview) for a in report.alternatives]:
                details = ([f"distance {distance:.4f}"] if distance is not None else []) + (
                    [f"preview {printable(wav.name)}"] if wav else [])
                click.echo(printable(str(preset)) + (f"  ({', '.join(details)})" if details else ""))
    if as_json:  # names the OS allows but UTF-8 does not are shown escaped (caf\xe9.wav), as in text
        payload = reports[0] if len(files) == 1 else {"results": reports, "failures": failures}
        click.echo(json.dumps(printable_data(payload), indent=2))
    elif reports and not quiet:
        click.echo(preset_format(profile).hint, err=True)
    if failures:
        ctx.exit(2)


# --------------------------------------------------------------------------- evaluate

@cli.command("evaluate")
@click.argument("model_path", metavar="MODEL.onnx", type=click.Path(dir_okay=False))
@click.argument("dataset_path", metavar="DATASET", type=click.Path(exists=True))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for report.json and plots (default: ./MODEL-eval/ in the current folder, "
                   "e.g. ./deepdiva-medium33-eval/).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N clips.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random-patch baseline.")
@click.option("--update-card", is_flag=True, help="Store the results in the model card's metrics.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--plugin-path", "--vst-path", "plugin_path", type=click.Path(), default=None,
              help="The dataset's plugin on this machine (default: the path its manifest records).")
def evaluate_cmd(model_path: str, dataset_path: str, out: str | None, limit: int | None, seed: int,
                 update_card: bool, as_json: bool, plugin_path: str | None) -> None:
    """Per-parameter MAE and re-rendered spectral distances vs base-preset and random baselines.

    Answers are re-rendered as the dataset was (its renderer, plugin and settings); a dataset of
    another synth than the model card names is refused."""
    import json
    from pathlib import Path

    from .core.model_runtime import OnnxModel
    from .training.dataset import Dataset
    from .training.evaluate import (
        default_report_dir,
        evaluate,
        format_table,
        update_card_metrics,
        write_outputs,
    )

    model = OnnxModel.load(model_path)
    ds = Dataset.open(dataset_path)
    report, examples = evaluate(model, ds, limit=limit, seed=seed, plugin_path=plugin_path)
    folder = Path(out) if out else default_report_dir(model_path)
    report["files"] = [str(p) for p in write_outputs(report, examples, folder, ds.spec.render.sample_rate)]
    if update_card:
        update_card_metrics(model, report)
    click.echo(json.dumps(report, indent=2) if as_json else format_table(report) + f"\nreport: {folder}")


# --------------------------------------------------------------------------- dataset

@cli.group()
def dataset() -> None:
    """Generate and inspect datasets of random patches."""


@dataset.command("generate")
@click.option("--data-path", default="./data/", show_default=True, type=click.Path(file_okay=False),
              help="Folder that holds datasets.")
@click.option("--folder-name", default="dataset", show_default=True, help="Dataset folder name.")
@click.option("--synth", "renderer", type=click.Choice(RENDERER_KINDS), default="builtin",
              show_default=True, help="Renderer: the embedded synth, a VST via DawDreamer, or RenderMan.")
@click.option("--plugin-path", "--vst-path", type=click.Path(), default=None, help="VST plugin (vst, renderman).")
@click.option("--profile", default="diva", show_default=True, help="Synth profile.")
@click.option("--base-preset", default=None, type=click.Path(dir_okay=False),
              help="Preset whose values fix the parameters that do not vary (vst, renderman).")
@click.option("--random-parameters", default="medium33", show_default=True,
              help="Parameters to randomise: a set name or ids like '86 131 148 149'.")
@click.option("--save-audio/--no-save-audio", default=False, show_default=True, help="Also write .wav files.")
@render_settings_options
@click.option("--sample-size", type=int, required=True, help="Patches per batch (shard).")
@click.option("--file-prefix", default="", help="Prefix for manifest and shards (e.g. 'train_').")
@click.option("--nr-data-batches", default=1, show_default=True, help="Number of batches (shards).")
@click.option("--nr-batch-completed", default=0, show_default=True,
              help="Skip the first N batches (they are made elsewhere); finished shards are skipped anyway.")
@click.option("--workers", default=1, show_default=True, help="Local worker processes.")
@click.option("--seed", default=0, show_default=True, help="Random seed: same seed, same dataset.")
@click.option("--drop-silent/--keep-silent", default=False, show_default=True,
              help="Regenerate patches that render silence (below -60 dBFS).")
@click.option("--ray-address", default=None, help="Run batches on this Ray cluster ('local' starts one).")
@click.option("--pitch-range", nargs=2, type=click.IntRange(0, 127), default=(36, 84), show_default=True,
              metavar="LOW HIGH", help="Play each patch at a key drawn from LOW..HIGH; --midi-pitch N keeps one note.")
@click.option("--prior", type=click.Choice(PATCH_PRIORS), default="uniform", show_default=True,
              help="How patches are drawn: uniform; mixed (a quarter with few modulations and common "
                   "intervals, as musicians play); instrumental (half musical and with an instrument's "
                   "amp envelope, plucked or held).")
@click.option("--augment/--no-augment", default=False, show_default=True,
              help="Play notes slightly out of tune and released early, add room, noise, EQ, gain and late starts.")
@click.option("--nominal-level/--rendered-level", default=False, show_default=True,
              help="Raise each note peaking under -18 dBFS to it, as deepdiva match raises a quiet take, so a "
                   "network trained on it sees what a match shows it.")
@click.option("--feature", "features", type=click.Choice(FEATURE_NAMES), multiple=True,
              help="Compute this feature while rendering (repeat for several); with --no-audio only they are kept.")
@click.option("--audio/--no-audio", "keep_audio", default=True, show_default=True,
              help="Keep the audio in the shards (--no-audio needs --feature; 353 KB a patch saved).")
@click.pass_context
def dataset_generate(ctx: click.Context, data_path: str, folder_name: str, workers: int,
                     nr_batch_completed: int, ray_address: str | None, **kw) -> None:
    """Render random patches into a resumable, sharded dataset."""
    from pathlib import Path

    from click.core import ParameterSource

    from .training.augment import AugmentConfig
    from .training.dataset import DatasetSpec, generate

    one_note = ctx.get_parameter_source("midi_note_pitch") == ParameterSource.COMMANDLINE
    settings = _render_settings(kw)
    spec = DatasetSpec(profile=kw["profile"], parameter_set=kw["random_parameters"], renderer=kw["renderer"],
                       plugin_path=kw["plugin_path"], base_preset=kw["base_preset"], render=settings,
                       sample_size=kw["sample_size"], n_shards=kw["nr_data_batches"], seed=kw["seed"],
                       file_prefix=kw["file_prefix"], save_audio=kw["save_audio"],
                       drop_silent=kw["drop_silent"], pitch_range=None if one_note else kw["pitch_range"],
                       augment=AugmentConfig().to_dict() if kw["augment"] else None,
                       features=tuple(dict.fromkeys(kw["features"])), keep_audio=kw["keep_audio"],
                       prior=kw["prior"], nominal_level=kw["nominal_level"])
    spec.resolve_set()
    folder = Path(data_path) / folder_name
    quiet = ctx.obj["quiet"]
    with _progress(spec.n_shards - nr_batch_completed, f"rendering {folder}", quiet) as bar:
        ds = generate(folder, spec, workers=workers, first_shard=nr_batch_completed, ray_address=ray_address,
                      progress=lambda r: bar.update(1))
    silent = sum(s["silent"] for s in ds.shards)
    if not quiet:
        click.echo(f"{folder}: {len(ds)} patches of {spec.resolve_set().describe()} in {len(ds.shards)} "
                   f"shards, {silent} silent")


@dataset.command("inspect")
@click.argument("path", type=click.Path(exists=True))
@click.option("--plots/--no-plots", default=True, show_default=True, help="Write PNG plots.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for plots (default: DATASET/inspect).")
@click.option("--examples", default=4, show_default=True, help="Random clips to plot.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def dataset_inspect(path: str, plots: bool, out: str | None, examples: int, as_json: bool) -> None:
    """Summarise a dataset: counts, parameter histograms, loudness, silent share; plots."""
    import json
    from pathlib import Path

    from .training.dataset import Dataset
    from .training.inspect import format_summary, plot_dataset, summarise

    ds = Dataset.open(path)
    summary = summarise(ds)
    if plots:
        summary["plots"] = [str(p) for p in plot_dataset(ds, Path(out) if out else ds.folder / "inspect",
                                                         examples=examples)]
    click.echo(json.dumps(summary, indent=2) if as_json else format_summary(summary))


# --------------------------------------------------------------------------- render

@cli.command("render")
@click.argument("preset", type=click.Path(dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="Output .wav file.")
@click.option("--synth", "renderer", type=click.Choice(RENDERER_KINDS), default="builtin",
              show_default=True)
@click.option("--plugin-path", "--vst-path", type=click.Path(), default=None, help="VST plugin (vst, renderman).")
@click.option("--set", "set_name", default=None,
              help="Parameter set the preset's values go through (default: Diva medium33, amsynth large); every "
                   "value of the file is played either way.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists (default: pick a new name).")
@render_settings_options
@click.pass_context
def render_cmd(ctx: click.Context, preset: str, out: str, renderer: str, plugin_path: str | None,
               set_name: str | None, overwrite: bool, **kw) -> None:
    """Render a preset to a wav file: a Diva .h2p (builtin synth, or Diva itself with --synth vst
    --plugin-path), or an amsynth .bank / .amSynthPreset (--synth vst --plugin-path amsynth_vst.so)."""
    from pathlib import Path

    from .presets.render import render_preset_to_wav

    written = render_preset_to_wav(preset, Path(out), renderer=renderer, plugin_path=plugin_path,
                                   set_name=set_name, settings=_render_settings(kw), overwrite=overwrite)
    if not ctx.obj["quiet"]:
        click.echo(str(written))


# --------------------------------------------------------------------------- preset

@cli.group("preset")
def preset_group() -> None:
    """Show, compare and write u-he Diva .h2p presets (FILE may be 'base': the shipped base)."""


@preset_group.command("show")
@click.argument("file")
@click.option("--set", "set_spec", default=None, help="Parameter set or ids ('medium33', '33 34 35'); "
              "default: every parameter with a place in the preset.")
@click.option("--json", "as_json", is_flag=True, help="Print meta and parameters as JSON.")
def preset_show(file: str, set_spec: str | None, as_json: bool) -> None:
    """Print a preset's parameter values: native, normalised and range."""
    from .presets.diva import show_text

    click.echo(show_text(file, set_spec, as_json=as_json))


@preset_group.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--set", "set_spec", default=None, help="Parameter set or ids; default: all.")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
def preset_diff(a: str, b: str, set_spec: str | None, as_json: bool) -> None:
    """Print the parameters (and meta) that differ between presets A and B."""
    from .presets.diva import diff_text

    click.echo(diff_text(a, b, set_spec, as_json=as_json))


@preset_group.command("write")
@click.option("--base", default="base", show_default=True, help="Preset to start from ('base': shipped).")
@click.option("--set", "set_spec", default="medium33", show_default=True, help="Parameter set of --params.")
@click.option("--params", required=True,
              help='JSON object {name, SECTION:Key or id: normalised value in [0, 1]}, or @file.json.')
@click.option("-o", "--out", default=None, help="Output .h2p file or folder (default: Diva's "
              "UserPresets/Diva/deepdiva folder, or --preset-dir).")
@click.option("--preset-dir", default=None, type=click.Path(file_okay=False),
              help="Folder for presets when -o is not given.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists (default: pick a new name).")
@click.pass_context
def preset_write(ctx: click.Context, base: str, set_spec: str, params: str, out: str | None,
                 preset_dir: str | None, overwrite: bool) -> None:
    """Write a preset: BASE with the --params values changed. Prints the path written."""
    from .presets.diva import RESCAN_HINT, write_from_json
    from .presets.folders import preset_location

    target = out if out is not None else preset_location(preset_dir, create=False).folder
    written = write_from_json(params, target, base=base, set_spec=set_spec, overwrite=overwrite)
    click.echo(str(written))
    if not ctx.obj["quiet"]:
        click.echo(RESCAN_HINT, err=True)


@preset_group.command("folder")
@click.option("--preset-dir", default=None, type=click.Path(file_okay=False), help="Use this folder.")
def preset_folder(preset_dir: str | None) -> None:
    """Print the folder deepdiva writes presets into (creating it)."""
    from .presets.folders import preset_location

    click.echo(str(preset_location(preset_dir).folder))  # warns when Diva was not found


# --------------------------------------------------------------------------- features, train, export

@cli.command("features")
@click.argument("dataset_path", metavar="DATASET", type=click.Path(exists=True))
@click.option("--feature", "feature_names", type=click.Choice(FEATURE_NAMES), multiple=True,
              required=True, help="Feature to cache (repeat for several).")
@click.option("--workers", default=1, show_default=True, help="Local worker processes.")
@click.option("--overwrite", is_flag=True, help="Recompute shards that are already cached.")
@click.option("--validation-split", default=0.1, show_default=True,
              help="Held-out share; the MFCC scaler is fitted on the other rows (use the training value).")
@click.option("--seed", default=0, show_default=True, help="Split seed (use the training value).")
@click.pass_context
def features_cmd(ctx: click.Context, dataset_path: str, feature_names: tuple[str, ...], workers: int,
                 overwrite: bool, validation_split: float, seed: int) -> None:
    """Cache features in every shard of DATASET (resumable); fit the MFCC scaler."""
    from .training.dataset import Dataset
    from .training.features_cache import cache_features

    ds = Dataset.open(dataset_path)
    quiet = ctx.obj["quiet"]
    for name in dict.fromkeys(feature_names):
        with _progress(len(ds.shards), f"{name} features", quiet) as bar:
            report = cache_features(ds, name, workers=workers, overwrite=overwrite,
                                    validation_split=validation_split, seed=seed, progress=bar.update)
        if not quiet:
            extra = f", scaler {report.scaler}" if report.scaler else ""
            click.echo(f"{ds.folder}: {name} {report.shape} cached in {report.done} shards, "
                       f"{report.skipped} already done{extra}")


@cli.command("train")
@click.argument("dataset_path", metavar="[DATASET]", required=False, type=click.Path(exists=True))
@click.option("--model", type=click.Choice(MODEL_NAMES), default="cnn", show_default=True,
              help="Architecture (cnn: seed CNN on mel, lstm: seed BiLSTM on mfcc, cnn2: CNN on mel_db, "
                   "cnn3: CNN on mel_db_pitch, the spectrogram with the detected note).")
@click.option("--feature", type=click.Choice(FEATURE_NAMES), default=None,
              help="Cached feature to train on (default: the model's).")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default="constant", show_default=True,
              help="Learning rate: constant, or a cosine decay to 5 % over the epochs.")
@click.option("--loss-weights", type=click.Choice(["equal", "sensitivity"]), default="equal", show_default=True,
              help="cnn2/cnn3: count each parameter's error equally, or by how much it changes the sound "
                   "(measured on random renders when training starts).")
@click.option("--epoch-size", type=click.IntRange(min=1), default=None,
              help="Patches per epoch (default: all): checkpoints and validation this often on big datasets.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--epochs", default=None, type=int, help="Total epochs (default 10; with --resume: the run's).")
@click.option("--save-freq", default=5, show_default=True, help="Epochs between kept checkpoints.")
@click.option("--optimizer", default="adam", show_default=True, help="A keras.optimizers name.")
@click.option("--learning-rate", default=None, type=float, help="Learning rate (default: the optimizer's).")
@click.option("--loss", type=click.Choice(["rmse", "mse", "mae"]), default="rmse", show_default=True,
              help="Loss on the parameters (cnn2 uses RMSE + cross-entropy heads).")
@click.option("--validation-split", default=0.1, show_default=True, help="Held-out share of the patches.")
@click.option("--seed", default=0, show_default=True, help="Seed of the split, shuffling and weights.")
@click.option("--patience", default=None, type=int, help="Stop after N epochs without a better val_loss.")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--name", default=None, help="Run folder name (default: <model>-<date>-<time>).")
@click.option("--init-from", default=None, type=click.Path(exists=True),
              help="Start from this run's trained weights where the layers match (e.g. cnn3 -> cnn3h: "
                   "its trunk, and its heads copied into every hypothesis), or from a shipped model "
                   "(NAME.onnx with its card, e.g. models/deepdiva-medium33.onnx): rebuilt as Keras.")
@click.option("--diversify", default=0.0, show_default=True, type=float, metavar="LOGITS",
              help="With --init-from, a model with several answers: push every answer but the first apart "
                   "by this spread of its output biases, so the answers learn different shapes of sound.")
@click.option("--sound-proxy", default=None, type=click.Path(exists=True, dir_okay=False),
              help="A model with several answers: pull each answer toward the true patch's sound too, "
                   "through this sound proxy (deepdiva sound-proxy makes it from the same dataset).")
@click.option("--sound-weight", default=None, type=click.FloatRange(min=0, min_open=True),
              help="With --sound-proxy: how much the proxy's sound distance counts beside the parameter error "
                   "(default 5: training.sound_proxy.SOUND_WEIGHT).")
@click.option("--level-weight", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="With --sound-proxy: how much the difference of the proxy's mean level of an answer and the "
                   "true patch's counts, so answers far quieter than the truth cost (0: only the level-centred shape).")
@click.option("--resume", "resume_run", default=None, type=click.Path(exists=True, file_okay=False),
              help="Continue this run folder from its last checkpoint.")
@click.option("--quiet", "local_quiet", is_flag=True, help="No per-epoch log.")
@click.pass_context
def train_cmd(ctx: click.Context, dataset_path: str | None, resume_run: str | None, local_quiet: bool,
              epochs: int | None, **kw) -> None:
    """Train a model on the cached features of DATASET; writes a run folder."""
    from .core.errors import ModelError
    from .training.train import TrainConfig, resume, train

    say = None if (local_quiet or ctx.obj["quiet"]) else click.echo
    if resume_run:
        result = resume(resume_run, epochs=epochs, say=say)
    elif dataset_path is None:
        raise ModelError("give a DATASET to train on, or --resume RUN")
    else:
        if kw.get("sound_weight") is None:  # TrainConfig's default
            kw.pop("sound_weight", None)
        result = train(TrainConfig(dataset=dataset_path, epochs=epochs or 10, **kw), say=say)
    click.echo(str(result.run_dir))


@cli.command("sound-proxy")
@click.argument("dataset_path", metavar="DATASET", type=click.Path(exists=True))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="Output NAME.keras.")
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(min=1))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1),
              help="Processes rendering the clean summaries.")
@click.option("--seed", default=0, show_default=True)
@click.pass_context
def sound_proxy_cmd(ctx: click.Context, dataset_path: str, out: str, epochs: int, workers: int, seed: int) -> None:
    """Fit a sound proxy on DATASET for `deepdiva train --sound-proxy`: a small network that tells
    from a patch and a key what its render sounds like (training.sound_proxy). The clean
    summaries it learns are rendered once per shard and kept beside the shard (resumable)."""
    import json

    from .training.sound_proxy import fit_proxy

    say = None if ctx.obj["quiet"] else click.echo
    click.echo(json.dumps(fit_proxy(dataset_path, out, epochs, workers, seed, say=say), indent=2))


@cli.command("export")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False),
              help="Output models/NAME.onnx; NAME.json (the model card) is written beside it.")
@click.option("--overwrite", is_flag=True, help="Replace existing NAME.onnx / NAME.json.")
@click.option("--opset", default=17, show_default=True, help="ONNX opset (>= 15).")
@click.option("--tolerance", default=1e-4, show_default=True,
              help="Max abs Keras-vs-onnxruntime difference accepted.")
@click.option("--decode", type=click.Choice(["argmax", "median"]), default=None,
              help="How a discrete parameter is read from its softmax (cnn2, cnn3): the most likely step "
                   "(as trained) or the median step (least expected error where the audio cannot tell).")
@click.pass_context
def export_cmd(ctx: click.Context, run: str, out: str, overwrite: bool, opset: int, tolerance: float,
               decode: str | None) -> None:
    """Export RUN's best model to ONNX with a model card, after a parity check."""
    from .training.export import export_run

    say = None if ctx.obj["quiet"] else click.echo
    onnx_path, card_path = export_run(run, out, overwrite=overwrite, opset=opset, tolerance=tolerance, say=say,
                                      decode=decode)
    click.echo(f"{onnx_path}\n{card_path}")


@cli.command("refit-confidence")
@click.argument("model_path", metavar="MODEL.onnx", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False),
              help="Output NAME.onnx (may be MODEL.onnx itself); NAME.json is written beside it.")
@click.option("--targets", default=24000, show_default=True, type=click.IntRange(min=100),
              help="Fresh renders scored (a fifth of them held out for the card's figures).")
@click.option("--seed", default=5, show_default=True, help="Seed of the renders (not the training data's).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--cache", type=click.Path(file_okay=False), default=None,
              help="Keep each scored shard here; a rerun with the same seed continues from them.")
@click.option("--recordings", "recordings", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="A folder of recordings (audio files, searched recursively) to fit to beside the renders, "
                   "e.g. the kind of sounds you match; repeatable.")
@click.option("--recordings-share", default=0.3, show_default=True, type=click.FloatRange(0.0, 0.9),
              help="Their share of the fit's weight.")
def refit_confidence_cmd(model_path: str, out: str, targets: int, seed: int, workers: int, cache: str | None,
                         recordings: tuple[str, ...], recordings_share: float) -> None:
    """Fit a several-answer model's confidence again, to pick the answer that sounds closest.

    Every answer is rendered for fresh targets (and any --recordings) as `deepdiva match
    --no-score` finishes it and compared with the target; only the confidence layer changes
    (training.confidence)."""
    import json
    from pathlib import Path

    from .presets.match_job import AUDIO_SUFFIXES
    from .training.confidence import refit

    files = sorted(p for folder in recordings for p in Path(folder).rglob("*")
                   if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if recordings and not files:
        raise click.UsageError(f"no audio files in {', '.join(recordings)}")
    note = refit(model_path, out, targets, seed, workers, Path(cache) if cache else None,
                 recordings=files or None, recordings_share=recordings_share)
    click.echo(json.dumps(note, indent=2))


# --------------------------------------------------------------------------- build-model

@cli.command("build-model")
@click.option("--synth", "renderer", type=click.Choice(RENDERER_KINDS), default="builtin", show_default=True,
              help="Synth to learn: the embedded one, a VST via DawDreamer, or RenderMan.")
@click.option("--plugin-path", "--vst-path", type=click.Path(), default=None,
              help="The plugin (vst, renderman); with --ray-address it must be at this path on every node "
                   "and on this machine (loss weights and evaluation render here).")
@click.option("--profile", default="diva", show_default=True, help="Synth profile (diva, amsynth).")
@click.option("--set", "parameter_set", default="medium33", show_default=True,
              help="Parameters the model predicts: a set name or ids.")
@click.option("--samples", type=click.IntRange(min=1), default=240_000, show_default=True,
              help="Training patches (rounded up to whole shards).")
@click.option("--shard-size", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Patches per dataset shard (the unit a killed build keeps).")
@click.option("--eval-samples", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Patches in each of the two held-out sets (random keys; one note).")
@click.option("--pitch-range", nargs=2, type=click.IntRange(0, 127), default=(36, 84), show_default=True,
              metavar="LOW HIGH", help="Keys the patches are played at.")
@click.option("--prior", type=click.Choice(PATCH_PRIORS), default="mixed", show_default=True,
              help="How training patches are drawn (see dataset generate).")
@click.option("--augment/--no-augment", default=True, show_default=True,
              help="Detune, early release, room, noise, EQ... on part of the training patches.")
@click.option("--feature", type=click.Choice(FEATURE_NAMES), default="mel_db_pitch", show_default=True,
              help="Feature computed while rendering and trained on (cnn2: mel_db, lstm: mfcc).")
@click.option("--model", type=click.Choice(MODEL_NAMES), default="cnn3", show_default=True, help="Architecture.")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--epoch-size", type=click.IntRange(min=1), default=40_000, show_default=True,
              help="Patches per epoch (a checkpoint each).")
@click.option("--loss-weights", type=click.Choice(["equal", "sensitivity"]), default="sensitivity",
              show_default=True, help="Count each parameter's error by how much it changes the sound "
                                      "(measured on 160 random patches when training starts), or equally.")
@click.option("--seed", default=0, show_default=True,
              help="Seed of training; the datasets use SEED+3 (training), SEED+1001 and SEED+1002 (held out).")
@click.option("--name", default=None, help="Model file name (default: <profile>-<set>).")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Build folder (default: ./build-<profile>-<set>); rerun with the same settings to continue.")
@click.option("--workers", default=1, show_default=True, help="Local rendering processes.")
@click.option("--ray-address", default=None,
              help="Render the datasets on this Ray cluster (its nodes need the plugin; 'local' starts one).")
@click.option("--restart", is_flag=True, help="Discard what this build folder holds and build again.")
@click.option("--quiet", "local_quiet", is_flag=True, help="No progress lines; only where the model is.")
@click.pass_context
def build_model_cmd(ctx: click.Context, out: str | None, workers: int, ray_address: str | None, restart: bool,
                    local_quiet: bool, name: str | None, **settings) -> None:
    """Build a model in one command: held-out data, training data, training, ONNX export, evaluation.

    Each stage is resumable: run the same command again after a crash or kill and it continues.
    """
    from .training.build import BuildConfig, build_model, default_name

    cfg = BuildConfig(name=name or "", **settings)
    folder = out or f"build-{default_name(cfg.profile, cfg.parameter_set)}"
    quiet = local_quiet or ctx.obj["quiet"]
    build = build_model(folder, cfg, workers=workers, ray_address=ray_address, restart=restart,
                        say=None if quiet else lambda text: click.echo(text, err=True))
    click.echo("\n".join(build.usage()))


# --------------------------------------------------------------------------- serve, config (the daemon)

def _daemon_setting_options(f):
    """One ``deepdiva serve`` flag per daemon setting (``daemon/config.py`` SETTINGS), default: unset."""
    from .daemon.config import SETTINGS

    types = {"int": int, "port": int, "float": float}
    for s in reversed(SETTINGS):
        kw: dict = {"default": None, "help": f"{s.help} [{s.key}]"}
        if s.kind == "paths":
            kw.update(multiple=True, default=(), type=click.Path(file_okay=False))
        elif s.kind == "choice":
            kw["type"] = click.Choice([c for c in s.choices if c])  # "" (automatic) is the flag left out
        elif s.kind != "bool":
            kw["type"] = types.get(s.kind, str)
        f = click.option(s.flag, s.attr, **kw)(f)
    return f


@cli.command("serve")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="Config file (default: the one 'deepdiva config path' prints, if it exists).")
@click.option("--dry-run", is_flag=True,
              help="No model: validate each input and write the base preset (to test drop folder, OSC, MIDI).")
@_daemon_setting_options
@click.pass_context
def serve_cmd(ctx: click.Context, config_file: str | None, dry_run: bool, **flags) -> None:
    """Run the daemon (drop folder, OSC over UDP and TCP, recording, MIDI CC) until Ctrl-C or SIGTERM."""
    from .daemon.config import load_config, overrides_from_flags
    from .daemon.service import Service

    config = load_config(config_file, overrides_from_flags(flags))
    Service(config, dry_run=dry_run, say=None if ctx.obj["quiet"] else click.echo).run()


@cli.group("config")
def config_group() -> None:
    """The daemon's settings file (TOML): create, show, locate."""


@config_group.command("path")
def config_path_cmd() -> None:
    """Print where the settings file is read from."""
    from .daemon.config import default_config_path

    click.echo(str(default_config_path()))


@config_group.command("init")
@click.option("--path", "path", type=click.Path(dir_okay=False), default=None,
              help="Write here instead of the default location.")
@click.option("--force", is_flag=True, help="Replace an existing file with the defaults.")
def config_init_cmd(path: str | None, force: bool) -> None:
    """Write a settings file with every key, its default and what it does."""
    from .daemon.config import write_default_config

    click.echo(str(write_default_config(path, force=force)))


@config_group.command("show")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="Settings file (default: the usual one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config_show_cmd(config_file: str | None, as_json: bool) -> None:
    """Print the effective settings (file + defaults), after validation."""
    from .daemon.config import load_config, show_config

    click.echo(show_config(load_config(config_file), as_json=as_json))


# --------------------------------------------------------------------------- audio (recording inputs)

@cli.group("audio")
def audio_group() -> None:
    """Audio inputs the daemon can record from (/deepdiva/record, audio.input_device)."""


@audio_group.command("inputs")
@click.option("--json", "as_json", is_flag=True, help="Print the devices as a JSON list.")
def audio_inputs_cmd(as_json: bool) -> None:
    """List the audio input devices: index, name, channels, default rate; * marks the default.

    Set audio.input_device (or deepdiva serve --input-device) to an index or a name.
    """
    import dataclasses
    import json

    from .daemon.recorder import format_inputs, list_input_devices

    devices = list_input_devices()
    click.echo(json.dumps([dataclasses.asdict(d) for d in devices], indent=2) if as_json
               else format_inputs(devices))


# --------------------------------------------------------------------------- midi (CC map, learn helper)

@cli.group("midi")
def midi_group() -> None:
    """MIDI CC output: list ports, print the learn sheet, MIDI-learn the CCs in Diva."""


@midi_group.command("ports")
@click.option("--api", default=None, help="Only this MIDI API (alsa, jack, coremidi, winmm).")
def midi_ports_cmd(api: str | None) -> None:
    """List the MIDI output ports of each MIDI API on this machine."""
    from .daemon.midi import output_ports

    for name, ports in output_ports(api).items():
        click.echo(f"{name}:")
        for port in [ports] if isinstance(ports, str) else (ports or ["(no ports)"]):
            click.echo(f"  {port}")


@midi_group.command("sheet")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="Write the sheet to FILE (atomically) instead of printing it.")
@click.option("--format", "fmt", type=click.Choice(["csv", "md"]), default=None,
              help="csv or md (Markdown); default: md for a .md FILE, else csv.")
@click.option("--cc-map", "cc_map", type=click.Path(dir_okay=False), default=None,
              help="TOML file whose [cc] table overrides the profile's CCs.")
def midi_sheet_cmd(out: str | None, fmt: str | None, cc_map: str | None) -> None:
    """The learn sheet: which CC drives which Diva control (see daemon/LEARN.md)."""
    from .daemon.ccmap import learn_sheet, load_cc_map, write_learn_sheet

    mapping = load_cc_map("diva", cc_map)
    if out:
        click.echo(str(write_learn_sheet(mapping, out, fmt)))
    else:
        click.echo(learn_sheet(mapping, fmt or "csv"), nl=False)


@midi_group.command("learn")
@click.option("--port", default=None, help="Port name (default: a virtual port 'deepdiva').")
@click.option("--existing", is_flag=True, help="Open an existing port (e.g. loopMIDI) instead of a virtual one.")
@click.option("--delay", type=click.FloatRange(min=0), default=None,
              help="Seconds to wait before sending each CC (default: wait for Enter).")
@click.option("--mode", type=click.Choice(["7bit", "14bit"]), default="7bit", show_default=True,
              help="14bit sends MSB + LSB for CCs 0-31: learn in the mode the daemon will use.")
@click.option("--channel", type=click.IntRange(1, 16), default=1, show_default=True, help="MIDI channel.")
@click.option("--cc-map", "cc_map", type=click.Path(dir_okay=False), default=None,
              help="TOML file whose [cc] table overrides the profile's CCs.")
@click.option("--only", multiple=True, metavar="PARAM", help="Only this parameter (e.g. VCF1:Freq); repeatable.")
@click.option("--api", default=None, help="MIDI API (alsa, jack, coremidi, winmm); default: the system's.")
def midi_learn_cmd(port: str | None, existing: bool, delay: float | None, mode: str, channel: int,
                   cc_map: str | None, only: tuple[str, ...], api: str | None) -> None:
    """Send one CC at a time so you can MIDI-learn each control in Diva."""
    import time

    from .daemon.ccmap import load_cc_map
    from .daemon.midi import CCSender, learn_steps, run_learn

    mapping = load_cc_map("diva", cc_map)
    steps = learn_steps(mapping, mode, only)

    def before(step) -> bool:
        click.echo(f"{step.describe()}\n    in Diva: right-click {step.assignment.control} > MIDI Learn")
        if delay is None:
            return click.prompt("    then press Enter (q to stop)", default="", show_default=False) != "q"
        time.sleep(delay)
        return True

    with CCSender.open(port, virtual=not existing, mode=mode, channel=channel, cc_map=mapping, api=api) as sender:
        click.echo(f"sending on MIDI port {sender.target!r}, channel {channel}: route it to Diva in your host")
        done = run_learn(sender, steps, before)
    click.echo(f"sent {done} of {len(steps)} CCs")
