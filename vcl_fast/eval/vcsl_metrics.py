"""VCSL / VCDB evaluation: copy-overlap aware segment precision/recall per pair, dataset aggregation.

Protocol (DESIGN.md section 3, as in the public VCSL benchmark code and the TransVCL evaluation script):

Per pair with prediction boxes ``pred`` and ground-truth boxes ``gt`` (``[q_s, r_s, q_e, r_e]`` seconds):
- pred non-empty, gt empty -> P=0, R=1; pred empty, gt non-empty -> P=1, R=0; both empty -> P=1, R=1.
- The intersection of pred i and gt j counts when its AREA is positive.
- Precision: for every pred, the union (touching intervals merge) of its positive intersections projected
  on the query axis, and separately on the reference axis; summed over preds -> ``tp_q``, ``tp_r``.
  Denominators are the plain SUM of pred lengths per axis, so overlapping predictions are penalised.
  ``P = tp_q / (sum_q + 1e-6) * tp_r / (sum_r + 1e-6)``.
- Recall: the same with the roles of pred and gt swapped.
Lengths are summed in float64 (the public code rounds merged intervals to float32; identical for integer
seconds, the VCSL/VCDB label resolution).

Dataset: ``r`` = mean R over pairs with R != 1, ``p`` = mean P over pairs with P != 1 (1 when no pair
qualifies), ``F = 2rp / (r + p)``. Video level as the paper: FR = #(P==1 and R==0), FA = #(P==0 and R==1),
``tp = N_pos - FR``, ``p = tp / (tp + FA)``, ``r = tp / N_pos`` with N_pos the pairs with ground truth;
FRR = FR / N_pos, FAR = FA / N_neg (rates over positive and negative pairs).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from vcl_fast.data.boxes import PairBoxes, as_boxes
from vcl_fast.eval.intervals import grouped_union_length, union_length_reference

EPS = 1e-6  # added to the length denominators, as in the VCSL benchmark


# ---------------------------------------------------------------------------------------------- one pair


def _coverage_reference(boxes: np.ndarray, others: np.ndarray) -> float:
    """Product over both axes of (sum over boxes of the union of their positive intersections with
    ``others``) / (sum of box lengths + EPS). Precision when boxes = preds, recall when boxes = gt."""
    covered = [0.0, 0.0]
    for box in boxes:
        pieces = []
        for other in others:
            lo = np.maximum(box[:2], other[:2])
            hi = np.minimum(box[2:4], other[2:4])
            if max(hi[0] - lo[0], 0.0) * max(hi[1] - lo[1], 0.0) > 0:
                pieces.append((lo, hi))
        for axis in (0, 1):
            covered[axis] += union_length_reference((lo[axis], hi[axis]) for lo, hi in pieces)
    length_q = float(np.sum(boxes[:, 2] - boxes[:, 0]))
    length_r = float(np.sum(boxes[:, 3] - boxes[:, 1]))
    return covered[0] / (length_q + EPS) * (covered[1] / (length_r + EPS))


def pair_precision_recall_reference(pred_boxes, gt_boxes) -> tuple[float, float]:
    """Segment (precision, recall) of one pair by the published definition, in plain loops.

    pred_boxes: ``(N, 4)`` or ``(N, 5)`` (score column ignored); gt_boxes: ``(M, 4)``; seconds. Reversed gt
    boxes are kept as the VCSL code keeps them (see :mod:`vcl_fast.data.boxes`).
    """
    pred = as_boxes(pred_boxes, "pred_boxes")[:, :4]
    gt = as_boxes(gt_boxes, "gt_boxes", (4,), allow_reversed=True)
    if len(pred) and not len(gt):
        return 0.0, 1.0
    if not len(pred) and len(gt):
        return 1.0, 0.0
    if not len(pred) and not len(gt):
        return 1.0, 1.0
    return _coverage_reference(pred, gt), _coverage_reference(gt, pred)


def pair_precision_recall(pred_boxes, gt_boxes) -> tuple[float, float]:
    """Segment (precision, recall) of one pair (vectorised; same inputs as the reference)."""
    pred = as_boxes(pred_boxes, "pred_boxes")
    gt = as_boxes(gt_boxes, "gt_boxes", (4,), allow_reversed=True)
    precision, recall = precision_recall_packed(pred, [0, len(pred)], gt, [0, len(gt)])
    return float(precision[0]), float(recall[0])


# ------------------------------------------------------------------------------------------- many pairs


def _check_offsets(offsets, num_boxes: int, what: str) -> np.ndarray:
    offsets = np.asarray(offsets)
    if offsets.ndim != 1 or offsets.shape[0] < 1 or not np.issubdtype(offsets.dtype, np.integer):
        raise ValueError(f"{what}: offsets must be a 1-D integer array of length num_pairs + 1, got {offsets!r}")
    if offsets[0] != 0 or offsets[-1] != num_boxes or np.any(np.diff(offsets) < 0):
        raise ValueError(
            f"{what}: offsets must start at 0, never decrease and end at the number of boxes ({num_boxes})"
        )
    return offsets.astype(np.int64)


def _check_packed(pred_boxes, pred_offsets, gt_boxes, gt_offsets):
    pred = as_boxes(pred_boxes, "pred_boxes")[:, :4]
    gt = as_boxes(gt_boxes, "gt_boxes", (4,), allow_reversed=True)
    pred_offsets = _check_offsets(pred_offsets, len(pred), "pred_offsets")
    gt_offsets = _check_offsets(gt_offsets, len(gt), "gt_offsets")
    if len(pred_offsets) != len(gt_offsets):
        raise ValueError(f"pred_offsets and gt_offsets describe {len(pred_offsets) - 1} and {len(gt_offsets) - 1} pairs")
    return pred, pred_offsets, gt, gt_offsets


def same_pair_combinations(row_pair: np.ndarray, other_start: np.ndarray, other_count: np.ndarray):
    """Every (row, other row) combination of the same pair.

    row_pair: ``(n,)`` pair index of each row; pair p owns the other rows ``other_start[p]`` to
    ``other_start[p] + other_count[p]``. Returns ``row_index, other_index``, int64 of one length.
    """
    per_row = other_count[row_pair]
    row_index = np.repeat(np.arange(len(row_pair)), per_row)
    within = np.arange(int(per_row.sum())) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    return row_index, other_start[row_pair][row_index] + within


def precision_recall_packed_reference(pred_boxes, pred_offsets, gt_boxes, gt_offsets) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair (precision, recall) of packed pairs by looping over the pair reference. Same I/O as
    :func:`precision_recall_packed`."""
    pred, pred_offsets, gt, gt_offsets = _check_packed(pred_boxes, pred_offsets, gt_boxes, gt_offsets)
    results = [
        pair_precision_recall_reference(pred[pred_offsets[k]:pred_offsets[k + 1]], gt[gt_offsets[k]:gt_offsets[k + 1]])
        for k in range(len(pred_offsets) - 1)
    ]
    values = np.asarray(results, dtype=np.float64).reshape(-1, 2)
    return values[:, 0], values[:, 1]


