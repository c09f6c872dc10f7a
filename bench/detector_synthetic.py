"""Quick evidence that the detector learns: train a preset on synthetic planted-copy maps, then measure on
held-out synthetic maps (box recall/precision at IoU 0.5, VCSL segment/video metrics) next to TN.

Run from the repository root (a few minutes on 2 CPU cores with the tiny_cpu preset):

    nice -n 10 python bench/detector_synthetic.py --out /tmp/det_synth --train-maps 1200 --epochs 6

The training maps are written in the on-disk map-dataset format (``vcl_fast.data.map_dataset``) and trained
with ``vcl-fast train detector``; evaluation uses the torch runner and the numpy inference path.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from vcl_fast.cli import main as cli_main
from vcl_fast.data.map_dataset import write_map_sample
from vcl_fast.data.synthetic_maps import planted_copy_samples
from vcl_fast.detect.localizer import DetectionSettings, localize_maps
from vcl_fast.detect.torch_runner import TorchRunner
from vcl_fast.eval.localizers import align
from vcl_fast.eval.vcsl_metrics import evaluate_vcsl


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) ``[q_s, r_s, q_e, r_e]`` -> (N, M) IoU."""
    q = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    r = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    inter = q * r
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def match_counts(predictions: list[np.ndarray], truths: list[np.ndarray], iou: float = 0.5) -> dict:
    """Greedy one-to-one matching by decreasing score: box-level recall and precision at ``iou``."""
    matched = num_pred = num_gt = 0
    for pred, gt in zip(predictions, truths):
        num_pred, num_gt = num_pred + len(pred), num_gt + len(gt)
        if not len(pred) or not len(gt):
            continue
        overlaps = box_iou(pred[np.argsort(-pred[:, 4]), :4], gt)
        free = np.ones(len(gt), bool)
        for row in overlaps:
            best = np.argmax(np.where(free, row, -1))
            if free[best] and row[best] >= iou:
                free[best] = False
                matched += 1
    return {"recall": matched / max(num_gt, 1), "precision": matched / max(num_pred, 1),
            "predicted_boxes": num_pred, "true_boxes": num_gt}


def vcsl_metrics(predictions: list[np.ndarray], truths: list[np.ndarray]) -> dict:
    """VCSL metrics treating frames as seconds (1 fps); every map is one pair."""
    pairs = [(f"q{i}", f"r{i}") for i in range(len(truths))]
    labels = {p: t.astype(np.float64) for p, t in zip(pairs, truths) if len(t)}
    preds = {p: x.astype(np.float64) for p, x in zip(pairs, predictions)}
    m = evaluate_vcsl(labels, preds, pairs, conf=None)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in m.to_dict().items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--preset", default="tiny_cpu")
    parser.add_argument("--train-maps", type=int, default=1200)
    parser.add_argument("--test-maps", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("overrides", nargs="*", help="extra training overrides key=value")
    args = parser.parse_args()

    data = args.out / "train_maps"
    if not data.is_dir():
        for i, (sim, boxes) in enumerate(planted_copy_samples(args.train_maps, seed=1)):
            write_map_sample(data / f"{i:06d}.npz", sim, boxes)
    start = time.time()
    code = cli_main(["train", "detector", "--preset", args.preset, "--data", str(data),
                     "--out", str(args.out / "model"), f"epochs={args.epochs}", *args.overrides])
    if code:
        return code
    train_seconds = time.time() - start

    test = planted_copy_samples(args.test_maps, seed=2)  # held out: another seed
    truths = [s.boxes for s in test]
    runner = TorchRunner.from_path(args.out / "model")
    start = time.time()
    yolox = localize_maps([s.sim for s in test], runner, DetectionSettings(input_size=runner.input_size))
    infer_seconds = time.time() - start
    tn = [align(s.sim, "tn") for s in test]
    report = {
        "preset": args.preset, "train_maps": args.train_maps, "epochs": args.epochs,
        "train_seconds": round(train_seconds, 1), "test_maps": len(test),
        "inference_seconds_per_map": round(infer_seconds / len(test), 4),
        "history": json.loads((args.out / "model" / "config.json").read_text())["history"],
        "yolox": {"boxes@0.5": match_counts(yolox, truths), "vcsl": vcsl_metrics(yolox, truths)},
        "tn": {"boxes@0.5": match_counts(tn, truths), "vcsl": vcsl_metrics(tn, truths)},
    }
    text = json.dumps(report, indent=1)
    (args.out / "report.json").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
