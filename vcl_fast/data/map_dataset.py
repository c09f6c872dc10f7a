"""Similarity maps with their copied segments: the detector's training data (torch-free).

On-disk format: a directory of ``.npz`` files (read in sorted name order; other files and subdirectories
are ignored), one sample per file, written with ``write_map_sample``:

- ``sim``: float32 (Q, R) similarity map, rows = query frames, columns = reference frames, raw cosine values;
- ``boxes``: float32 (N, 4) copied segments ``[q_start, r_start, q_end, r_end]`` in frames, with
  ``0 <= q_start < q_end <= Q`` and ``0 <= r_start < r_end <= R``; N = 0 for a pair without copies.

``InMemoryMapDataset`` holds the same samples in a list. Both index to ``MapSample(sim, boxes)``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from vcl_fast.atomic import atomic_write


class MapSample(NamedTuple):
    sim: np.ndarray  # float32 (Q, R)
    boxes: np.ndarray  # float32 (N, 4) [q_start, r_start, q_end, r_end] frames


def validate_sample(sim: np.ndarray, boxes: np.ndarray, name: str = "sample") -> MapSample:
    """Checked float32 copies-or-views of ``sim`` and ``boxes``; ValueError/TypeError saying what is wrong."""
    sim, boxes = np.asarray(sim), np.asarray(boxes)
    if sim.ndim != 2 or min(sim.shape) < 1:
        raise ValueError(f"{name}: sim must be a non-empty 2-D (Q, R) map, got shape {sim.shape}")
    if not np.issubdtype(sim.dtype, np.floating) or (boxes.size and not np.issubdtype(boxes.dtype, np.number)):
        raise TypeError(f"{name}: sim must be floating point and boxes numeric, got {sim.dtype} and {boxes.dtype}")
    boxes = boxes.astype(np.float32).reshape(0, 4) if boxes.size == 0 else boxes.astype(np.float32)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name}: boxes must have shape (N, 4), got {boxes.shape}")
    sim = sim.astype(np.float32, copy=False)
    if not np.isfinite(sim).all() or not np.isfinite(boxes).all():
        raise ValueError(f"{name}: sim and boxes must be finite")
    q, r = sim.shape
    bad = ((boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > q) | (boxes[:, 3] > r)
           | (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1]))
    if bad.any():
        raise ValueError(f"{name}: box {boxes[bad][0].tolist()} is not [q_start, r_start, q_end, r_end] with "
                         f"0 <= q_start < q_end <= {q} and 0 <= r_start < r_end <= {r}")
    return MapSample(sim, boxes)


def write_map_sample(path: str | os.PathLike, sim: np.ndarray, boxes: np.ndarray) -> None:
    """Validate and atomically write one sample as ``path`` (.npz)."""
    sample = validate_sample(sim, boxes, str(path))
    with atomic_write(path, "wb") as f:
        np.savez(f, sim=sample.sim, boxes=sample.boxes)


class MapDataset:
    """The samples of an on-disk dataset directory (format in the module docstring)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: no such dataset directory")
        self.files = sorted(p for p in self.root.iterdir() if p.suffix == ".npz" and p.is_file())
        if not self.files:
            raise ValueError(f"{self.root}: no .npz samples found (expected files holding 'sim' and 'boxes')")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> MapSample:
        path = self.files[index]
        with np.load(path) as data:
            if "sim" not in data or "boxes" not in data:
                raise ValueError(f"{path}: a sample needs arrays 'sim' and 'boxes', found {sorted(data.files)}")
            return validate_sample(data["sim"], data["boxes"], str(path))


class InMemoryMapDataset:
    """Samples held in memory: a sequence of (sim, boxes) pairs, validated once."""

    def __init__(self, samples: Sequence[tuple[np.ndarray, np.ndarray]]):
        self.samples = [validate_sample(sim, boxes, f"sample {i}") for i, (sim, boxes) in enumerate(samples)]
        if not self.samples:
            raise ValueError("an in-memory map dataset needs at least one sample")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> MapSample:
        return self.samples[index]
