"""Run dataset shards on a Ray cluster (``pip install 'deepdiva[cluster]'``).

Tasks render and return arrays; the driver writes the shards, so the cluster needs no shared
file system. ``address="local"`` starts a throwaway local cluster (used by the tests).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from ..core.errors import DatasetError
from .dataset import DatasetSpec, ShardResult, _make_renderer, render_chunks, write_shard

_RENDERERS: dict[str, object] = {}


def _render_task(spec_dict: dict, index: int):
    spec = DatasetSpec.from_dict(spec_dict)
    key = repr(sorted(spec_dict.items()))
    renderer = _RENDERERS.get(key)
    if renderer is None:  # one renderer per Ray worker process and spec
        renderer = _RENDERERS[key] = _make_renderer(spec)
    return list(render_chunks(spec, renderer, index))  # type: ignore[arg-type]


def run_on_ray(address: str, folder: Path, spec: DatasetSpec, todo: Sequence[int]) -> Iterator[ShardResult]:
    """Render shards ``todo`` on the cluster at ``address``; yields results as shards land."""
    try:
        import ray
    except ImportError:
        raise DatasetError("Ray is not installed: pip install 'deepdiva[cluster]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=None if address == "local" else address, log_to_driver=False,
                     include_dashboard=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise DatasetError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from None
    try:
        task = ray.remote(_render_task)
        spec_dict = spec.to_dict()
        pending = {task.remote(spec_dict, i): i for i in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            yield write_shard(folder, index, ray.get(done[0]), spec.sample_size, spec.render.sample_rate,
                              spec.save_audio, spec.file_prefix)
    finally:
        if started_here:
            ray.shutdown()
