"""Spectrogram pictures for people: labelled axes (seconds, Hz) and one dB colour scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.features import FeatureConfig, hz_to_mel, mel_db, mel_to_hz


def plot_examples(examples: dict, sample_rate: int, path: Path, cfg: FeatureConfig | None = None) -> None:
    """Target beside prediction, one row per example: mel spectrograms with time in seconds and
    frequency in Hz, one dB colour scale shared by every panel, each titled with its note and
    distance."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cfg = cfg or FeatureConfig(sample_rate=sample_rate)
    n = len(examples["target"])
    fig = Figure(figsize=(11, 2.6 * n + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 2, squeeze=False)
    image = None
    for row in range(n):
        pitch = examples["pitch"][row]
        for col, key in enumerate(("target", "model")):
            image = spectrogram_panel(axes[row, col], examples[key][row], cfg)
            what = f"target, {pitch.describe()}" if key == "target" else \
                f"prediction, MR-STFT {examples['distance'][row]:.3f}"
            axes[row, col].set_title(f"example {row + 1}: {what}", fontsize=9)
    assert image is not None, "no panels drawn"
    fig.colorbar(image, ax=axes, label="dB re full scale", shrink=0.9)
    fig.savefig(path, format="png", dpi=90)


DIFFERENCE_DB = 30.0  # the difference panel's colour scale: +-this many dB


def spectrogram_panel(ax, audio: np.ndarray, cfg: FeatureConfig):
    """A mel spectrogram (dB re full scale, ``[db_floor, 0]``) on ``ax``: seconds across, Hz up."""
    return _panel(ax, _mel(audio, cfg), len(audio) / cfg.sample_rate, cfg)


def _mel(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    return mel_db(np.asarray(audio, dtype=np.float32)[None, :], cfg)[0]


def _panel(ax, spec: np.ndarray, seconds: float, cfg: FeatureConfig, difference: bool = False):
    """``spec`` (mel bands x frames, dB) on ``ax``; ``difference``: a +-``DIFFERENCE_DB`` diverging scale."""
    from matplotlib.ticker import FuncFormatter

    scale = dict(cmap="RdBu_r", vmin=-DIFFERENCE_DB, vmax=DIFFERENCE_DB) if difference else \
        dict(cmap="magma", vmin=cfg.db_floor, vmax=0.0)
    image = ax.imshow(spec, origin="lower", aspect="auto", extent=(0.0, seconds, 0, spec.shape[0]), **scale)
    centres = mel_to_hz(np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax), cfg.n_mels + 2))[1:-1]
    ticks = [hz for hz in (200, 500, 1000, 2000, 5000, 10000) if centres[0] <= hz <= centres[-1]]
    ax.set_yticks(np.interp(ticks, centres, np.arange(cfg.n_mels)) + 0.5)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, i: f"{ticks[i] / 1000:g}k" if ticks[i] >= 1000
                                               else f"{ticks[i]}"))
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("frequency (Hz)", fontsize=8)
    ax.tick_params(labelsize=7)
    return image


def comparison_png(target: np.ndarray, candidate: np.ndarray, sample_rate: int, titles: tuple[str, str],
                   cfg: FeatureConfig | None = None) -> bytes:
    """One wide PNG: target | candidate on one dB colour scale, then their difference (candidate
    minus target, dB), each panel with seconds across and Hz up."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cfg = cfg or FeatureConfig(sample_rate=sample_rate)
    n = max(len(target), len(candidate))
    a, b = (np.pad(np.asarray(x, dtype=np.float32), (0, n - len(x))) for x in (target, candidate))
    fig = Figure(figsize=(13, 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    seconds = n / cfg.sample_rate
    spec_a, spec_b = _mel(a, cfg), _mel(b, cfg)  # each once: the difference panel reuses them
    image = _panel(axes[0], spec_a, seconds, cfg)
    _panel(axes[1], spec_b, seconds, cfg)
    axes[0].set_title(titles[0], fontsize=9)
    axes[1].set_title(titles[1], fontsize=9)
    fig.colorbar(image, ax=axes[:2], label="dB re full scale", shrink=0.9, pad=0.01)
    diff = _panel(axes[2], spec_b - spec_a, seconds, cfg, difference=True)
    axes[2].set_title("difference (candidate - target)", fontsize=9)
    fig.colorbar(diff, ax=axes[2], label="dB", shrink=0.9, pad=0.01)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=80)
    return out.getvalue()
