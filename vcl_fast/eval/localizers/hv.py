"""HV: Hough voting over temporal offsets (the VCSL benchmark's ``hv``).

Every cell with ``sim >= min_sim`` votes its similarity for its temporal offset ``r - q``; the offsets with
at least one vote are ranked by their vote sum (ties: smaller offset first) and the best ``max_peaks`` are
kept. Each becomes a box spanning its WHOLE diagonal of the map, dropped when its IoU with an already kept
box exceeds ``iou_thresh``. Score: the mean similarity along that whole diagonal.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from vcl_fast.data.boxes import box_iou
from vcl_fast.eval.localizers.params import LocalizerParams
from vcl_fast.eval.localizers.paths import boxes_array, check_sim_map


@dataclasses.dataclass(frozen=True)
class HVParams(LocalizerParams):
    """HV parameters; the defaults are the VCSL benchmark's tuned values (old test list)."""

    min_sim: float = 0.7  # cells below this similarity cast no vote
    iou_thresh: float = 0.9  # a diagonal box overlapping a kept one by more than this IoU is dropped
    max_peaks: int = 100  # offsets considered, best vote sums first

    def check_values(self) -> None:
        self._bounds(iou_thresh=(0.0, 1.0), max_peaks=(1, None))


def diagonal_sums(values: np.ndarray) -> np.ndarray:
    """Sums of a ``(Q, R)`` map along each diagonal, indexed by offset ``r - q + Q - 1`` (length Q + R - 1).

    One vector addition per row (row q covers offsets ``-q .. R - 1 - q``).
    """
    rows, cols = values.shape
    sums = np.zeros(rows + cols - 1)
    for q in range(rows):
        sums[rows - 1 - q : rows - 1 - q + cols] += values[q]
    return sums


def diagonal_sums_reference(values: np.ndarray) -> np.ndarray:
    """Reference of :func:`diagonal_sums` with ``np.trace``."""
    rows, cols = values.shape
    return np.array([np.trace(values, offset=offset) for offset in range(-(rows - 1), cols)], dtype=np.float64)


def hv(sim: np.ndarray, params: HVParams = HVParams()) -> np.ndarray:
    """HV boxes of a ``(Q, R)`` similarity map: ``(N, 5)`` float32 ``[q_s, r_s, q_e, r_e, score]`` in frames."""
    sim = check_sim_map(sim)
    rows, cols = sim.shape
    if sim.size == 0:
        return boxes_array([])
    votes = np.where(sim >= params.min_sim, sim, 0.0)
    vote_sums = diagonal_sums(votes)
    voted = np.flatnonzero(diagonal_sums(votes >= params.min_sim) > 0)
    ranked = voted[np.argsort(-vote_sums[voted], kind="stable")][: params.max_peaks]
    offsets = np.arange(rows + cols - 1) - (rows - 1)  # r - q of each diagonal
    q_start = np.maximum(0, -offsets)
    q_end = np.minimum(rows, cols - offsets)  # exclusive
    mean_sim = diagonal_sums(sim) / (q_end - q_start)
    kept: list[list[int]] = []  # [q_start, r_start, q_end, r_end] of the boxes kept
    rows_out: list[list[float]] = []
    for d in ranked:
        if vote_sums[d] <= 0:
            continue
        box = [int(q_start[d]), int(q_start[d] + offsets[d]), int(q_end[d]), int(q_end[d] + offsets[d])]
        if np.any(box_iou(box, kept) > params.iou_thresh):
            continue
        kept.append(box)
        rows_out.append(box + [float(mean_sim[d])])
    return boxes_array(rows_out)
