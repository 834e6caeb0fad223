"""Dataset inspection: counts, parameter histograms, loudness, silent share, and PNG plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.atomic import write_atomic
from .dataset import SILENCE_PEAK, Dataset

HIST_BINS = 10


def _loudness_db(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(peak dBFS, RMS dBFS) per clip, floored at -120 dB."""
    peak = np.max(np.abs(audio), axis=1)
    rms = np.sqrt(np.mean(np.square(audio, dtype=np.float64), axis=1))
    return 20 * np.log10(np.maximum(peak, 1e-6)), 20 * np.log10(np.maximum(rms, 1e-6))


def summarise(ds: Dataset) -> dict:
    """A JSON-able summary of a dataset, computed shard by shard (memory stays flat)."""
    pset = ds.parameter_set
    counts = np.zeros((len(pset), HIST_BINS), dtype=np.int64)
    peaks, rmss = [], []
    notes, heard = [], []
    for shard in ds.shards:
        params = np.asarray(ds.load_shard(shard, "params"))
        for j in range(params.shape[1]):
            counts[j] += np.histogram(params[:, j], bins=HIST_BINS, range=(0.0, 1.0))[0]
        notes.append(ds.played_notes(shard))
        if (ds.shard_dir(shard) / "pitch.npy").exists():
            heard.append(np.asarray(ds.load_shard(shard, "pitch")))
        if (ds.shard_dir(shard) / "audio.npy").exists():  # datasets made with --no-audio keep features only
            peak, rms = _loudness_db(np.asarray(ds.load_shard(shard, "audio")))
            peaks.append(peak)
            rmss.append(rms)
    peak = np.concatenate(peaks) if peaks else np.zeros(0)
    rms = np.concatenate(rmss) if rmss else np.zeros(0)
    silent = int(np.sum(peak < 20 * np.log10(SILENCE_PEAK)))

    def pct(x: np.ndarray) -> dict:
        if x.size == 0:
            return {}
        return {f"p{q}": round(float(np.percentile(x, q)), 2) for q in (5, 50, 95)}

    played = np.concatenate(notes) if notes else np.zeros(0)
    pitched = np.concatenate(heard) if heard else None
    return {
        "path": str(ds.folder),
        "notes": {"low": float(played.min()), "high": float(played.max()), "distinct": int(np.unique(np.rint(played)).size),
                  "pitched_share": None if pitched is None else round(float(np.isfinite(pitched).mean()), 4)}
        if played.size else {},
        "profile": ds.spec.profile,
        "parameter_set": pset.describe(),
        "renderer": ds.spec.renderer,
        "shards": f"{len(ds.shards)}/{ds.spec.n_shards}",
        "patches": len(ds),
        "silent": silent,
        "silent_share": round(silent / max(len(ds), 1), 4),
        "peak_dbfs": pct(peak),
        "rms_dbfs": pct(rms),
        "parameter_histograms": {
            (p.location or p.name): counts[j].tolist() for j, p in enumerate(pset.parameters)
        },
    }


def format_summary(summary: dict) -> str:
    lines = [
        f"dataset   {summary['path']}",
        f"synth     {summary['renderer']}  {summary['parameter_set']}",
        f"shards    {summary['shards']}   patches {summary['patches']}",
        f"notes     {summary['notes']}",
        f"silent    {summary['silent']} ({100 * summary['silent_share']:.1f} %, peak below -60 dBFS)",
        f"peak dBFS {summary['peak_dbfs']}",
        f"RMS dBFS  {summary['rms_dbfs']}",
        "parameter histograms (10 bins over [0, 1]):",
    ]
    width = max((len(k) for k in summary["parameter_histograms"]), default=0)
    for name, counts in summary["parameter_histograms"].items():
        top = max(max(counts), 1)
        bars = "".join(" ▁▂▃▄▅▆▇█"[int(round(8 * c / top))] for c in counts)
        lines.append(f"  {name:<{width}} {bars}")
    lines += [f"plot      {p}" for p in summary.get("plots", [])]
    return "\n".join(lines)


def _save(fig, path: Path) -> Path:
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    return path


def plot_dataset(ds: Dataset, out: Path, examples: int = 4, seed: int = 0) -> list[Path]:
    """Parameter histograms, random waveforms and their mel spectrograms as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..core.features import FeatureConfig
    from .plots import spectrogram_panel

    out.mkdir(parents=True, exist_ok=True)
    params = ds.load_all("params")
    pset = ds.parameter_set
    written = []

    cols = 6
    rows = int(np.ceil(len(pset) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 1.6 * rows), squeeze=False)
    for ax, j in zip(axes.flat, range(len(pset)), strict=False):
        ax.hist(params[:, j], bins=20, range=(0, 1), color="tab:blue")
        ax.set_title(pset.parameters[j].location or pset.parameters[j].name, fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(pset):]:
        ax.axis("off")
    fig.tight_layout()
    written.append(_save(fig, out / "parameter_histograms.png"))
    plt.close(fig)

    if not all((ds.shard_dir(s) / "audio.npy").exists() for s in ds.shards):
        return written  # features only: no audio to show
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(len(ds), size=min(examples, len(ds)), replace=False))
    clips = _take_rows(ds, picks)
    sr = ds.spec.render.sample_rate
    cfg = FeatureConfig(sample_rate=sr, fmax=min(FeatureConfig.fmax, sr / 2))
    fig, axes = plt.subplots(len(picks), 2, figsize=(10, 2.2 * len(picks)), squeeze=False, layout="constrained")
    image = None
    for row, (i, clip) in enumerate(zip(picks, clips, strict=True)):
        t = np.arange(clip.size) / sr
        axes[row, 0].plot(t, clip, lw=0.4)
        axes[row, 0].set_title(f"patch {i}: waveform", fontsize=8)
        axes[row, 0].set_ylim(-1, 1)
        axes[row, 0].set_xlabel("time (s)", fontsize=8)
        image = spectrogram_panel(axes[row, 1], clip, cfg)
        axes[row, 1].set_title(f"patch {i}: mel spectrogram", fontsize=8)
    assert image is not None, "no panels drawn"
    fig.colorbar(image, ax=axes[:, 1], label="dB re full scale")
    written.append(_save(fig, out / "examples.png"))
    plt.close(fig)
    return written


def _take_rows(ds: Dataset, rows: np.ndarray) -> np.ndarray:
    """Audio rows by global index, reading only the shards that hold them."""
    out, start = [], 0
    for shard in ds.shards:
        stop = start + shard["n"]
        local = rows[(rows >= start) & (rows < stop)] - start
        if local.size:
            out.append(np.asarray(ds.load_shard(shard, "audio")[local]))
        start = stop
    return np.concatenate(out, axis=0)
