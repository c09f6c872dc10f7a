"""The Ray pool: one :class:`~vcl_fast.search.workers.Worker` per Ray actor (``pip install "vcl_fast[ray]"``).

Each actor holds one embedder (its extractor) and one searcher (index + localizer). On a cluster with GPUs
every actor reserves one GPU (``num_gpus=1``) and its embedder runs there; otherwise every actor reserves
one CPU. Calls are spread over the actors with ``ray.util.ActorPool`` and their results come back in call
order, so the driver code is the one the single-machine path runs (identical outputs; see
docs/distributed.md for running it on a cluster). Actors read their inputs by PATH: videos, feature files
and the index directory must be readable at the same path on every node (shared storage, or a copy).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Iterator

from vcl_fast.search.workers import Worker


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """address: the cluster to join (``"auto"``, ``"ray://head:10001"``, ``"head:6379"``); None joins the
    cluster ``ray start`` made on this machine, or starts a local one. num_workers: actors; 0 = one per GPU
    of the cluster, or one per CPU when it has none."""

    address: str | None = None
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")


def _ray():
    try:
        import ray
    except ImportError:
        raise ImportError('the distributed path needs Ray: pip install "vcl_fast[ray]"') from None
    return ray


class RayWorkers:
    """A pool of Worker actors on a Ray cluster (joined, or started locally, on creation)."""

    def __init__(self, options: RayOptions = RayOptions(), **worker_kwargs: Any):
        ray = _ray()
        from ray.util import ActorPool

        if not ray.is_initialized():
            ray.init(address=options.address, include_dashboard=False, log_to_driver=False)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        count = options.num_workers or gpus or max(1, int(resources.get("CPU", 1)))
        remote = ray.remote(num_gpus=1)(Worker) if gpus else ray.remote(num_cpus=1)(Worker)
        self.actors = [remote.remote(**worker_kwargs) for _ in range(count)]
        self._pool = ActorPool(self.actors)

    def map(self, method: str, calls: Iterable[tuple]) -> Iterator[Any]:
        return self._pool.map(lambda actor, call: getattr(actor, method).remote(*call), list(calls))

    def close(self) -> None:
        ray = _ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []

    def __enter__(self) -> "RayWorkers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
