"""amsynth renders per second through DawDreamer (2 s notes), side by side in one run.

Columns: deepdiva's ``vst`` renderer (flush + settle + note, deterministic), a bare DawDreamer
loop (set parameters, render one note: what a naive host does, history-dependent), and the
ratio between them; plus the realtime factor and the process's memory growth over the run.
The two are measured alternately ``--repeats`` times and the medians reported, so load from
other processes hits both alike.

    .venv/bin/python benchmarks/render_vst.py [--plugin /usr/lib/vst/amsynth_vst.so] [--n 200]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
from amsynth_plugin import add_plugin_option, require_plugin  # benchmarks/ is the script's folder

from deepdiva.core.profile import load_profile
from deepdiva.core.render import RenderSettings
from deepdiva.core.vst_renderer import VstRenderer


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_renderer(renderer: VstRenderer, patches: np.ndarray, batch: int) -> float:
    """Renders per second, rendering ``batch`` patches per call."""
    renderer.render(patches[:1])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(patches), batch):
        renderer.render(patches[i:i + batch])
    return len(patches) / (time.perf_counter() - start)


def bench_bare(renderer: VstRenderer, patches: np.ndarray, settings: RenderSettings) -> float:
    """The same plugin and patches with a plain DawDreamer loop: set parameters, render one note."""
    import dawdreamer as daw

    engine = daw.RenderEngine(settings.sample_rate, 512)
    synth = engine.make_plugin_processor("bare", str(renderer.plugin_path))
    engine.load_graph([(synth, [])])
    synth.add_midi_note(settings.midi_pitch, settings.velocity, 0.0, settings.note_length)
    values = renderer.patches.values(renderer.parameter_set.from_normalised(patches))
    indices = renderer.patches.indices.tolist()
    start = time.perf_counter()
    for row in values.tolist():
        for index, value in zip(indices, row, strict=True):
            synth.set_parameter(index, value)
        engine.render(settings.render_length)
        engine.get_audio().mean(axis=0)
    return len(patches) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_plugin_option(parser)
    parser.add_argument("--set", default="medium", help="amsynth parameter set to randomise")
    parser.add_argument("--n", type=int, default=200, help="patches to render")
    parser.add_argument("--batch", type=int, default=32, help="patches per render() call")
    parser.add_argument("--repeats", type=int, default=3, help="alternating measurements (median)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    require_plugin(args.plugin)
    settings = RenderSettings()  # 2 s note, 2 s render, 44.1 kHz
    pset = load_profile("amsynth").parameter_set(args.set)
    patches = np.random.default_rng(0).random((args.n, len(pset))).astype(np.float32)
    with VstRenderer(pset, settings, plugin_path=args.plugin) as renderer:
        rss = _rss_mb()
        runs = [(bench_renderer(renderer, patches, args.batch), bench_bare(renderer, patches, settings))
                for _ in range(max(1, args.repeats))]
        grown = _rss_mb() - rss
        ours, bare = (float(np.median(column)) for column in zip(*runs, strict=True))
    result = {
        "plugin": args.plugin, "set": pset.describe(), "patches": args.n, "note_s": settings.note_length,
        "render_s": settings.render_length, "vst_renders_per_s": round(ours, 1),
        "bare_dawdreamer_renders_per_s": round(bare, 1), "vst_over_bare": round(ours / bare, 2),
        "vst_realtime_factor": round(ours * settings.render_length, 1), "max_rss_growth_mb": round(grown, 1),
        "settle_s": renderer.settle, "tail_s": renderer.tail,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['set']}, {args.n} random patches, {settings.render_length:g} s notes at "
          f"{settings.sample_rate} Hz (settle {renderer.settle:g} s, tail {renderer.tail:g} s)")
    print(f"  vst renderer (deterministic)  {ours:8.1f} renders/s   {ours * settings.render_length:6.0f}x realtime")
    print(f"  bare DawDreamer loop          {bare:8.1f} renders/s")
    print(f"  vst / bare                    {ours / bare:8.2f}")
    print(f"  max RSS growth over the run   {grown:8.1f} MB")


if __name__ == "__main__":
    main()
