"""Helpers shared by the localizers: map validation, path segments and boxes, IoU, the output array.

Boxes are ``[q_start, r_start, q_end, r_end]`` in frame units with exclusive ends: a path over query
frames ``a..b`` spans ``[a, b + 1)``, so the plain area (no +1) equals the VCSL benchmark's inclusive one.
"""
from __future__ import annotations

import numpy as np

BOX_COLUMNS = 5  # q_start, r_start, q_end, r_end, score


def check_sim_map(sim: np.ndarray) -> np.ndarray:
    """Validate a ``(Q, R)`` similarity map (2-D, floating point, finite); returns it as C-contiguous float64."""
    if not isinstance(sim, np.ndarray):
        raise TypeError(
            f"sim must be a numpy array of shape (Q, R), got {type(sim).__name__}; "
            "convert it with np.asarray(...) (torch: tensor.cpu().numpy())"
        )
    if sim.ndim != 2:
        raise ValueError(f"sim must be a 2-D (query frames, reference frames) map, got shape {sim.shape}")
    if not np.issubdtype(sim.dtype, np.floating):
        raise TypeError(f"sim must hold floating-point similarities, got dtype {sim.dtype}")
    sim = np.ascontiguousarray(sim, dtype=np.float64)
    if not np.isfinite(sim).all():
        raise ValueError("sim contains NaN or infinite values; compute the map from finite features")
    return sim


def boxes_array(rows: list[list[float]]) -> np.ndarray:
    """``(N, 5)`` float32 ``[q_s, r_s, q_e, r_e, score]`` from a list of rows."""
    return np.asarray(rows, dtype=np.float32).reshape(-1, BOX_COLUMNS)


def path_box(path: np.ndarray) -> list[int]:
    """Bounding box ``[q_s, r_s, q_e, r_e]`` (exclusive ends) of ``(L, 2)`` path points."""
    low, high = path.min(axis=0), path.max(axis=0)
    return [int(low[0]), int(low[1]), int(high[0]) + 1, int(high[1]) + 1]


def _runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and (exclusive) ends of the runs of True in a 1-D bool array."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def diagonal_segments(path: np.ndarray, max_straight: int) -> list[tuple[int, int]]:
    """Cut out the straight parts of a path: the segments ``[start, end)`` of path points that are not in a
    run of more than ``max_straight`` consecutive points sharing their query frame or their reference frame
    (the VCSL benchmark's ``cut_path``)."""
    num_points = len(path)
    straight = np.zeros(num_points + 1, dtype=np.int64)
    for axis in (0, 1):
        starts, ends = _runs(np.diff(path[:, axis]) == 0)  # runs of steps; a run of m steps holds m + 1 points
        long = ends - starts + 1 > max_straight
        np.add.at(straight, starts[long], 1)
        np.add.at(straight, ends[long] + 1, -1)
    starts, ends = _runs(np.cumsum(straight[:num_points]) == 0)
    return list(zip(starts.tolist(), ends.tolist()))


def segment_boxes(
    sim: np.ndarray, path: np.ndarray, max_straight: int, min_length: int, min_mean: float, score_map: np.ndarray
) -> list[list[float]]:
    """Boxes of a path's diagonal segments (:func:`diagonal_segments`) that hold more than ``min_length``
    points, span more than ``min_length`` frames on both axes (first to last point) and whose mean of
    ``score_map`` along the points exceeds ``min_mean``. The score of a box is the mean of ``sim`` along
    its points."""
    boxes = []
    for start, end in diagonal_segments(path, max_straight):
        points = path[start:end]
        if end - start <= min_length or np.any(points[-1] - points[0] <= min_length):
            continue
        if score_map[points[:, 0], points[:, 1]].mean() > min_mean:
            boxes.append(path_box(points) + [float(sim[points[:, 0], points[:, 1]].mean())])
    return boxes
