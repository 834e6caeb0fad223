"""The README's two set-up commands, in order, in one venv: ``pip install .`` and a first match,
then ``pip install -e .`` (scripts/test.sh) and ``deepdiva --version``.

Nothing the first install writes at run time may outlive its ``pip uninstall``: a numba cache
left in ``site-packages/deepdiva/core/__pycache__`` made ``deepdiva`` a namespace package that
shadowed the editable install (``ImportError: cannot import name '__version__'``).

To stay cheap and offline, the temp venv sees this interpreter's site-packages through a
``.pth`` file and deepdiva is installed with ``--no-deps --no-build-isolation`` from a copy of
the sources (so no build files land in the working tree).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "deepdiva", "core", "presets", "training", "daemon", "models")
EXAMPLE = Path("examples") / "sounds" / "brighton-builtin.wav"


def run(cmd: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def copy_sources(target: Path) -> None:
    target.mkdir()
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    (target / EXAMPLE.parent).mkdir(parents=True)
    shutil.copy2(REPO / EXAMPLE, target / EXAMPLE)


@pytest.mark.slow
def test_readme_install_then_editable_install(tmp_path):
    src, venv, home = tmp_path / "src", tmp_path / "venv", tmp_path / "home"
    copy_sources(src)
    env = {key: value for key, value in os.environ.items()
           if key not in ("NUMBA_CACHE_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    for kind in ("CACHE", "DATA", "CONFIG", "STATE"):
        env[f"XDG_{kind}_HOME"] = str(home / kind.lower())

    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env).strip())
    (site / "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-index", "--no-deps",
           "--no-build-isolation"]

    # README, first command: pip install . and a match (renders with the builtin synth).
    run([*pip, "."], src, env)
    run([venv / "bin" / "deepdiva", "match", EXAMPLE, "--refine", "2", "--out", tmp_path / "presets"], src, env)
    assert list((tmp_path / "presets").glob("*.h2p"))
    installed = site / "deepdiva"
    assert not [p for p in installed.rglob("*") if p.suffix in (".nbi", ".nbc")], "numba cached into the package"

    # README, second command: scripts/test.sh installs editable over it.
    run([*pip, "-e", "."], src, env)
    assert "0.1.0" in run([venv / "bin" / "deepdiva", "--version"], tmp_path, env)
    assert "0.1.0" in run([python, "-m", "deepdiva", "--version"], tmp_path, env)
