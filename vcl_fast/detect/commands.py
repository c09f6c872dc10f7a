"""``vcl-fast localize-features``: copied segments between two videos' frame features, found by a
:class:`~vcl_fast.api.Localizer` (by default the embedded model's detector with its calibrated settings, on ONNX
Runtime: the same boxes as ``vcl-fast localize`` gives for the videos the features came from)."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def _load_features(path: str):
    """The features of a .npy file, named by its path (for messages)."""
    from vcl_fast.data.features import load_video_features

    file = Path(path)
    if file.suffix != ".npy" or not file.is_file():
        raise OSError(f"{path}: no such .npy feature file")
    try:
        return dataclasses.replace(load_video_features(file.parent, file.stem), video_id=path)
    except ValueError as exc:
        if str(exc).startswith(str(file)):  # a shape or timestamp problem, named
            raise
        # numpy's own message (a file that is no .npy array reads as a pickle) names no file and misleads
        raise ValueError(f"{path}: not a .npy array file; write features with numpy.save or `vcl-fast extract`") \
            from None


def _cmd_localize_features(args: argparse.Namespace) -> int:
    from vcl_fast.api import Localizer
    from vcl_fast.cli import CliError
    from vcl_fast.config import parse_overrides
    from vcl_fast.eval.localizers.commands import report_boxes

    query, reference = _load_features(args.query), _load_features(args.reference)
    if query.dim != reference.dim:
        raise ValueError(f"feature dimensions differ: {args.query} has {query.dim}, {args.reference} {reference.dim}")
    try:
        loc = Localizer(None, args.detector or args.model, backend=args.backend, device=args.device,
                        method=args.method, method_params=parse_overrides(args.param), threads=args.threads)
    except ImportError as exc:
        raise CliError(str(exc)) from None
    result = loc.localize(query, reference)
    summary = (f"{len(result.segments)} copied segment(s), seconds ({args.method}; {query.num_frames} x "
               f"{reference.num_frames} frames)")
    report_boxes(result.boxes(), summary, args.json, decimals=2)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    from vcl_fast.localize_commands import add_detection_arguments

    p = sub.add_parser(
        "localize-features", help="copied segments between two videos' frame features",
        description="Boxes [q_start, r_start, q_end, r_end, score] in seconds (at the features' timestamps, or "
        "their folder's meta.json fps, default 1) found in the max-over-tokens cosine similarity map, by the "
        "embedded model's detector unless told otherwise.")
    p.add_argument("query", metavar="Q.npy", help="query features (L, T, D) or (L, D)")
    p.add_argument("reference", metavar="R.npy", help="reference features (L, T, D) or (L, D)")
    add_detection_arguments(p)
    p.add_argument("--json", metavar="OUT.json", help="also write the boxes as a JSON list of 5-number lists")
    p.set_defaults(func=_cmd_localize_features)
