"""Min/max feature scaling fitted on the training set, stored as JSON (no pickles).

The original project scaled its MFCC set with ``(x - min) / (max - min)`` where min and max
were taken over axis 0 of the ``(clips, frames, n_mfcc)`` array, i.e. every (frame, coefficient)
cell is scaled on its own; that is the default here. Like the original, values from new data
are not clipped (they may fall outside [0, 1]) unless ``clip=True``. Constant cells (max == min)
are divided by 1 instead of 0, so the training data maps to 0 there and nothing becomes NaN.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import DatasetError, ModelError

_FORMAT = "deepdiva.minmax_scaler"
_VERSION = 1


def _normalise_axis(axis: int | tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if not all(-ndim <= int(a) < ndim for a in axes):
        raise DatasetError(f"scaler axis {axis} does not exist for {ndim}-D features")
    return tuple(sorted({int(a) % ndim for a in axes}))


class MinMaxScaler:
    """Scale features to [0, 1] with per-cell minima and ranges learned by :meth:`fit`.

    Parameters
    ----------
    axis:
        Axis or axes reduced when fitting (``None`` = one global min/max). The default 0 gives
        one min/max per feature cell, as the original project did.
    clip:
        Clip transformed values to [0, 1] (the original project did not).
    """

    def __init__(self, axis: int | tuple[int, ...] | None = 0, clip: bool = False) -> None:
        self.axis = axis
        self.clip = bool(clip)
        self.min_: np.ndarray | None = None
        self.range_: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self.min_ is not None

    def fit(self, x: np.ndarray) -> MinMaxScaler:
        """Learn minima and ranges from training features ``x``; returns ``self``."""
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0:
            raise DatasetError("cannot fit a scaler on an empty feature array")
        if not np.isfinite(x).all():
            raise DatasetError("training features contain NaN or infinite values; regenerate them")
        axes = _normalise_axis(self.axis, x.ndim)
        lo = x.min(axis=axes, keepdims=True)
        span = x.max(axis=axes, keepdims=True) - lo
        self.min_ = lo
        self.range_ = np.where(span > 0, span, 1.0)
        return self

    def _params(self) -> tuple[np.ndarray, np.ndarray]:
        if self.min_ is None or self.range_ is None:
            raise ModelError("the feature scaler is not fitted; fit it on training features first")
        return self.min_, self.range_

    def _check_shape(self, x: np.ndarray) -> None:
        lo, _ = self._params()
        ok = x.ndim == lo.ndim and all(s == 1 or s == d for s, d in zip(lo.shape, x.shape, strict=True))
        if not ok:
            raise ModelError(f"features of shape {x.shape} do not fit a scaler fitted on shape "
                             f"{lo.shape} (1 = reduced axis); use the feature settings of the model")

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(x - min) / range`` as float32 (clipped to [0, 1] if ``clip``)."""
        x = np.asarray(x)
        self._check_shape(x)
        lo, span = self._params()
        y = (x.astype(np.float64) - lo) / span
        if self.clip:
            np.clip(y, 0.0, 1.0, out=y)
        return y.astype(np.float32)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform` (exact up to float32 rounding, unless values were clipped)."""
        y = np.asarray(y)
        self._check_shape(y)
        lo, span = self._params()
        return (y.astype(np.float64) * span + lo).astype(np.float32)

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict:
        """JSON-able dict; float64 values survive a JSON round trip exactly."""
        lo, span = self._params()
        axis = list(self.axis) if isinstance(self.axis, tuple) else self.axis
        return {"format": _FORMAT, "version": _VERSION, "axis": axis, "clip": self.clip,
                "shape": list(lo.shape), "min": lo.ravel().tolist(), "range": span.ravel().tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> MinMaxScaler:
        """Inverse of :meth:`to_dict`."""
        try:
            if data.get("format") != _FORMAT or data.get("version") != _VERSION:
                raise ModelError(f"not a {_FORMAT} v{_VERSION} document "
                                 f"(format={data.get('format')!r}, version={data.get('version')!r})")
            axis = data["axis"]
            scaler = cls(axis=tuple(axis) if isinstance(axis, list) else axis, clip=bool(data["clip"]))
            shape = tuple(int(s) for s in data["shape"])
            lo = np.asarray(data["min"], dtype=np.float64).reshape(shape)
            span = np.asarray(data["range"], dtype=np.float64).reshape(shape)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"malformed feature scaler data: {exc}") from exc
        if not (np.isfinite(lo).all() and np.isfinite(span).all() and (span > 0).all()):
            raise ModelError("feature scaler data has non-finite minima or non-positive ranges")
        scaler.min_, scaler.range_ = lo, span
        return scaler

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> MinMaxScaler:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"feature scaler file is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelError("feature scaler JSON must be an object")
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike) -> None:
        """Write JSON atomically (temp file + ``os.replace``)."""
        path = Path(path)
        text = self.to_json()
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike) -> MinMaxScaler:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelError(f"cannot read feature scaler {path}: {exc}") from exc
        return cls.from_json(text)

    def __repr__(self) -> str:
        shape = None if self.min_ is None else self.min_.shape
        return f"MinMaxScaler(axis={self.axis!r}, clip={self.clip}, fitted_shape={shape})"
