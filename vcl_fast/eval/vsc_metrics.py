"""Meta's VSC22 matching-track metric: segment micro-AP over all pairs (facebookresearch/vsc2022,
``vsc/metrics.py: match_metric``).

Predictions of all pairs are ranked by score (ties form one step). For a pair whose predictions so far are
S, with G' its ground-truth boxes that overlap (positive area) some box of S, on each axis:
``I = |U(S) n U(G')|`` (U = interval union, touching intervals merge) and ``T = |U(S)|``. Summed over pairs,
after each score step: ``P = sqrt(I_q / T_q * I_r / T_r)`` and ``R = sqrt(I_q / G_q * I_r / G_r)`` with
``G`` the summed per-pair union length of all ground truth, and ``AP = sum P * (R - R_previous)``.
A precision axis with ``T = 0`` (only zero-length predictions so far) counts as 0. Ground-truth boxes that
end before they start are read with their ends swapped.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from vcl_fast.data.boxes import PairBoxes, as_boxes
from vcl_fast.eval.intervals import elementary_segments, min_over_covering, union_length_reference
from vcl_fast.eval.vcsl_metrics import pack_boxes, same_pair_combinations


def _flatten(boxes: PairBoxes, pair_ids: dict, columns: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """All boxes of a dictionary as one validated float64 ``(N, columns)`` array and ``(N,)`` pair indices.
    Ground truth (columns 4) gets each axis' ends in order."""
    keys = list(boxes)
    flat, offsets = pack_boxes(boxes, keys, columns)
    flat = as_boxes(flat, what, (columns,), allow_reversed=columns == 4)
    if columns == 4:
        flat = np.concatenate([np.minimum(flat[:, :2], flat[:, 2:]), np.maximum(flat[:, :2], flat[:, 2:])], axis=1)
    pair = np.repeat(np.array([pair_ids[key] for key in keys], dtype=np.int64), np.diff(offsets))
    return flat, pair


def _check_gt_lengths(lengths) -> None:
    if min(lengths) <= 0:
        raise ValueError("segment micro-AP needs ground truth with positive length on both axes; the labels have none")


def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    size = np.minimum(a[2:4], b[2:4]) - np.maximum(a[:2], b[:2])
    return max(size[0], 0.0) * max(size[1], 0.0) > 0


def segment_micro_ap_reference(labels: PairBoxes, predictions: PairBoxes) -> float:
    """VSC22 segment micro-AP by the published definition, one prediction at a time.

    labels: ``{(qid, rid): (M, 4)}``; predictions: ``{(qid, rid): (N, 5)}`` with score last; seconds.
    """
    pairs = list(dict.fromkeys([*labels, *predictions]))
    gt_flat, gt_pair = _flatten(labels, {p: k for k, p in enumerate(pairs)}, 4, "labels")
    pred_flat, pred_pair = _flatten(predictions, {p: k for k, p in enumerate(pairs)}, 5, "predictions")
    gt: dict = {}
    for box, k in zip(gt_flat, gt_pair):
        gt.setdefault(pairs[k], []).append(box)
    gt_length = [
        sum(union_length_reference((b[axis], b[axis + 2]) for b in boxes) for boxes in gt.values()) for axis in (0, 1)
    ]
    _check_gt_lengths(gt_length)
    ranked = sorted(
        ((float(box[4]), pairs[k], box[:4]) for box, k in zip(pred_flat, pred_pair)),
        key=lambda item: item[0], reverse=True,
    )
    pair_preds: dict = {}
    pair_state: dict = {}
    intersection, total = [0.0, 0.0], [0.0, 0.0]
    ap, recall = 0.0, 0.0
    for _, group in itertools.groupby(ranked, key=lambda item: item[0]):
        for _, pair, box in group:
            preds = pair_preds.setdefault(pair, [])
            preds.append(box)
            gts = [g for g in gt.get(pair, ()) if any(_overlaps(g, p) for p in preds)]
            old = pair_state.get(pair, ((0.0, 0.0), (0.0, 0.0)))
            new_i, new_t = [], []
            for axis in (0, 1):
                pred_iv = [(p[axis], p[axis + 2]) for p in preds]
                gt_iv = [(g[axis], g[axis + 2]) for g in gts]
                length = union_length_reference(pred_iv)
                new_t.append(length)
                new_i.append(length + union_length_reference(gt_iv) - union_length_reference(pred_iv + gt_iv))
                intersection[axis] += new_i[axis] - old[0][axis]
                total[axis] += new_t[axis] - old[1][axis]
            pair_state[pair] = (tuple(new_i), tuple(new_t))
        precision = math.sqrt(math.prod(i / t if t > 0 else 0.0 for i, t in zip(intersection, total)))
        new_recall = math.sqrt(math.prod(i / g for i, g in zip(intersection, gt_length)))
        ap += precision * (new_recall - recall)
        recall = new_recall
    return ap


