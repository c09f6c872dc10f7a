"""The search pipeline's stages on one machine or on Ray: build an index, embed queries, search, localize.

Every function takes ``ray``: None runs in this process (:class:`~vcl_fast.search.workers.LocalWorkers`),
a :class:`~vcl_fast.search.distributed.RayOptions` runs the same work on Ray actors, with identical results.

>>> embedder = LocalizerEmbedder(LocalizerSpec("exported_model_dir"))
>>> build_index("lib.index", list_videos("refs/"), embedder, preset="exact")
>>> results = search_queries("lib.index", embed_queries(list_videos("queries/"), embedder))
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from vcl_fast.data.features import VideoFeatures
from vcl_fast.search.distributed import RayOptions
from vcl_fast.search.frame_index import index_config
from vcl_fast.search.library import Manifest, VideoSource, update_index, write_shards
from vcl_fast.search.searcher import SearchResult, SearchSettings
from vcl_fast.search.workers import LocalWorkers

QUERIES_PER_CALL = 4  # queries sent to a worker at once


def open_workers(ray: RayOptions | None, **worker_kwargs: Any):
    """The pool the stages run on: LocalWorkers for ``ray=None``, else RayWorkers (a context manager)."""
    if ray is None:
        return LocalWorkers(**worker_kwargs)
    from vcl_fast.search.distributed import RayWorkers

    return RayWorkers(ray, **worker_kwargs)


def _chunks(items: Sequence, size: int) -> Iterator[tuple]:
    return ((list(items[start:start + size]),) for start in range(0, len(items), size))


def _flatten(parts: Iterable[list]) -> list:
    return [item for part in parts for item in part]


def build_index(root: str | os.PathLike, sources: Sequence[VideoSource], embedder, *, preset: str | None = None,
                overrides: Mapping[str, Any] | Iterable[str] | None = None, retrain: bool = False,
                shard_size: int = 64, ray: RayOptions | None = None,
                log: Callable[[str], None] = lambda message: None) -> Manifest:
    """Add ``sources`` to the library at ``root`` and bring its frame index up to date (resumable).

    embedder: ``path -> VideoFeatures`` with ``describe()`` (vcl_fast.search.embed); preset: exact, ivf or
    ivfpq with ``overrides`` of its fields (None keeps the library's index, exact for a new one). Videos
    that cannot be read are skipped and listed in the manifest's ``skipped``. Returns the manifest.
    """
    config = None if preset is None else index_config(preset, overrides)
    if preset is None and overrides:
        raise ValueError("index parameters need a preset (exact, ivf or ivfpq) to apply to")
    with open_workers(ray, embedder=embedder) as workers:
        write_shards(root, sources, embedder.describe(), workers.map, shard_size, log)
        return update_index(root, config, workers.map, retrain, log)


def embed_queries(sources: Sequence[VideoSource], embedder, *, ray: RayOptions | None = None,
                  log: Callable[[str], None] = lambda message: None) -> list[VideoFeatures]:
    """Features of the query videos, in order; ValueError naming the first unreadable one."""
    with open_workers(ray, embedder=embedder) as workers:
        results = list(workers.map("embed_shard", _chunks(sources, QUERIES_PER_CALL)))
    failures = {video_id: reason for _, failed in results for video_id, reason in failed.items()}
    if failures:
        video_id, reason = next(iter(failures.items()))
        raise ValueError(f"{len(failures)} queries could not be read, first {video_id}: {reason}")
    queries = _flatten(videos for videos, _ in results)
    log(f"embedded {len(queries)} queries")
    return queries


def search_queries(root: str | os.PathLike, queries: Sequence[VideoFeatures], *, localizer=None,
                   settings: SearchSettings = SearchSettings(), ray: RayOptions | None = None) -> list[SearchResult]:
    """Search every query in the library at ``root``; one :class:`SearchResult` per query, in order."""
    with open_workers(ray, index_root=root, localizer=localizer, settings=settings) as workers:
        return _flatten(workers.map("search", _chunks(queries, QUERIES_PER_CALL)))


def localize_pairs(root: str | os.PathLike, queries: Sequence[VideoFeatures], pairs: Sequence[tuple[str, str]], *,
                   localizer=None, ray: RayOptions | None = None) -> dict[tuple[str, str], np.ndarray]:
    """Copied segments of listed ``(query_id, reference_id)`` pairs (references from the library at ``root``):
    ``{pair: (N, 5) [q_start, r_start, q_end, r_end, score]}`` in seconds, every pair present, in pair order.
    Each query is localized against all its listed references in one batch."""
    by_id = {query.video_id: query for query in queries}
    missing = sorted({q for q, _ in pairs} - set(by_id))
    if missing:
        raise ValueError(f"{len(missing)} queries of the pair list have no features, first {missing[0]!r}")
    references: dict[str, list[str]] = {}
    for query_id, reference_id in pairs:
        references.setdefault(query_id, []).append(reference_id)
    jobs = [(by_id[query_id], reference_ids) for query_id, reference_ids in references.items()]
    with open_workers(ray, index_root=root, localizer=localizer) as workers:
        boxes = _flatten(workers.map("localize", _chunks(jobs, QUERIES_PER_CALL)))
    found = {(query.video_id, reference_id): b
             for (query, reference_ids), per_reference in zip(jobs, boxes)
             for reference_id, b in zip(reference_ids, per_reference)}
    return {pair: found[pair] for pair in pairs}