def precision_recall_packed(pred_boxes, pred_offsets, gt_boxes, gt_offsets) -> tuple[np.ndarray, np.ndarray]:
    """Segment (precision, recall) of many pairs at once.

    pred_boxes: ``(N, 4|5)`` float seconds, pair k owning rows ``pred_offsets[k]:pred_offsets[k+1]``;
    gt_boxes: ``(M, 4)`` with ``gt_offsets`` likewise; offsets ``(num_pairs + 1,)`` integers.
    Returns ``precision, recall``, each ``(num_pairs,)`` float64.

    All (pred, gt) combinations inside each pair are built in flat arrays, and the per-box interval unions
    are computed for all boxes at once (:func:`grouped_union_length`). Memory is O(sum_k N_k * M_k).
    """
    pred, pred_offsets, gt, gt_offsets = _check_packed(pred_boxes, pred_offsets, gt_boxes, gt_offsets)
    num_pairs = len(pred_offsets) - 1
    num_pred, num_gt = np.diff(pred_offsets), np.diff(gt_offsets)
    pred_pair = np.repeat(np.arange(num_pairs), num_pred)
    gt_pair = np.repeat(np.arange(num_pairs), num_gt)

    pred_index, gt_index = same_pair_combinations(pred_pair, gt_offsets[:-1], num_gt)
    lo = np.maximum(pred[pred_index, :2], gt[gt_index, :2])
    hi = np.minimum(pred[pred_index, 2:], gt[gt_index, 2:])
    size = np.maximum(hi - lo, 0.0)
    positive = size[:, 0] * size[:, 1] > 0
    pred_index, gt_index, lo, hi = pred_index[positive], gt_index[positive], lo[positive], hi[positive]

    def coverage(index, num_boxes, box_pair, boxes):
        product = np.ones(num_pairs, dtype=np.float64)
        for axis in (0, 1):
            covered_per_box = grouped_union_length(index, lo[:, axis], hi[:, axis], num_boxes)
            covered = np.bincount(box_pair, weights=covered_per_box, minlength=num_pairs)
            length = np.bincount(box_pair, weights=boxes[:, axis + 2] - boxes[:, axis], minlength=num_pairs)
            product = product * (covered / (length + EPS))
        return product

    precision = coverage(pred_index, len(pred), pred_pair, pred)
    recall = coverage(gt_index, len(gt), gt_pair, gt)
    has_pred, has_gt = num_pred > 0, num_gt > 0
    precision[has_pred & ~has_gt], recall[has_pred & ~has_gt] = 0.0, 1.0
    precision[~has_pred & has_gt], recall[~has_pred & has_gt] = 1.0, 0.0
    precision[~has_pred & ~has_gt], recall[~has_pred & ~has_gt] = 1.0, 1.0
    return precision, recall


