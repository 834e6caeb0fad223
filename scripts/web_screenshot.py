"""Remake the README's picture of the web page: a daemon with the shipped model matches one sound
uploaded through the page in headless Chromium, and the result view is saved as a PNG.

    .venv/bin/python scripts/web_screenshot.py SOUND.wav [-o docs/web-page.png] [--refine 2] [--candidates 3]

Needs Debian's chromium and the test extra's playwright (``bash scripts/test.sh`` installs both).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from deepdiva.daemon.config import build_config
from deepdiva.daemon.service import Service

ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sound", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/web-page.png"))
    parser.add_argument("--refine", type=float, default=2.0)
    parser.add_argument("--candidates", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="deepdiva-shot-"))
    config = build_config({}, {"osc.enabled": False, "midi.enabled": False, "drop.enabled": False, "web.port": 0,
                               "presets.folder": str(root / "presets"), "queue.journal": str(root / "journal"),
                               "model.refine_seconds": args.refine, "model.candidates": args.candidates})
    service = Service(config).start()
    try:
        assert service.web is not None
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 980})
            page.goto(service.web.url())
            page.set_input_files("[data-testid=file-input]", str(args.sound))
            page.locator("[data-testid=result][data-id]").wait_for(timeout=120_000)
            page.wait_for_function("""() => { const i = document.querySelector('[data-testid=spectrogram]');
                                              return i && i.complete && i.naturalWidth > 300; }""", timeout=60_000)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            browser.close()
    finally:
        service.stop()
    from PIL import Image  # matplotlib's dependency: 192 colours make the picture ~3x smaller

    Image.open(args.out).convert("RGB").quantize(192, method=Image.Quantize.MEDIANCUT,
                                                 dither=Image.Dither.NONE).save(args.out, optimize=True)
    print(args.out)


if __name__ == "__main__":
    main()
