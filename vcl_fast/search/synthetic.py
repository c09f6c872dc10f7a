"""Synthetic reference libraries and queries with planted copies, for tests and search benchmarks.

A video is a random walk on the unit sphere per token: ``x[t + 1] = normalize(x[t] + step * g / sqrt(D))``
with ``g ~ N(0, I)``, so neighbouring frames are similar (cosine ~ 1 / sqrt(1 + step^2), 0.89 at the
default 0.5) and unrelated videos are not (cosine ~ N(0, 1 / D)), like frame features of real videos.
Video ``i`` of a library depends only on ``(seed, i)``, so the library of 100 videos is the first 100 of
the library of 10,000. A planted query is a fresh random walk in which one segment is replaced by a
segment of a library video plus noise (``normalize(x + noise * g / sqrt(D))``: cosine ~ 0.8 to the source
at the default 0.75), with the ground-truth box in seconds (1 fps). :class:`SyntheticEmbedder` feeds the
library to ``build_index`` like any embedder.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator, Mapping

import numpy as np

from vcl_fast.data.features import VideoFeatures


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def random_walk(rng: np.random.Generator, num_frames: int, tokens: int = 2, dim: int = 256,
                step: float = 0.5) -> np.ndarray:
    """``(num_frames, tokens, dim)`` float32 unit vectors, one random walk per token."""
    steps = rng.standard_normal((num_frames, tokens, dim)) * (step / np.sqrt(dim))
    steps[0] = rng.standard_normal((tokens, dim))
    walk = np.empty_like(steps)
    current = _unit(steps[0])
    for t in range(num_frames):
        current = current if t == 0 else _unit(current + steps[t])
        walk[t] = current
    return walk.astype(np.float32)


def library_video(index: int, seed: int = 0, min_frames: int = 30, max_frames: int = 300, tokens: int = 2,
                  dim: int = 256, dtype=np.float16) -> VideoFeatures:
    """Video ``index`` of the synthetic library ``seed``: ``ref{index:06d}``, 1 fps, length uniform in
    ``[min_frames, max_frames]``."""
    rng = np.random.default_rng([seed, index])
    length = int(rng.integers(min_frames, max_frames + 1))
    return VideoFeatures.from_fps(f"ref{index:06d}", random_walk(rng, length, tokens, dim).astype(dtype))


def library_videos(count: int, seed: int = 0, **video_kwargs) -> Iterator[VideoFeatures]:
    """Videos ``0 .. count - 1`` of the synthetic library (streamed)."""
    return (library_video(i, seed, **video_kwargs) for i in range(count))


@dataclasses.dataclass(frozen=True)
class PlantedQuery:
    """A query with one copied segment of ``reference_id``; ``box``: ``[q_start, r_start, q_end, r_end]`` s."""

    query: VideoFeatures
    reference_id: str
    box: tuple[float, float, float, float]


def planted_query(index: int, reference: VideoFeatures, seed: int = 0, min_frames: int = 30,
                  max_frames: int = 300, min_copy: int = 10, noise: float = 0.75) -> PlantedQuery:
    """Query ``query{index:06d}``: a random walk with a noisy copy of a random segment of ``reference``
    (at least ``min_copy`` frames, at most the shorter video) pasted at a random place."""
    rng = np.random.default_rng([seed, index, 1])
    length = int(rng.integers(min_frames, max_frames + 1))
    source = reference.features.astype(np.float32)
    copy = int(rng.integers(min(min_copy, len(source), length), min(len(source), length) + 1))
    r_start = int(rng.integers(0, len(source) - copy + 1))
    q_start = int(rng.integers(0, length - copy + 1))
    features = random_walk(rng, length, reference.num_tokens, reference.dim)
    pasted = source[r_start:r_start + copy] + rng.standard_normal(source[:copy].shape) * (noise / np.sqrt(reference.dim))
    features[q_start:q_start + copy] = _unit(pasted)
    query = VideoFeatures.from_fps(f"query{index:06d}", features.astype(reference.features.dtype))
    return PlantedQuery(query, reference.video_id, (float(q_start), float(r_start), float(q_start + copy),
                                                    float(r_start + copy)))


def planted_queries(count: int, library: Mapping[str, VideoFeatures] | Mapping, num_references: int,
                    seed: int = 0, **query_kwargs) -> list[PlantedQuery]:
    """``count`` planted queries copying from library videos ``ref000000 .. ref{num_references - 1}``
    (``library[video_id]`` gives their features: a dict, a FeatureStore or a ReferenceLibrary)."""
    rng = np.random.default_rng([seed, 2])
    picks = rng.integers(0, num_references, size=count)
    return [planted_query(i, library[f"ref{int(p):06d}"], seed, **query_kwargs) for i, p in enumerate(picks)]


@dataclasses.dataclass(frozen=True)
class SyntheticEmbedder:
    """Embedder of the synthetic library (benchmarks): the "path" of video ``i`` is ``str(i)``."""

    seed: int = 0
    min_frames: int = 30
    max_frames: int = 300

    def __call__(self, path: str) -> VideoFeatures:
        return library_video(int(path), self.seed, self.min_frames, self.max_frames)

    def describe(self) -> dict:
        return {"kind": "synthetic", **dataclasses.asdict(self)}

    def load(self) -> None:
        """Nothing to load."""

    def sources(self, count: int) -> list:
        """The library's first ``count`` videos as VideoSources."""
        from vcl_fast.search.library import VideoSource

        return [VideoSource(f"ref{i:06d}", str(i)) for i in range(count)]