# ------------------------------------------------------------------------------------------ aggregation


@dataclasses.dataclass(frozen=True)
class VcslMetrics:
    """Dataset-level VCSL/VCDB metrics; every rate is a fraction in [0, 1]."""

    segment_recall: float
    segment_precision: float
    segment_f1: float
    video_recall: float
    video_precision: float
    video_f1: float
    frr: float  # false rejections / positive pairs
    far: float  # false alarms / negative pairs (0 when there are none)
    num_pairs: int
    num_positive: int
    num_negative: int
    false_rejections: int
    false_alarms: int
    all_pairs_positive: bool  # VCDB: no negative pairs, video precision is 1 by construction
    # Box counts over all pairs (predictions after the score filter). The segment metric does not penalise
    # several boxes inside one copy, so compare these two along with segment F.
    predicted_boxes: int = 0
    ground_truth_boxes: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _f1(recall: float, precision: float) -> float:
    return 2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0


def aggregate(precision: np.ndarray, recall: np.ndarray, has_gt: np.ndarray, predicted_boxes: int = 0,
              ground_truth_boxes: int = 0) -> VcslMetrics:
    """Dataset metrics from per-pair ``precision``, ``recall`` (``(n,)`` float) and ``has_gt`` (``(n,)`` bool);
    ``predicted_boxes`` and ``ground_truth_boxes``, the box counts behind them, are carried as given."""
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    has_gt = np.asarray(has_gt, dtype=bool)
    if not (precision.shape == recall.shape == has_gt.shape) or precision.ndim != 1:
        raise ValueError(
            f"precision, recall and has_gt must be 1-D of one length, got {precision.shape}, {recall.shape}, {has_gt.shape}"
        )
    num_positive = int(has_gt.sum())
    num_negative = len(has_gt) - num_positive
    if num_positive == 0:
        raise ValueError("no evaluated pair has ground truth: recall is undefined (check the labels and pair list)")
    counted_r = recall[recall != 1]
    counted_p = precision[precision != 1]
    seg_r = float(counted_r.mean()) if len(counted_r) else 1.0
    seg_p = float(counted_p.mean()) if len(counted_p) else 1.0
    false_rejections = int(np.sum((precision == 1) & (recall == 0)))
    false_alarms = int(np.sum((precision == 0) & (recall == 1)))
    true_positives = num_positive - false_rejections
    vid_r = true_positives / num_positive
    vid_p = true_positives / (true_positives + false_alarms) if true_positives + false_alarms else 0.0
    return VcslMetrics(
        segment_recall=seg_r,
        segment_precision=seg_p,
        segment_f1=_f1(seg_r, seg_p),
        video_recall=vid_r,
        video_precision=vid_p,
        video_f1=_f1(vid_r, vid_p),
        frr=false_rejections / num_positive,
        far=false_alarms / num_negative if num_negative else 0.0,
        num_pairs=len(has_gt),
        num_positive=num_positive,
        num_negative=num_negative,
        false_rejections=false_rejections,
        false_alarms=false_alarms,
        all_pairs_positive=num_negative == 0,
        predicted_boxes=int(predicted_boxes),
        ground_truth_boxes=int(ground_truth_boxes),
    )


