"""Evaluation speed on the real VCSL test list (55,530 pairs) with synthetic noisy predictions.

Run: ``python -m pytest bench/bench_eval.py --benchmark-enable`` from the repository root (needs the real
annotation files: ``$VCL_FAST_SHARED_DATA`` or ``../shared/data``). The per-pair reference loops run on a
10% subset of the pairs; their time is extrapolated x10 (``extra_info["extrapolated_full_s"]``).
"""
import warnings

import numpy as np
import pytest

from tests.conftest import shared_data_dir
from vcl_fast.data.formats import read_labels, read_pairs, read_predictions, write_predictions
from vcl_fast.eval.vcsl_metrics import evaluate_vcsl, pack_boxes, precision_recall_packed
from vcl_fast.eval.vsc_metrics import segment_micro_ap, segment_micro_ap_reference

SUBSET = 10  # the reference runs on every 10th pair


def noisy_predictions(labels, pairs, seed=0):
    """Ground truth jittered by 2 s per end, 10% of boxes missed, spurious boxes on 30% of positives and 5% of
    negatives; scores uniform in [0.05, 1)."""
    rng = np.random.default_rng(seed)
    predictions = {}
    for pair in pairs:
        gt = labels.get(pair)
        boxes = []
        if gt is not None:
            jittered = (gt + rng.normal(0, 2, gt.shape)).reshape(-1, 2, 2)
            boxes = [np.sort(jittered, axis=1).reshape(-1, 4)[rng.random(len(gt)) > 0.1]]
        if rng.random() < (0.3 if gt is not None else 0.05):
            start = rng.uniform(0, 200, 2)
            boxes.append(np.r_[start, start + rng.uniform(5, 40, 2)][None])
        if boxes:
            stacked = np.concatenate(boxes)
            predictions[pair] = np.c_[stacked, rng.uniform(0.05, 1, len(stacked))]
    return predictions


@pytest.fixture(scope="module")
def data():
    root = shared_data_dir()
    if root is None:
        pytest.skip("real annotation data not found")
    pairs = read_pairs(root / "vcsl/pair_file_test.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = read_labels(root / "vcsl/label_file_test.json", pairs)
    predictions = noisy_predictions(labels, pairs)
    subset = pairs[::SUBSET]
    return root, pairs, labels, predictions, subset


def test_vcsl_metrics_fast(benchmark, data):
    _, pairs, labels, predictions, _ = data
    metrics = benchmark(evaluate_vcsl, labels, predictions, pairs)
    benchmark.extra_info.update(num_pairs=len(pairs), segment_f1=metrics.segment_f1)


def test_vcsl_packed_core_fast(benchmark, data):
    """The per-pair P/R kernel alone, on arrays already packed (no dictionary work)."""
    _, pairs, labels, predictions, _ = data
    pred, pred_offsets = pack_boxes(predictions, pairs, 5)
    gt, gt_offsets = pack_boxes(labels, pairs, 4)
    benchmark(precision_recall_packed, pred, pred_offsets, gt, gt_offsets)
    benchmark.extra_info.update(num_pairs=len(pairs), num_pred=len(pred), num_gt=len(gt))


def test_vcsl_metrics_reference_subset(benchmark, data):
    _, _, labels, predictions, subset = data
    benchmark.pedantic(evaluate_vcsl, (labels, predictions, subset), {"reference": True}, rounds=3)
    benchmark.extra_info.update(num_pairs=len(subset), extrapolated_full_s=benchmark.stats.stats.mean * SUBSET)


def test_vsc_micro_ap_fast(benchmark, data):
    _, pairs, labels, predictions, _ = data
    ap = benchmark(segment_micro_ap, labels, predictions)
    benchmark.extra_info.update(num_pairs=len(pairs), micro_ap=ap)


def test_vsc_micro_ap_reference_subset(benchmark, data):
    _, _, labels, predictions, subset = data
    keep = set(subset)
    sub_labels = {k: v for k, v in labels.items() if k in keep}
    sub_predictions = {k: v for k, v in predictions.items() if k in keep}
    benchmark.pedantic(segment_micro_ap_reference, (sub_labels, sub_predictions), rounds=3)
    benchmark.extra_info.update(num_pairs=len(subset), extrapolated_full_s=benchmark.stats.stats.mean * SUBSET)


def test_read_label_and_prediction_files(benchmark, data, tmp_path):
    root, pairs, _, predictions, _ = data
    write_predictions(tmp_path / "pred.json", predictions)

    def read_both():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read_labels(root / "vcsl/label_file_test.json", pairs)
        read_predictions(tmp_path / "pred.json", pairs)

    benchmark(read_both)
