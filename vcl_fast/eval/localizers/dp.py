"""DP: matching paths by dynamic programming (the VCSL benchmark's ``dp``, the mPDP of Chou et al.,
"Pattern-based near-duplicate video retrieval and localization on web-scale videos").

The map is shifted to ``sim + 1`` (non-negative for cosine similarities); the dynamic programme
(:func:`vcl_fast.ops.alignment_paths.mpdp_paths`) rewards diagonal steps twice as much as vertical or
horizontal ones and restarts a path after more than ``discontinue`` consecutive cells with shifted similarity
below ``min_sim``. Up to ``max_paths`` best paths are back-tracked; each is cut at its straight runs of more
than ``diagonal_thres`` points, and a segment becomes a box when it holds and spans more than ``min_length``
frames on both axes and its mean SHIFTED similarity exceeds ``ave_sim``. Score: the mean similarity (not
shifted) along the segment.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from vcl_fast.eval.localizers.params import LocalizerParams
from vcl_fast.eval.localizers.paths import boxes_array, check_sim_map, segment_boxes
from vcl_fast.ops.alignment_paths import mpdp_paths


@dataclasses.dataclass(frozen=True)
class DPParams(LocalizerParams):
    """DP parameters; the defaults are the VCSL benchmark's tuned values (old test list).

    ``min_sim`` and ``ave_sim`` are on the shifted scale ``sim + 1``, as in the benchmark (1.3 = mean 0.3).
    """

    discontinue: int = 3  # unmatched cells a path may cross before it restarts
    min_sim: float = 0.9  # a cell with shifted similarity below this is unmatched
    ave_sim: float = 1.3  # minimum mean shifted similarity of a box's segment
    min_length: int = 5  # a segment must hold and span more than this many frames on both axes
    diagonal_thres: int = 10  # straight runs of more than this many points are cut out of a path
    max_paths: int = 100  # paths back-tracked (the benchmark's fixed loop count)

    def check_values(self) -> None:
        self._bounds(discontinue=(0, None), min_length=(0, None), diagonal_thres=(0, None), max_paths=(0, None))


def dp(sim: np.ndarray, params: DPParams = DPParams()) -> np.ndarray:
    """DP boxes of a ``(Q, R)`` similarity map: ``(N, 5)`` float32 ``[q_s, r_s, q_e, r_e, score]`` in frames."""
    sim = check_sim_map(sim)
    shifted = sim + 1.0
    boxes = []
    for path in mpdp_paths(shifted, params.discontinue, params.min_sim, params.max_paths):
        boxes += segment_boxes(sim, path, params.diagonal_thres, params.min_length, params.ave_sim, shifted)
    return boxes_array(boxes)
