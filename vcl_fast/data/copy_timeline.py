"""Timelines of generated copy videos and the exact ground truth they imply (frame units).

A copy video is a background video with k segments of source videos spliced in. A segment takes the
source frames ``[source_start, source_end)`` and plays them at ``speed`` source frames per copy frame
(speed 2 = twice as fast, 0.5 = slow motion), occupying copy frames ``[copy_start, copy_start + length)``.
The mapping between the two timelines is linear: ``copy = copy_start + (source - source_start) / speed``.

Ground truth boxes are ``[q_start, r_start, q_end, r_end]`` in frame units (end exclusive, no +1):
- vanilla pairs: query = copy video, reference = source video;
- Transitivity Propagation: two copy videos whose segments come from the same source with overlapping
  source intervals; the box is the source intersection mapped through each copy's time warp.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InsertedSegment:
    """One source segment spliced into a copy video (all positions in frames)."""

    source_id: str
    source_start: int
    source_end: int  # exclusive
    speed: float  # source frames per copy frame, in [0.5, 2] for the paper's temporal augmentation
    copy_start: int

    def __post_init__(self) -> None:
        if not 0 <= self.source_start < self.source_end:
            raise ValueError(f"segment of {self.source_id!r}: need 0 <= source_start < source_end, "
                             f"got [{self.source_start}, {self.source_end})")
        if not self.speed > 0:
            raise ValueError(f"segment of {self.source_id!r}: speed must be > 0, got {self.speed}")

    @property
    def length(self) -> int:
        """Number of copy frames the segment occupies (>= 1)."""
        return max(1, int(round((self.source_end - self.source_start) / self.speed)))

    @property
    def copy_end(self) -> int:
        return self.copy_start + self.length

    @property
    def effective_speed(self) -> float:
        """Source frames per copy frame after rounding the length to whole frames."""
        return (self.source_end - self.source_start) / self.length

    def source_to_copy(self, source_position: float | np.ndarray) -> float | np.ndarray:
        """Map a source-timeline position (frames) into this copy's timeline (frames)."""
        return self.copy_start + (source_position - self.source_start) / self.effective_speed

    def source_frames(self) -> np.ndarray:
        """Source frame index shown at each copy frame of the segment, int64 ``(length,)``."""
        centres = self.source_start + (np.arange(self.length) + 0.5) * self.effective_speed
        return np.minimum(np.floor(centres).astype(np.int64), self.source_end - 1)


@dataclass(frozen=True)
class CopyVideo:
    """A generated copy video: background frames with segments spliced in at ``copy_start`` positions."""

    copy_id: str
    background_id: str
    background_length: int
    segments: tuple[InsertedSegment, ...]  # sorted by copy_start, non-overlapping

    @property
    def length(self) -> int:
        return self.background_length + sum(s.length for s in self.segments)

    def frame_sources(self) -> tuple[np.ndarray, np.ndarray]:
        """Where each copy frame comes from: ``(segment, frame)`` int64 arrays of shape ``(length,)``.

        ``segment[t] == -1`` means background frame ``frame[t]``; otherwise source frame ``frame[t]`` of
        ``segments[segment[t]]``.
        """
        segment = np.full(self.length, -1, dtype=np.int64)
        frame = np.empty(self.length, dtype=np.int64)
        background_cursor, t = 0, 0
        for index, seg in enumerate(self.segments):
            gap = seg.copy_start - t
            frame[t:seg.copy_start] = np.arange(background_cursor, background_cursor + gap)
            background_cursor += gap
            segment[seg.copy_start:seg.copy_end] = index
            frame[seg.copy_start:seg.copy_end] = seg.source_frames()
            t = seg.copy_end
        frame[t:] = np.arange(background_cursor, background_cursor + self.length - t)
        return segment, frame


