"""TN: temporal network (the VCSL benchmark's ``tn``, after Tan et al., "Scalable detection of partial
near-duplicate videos by visual-temporal consistency").

Nodes are each query frame's ``top_k`` most similar reference frames (ties: smaller reference frame); edges
join nodes less than ``max_step`` frames apart on both axes, forward in time, with similarity >= ``min_sim``
(:func:`vcl_fast.ops.alignment_paths.tn_paths`). ``max_path + 1`` times (the benchmark's loop bound), the
maximum-weight path is taken and its edge weights are set to 0. A path becomes a box (its bounding box) when
its similarity sum divided by the mean of its two frame extents exceeds ``min_sim``, both extents exceed
``min_length`` frames and its IoU with every kept box is below ``max_iou``. Score: the mean similarity of
the path's nodes.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from vcl_fast.data.boxes import box_iou
from vcl_fast.eval.localizers.params import LocalizerParams
from vcl_fast.eval.localizers.paths import boxes_array, check_sim_map, path_box
from vcl_fast.ops.alignment_paths import tn_paths


@dataclasses.dataclass(frozen=True)
class TNParams(LocalizerParams):
    """TN parameters; the defaults are the VCSL benchmark's tuned values (old test list)."""

    max_step: int = 10  # edges join frames less than this many frames apart on each axis
    top_k: int = 10  # reference frames kept per query frame
    min_sim: float = 0.2  # minimum node similarity of an edge's target and minimum path density
    max_path: int = 10  # paths taken: max_path + 1
    max_iou: float = 0.3  # a box overlapping a kept one by this IoU or more is dropped
    min_length: int = 5  # a box must span more than this many frames on both axes

    def check_values(self) -> None:
        self._bounds(max_step=(1, None), top_k=(1, None), max_path=(0, None), max_iou=(0.0, 1.0),
                     min_length=(0, None))


def top_k_columns(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` largest values, ordered by value then column: ``(cols int64, sims float64)``, (Q, k).

    Ties at the k-th value keep the smaller columns; ``k`` must not exceed the number of columns.
    """
    rows, cols = sim.shape
    kth = np.partition(sim, cols - k, axis=1)[:, cols - k]  # k-th largest value of each row
    take = sim >= kth[:, None]
    surplus = take.sum(axis=1) - k  # values tied with the k-th beyond the k wanted
    for q in np.flatnonzero(surplus):
        tied = np.flatnonzero(sim[q] == kth[q])
        take[q, tied[len(tied) - surplus[q]:]] = False  # keep the smaller columns
    top_cols = np.nonzero(take)[1].reshape(rows, k)
    top_sims = np.take_along_axis(sim, top_cols, axis=1)
    order = np.lexsort((top_cols, -top_sims), axis=1)
    return np.take_along_axis(top_cols, order, axis=1), np.take_along_axis(top_sims, order, axis=1)


def tn(sim: np.ndarray, params: TNParams = TNParams()) -> np.ndarray:
    """TN boxes of a ``(Q, R)`` similarity map: ``(N, 5)`` float32 ``[q_s, r_s, q_e, r_e, score]`` in frames."""
    sim = check_sim_map(sim)
    if sim.size == 0:
        return boxes_array([])
    top_cols, top_sims = top_k_columns(sim, min(params.top_k, sim.shape[1]))
    paths = tn_paths(top_cols, top_sims, params.max_step, params.min_sim, params.max_path + 1)
    kept: list[list[int]] = []  # [q_start, r_start, q_end, r_end] of the boxes kept
    rows_out: list[list[float]] = []
    for path in paths:
        path_sims = sim[path[:, 0], path[:, 1]]
        q_extent, r_extent = path[:, 0].max() - path[:, 0].min(), path[:, 1].max() - path[:, 1].min()
        if min(q_extent, r_extent) <= params.min_length or path_sims.sum() <= 0:
            continue
        if path_sims.sum() / ((q_extent + r_extent) / 2) <= params.min_sim:
            continue
        box = path_box(path)
        if np.any(box_iou(box, kept) >= params.max_iou):
            continue
        kept.append(box)
        rows_out.append(box + [float(path_sims.mean())])
    return boxes_array(rows_out)
