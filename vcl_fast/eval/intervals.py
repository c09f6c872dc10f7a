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