def plan_copy_video(
    rng: np.random.Generator,
    copy_id: str,
    background_id: str,
    background_length: int,
    source_lengths: dict[str, int],
    segment_length: tuple[int, int] = (5, 30),
    speed_range: tuple[float, float] = (0.5, 2.0),
) -> CopyVideo:
    """Splice one random segment of each source into the background at random times.

    Speeds are drawn log-uniformly in ``speed_range`` so slow-downs and speed-ups are equally likely.
    """
    if background_length < 0:
        raise ValueError(f"background_length must be >= 0, got {background_length}")
    lo, hi = segment_length
    if not 1 <= lo <= hi:
        raise ValueError(f"segment_length must be (min, max) with 1 <= min <= max, got {segment_length}")
    ids = list(source_lengths)
    insert_at = np.sort(rng.integers(0, background_length + 1, size=len(ids)))
    order = rng.permutation(len(ids))
    segments, shift = [], 0
    for position, source_index in zip(insert_at, order):
        source_id = ids[source_index]
        source_len = source_lengths[source_id]
        if source_len < 1:
            raise ValueError(f"source {source_id!r} has no frames")
        length = int(rng.integers(min(lo, source_len), min(hi, source_len) + 1))
        start = int(rng.integers(0, source_len - length + 1))
        speed = float(np.exp(rng.uniform(np.log(speed_range[0]), np.log(speed_range[1]))))
        seg = InsertedSegment(source_id, start, start + length, speed, int(position) + shift)
        segments.append(seg)
        shift += seg.length
    return CopyVideo(copy_id, background_id, background_length, tuple(segments))


def vanilla_boxes(copy: CopyVideo, source_id: str) -> np.ndarray:
    """GT boxes of the pair (query = copy, reference = source), float64 ``(N, 4)`` frame units."""
    rows = [[s.copy_start, s.source_start, s.copy_end, s.source_end] for s in copy.segments
            if s.source_id == source_id]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def transitivity_boxes(query: CopyVideo, reference: CopyVideo) -> np.ndarray:
    """GT boxes of two copy videos through shared sources, float64 ``(N, 4)`` frame units.

    For every pair of segments (one in each copy) from the same source whose source intervals overlap
    with positive length, the intersection is mapped into both copies' timelines.
    """
    rows = []
    for a in query.segments:
        for b in reference.segments:
            if a.source_id != b.source_id:
                continue
            lo, hi = max(a.source_start, b.source_start), min(a.source_end, b.source_end)
            if hi > lo:
                rows.append([a.source_to_copy(lo), b.source_to_copy(lo), a.source_to_copy(hi), b.source_to_copy(hi)])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def transitivity_pairs(pool: list[CopyVideo]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, i < j, of copy videos in ``pool`` linked by an overlapping shared source.

    Scans segments grouped by source and sorted by start, so cost grows with the number of overlaps,
    not with the square of the pool size.
    """
    by_source: dict[str, list[tuple[int, int, int]]] = {}
    for index, copy in enumerate(pool):
        for seg in copy.segments:
            by_source.setdefault(seg.source_id, []).append((seg.source_start, seg.source_end, index))
    linked: set[tuple[int, int]] = set()
    for intervals in by_source.values():
        intervals.sort()
        open_intervals: list[tuple[int, int]] = []  # (end, copy index) of intervals still overlapping
        for start, end, index in intervals:
            open_intervals = [(e, i) for e, i in open_intervals if e > start]
            linked.update((min(i, index), max(i, index)) for _, i in open_intervals if i != index)
            open_intervals.append((end, index))
    return sorted(linked)


def diagonal_cells(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bool ``(Q, R)`` mask of the map cells a copy passes through: for each box ``[q_s, r_s, q_e, r_e]``
    (frames), the reference frame shown at the centre of every query frame it covers."""
    mask = np.zeros(shape, dtype=bool)
    for q_s, r_s, q_e, r_e in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        rows = np.arange(int(q_s), min(int(np.ceil(q_e)), shape[0]))
        cols = np.floor(r_s + (rows + 0.5 - q_s) * (r_e - r_s) / max(q_e - q_s, 1e-9))
        mask[rows, np.clip(cols, 0, shape[1] - 1).astype(int)] = True
    return mask
