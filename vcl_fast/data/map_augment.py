"""Augmentations of similarity-map samples that keep the copy boxes exact (torch-free).

Valid transforms of a (Q, R) map with boxes ``[q_start, r_start, q_end, r_end]`` (frames):

- transpose: swap the query and reference roles (map.T, box axes swapped);
- reverse time in BOTH videos (map[::-1, ::-1]): a copy stays a diagonal of the same direction. Reversing
  one video alone would turn copies into anti-diagonals, which real copies almost never are, so it is not
  offered;
- crop a window that cuts no box: a box clipped to a window would no longer be the extent of the visible
  diagonal, so only windows where every box lies fully inside or fully outside are used (boxes outside are
  dropped);
- a random gain and offset of the similarity values (other feature extractors give other value ranges).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vcl_fast.data.map_dataset import MapSample


@dataclass(frozen=True)
class MapAugmentation:
    """Probabilities and ranges of the augmentations; ``MapAugmentation.none()`` disables all."""

    transpose_prob: float = 0.5
    reverse_prob: float = 0.5
    crop_prob: float = 0.5
    min_crop: float = 0.5  # a crop window keeps at least this fraction of each axis
    crop_tries: int = 10  # windows drawn before giving up on cropping this sample
    gain_jitter: float = 0.1  # values multiplied by U(1 - gain_jitter, 1 + gain_jitter)
    offset_jitter: float = 0.05  # then shifted by U(-offset_jitter, offset_jitter)

    def __post_init__(self) -> None:
        for name in ("transpose_prob", "reverse_prob", "crop_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.min_crop <= 1.0 or self.crop_tries < 1:
            raise ValueError(f"min_crop must lie in (0, 1] and crop_tries be >= 1, got {self.min_crop}, "
                             f"{self.crop_tries}")
        if not 0.0 <= self.gain_jitter < 1.0 or self.offset_jitter < 0.0:
            raise ValueError(f"gain_jitter must lie in [0, 1) and offset_jitter be >= 0, got "
                             f"{self.gain_jitter}, {self.offset_jitter}")

    @classmethod
    def none(cls) -> "MapAugmentation":
        return cls(transpose_prob=0.0, reverse_prob=0.0, crop_prob=0.0, gain_jitter=0.0, offset_jitter=0.0)


def transpose_sample(sample: MapSample) -> MapSample:
    """Swap the query and reference roles."""
    return MapSample(sample.sim.T, sample.boxes[:, [1, 0, 3, 2]])


def reverse_sample(sample: MapSample) -> MapSample:
    """Reverse time in both videos. Boxes are mirrored as x -> L - x: exact for boxes of whole frames (generated
    pairs). Labels in seconds are not whole frames, and sample i shows the video at time i, so for them the mirror
    that keeps a box where it lies on its diagonal is x -> L - 1 - x: reversed samples of such labels are off by
    up to one frame per end (retraining the real-video fine-tune with that mirror did not change its validation
    segment F, 0.774)."""
    q, r = sample.sim.shape
    b = sample.boxes
    return MapSample(sample.sim[::-1, ::-1], np.stack([q - b[:, 2], r - b[:, 3], q - b[:, 0], r - b[:, 1]], 1))


def crop_window(boxes: np.ndarray, shape: tuple[int, int], rng: np.random.Generator, min_crop: float,
                tries: int) -> tuple[int, int, int, int] | None:
    """A random window ``(q0, r0, q1, r1)`` with sides >= min_crop of the map in which every box lies fully
    inside or fully outside, or None when ``tries`` draws found none."""
    q, r = shape
    for _ in range(tries):
        hq = int(rng.integers(max(1, math.ceil(min_crop * q)), q + 1))
        hr = int(rng.integers(max(1, math.ceil(min_crop * r)), r + 1))
        q0, r0 = int(rng.integers(0, q - hq + 1)), int(rng.integers(0, r - hr + 1))
        q1, r1 = q0 + hq, r0 + hr
        inside = (boxes[:, 0] >= q0) & (boxes[:, 2] <= q1) & (boxes[:, 1] >= r0) & (boxes[:, 3] <= r1)
        outside = (boxes[:, 2] <= q0) | (boxes[:, 0] >= q1) | (boxes[:, 3] <= r0) | (boxes[:, 1] >= r1)
        if (inside | outside).all():
            return q0, r0, q1, r1
    return None


def crop_sample(sample: MapSample, window: tuple[int, int, int, int]) -> MapSample:
    """The map inside ``window = (q0, r0, q1, r1)`` with the boxes lying inside it, shifted."""
    q0, r0, q1, r1 = window
    b = sample.boxes
    inside = (b[:, 0] >= q0) & (b[:, 2] <= q1) & (b[:, 1] >= r0) & (b[:, 3] <= r1)
    return MapSample(sample.sim[q0:q1, r0:r1], b[inside] - np.array([q0, r0, q0, r0], dtype=np.float32))


def augment_sample(sample: MapSample, rng: np.random.Generator, aug: MapAugmentation) -> MapSample:
    """One random augmentation of ``sample`` (contiguous float32 map, float32 boxes)."""
    if rng.random() < aug.crop_prob:
        window = crop_window(sample.boxes, sample.sim.shape, rng, aug.min_crop, aug.crop_tries)
        if window is not None:
            sample = crop_sample(sample, window)
    if rng.random() < aug.reverse_prob:
        sample = reverse_sample(sample)
    if rng.random() < aug.transpose_prob:
        sample = transpose_sample(sample)
    gain = rng.uniform(1 - aug.gain_jitter, 1 + aug.gain_jitter)
    offset = rng.uniform(-aug.offset_jitter, aug.offset_jitter)
    sim = np.ascontiguousarray(sample.sim * np.float32(gain) + np.float32(offset), dtype=np.float32)
    return MapSample(sim, np.ascontiguousarray(sample.boxes, dtype=np.float32))
