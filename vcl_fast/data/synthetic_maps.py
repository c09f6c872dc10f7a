"""Synthetic similarity maps with planted copies, for tests and smoke training (torch-free).

Background: videos made of scenes (5-60 frames); every query-scene x reference-scene block gets one base
similarity, plus per-cell Gaussian noise. Copies: a segment of the query matches a segment of the reference
with a constant speed ratio (slope) in [0.5, 2], drawn as a one-cell-wide high-similarity diagonal; copies
do not overlap on either axis. The boxes are exact: ``[q_start, r_start, q_end, r_end]`` in frames.
"""
from __future__ import annotations

import numpy as np

from vcl_fast.data.map_dataset import MapSample


def _scene_ids(length: int, rng: np.random.Generator) -> np.ndarray:
    cuts = np.cumsum(rng.integers(5, 61, size=length // 5 + 1))
    return np.searchsorted(cuts, np.arange(length), side="right")


def _free_start(taken: list[tuple[int, int]], length: int, size: int, rng: np.random.Generator) -> int | None:
    for _ in range(20):
        start = int(rng.integers(0, length - size + 1))
        if all(start >= e or start + size <= s for s, e in taken):
            return start
    return None


def planted_copy_map(rng: np.random.Generator, query_length: int, reference_length: int, num_copies: int,
                     slope_range: tuple[float, float] = (0.5, 2.0), copy_length: tuple[int, int] = (8, 80),
                     noise: float = 0.05, background: tuple[float, float] = (0.0, 0.35),
                     copy_similarity: tuple[float, float] = (0.45, 0.9)) -> MapSample:
    """One (query_length, reference_length) float32 map with up to ``num_copies`` planted copies (fewer when
    they do not fit). ``copy_length``: query-side length range in frames."""
    blocks = rng.uniform(*background, size=(query_length // 5 + 2, reference_length // 5 + 2))
    sim = blocks[np.ix_(_scene_ids(query_length, rng), _scene_ids(reference_length, rng))]
    sim = sim + rng.normal(0.0, noise, size=sim.shape)
    boxes, q_taken, r_taken = [], [], []
    for _ in range(num_copies):
        slope = float(np.exp(rng.uniform(np.log(slope_range[0]), np.log(slope_range[1]))))
        q_len = int(rng.integers(copy_length[0], copy_length[1] + 1))
        q_len = min(q_len, query_length, int(reference_length / slope))
        r_len = int(round(q_len * slope))
        if q_len < 2 or r_len < 2:
            continue
        q0 = _free_start(q_taken, query_length, q_len, rng)
        r0 = _free_start(r_taken, reference_length, r_len, rng)
        if q0 is None or r0 is None:
            continue
        level = rng.uniform(*copy_similarity)
        step = r_len / q_len
        for i in range(q_len):
            # columns [i * step, (i + 1) * step) of the reference segment, at least one, never past its end
            c0 = r0 + min(int(np.floor(i * step)), r_len - 1)
            c1 = max(c0 + 1, r0 + min(int(np.ceil((i + 1) * step)), r_len))
            sim[q0 + i, c0:c1] = np.maximum(sim[q0 + i, c0:c1], level + rng.normal(0.0, noise, size=c1 - c0))
        q_taken.append((q0, q0 + q_len))
        r_taken.append((r0, r0 + r_len))
        boxes.append([q0, r0, q0 + q_len, r0 + r_len])
    return MapSample(np.clip(sim, -1, 1).astype(np.float32), np.array(boxes, dtype=np.float32).reshape(-1, 4))


def planted_copy_samples(count: int, seed: int, length_range: tuple[int, int] = (64, 320),
                         copies_range: tuple[int, int] = (0, 3), **kwargs) -> list[MapSample]:
    """``count`` maps with random side lengths and copy counts (inclusive ranges); kwargs go to
    ``planted_copy_map``. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        q, r = rng.integers(length_range[0], length_range[1] + 1, size=2)
        n = int(rng.integers(copies_range[0], copies_range[1] + 1))
        samples.append(planted_copy_map(rng, int(q), int(r), n, **kwargs))
    return samples
