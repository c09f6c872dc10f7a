"""Copied-segment boxes ``[q_start, r_start, q_end, r_end]`` (seconds), optionally with a ``score`` column.

One convention everywhere: x1 = query start, y1 = reference start, x2 = query end, y2 = reference end;
lengths are ``end - start`` (no +1). Arrays are float64 ``(N, 4)`` (ground truth) or ``(N, 5)`` (predictions).

Reversed boxes (an end before its start) are errors, except in ground truth where ``allow_reversed`` keeps
them: the real VCSL test labels hold one (``7133109c...-4934267c...``, ``[19, 126, 34, 121]``) and the VCSL
metric keeps it (its negative length lowers the recall denominator; it never intersects anything).
"""
from __future__ import annotations

import numpy as np

# Dictionary of boxes per video pair, keyed by (query_id, reference_id).
PairBoxes = dict[tuple[str, str], np.ndarray]


def _intersections(box, boxes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(intersection areas (K,), area of ``box`` (), areas of ``boxes`` (K,)), float64."""
    a = np.asarray(box, dtype=np.float64)[:4]
    if len(boxes) == 0:
        return np.zeros(0), (a[2] - a[0]) * (a[3] - a[1]), np.zeros(0)
    b = np.asarray(boxes, dtype=np.float64)[:, :4]
    wh = np.clip(np.minimum(a[2:], b[:, 2:]) - np.maximum(a[:2], b[:, :2]), 0, None)
    return wh[:, 0] * wh[:, 1], (a[2] - a[0]) * (a[3] - a[1]), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def box_iou(box, boxes) -> np.ndarray:
    """(K,) float64 IoU of one ``[q_start, r_start, q_end, r_end]`` box with each of ``boxes`` ((K, >= 4) array
    or list; plain areas); 0 where the union is empty."""
    inter, area, areas = _intersections(box, boxes)
    union = area + areas - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_overlap(box, boxes) -> np.ndarray:
    """(K,) float64 share of the smaller box that the intersection of ``box`` with each of ``boxes`` covers
    (1 when one box holds the other; same arguments as :func:`box_iou`); 0 where the smaller box is empty."""
    inter, area, areas = _intersections(box, boxes)
    smaller = np.minimum(area, areas)
    return np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)


def box_problem(boxes: np.ndarray, allow_reversed: bool = False) -> str | None:
    """First problem of a float64 ``(N, C)`` box array as text (non-finite value, end before start), or None."""
    if boxes.size == 0:
        return None
    finite = np.isfinite(boxes).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        return f"box {row} has a non-finite value {boxes[row].tolist()}"
    if allow_reversed:
        return None
    reversed_ = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if reversed_.any():
        row = int(np.argmax(reversed_))
        return f"box {row} ends before it starts {boxes[row].tolist()} (expected [q_start, r_start, q_end, r_end])"
    return None


def as_boxes(boxes, what: str, columns: tuple[int, ...] = (4, 5), allow_reversed: bool = False) -> np.ndarray:
    """Validate and convert to a float64 ``(N, C)`` array with C in ``columns``; ValueError names ``what``."""
    try:
        array = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: boxes must be numbers shaped (N, {' or '.join(map(str, columns))}): {exc}") from None
    if array.size == 0:
        width = array.shape[1] if array.ndim == 2 and array.shape[1] in columns else columns[0]
        return np.zeros((0, width), dtype=np.float64)
    if array.ndim != 2 or array.shape[1] not in columns:
        raise ValueError(
            f"{what}: boxes must be shaped (N, {' or '.join(map(str, columns))}) as [q_start, r_start, q_end, r_end"
            f"{', score' if 5 in columns else ''}], got shape {array.shape}"
        )
    problem = box_problem(array, allow_reversed)
    if problem is not None:
        raise ValueError(f"{what}: {problem}")
    return array