def pack_boxes(boxes: PairBoxes, pairs: Sequence[tuple[str, str]], columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the boxes of ``pairs`` (absent pairs have none): ``(N, columns)`` float64 and
    ``(len(pairs) + 1,)`` int64 offsets."""
    empty = np.zeros((0, columns), dtype=np.float64)
    arrays = [boxes.get(pair, empty) for pair in pairs]
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum(list(map(len, arrays)), out=offsets[1:])
    try:
        packed = np.concatenate([empty, *arrays], dtype=np.float64)
    except ValueError:
        for pair, array in zip(pairs, arrays):
            if np.ndim(array) != 2 or np.shape(array)[1] != columns:
                raise ValueError(f"boxes of pair {pair}: expected shape (N, {columns}), got {np.shape(array)}") from None
        raise
    return packed, offsets


def filter_by_score(boxes: np.ndarray, offsets: np.ndarray, conf: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Keep packed ``(N, 5)`` prediction rows with ``score > conf`` (all when ``conf`` is None)."""
    if conf is None:
        return boxes, offsets
    keep = boxes[:, 4] > conf
    pair = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    new_offsets = np.zeros_like(offsets)
    np.cumsum(np.bincount(pair[keep], minlength=len(offsets) - 1), out=new_offsets[1:])
    return boxes[keep], new_offsets


def evaluate_vcsl(
    labels: PairBoxes,
    predictions: PairBoxes,
    pairs: Sequence[tuple[str, str]],
    conf: float | None = 0.1,
    integer_boxes: bool = False,
    reference: bool = False,
) -> VcslMetrics:
    """VCSL/VCDB metrics over ``pairs`` (pairs absent from ``labels`` are negatives).

    labels: ``(M, 4)`` ground-truth boxes per pair; predictions: ``(N, 5)`` boxes with score per pair (absent
    pairs predict nothing). conf: keep predictions with ``score > conf`` (the public evaluation's default
    0.1); None keeps all. integer_boxes: truncate prediction boxes to integers as the TransVCL/RTR evaluation
    script does (``astype(int)``); off by default. reference: use the per-pair loops (slow; for checks).
    """
    gt, gt_offsets = pack_boxes(labels, pairs, 4)
    pred, pred_offsets = filter_by_score(*pack_boxes(predictions, pairs, 5), conf)
    if integer_boxes:
        pred = np.trunc(pred)
    compute = precision_recall_packed_reference if reference else precision_recall_packed
    precision, recall = compute(pred[:, :4], pred_offsets, gt, gt_offsets)
    return aggregate(precision, recall, np.diff(gt_offsets) > 0, len(pred), len(gt))
