"""``vcl-fast localize-features``: copied segments between two videos' frame features."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

METHODS = ("yolox", "tn", "dp", "hv", "dtw")
MODEL_ENV = "VCL_FAST_DETECTOR_MODEL"


def _load_features(path: str):
    from vcl_fast.data.features import load_video_features

    file = Path(path)
    if file.suffix != ".npy" or not file.is_file():
        raise OSError(f"{path}: no such .npy feature file")
    return load_video_features(file.parent, file.stem)


def _cmd_localize_features(args: argparse.Namespace) -> int:
    import numpy as np

    from vcl_fast.detect.localizer import DetectionSettings, localize_maps, to_seconds
    from vcl_fast.eval.localizers.commands import report_boxes
    from vcl_fast.ops import similarity_map

    query, reference = _load_features(args.query), _load_features(args.reference)
    if query.dim != reference.dim:
        raise ValueError(f"feature dimensions differ: {args.query} has {query.dim}, {args.reference} {reference.dim}")
    sim = np.asarray(similarity_map(query.features, reference.features))
    if args.method == "yolox":
        model = args.model or os.environ.get(MODEL_ENV)
        if not model:
            raise ValueError(f"--method yolox needs detector weights: pass --model DIR|FILE.pth or set {MODEL_ENV}")
        from vcl_fast.detect.torch_runner import TorchRunner

        runner = TorchRunner.from_path(model, args.device)
        settings = DetectionSettings(input_size=runner.input_size, conf_threshold=args.conf,
                                     nms_threshold=args.nms)
        frames = localize_maps([sim], runner, settings)[0]
    else:
        from vcl_fast.eval.localizers import align

        frames = align(sim, args.method)
    boxes = to_seconds(frames, query.fps, reference.fps)
    summary = f"{len(boxes)} copied segment(s), seconds ({args.method}; {len(sim)} x {sim.shape[1]} frames)"
    report_boxes(boxes, summary, args.json, decimals=2)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "localize-features", help="copied segments between two videos' frame features",
        description="Boxes [q_start, r_start, q_end, r_end, score] in seconds (at the features' fps, from the "
        "folder's meta.json, default 1) found in the max-over-tokens cosine similarity map.")
    p.add_argument("query", metavar="Q.npy", help="query features (L, T, D) or (L, D)")
    p.add_argument("reference", metavar="R.npy", help="reference features (L, T, D) or (L, D)")
    p.add_argument("--method", default="yolox", choices=METHODS, help="detector or classical localizer")
    p.add_argument("--model", help=f"detector folder or reference .pth for yolox (default: ${MODEL_ENV})")
    p.add_argument("--conf", type=float, default=0.1, help="yolox confidence threshold (default 0.1)")
    p.add_argument("--nms", type=float, default=0.3, help="yolox NMS IoU threshold (default 0.3)")
    p.add_argument("--device", default="cpu", help="torch device for yolox (default cpu)")
    p.add_argument("--json", metavar="OUT.json", help="also write the boxes as a JSON list of 5-number lists")
    p.set_defaults(func=_cmd_localize_features)
