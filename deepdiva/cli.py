"""The ``deepdiva`` command: one click group; each subcommand calls into the packages."""

from __future__ import annotations

import logging
import sys

import click

from . import __version__
from .core.errors import DeepDivaError


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
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet


def main() -> None:
    cli(prog_name="deepdiva")


# --------------------------------------------------------------------------- shared options

def render_settings_options(f):
    """The original project's note options, shared by every command that renders."""
    options = [
        click.option("--sample-rate", default=44100, show_default=True, help="Sample rate for rendering."),
        click.option("--midi-note-pitch", default=48, show_default=True, help="MIDI note (C3 is 48)."),
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


# --------------------------------------------------------------------------- dataset

@cli.group()
def dataset() -> None:
    """Generate and inspect datasets of random patches."""


@dataset.command("generate")
@click.option("--data-path", default="./data/", show_default=True, type=click.Path(file_okay=False),
              help="Folder that holds datasets.")
@click.option("--folder-name", default="dataset", show_default=True, help="Dataset folder name.")
@click.option("--synth", "renderer", type=click.Choice(["builtin", "vst", "renderman"]), default="builtin",
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
@click.pass_context
def dataset_generate(ctx: click.Context, data_path: str, folder_name: str, workers: int,
                     nr_batch_completed: int, ray_address: str | None, **kw) -> None:
    """Render random patches into a resumable, sharded dataset."""
    from pathlib import Path

    from .training.dataset import DatasetSpec, generate

    settings = _render_settings(kw)
    spec = DatasetSpec(profile=kw["profile"], parameter_set=kw["random_parameters"], renderer=kw["renderer"],
                       plugin_path=kw["plugin_path"], base_preset=kw["base_preset"], render=settings,
                       sample_size=kw["sample_size"], n_shards=kw["nr_data_batches"], seed=kw["seed"],
                       file_prefix=kw["file_prefix"], save_audio=kw["save_audio"],
                       drop_silent=kw["drop_silent"])
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
@click.option("--synth", "renderer", type=click.Choice(["builtin", "vst", "renderman"]), default="builtin",
              show_default=True)
@click.option("--plugin-path", "--vst-path", type=click.Path(), default=None, help="VST plugin (vst, renderman).")
@click.option("--set", "set_name", default="medium33", show_default=True,
              help="Parameters taken from the preset (others stay at the base preset).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists (default: pick a new name).")
@render_settings_options
@click.pass_context
def render_cmd(ctx: click.Context, preset: str, out: str, renderer: str, plugin_path: str | None,
               set_name: str, overwrite: bool, **kw) -> None:
    """Render a Diva preset (.h2p) to a wav file."""
    from pathlib import Path

    from .presets.render import render_preset_to_wav

    written = render_preset_to_wav(preset, Path(out), renderer=renderer, plugin_path=plugin_path,
                                   set_name=set_name, settings=_render_settings(kw), overwrite=overwrite)
    if not ctx.obj["quiet"]:
        click.echo(str(written))
