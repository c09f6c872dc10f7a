"""Workers that run the three stages (embed, encode, search/localize) and the in-process pool of one.

A :class:`Worker` holds one embedder and, once it searches, one :class:`~vcl_fast.search.searcher.Searcher`
(index + pair localizer). The single-machine path runs one in this process (:class:`LocalWorkers`); the
Ray path runs one per actor (:class:`vcl_fast.search.distributed.RayWorkers`). Both pools offer
``map(method, calls)``: the results of ``worker.method(*call)`` for each call, in call order, so the
driver code (shard writing, index merging, result collection) is the same on one machine and on a cluster.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from vcl_fast.data.features import FeatureStore, VideoFeatures
from vcl_fast.search import frame_index
from vcl_fast.search.library import VideoSource
from vcl_fast.search.searcher import Searcher, SearchResult, SearchSettings

READ_ERRORS = (ValueError, OSError)  # what an unreadable input raises (VideoDecodeError is a ValueError)


class Worker:
    """State and work of one worker. embedder: ``path -> VideoFeatures`` (see vcl_fast.search.embed);
    index_root: the index directory to search; localizer / settings: the Searcher's."""

    def __init__(self, embedder=None, index_root: str | os.PathLike | None = None, localizer=None,
                 settings: SearchSettings = SearchSettings()):
        self.embedder, self.index_root, self.localizer, self.settings = embedder, index_root, localizer, settings
        self._searcher: Searcher | None = None

    @property
    def searcher(self) -> Searcher:
        if self._searcher is None:
            if self.index_root is None:
                raise ValueError("this worker was started without an index directory to search")
            self._searcher = Searcher(self.index_root, self.localizer, self.settings)
        return self._searcher

    def embed_shard(self, sources: Sequence[VideoSource]) -> tuple[list[VideoFeatures], dict[str, str]]:
        """Features of ``sources`` (relabelled with their ids) and ``{video_id: reason}`` of unreadable ones."""
        if self.embedder is None:
            raise ValueError("this worker was started without an embedder")
        self.embedder.load()  # a model that cannot load is an error, not an unreadable video
        videos, failures = [], {}
        for source in sources:
            try:
                video = self.embedder(source.path)
            except READ_ERRORS as exc:
                failures[source.video_id] = str(exc)
                continue
            videos.append(dataclasses.replace(video, video_id=source.video_id))
        return videos, failures

    def encode_shard(self, empty_index: np.ndarray, shard_path: str) -> np.ndarray:
        """The serialised index of one shard's vectors (see ``frame_index.encode_shard``)."""
        return frame_index.encode_shard(empty_index, FeatureStore(shard_path))

    def search(self, queries: Sequence[VideoFeatures]) -> list[SearchResult]:
        return [self.searcher.search(query) for query in queries]

    def localize(self, jobs: Sequence[tuple[VideoFeatures, Sequence[str]]]) -> list[list[np.ndarray]]:
        """For each ``(query, reference_ids)``: boxes ``(N, 5)`` in seconds per listed reference."""
        return [self.searcher.localize(query, reference_ids) for query, reference_ids in jobs]


class LocalWorkers:
    """The single-machine pool: one :class:`Worker` in this process, calls run one after the other."""

    def __init__(self, **worker_kwargs: Any):
        self.worker: Worker | None = Worker(**worker_kwargs)

    def map(self, method: str, calls: Iterable[tuple]) -> Iterator[Any]:
        function = getattr(self.worker, method)
        return (function(*call) for call in calls)

    def close(self) -> None:
        self.worker = None

    def __enter__(self) -> "LocalWorkers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
