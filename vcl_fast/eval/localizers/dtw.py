"""DTW: dynamic time warping (the VCSL benchmark's ``dtw``).

One minimum-cost warping path with cost ``1 - sim`` runs from the first to the last frame pair of the map
(:func:`vcl_fast.ops.alignment_paths.dtw_path`); it is cut at its straight runs of more than ``discontinue``
points, and a segment becomes a box when it holds and spans more than ``min_length`` frames on both axes
and its mean similarity exceeds ``min_sim``. Score: the mean similarity along the segment.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from vcl_fast.eval.localizers.params import LocalizerParams
from vcl_fast.eval.localizers.paths import boxes_array, check_sim_map, segment_boxes
from vcl_fast.ops.alignment_paths import dtw_path


@dataclasses.dataclass(frozen=True)
class DTWParams(LocalizerParams):
    """DTW parameters; the defaults are the VCSL benchmark's tuned values (old test list)."""

    discontinue: int = 9  # straight runs of more than this many points are cut out of the path
    min_sim: float = 0.3  # minimum mean similarity of a box's segment
    min_length: int = 5  # a segment must hold and span more than this many frames on both axes

    def check_values(self) -> None:
        self._bounds(discontinue=(0, None), min_length=(0, None))


def dtw(sim: np.ndarray, params: DTWParams = DTWParams()) -> np.ndarray:
    """DTW boxes of a ``(Q, R)`` similarity map: ``(N, 5)`` float32 ``[q_s, r_s, q_e, r_e, score]`` in frames."""
    sim = check_sim_map(sim)
    if sim.size == 0:
        return boxes_array([])
    path = dtw_path(1.0 - sim)
    return boxes_array(segment_boxes(sim, path, params.discontinue, params.min_length, params.min_sim, sim))
