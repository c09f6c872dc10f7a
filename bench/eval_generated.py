"""Detectors vs classical localizers on a generated-pair set (``vcl-fast generate-pairs`` output).

Every method runs on the set's own similarity maps (same features for all); predictions and ground truth
are in frames at 1 fps (= seconds) and scored with ``evaluate_vcsl`` (segment and video R/P/F, false
alarms) over all pairs, negatives included. Predictions are counted as each method outputs them
(``conf=None``: the detector has already applied its confidence threshold, 0.1 by default).

    python bench/eval_generated.py --data HELDOUT_DIR --detector "YOLOX (TP)=RUN_DIR" \
        --detector "YOLOX (vanilla)=RUN_DIR2" [--methods hv,tn,dp,dtw] [--tuned tuned.json] [--json OUT.json]

``--min-similarity 0.7,0.8,0.9`` also scores every detector with each cosine floor
(``DetectionSettings.min_similarity``), each with the extent fit of ``--extent-similarity`` as well when it is
given (``DetectionSettings.extent_similarity``). The shipped cosines are chosen on a validation set built like
the reserved one (``bench/eval_reserved.py calibrate``); this shows what they do on generated pairs. An
exported detector whose manifest carries calibrated settings is also scored with all of them
(``NAME (calibrated)``: floor, lower floor of confident detections, extent fit), as ``vcl-fast localize`` runs it.

A detector is a trained model directory (torch) or an exported directory with ``detector.onnx``
(ONNX Runtime).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from vcl_fast.atomic import atomic_write
from vcl_fast.data.map_dataset import MapDataset
from vcl_fast.data.pair_commands import read_pair_index
from vcl_fast.detect.localizer import DetectionSettings, detection_settings, localize_maps
from vcl_fast.eval.localizers import align
from vcl_fast.eval.vcsl_metrics import evaluate_vcsl
from vcl_fast.runtime.specs import CALIBRATED_FIELDS

CLASSICAL = ("hv", "tn", "dp", "dtw")
COLUMNS = ("segment_recall", "segment_precision", "segment_f1", "video_recall", "video_precision", "video_f1",
           "false_alarms", "false_rejections")


def load_detector(path: str):
    """A runtime ``Detector`` (``.run`` + ``.spec.input_size``): ONNX Runtime for exported directories,
    torch for trained model directories."""
    from vcl_fast.runtime import get_backend

    backend = "onnxruntime" if (Path(path) / "manifest.json").is_file() else "torch"
    return get_backend(backend).load_detector(path)


def detect(detector, maps: list[np.ndarray], conf: float = 0.1, min_similarity: float = -1.0,
           extent_similarity: float = -1.0) -> list[np.ndarray]:
    """(N, 5) frame boxes per map from a runtime detector at its own input size."""
    settings = DetectionSettings(input_size=detector.spec.input_size, conf_threshold=conf,
                                 min_similarity=min_similarity, extent_similarity=extent_similarity)
    return localize_maps(maps, detector.run, settings)


def calibrated_settings(detector, conf: float = 0.1) -> DetectionSettings | None:
    """The detector's own calibrated settings (its manifest's; ``detection_settings``), None when all are off."""
    if all(getattr(detector.spec, name) == off for name, off in CALIBRATED_FIELDS.items()):
        return None
    return detection_settings(detector.spec, {"conf_threshold": conf})


def load_pairs(directory: str) -> tuple[list[np.ndarray], list[tuple[str, str]], dict]:
    """(similarity maps, (query, reference) ids, labels {pair: (N, 4) frames}) of a generated-pair directory."""
    index = read_pair_index(directory)
    dataset = MapDataset(directory)
    maps = [dataset[i].sim for i in range(len(dataset))]
    pairs = [(p["query"], p["reference"]) for p in index["pairs"]]
    labels = {pair: np.asarray(p["boxes"], np.float64).reshape(-1, 4)
              for pair, p in zip(pairs, index["pairs"]) if p["boxes"]}
    return maps, pairs, labels


def score(labels: dict, predictions: dict, pairs: list) -> dict:
    """The ``evaluate_vcsl`` figures of ``COLUMNS`` for one method (all predictions counted)."""
    metrics = evaluate_vcsl(labels, predictions, pairs, conf=None).to_dict()
    return {key: metrics[key] for key in COLUMNS}


def markdown_table(results: dict[str, dict]) -> str:
    """Rows = methods, columns = segment R/P/F, video R/P/F, false alarms / rejections, seconds per pair."""
    head = "| method | seg R | seg P | seg F | video R | video P | video F | FA | FR | s/pair |"
    lines = [head, "|" + "---|" * 10]
    for name, r in results.items():
        cells = [f"{r[k]:.3f}" for k in COLUMNS[:6]] + [str(r["false_alarms"]), str(r["false_rejections"]),
                                                         f"{r['seconds_per_pair']:.4f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="generated-pair directory (vcl-fast generate-pairs)")
    parser.add_argument("--detector", action="append", default=[], metavar="NAME=DIR",
                        help="a detector to evaluate (repeatable)")
    parser.add_argument("--methods", default=",".join(CLASSICAL), help="classical localizers (default hv,tn,dp,dtw)")
    parser.add_argument("--tuned", help="also run the classical localizers with the parameters of this "
                        "bench/tune_localizers.py output")
    parser.add_argument("--min-similarity", default="", metavar="FLOORS",
                        help="comma-separated cosine floors to score every detector with as well")
    parser.add_argument("--extent-similarity", type=float, default=None, metavar="COSINE",
                        help="also score each floor with the extent fit to this cosine")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    floors = [float(v) for v in args.min_similarity.split(",") if v]

    index = read_pair_index(args.data)
    maps, pairs, labels = load_pairs(args.data)
    pair_kinds = [p["kind"] for p in index["pairs"]]
    kinds = {kind: sum(p["kind"] == kind for p in index["pairs"]) for kind in ("vanilla", "transitivity", "negative")}
    print(f"{args.data}: {len(pairs)} pairs {kinds}", file=sys.stderr)

    runs = []
    for spec in args.detector:
        name, _, path = spec.partition("=")
        if not path:
            parser.error(f"--detector takes NAME=DIR, got {spec!r}")
        detector = load_detector(path)
        runs.append((name, lambda d=detector: detect(d, maps)))
        calibrated = calibrated_settings(detector)
        if calibrated is not None:
            runs.append((f"{name} (calibrated)", lambda d=detector, c=calibrated: localize_maps(maps, d.run, c)))
        for floor in floors:
            runs.append((f"{name} (min_similarity={floor})", lambda d=detector, f=floor: detect(d, maps, min_similarity=f)))
            if args.extent_similarity is not None:
                runs.append((f"{name} (min_similarity={floor}, extent_similarity={args.extent_similarity})",
                             lambda d=detector, f=floor: detect(d, maps, min_similarity=f,
                                                                extent_similarity=args.extent_similarity)))
    for method in filter(None, args.methods.split(",")):
        runs.append((method.upper(), lambda m=method: [align(sim, m) for sim in maps]))
    if args.tuned:
        for method, entry in json.loads(Path(args.tuned).read_text()).items():
            params = entry["params"]
            name = f"{method.upper()} (tuned: " + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"
            runs.append((name, lambda m=method, p=params: [align(sim, m, **p) for sim in maps]))

    results = {}
    for name, run in runs:
        start = time.perf_counter()
        found = run()
        seconds = time.perf_counter() - start
        predictions = {pair: boxes.astype(np.float64) for pair, boxes in zip(pairs, found)}
        by_kind = {kind: score(labels, predictions, [p for p, k in zip(pairs, pair_kinds) if k == kind])["segment_f1"]
                   for kind in ("vanilla", "transitivity") if kinds[kind]}
        results[name] = {**score(labels, predictions, pairs), "seconds_per_pair": seconds / len(pairs),
                         "segment_f1_by_kind": by_kind}
        print(f"{name}: segment F {results[name]['segment_f1']:.3f}, by pair kind {by_kind}", file=sys.stderr)
    print(markdown_table(results))
    if args.json:
        with atomic_write(args.json) as handle:
            json.dump({"data": args.data, "pairs": kinds, "results": results}, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
