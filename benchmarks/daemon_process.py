"""Shared by the daemon benchmarks: a ``deepdiva serve`` in its own process, its memory, a test tone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 44100

# The daemon runs in its own process, as it does for users: the client's work does not compete
# with it for the GIL, and its memory is its own.
DAEMON = r"""
import json, sys
from deepdiva.daemon.config import build_config
from deepdiva.daemon.service import Service, dry_run_match, matcher_match

args = json.loads(sys.argv[1])
listening = args["config"].get("web.enabled", True)  # the page keeps each target, as `deepdiva serve` does
if args["model"]:
    from deepdiva.core.matcher import Matcher
    match = matcher_match(Matcher.load(args["model"]), 0.0, preview=args["preview"], keep_target=listening)
else:
    match = dry_run_match(keep_target=listening)
Service(build_config({}, args["config"]), match=match).run(
    on_ready=lambda s: print(json.dumps(s.describe()), flush=True))
"""


def start_daemon(config: dict, model: Path | None, preview: bool) -> tuple[subprocess.Popen, dict]:
    payload = json.dumps({"config": config, "model": str(model) if model else None, "preview": preview})
    proc = subprocess.Popen([sys.executable, "-c", DAEMON, payload], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"the daemon did not start (exit code {proc.wait()})")
    return proc, json.loads(line)


def rss_mb(pid: int) -> float | None:
    """Resident set size of process ``pid`` (Linux /proc, else psutil if installed)."""
    statm = Path(f"/proc/{pid}/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        return None


def tone(path: Path, seconds: float = 2.0, freq: float = 220.0) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    saw = 2 * ((freq * t) % 1.0) - 1
    sf.write(path, (0.5 * saw * np.exp(-1.5 * t)).astype(np.float32), SR)
    return path