def segment_micro_ap(labels: PairBoxes, predictions: PairBoxes) -> float:
    """VSC22 segment micro-AP, vectorised (same inputs and result as the reference).

    Each pair's axis is cut into elementary segments at every box end point. A segment joins U(S) at the
    rank of the first prediction covering it, and U(S) n U(G') at the later of that rank and the first rank
    at which a ground-truth box covering it is overlapped by a prediction. Summing segment lengths by
    joining rank gives I and T after every prediction at once: O((N + M) log(N + M)) plus the
    O(sum_k N_k M_k) prediction/ground-truth overlap test.
    """
    pair_ids = {pair: k for k, pair in enumerate(dict.fromkeys([*labels, *predictions]))}
    gt, gt_pair = _flatten(labels, pair_ids, 4, "labels")
    pred, pred_pair = _flatten(predictions, pair_ids, 5, "predictions")
    never = np.iinfo(np.int64).max
    rank = np.empty(len(pred), dtype=np.int64)
    rank[np.argsort(-pred[:, 4], kind="stable")] = np.arange(len(pred))

    # Rank of the first prediction overlapping (positive area) each ground-truth box.
    pred_count = np.bincount(pred_pair, minlength=len(pair_ids))
    by_pair = np.argsort(pred_pair, kind="stable")
    combo_gt, combo_sorted = same_pair_combinations(gt_pair, np.cumsum(pred_count) - pred_count, pred_count)
    combo_pred = by_pair[combo_sorted]
    size = np.minimum(pred[combo_pred, 2:4], gt[combo_gt, 2:]) - np.maximum(pred[combo_pred, :2], gt[combo_gt, :2])
    hit = np.maximum(size[:, 0], 0) * np.maximum(size[:, 1], 0) > 0
    gt_joins = np.full(len(gt), never)
    np.minimum.at(gt_joins, combo_gt[hit], rank[combo_pred[hit]])

    gt_length, steps_i, steps_t = [], [], []
    for axis in (0, 1):
        lo, hi, length = elementary_segments(
            np.r_[pred_pair, gt_pair], np.r_[pred[:, axis], gt[:, axis]], np.r_[pred[:, axis + 2], gt[:, axis + 2]]
        )
        in_pred = min_over_covering(len(length), lo[:len(pred)], hi[:len(pred)], rank)
        in_gt = min_over_covering(len(length), lo[len(pred):], hi[len(pred):], np.zeros(len(gt), dtype=np.int64))
        in_matched_gt = min_over_covering(len(length), lo[len(pred):], hi[len(pred):], gt_joins)
        in_both = np.maximum(in_pred, in_matched_gt)
        gt_length.append(float(length[in_gt < never].sum()))
        for joins, steps in ((in_both, steps_i), (in_pred, steps_t)):
            counted = joins < never
            steps.append(np.cumsum(np.bincount(joins[counted], weights=length[counted], minlength=len(pred)), dtype=np.float64))
    _check_gt_lengths(gt_length)
    if len(pred) == 0:
        return 0.0

    scores = np.sort(pred[:, 4])[::-1]
    step_end = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True])
    precision = np.ones(len(step_end))
    recall = np.ones(len(step_end))
    for axis in (0, 1):
        i, t = steps_i[axis][step_end], steps_t[axis][step_end]
        precision *= np.divide(i, t, out=np.zeros_like(i), where=t > 0)
        recall *= i / gt_length[axis]
    precision, recall = np.sqrt(precision), np.sqrt(recall)
    return float(np.sum(precision * np.diff(recall, prepend=0.0)))
