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
from vcl_fast.eval.intervals import grouped_union_length, union_length_reference


def _flatten(boxes: PairBoxes, pair_ids: dict, columns: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """All boxes of a dictionary as one validated float64 ``(N, columns)`` array and ``(N,)`` pair indices.
    Ground truth (columns 4) gets each axis' ends in order."""
    blocks = [np.asarray(b, dtype=np.float64).reshape(-1, columns) for b in boxes.values()]
    flat = as_boxes(np.concatenate(blocks) if blocks else np.zeros((0, columns)), what, (columns,), allow_reversed=columns == 4)
    if columns == 4:
        flat = np.concatenate([np.minimum(flat[:, :2], flat[:, 2:]), np.maximum(flat[:, :2], flat[:, 2:])], axis=1)
    pair = np.repeat(np.array([pair_ids[key] for key in boxes], dtype=np.int64), [len(b) for b in blocks])
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

    Every prefix of each pair's ranked predictions is expanded into flat arrays (memory O(sum_k N_k^2)
    over pairs with N_k predictions), its I and T computed with :func:`grouped_union_length`
    (``I = |U(S)| + |U(G')| - |U(S u G')|``), and the per-prediction increments summed in rank order.
    """
    pair_ids = {pair: k for k, pair in enumerate(dict.fromkeys([*labels, *predictions]))}
    num_pairs = len(pair_ids)
    gt_boxes, gt_pair = _flatten(labels, pair_ids, 4, "labels")
    pred, pred_pair = _flatten(predictions, pair_ids, 5, "predictions")
    gt_length = [float(grouped_union_length(gt_pair, gt_boxes[:, a], gt_boxes[:, a + 2], num_pairs).sum()) for a in (0, 1)]
    _check_gt_lengths(gt_length)
    if len(pred) == 0:
        return 0.0
    rank = np.empty(len(pred), dtype=np.int64)
    rank[np.argsort(-pred[:, 4], kind="stable")] = np.arange(len(pred))

    # Predictions grouped by pair, each pair's in rank order: prefix k of a pair = its first k+1 predictions.
    by_pair = np.lexsort((rank, pred_pair))
    pred, pred_pair, rank = pred[by_pair], pred_pair[by_pair], rank[by_pair]
    count = np.bincount(pred_pair, minlength=num_pairs)
    first = np.cumsum(count) - count
    position = np.arange(len(pred)) - first[pred_pair]

    # Members of each prefix (prefix id = index of its last prediction).
    prefix_of_pred = np.repeat(np.arange(len(pred)), position + 1)
    member = first[pred_pair][prefix_of_pred] + (
        np.arange(len(prefix_of_pred)) - np.repeat(np.cumsum(position + 1) - (position + 1), position + 1)
    )

    # Each gt box joins every prefix from the first prediction overlapping it on.
    per_gt = count[gt_pair]
    combo_gt = np.repeat(np.arange(len(gt_boxes)), per_gt)
    combo_pred = first[gt_pair][combo_gt] + (np.arange(int(per_gt.sum())) - np.repeat(np.cumsum(per_gt) - per_gt, per_gt))
    size = np.maximum(np.minimum(pred[combo_pred, 2:4], gt_boxes[combo_gt, 2:]) - np.maximum(pred[combo_pred, :2], gt_boxes[combo_gt, :2]), 0)
    hit = size[:, 0] * size[:, 1] > 0
    first_hit = np.full(len(gt_boxes), np.iinfo(np.int64).max)
    np.minimum.at(first_hit, combo_gt[hit], position[combo_pred[hit]])
    joined = np.flatnonzero(first_hit < np.iinfo(np.int64).max)
    spans = count[gt_pair[joined]] - first_hit[joined]
    gt_member = np.repeat(joined, spans)
    prefix_of_gt = np.repeat(first[gt_pair[joined]] + first_hit[joined], spans) + (
        np.arange(int(spans.sum())) - np.repeat(np.cumsum(spans) - spans, spans)
    )

    increment_i, increment_t = [], []
    for axis in (0, 1):
        pred_s, pred_e = pred[member, axis], pred[member, axis + 2]
        gt_s, gt_e = gt_boxes[gt_member, axis], gt_boxes[gt_member, axis + 2]
        union_pred = grouped_union_length(prefix_of_pred, pred_s, pred_e, len(pred))
        union_gt = grouped_union_length(prefix_of_gt, gt_s, gt_e, len(pred))
        union_both = grouped_union_length(
            np.concatenate([prefix_of_pred, prefix_of_gt]), np.concatenate([pred_s, gt_s]),
            np.concatenate([pred_e, gt_e]), len(pred),
        )
        for values, increments in ((union_pred + union_gt - union_both, increment_i), (union_pred, increment_t)):
            previous = np.where(position > 0, np.roll(values, 1), 0.0)
            step = np.empty(len(pred))
            step[rank] = values - previous
            increments.append(np.cumsum(step))

    scores = np.sort(pred[:, 4])[::-1]
    step_end = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True])
    precision = np.ones(len(step_end))
    recall = np.ones(len(step_end))
    for axis in (0, 1):
        i, t = increment_i[axis][step_end], increment_t[axis][step_end]
        precision *= np.divide(i, t, out=np.zeros_like(i), where=t > 0)
        recall *= i / gt_length[axis]
    precision, recall = np.sqrt(precision), np.sqrt(recall)
    return float(np.sum(precision * np.diff(recall, prepend=0.0)))
