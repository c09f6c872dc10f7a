"""Human-labelled video pairs as similarity-map samples, for fine-tuning the detector (torch-free).

Labels: VCSL JSON ``{"qid-rid": [[q_start, r_start, q_end, r_end], ...]}`` in seconds (or VSC22 CSV, see
``vcl_fast.data.formats``); features: a directory of per-video ``<id>.npy`` arrays ``(L, T, D)`` with an
optional ``meta.json`` fps (``vcl_fast.data.features``; VCSL features are 1 fps, so seconds = frames).
Each item is computed when it is read: ``similarity_map(query, reference)`` and the boxes converted to
frames (seconds x fps), clipped to the map; boxes that end before they start or vanish are dropped.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from vcl_fast.data.map_dataset import MapSample, validate_sample

Pair = tuple[str, str]


def choose_fraction(pairs: Sequence[Pair], fraction: float, seed: int) -> list[Pair]:
    """A deterministic subset of ``round(fraction * len(pairs))`` pairs (at least 1), in input order."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    count = max(1, round(fraction * len(pairs)))
    chosen = np.sort(np.random.default_rng(seed).choice(len(pairs), size=count, replace=False))
    return [pairs[i] for i in chosen]


def seconds_to_frames(boxes: np.ndarray, query_fps: float, reference_fps: float,
                      shape: tuple[int, int]) -> np.ndarray:
    """(M, 4) second boxes -> float32 frame boxes clipped to a (Q, R) map; empty or reversed ones dropped."""
    scale = np.array([query_fps, reference_fps, query_fps, reference_fps])
    frames = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * scale
    frames = np.clip(frames, 0, [shape[0], shape[1], shape[0], shape[1]])
    keep = (frames[:, 2] > frames[:, 0]) & (frames[:, 3] > frames[:, 1])
    return frames[keep].astype(np.float32)


class LabelledPairMaps:
    """Map dataset of labelled pairs: item i is ``MapSample(sim, boxes)`` of ``pairs[i]``."""

    def __init__(self, pairs: Sequence[Pair], labels: dict[Pair, np.ndarray], features_dir: str | os.PathLike):
        if not pairs:
            raise ValueError("no labelled pairs to train on")
        self.pairs, self.labels, self.features_dir = list(pairs), labels, features_dir

    @classmethod
    def from_files(cls, labels_path: str | os.PathLike, features_dir: str | os.PathLike,
                   pairs_path: str | os.PathLike | None = None, fraction: float = 1.0,
                   seed: int = 0) -> "LabelledPairMaps":
        """Pairs = those of the pair CSV (unlabelled ones are negatives) or else the labelled ones, then a
        ``fraction`` of them drawn with ``seed``. Every needed feature file must exist."""
        from vcl_fast.data.features import list_video_ids
        from vcl_fast.data.formats import read_labels, read_pairs

        pairs = read_pairs(pairs_path) if pairs_path is not None else None
        labels = read_labels(labels_path, pairs=pairs, ignore_unlisted=pairs is not None)
        pairs = choose_fraction(pairs if pairs is not None else sorted(labels), fraction, seed)
        available = set(list_video_ids(features_dir))
        missing = sorted({v for pair in pairs for v in pair} - available)
        if missing:
            raise ValueError(f"{features_dir}: no features for {len(missing)} videos of the chosen pairs "
                             f"(e.g. {', '.join(missing[:5])})")
        return cls(pairs, labels, features_dir)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> MapSample:
        from vcl_fast.data.features import load_video_features
        from vcl_fast.ops import similarity_map

        query_id, reference_id = self.pairs[index]
        query = load_video_features(self.features_dir, query_id)
        reference = load_video_features(self.features_dir, reference_id)
        sim = np.asarray(similarity_map(query.features, reference.features))
        boxes = seconds_to_frames(self.labels.get((query_id, reference_id), np.zeros((0, 4))), query.fps,
                                  reference.fps, sim.shape)
        return validate_sample(sim, boxes, f"pair {query_id}-{reference_id}")
