"""Self-supervised copied video pairs: the paper's vanilla strategy plus Transitivity Propagation.

Every video is embedded once as it is; every inserted segment is augmented (one parameter draw for the
whole clip) and embedded once at its source frame rate; copy videos are then assembled at feature level by
indexing (temporal resampling = picking source frames at the segment's speed). Pairs:

- ``vanilla``: (copy video, source video), GT = where the segment sits in each;
- ``transitivity``: two copy videos sharing an overlapping source interval, GT = the intersection mapped
  through both time warps (the rest of both segments is high-similarity context, not GT). Two copy videos
  that also show frames of one video elsewhere (the same background, or one's background inserted into the
  other) are not paired: those frames would match outside the ground truth;
- ``negative``: (copy video, a video none of its segments came from), no GT.

Boxes are ``[q_start, r_start, q_end, r_end]`` in frames at the sampling rate of the input frames.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from vcl_fast.data.copy_timeline import CopyVideo, plan_copy_video, transitivity_boxes, transitivity_pairs, vanilla_boxes

# uint8 (N, H, W, 3) RGB frames -> float32 (N, T, D) frame features.
Embedder = Callable[[np.ndarray], np.ndarray]
# (rng, uint8 (N, H, W, 3) clip) -> edited clip of the same shape, parameters drawn once per clip.
ClipAugmenter = Callable[[np.random.Generator, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PairGenerationConfig:
    """How many copy videos to make and how (lengths in frames)."""

    num_copies: int = 100
    sources_per_copy: tuple[int, int] = (1, 3)
    segment_length: tuple[int, int] = (5, 30)
    speed_range: tuple[float, float] = (0.5, 2.0)
    negatives_per_copy: int = 1
    transitivity: bool = True
    max_transitivity_pairs: int | None = None  # None keeps every linked pair of the pool


@dataclass(frozen=True)
class GeneratedPair:
    """One training pair: ids into ``GeneratedSet.features`` and its GT boxes, float64 ``(N, 4)`` frames."""

    query_id: str
    reference_id: str
    kind: str  # "vanilla" | "transitivity" | "negative"
    boxes: np.ndarray


@dataclass
class GeneratedSet:
    """Features of original and copy videos (id -> float32 ``(L, T, D)``), the copy plans and the pairs."""

    features: dict[str, np.ndarray]
    copies: list[CopyVideo] = field(default_factory=list)
    pairs: list[GeneratedPair] = field(default_factory=list)


def _copy_features(copy: CopyVideo, base: dict[str, np.ndarray], clips: list[np.ndarray]) -> np.ndarray:
    segment, frame = copy.frame_sources()
    out = np.empty((copy.length,) + base[copy.background_id].shape[1:], dtype=np.float32)
    background = segment < 0
    out[background] = base[copy.background_id][frame[background]]
    for index, seg in enumerate(copy.segments):
        rows = segment == index
        out[rows] = clips[index][frame[rows] - seg.source_start]
    return out


def shares_unlabelled_frames(a: CopyVideo, b: CopyVideo) -> bool:
    """Whether copy videos ``a`` and ``b`` show frames of one video outside their inserted segments: the same
    background, or the background of one inserted as a source into the other."""
    a_sources, b_sources = {s.source_id for s in a.segments}, {s.source_id for s in b.segments}
    return a.background_id == b.background_id or a.background_id in b_sources or b.background_id in a_sources


def generate_copy_pairs(
    videos: dict[str, np.ndarray],
    embed: Embedder,
    augment_clip: ClipAugmenter,
    config: PairGenerationConfig = PairGenerationConfig(),
    seed: int = 0,
) -> GeneratedSet:
    """Make copy videos from ``videos`` (id -> uint8 ``(L, H, W, 3)`` frames sampled at one fps) and pair them.

    Deterministic for a given seed, inputs and (deterministic) ``embed``/``augment_clip``.
    """
    if len(videos) < 2:
        raise ValueError(f"pair generation needs at least 2 videos (a background and a source), got {len(videos)}")
    lo, hi = config.sources_per_copy
    if not 1 <= lo <= hi:
        raise ValueError(f"sources_per_copy must be (min, max) with 1 <= min <= max, got {config.sources_per_copy}")
    rng = np.random.default_rng(seed)
    ids = sorted(videos)
    base = {vid: np.asarray(embed(videos[vid]), dtype=np.float32) for vid in ids}
    generated = GeneratedSet(features=dict(base))
    for n in range(config.num_copies):
        background = ids[int(rng.integers(0, len(ids)))]
        others = [vid for vid in ids if vid != background]
        count = int(rng.integers(lo, min(hi, len(others)) + 1))
        sources = [others[i] for i in rng.choice(len(others), size=count, replace=False)]
        copy = plan_copy_video(rng, f"copy{n:05d}", background, len(videos[background]),
                               {s: len(videos[s]) for s in sources}, config.segment_length, config.speed_range)
        clips = [np.asarray(embed(augment_clip(rng, videos[s.source_id][s.source_start:s.source_end])), np.float32)
                 for s in copy.segments]
        generated.features[copy.copy_id] = _copy_features(copy, base, clips)
        generated.copies.append(copy)
        for source in sources:
            generated.pairs.append(GeneratedPair(copy.copy_id, source, "vanilla", vanilla_boxes(copy, source)))
        unrelated = [vid for vid in others if vid not in sources]
        for i in rng.permutation(len(unrelated))[: config.negatives_per_copy]:
            generated.pairs.append(GeneratedPair(copy.copy_id, unrelated[i], "negative", np.zeros((0, 4))))
    if config.transitivity:
        linked = [(i, j) for i, j in transitivity_pairs(generated.copies)
                  if not shares_unlabelled_frames(generated.copies[i], generated.copies[j])]
        if config.max_transitivity_pairs is not None and len(linked) > config.max_transitivity_pairs:
            keep = np.sort(rng.choice(len(linked), size=config.max_transitivity_pairs, replace=False))
            linked = [linked[i] for i in keep]
        for i, j in linked:
            a, b = generated.copies[i], generated.copies[j]
            generated.pairs.append(GeneratedPair(a.copy_id, b.copy_id, "transitivity", transitivity_boxes(a, b)))
    return generated
