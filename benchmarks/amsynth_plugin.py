"""Where the benchmarks find Debian's amsynth VST (``DEEPDIVA_AMSYNTH_VST`` overrides it), and
the ``--plugin`` option of those that take another plugin."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

AMSYNTH = Path(os.environ.get("DEEPDIVA_AMSYNTH_VST", "/usr/lib/vst/amsynth_vst.so"))


def add_plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", default=str(AMSYNTH), help=f"the amsynth VST (default {AMSYNTH})")


def require_plugin(path: str | Path) -> None:
    if not Path(path).exists():
        raise SystemExit(f"no plugin at {path}: apt-get install amsynth, or pass --plugin")
