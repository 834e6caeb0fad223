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
