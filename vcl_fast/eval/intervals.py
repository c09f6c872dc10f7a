"""Total length of a union of 1-D intervals, for one set (reference) or many sets at once (fast path).

Intervals are ``[start, end]`` in any unit (seconds here). Touching intervals merge (``start <= end`` of
the running union), as in the VCSL and VSC22 evaluation code.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np


def union_length_reference(intervals: Iterable[tuple[float, float]]) -> float:
    """Length of the union of ``(start, end)`` intervals: sort by start, merge overlapping/touching, sum."""
    total = 0.0
    current: list[float] | None = None
    for start, end in sorted((float(s), float(e)) for s, e in intervals):
        if current is not None and start <= current[1]:
            current[1] = max(current[1], end)
            continue
        if current is not None:
            total += current[1] - current[0]
        current = [start, end]
    if current is not None:
        total += current[1] - current[0]
    return total


def grouped_union_length(groups: np.ndarray, starts: np.ndarray, ends: np.ndarray, num_groups: int) -> np.ndarray:
    """Union length of the intervals of each group, all groups at once.

    groups: ``(n,)`` integers in ``[0, num_groups)``; starts, ends: ``(n,)`` float64 with ``ends >= starts``.
    Returns ``(num_groups,)`` float64 (0 for groups without intervals).

    Sorted by (group, start), each interval adds the part of it beyond the running maximum end of the
    earlier intervals of its group. The segmented running maximum is a plain cumulative maximum over
    the ranks of (group, end): every rank of a group exceeds every rank of the groups before it.
    """
    groups = np.asarray(groups, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.float64)
    ends = np.asarray(ends, dtype=np.float64)
    n = groups.shape[0]
    if n == 0:
        return np.zeros(num_groups, dtype=np.float64)
    by_start = np.lexsort((starts, groups))
    by_end = np.lexsort((ends, groups))
    end_rank = np.empty(n, dtype=np.int64)
    end_rank[by_end] = np.arange(n)
    group_sorted = groups[by_start]
    covered = ends[by_end][np.maximum.accumulate(end_rank[by_start])]
    previous = np.empty(n, dtype=np.float64)
    previous[0] = -np.inf
    previous[1:] = covered[:-1]
    previous[1:][group_sorted[1:] != group_sorted[:-1]] = -np.inf
    added = np.maximum(ends[by_start] - np.maximum(starts[by_start], previous), 0.0)
    return np.bincount(group_sorted, weights=added, minlength=num_groups)


def elementary_segments(groups: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut each group's axis at every interval end point.

    groups, starts, ends: ``(n,)`` (ends >= starts). Returns ``lo, hi`` ``(n,)`` int64 and ``length`` ``(S,)``
    float64: interval i covers exactly the elementary segments ``lo[i]:hi[i]``; segment k has ``length[k]``
    (0 between groups). A union's length is the summed length of the segments its intervals cover.
    """
    groups = np.asarray(groups, dtype=np.int64)
    n = groups.shape[0]
    point_group = np.concatenate([groups, groups])
    point = np.concatenate([np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)])
    order = np.lexsort((point, point_group))
    sorted_group, sorted_point = point_group[order], point[order]
    new = np.ones(2 * n, dtype=bool)
    new[1:] = (sorted_group[1:] != sorted_group[:-1]) | (sorted_point[1:] != sorted_point[:-1])
    index = np.empty(2 * n, dtype=np.int64)
    index[order] = np.cumsum(new) - 1
    unique_group, unique_point = sorted_group[new], sorted_point[new]
    length = np.zeros(len(unique_point), dtype=np.float64)
    same = unique_group[1:] == unique_group[:-1]
    length[:-1][same] = (unique_point[1:] - unique_point[:-1])[same]
    return index[:n], index[n:], length


def min_over_covering(num_segments: int, lo: np.ndarray, hi: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For every segment k, the minimum of ``values[i]`` over the ranges ``lo[i] <= k < hi[i]``.

    Returns ``(num_segments,)`` int64, ``np.iinfo(np.int64).max`` where no range covers the segment.
    Each range is split into O(log S) nodes of an implicit binary tree (all ranges at once, one level per
    step); node minima are then pushed down to the leaves.
    """
    none = np.iinfo(np.int64).max
    size = 1 << max(int(num_segments - 1).bit_length(), 0)
    tree = np.full(2 * size, none, dtype=np.int64)
    left = np.asarray(lo, dtype=np.int64) + size
    right = np.asarray(hi, dtype=np.int64) + size
    values = np.asarray(values, dtype=np.int64)
    while left.size:
        active = left < right
        left, right, values = left[active], right[active], values[active]
        take_left = (left & 1).astype(bool)
        np.minimum.at(tree, left[take_left], values[take_left])
        left = left + take_left
        take_right = (right & 1).astype(bool)
        right = right - take_right
        np.minimum.at(tree, right[take_right], values[take_right])
        left, right = left >> 1, right >> 1
    level = 1
    while level < size:
        parents = np.arange(level, 2 * level)
        for child in (2 * parents, 2 * parents + 1):
            tree[child] = np.minimum(tree[child], tree[parents])
        level *= 2
    return tree[size:size + num_segments]
