"""Search a reference library: frame kNN -> candidate videos by voting -> batched localization -> matches.

``Searcher(index_dir).search(query)`` takes one query's :class:`VideoFeatures` and returns a
:class:`SearchResult`: the ``top_k`` candidate references (by votes, :mod:`vcl_fast.search.retrieval`) and
the copied segments found in them by the pair localizer (one call for all candidates; default
:class:`~vcl_fast.search.localize.MapLocalizer`), ranked by score. Times are in seconds. Each query is
searched on its own (one faiss call per query), so a result never depends on which other queries share a
batch or a worker.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from vcl_fast.data.boxes import PairBoxes
from vcl_fast.data.features import VideoFeatures
from vcl_fast.search import frame_index
from vcl_fast.search.library import ReferenceLibrary
from vcl_fast.search.localize import MapLocalizer, PairLocalizer
from vcl_fast.search.retrieval import vote


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """top_k: candidate references localized per query; neighbours: kNN per query token; min_similarity:
    neighbours at or below it do not vote; nprobe: IVF lists scanned per query token (0 = the index's)."""

    top_k: int = 10
    neighbours: int = 10
    min_similarity: float = 0.0
    nprobe: int = 0

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.neighbours < 1 or self.nprobe < 0:
            raise ValueError(f"top_k and neighbours must be >= 1 and nprobe >= 0, got {self.top_k}, "
                             f"{self.neighbours}, {self.nprobe}")
        if not -1.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"min_similarity must lie in [-1, 1], got {self.min_similarity}")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A reference video retrieved for a query: votes (sum of per-query-frame best similarities) and the
    number of query frames that voted for it."""

    reference_id: str
    votes: float
    frames: int


@dataclasses.dataclass(frozen=True)
class Match:
    """A copied segment, in seconds: query ``[query_start, query_end)`` ~ reference ``[reference_start,
    reference_end)``, with the localizer's score."""

    reference_id: str
    query_start: float
    query_end: float
    reference_start: float
    reference_end: float
    score: float


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """One query's candidates (ranked by votes) and matches (ranked by score, ties by candidate rank)."""

    query_id: str
    candidates: tuple[Candidate, ...]
    matches: tuple[Match, ...]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def pair_boxes(results: Sequence[SearchResult]) -> PairBoxes:
    """Matches as ``{(query_id, reference_id): (N, 5) [q_start, r_start, q_end, r_end, score]}`` (seconds)."""
    grouped: dict[tuple[str, str], list[list[float]]] = {}
    for result in results:
        for m in result.matches:
            grouped.setdefault((result.query_id, m.reference_id), []).append(
                [m.query_start, m.reference_start, m.query_end, m.reference_end, m.score])
    return {pair: np.asarray(rows, dtype=np.float64) for pair, rows in grouped.items()}


class Searcher:
    """Search one reference library (an index directory or an opened :class:`ReferenceLibrary`)."""

    def __init__(self, library: ReferenceLibrary | str | os.PathLike, localizer: PairLocalizer | None = None,
                 settings: SearchSettings = SearchSettings()):
        self.library = library if isinstance(library, ReferenceLibrary) else ReferenceLibrary(library)
        self.index = self.library.load_index()
        self.localizer = localizer if localizer is not None else MapLocalizer()
        self.settings = settings

    def _check(self, query: VideoFeatures) -> None:
        if not isinstance(query, VideoFeatures):
            raise TypeError(f"a query must be VideoFeatures, got {type(query).__name__}")
        if query.dim != self.library.dim:
            raise ValueError(f"query {query.video_id} has {query.dim}-d features, the library "
                             f"{self.library.root} holds {self.library.dim}-d ones; embed it with the same model")

    def retrieve(self, query: VideoFeatures) -> tuple[Candidate, ...]:
        """The ``top_k`` candidate references of ``query`` by frame-kNN voting."""
        self._check(query)
        if not query.num_frames:
            return ()
        s = self.settings
        sims, ids = frame_index.search(self.index, frame_index.unit_rows(query.features), s.neighbours,
                                       s.nprobe or None)
        videos, votes, frames = vote(sims, ids, query.num_tokens, self.library.frame_offsets,
                                     self.library.num_tokens, s.min_similarity)
        return tuple(Candidate(self.library.video_ids[v], float(n), int(f))
                     for v, n, f in zip(videos[:s.top_k], votes[:s.top_k], frames[:s.top_k]))

    def localize(self, query: VideoFeatures, reference_ids: Sequence[str]) -> list[np.ndarray]:
        """Copied segments of ``query`` in each listed reference: ``(N, 5)`` float64 seconds per reference."""
        self._check(query)
        references = [self.library[reference_id] for reference_id in reference_ids]
        if not query.num_frames:
            return [np.zeros((0, 5)) for _ in references]
        return [np.asarray(b, dtype=np.float64).reshape(-1, 5) for b in self.localizer(query, references)]

    def search(self, query: VideoFeatures) -> SearchResult:
        """Retrieve candidates, localize the copies in all of them in one batch, rank the matches by score."""
        return self.localize_candidates(query, self.retrieve(query))

    def localize_candidates(self, query: VideoFeatures, candidates: Sequence[Candidate]) -> SearchResult:
        """The search result of ``query`` given its ``candidates`` (the localization half of :meth:`search`)."""
        boxes = self.localize(query, [c.reference_id for c in candidates])
        found = [(-float(box[4]), rank, i, Match(c.reference_id, *map(float, box[[0, 2, 1, 3, 4]])))
                 for rank, (c, array) in enumerate(zip(candidates, boxes)) for i, box in enumerate(array)]
        return SearchResult(query.video_id, tuple(candidates),
                            tuple(item[-1] for item in sorted(found, key=lambda x: x[:3])))
