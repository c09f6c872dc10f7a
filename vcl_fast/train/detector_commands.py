"""``vcl-fast train detector``: train or fine-tune the YOLOX copy detector; ``vcl-fast train ensemble``: combine
trained detectors into one that averages their raw outputs."""
from __future__ import annotations

import argparse
import json
import sys

from vcl_fast.cli import CliError, command_group


def _cmd_train_detector(args: argparse.Namespace) -> int:
    from vcl_fast.train.detector import train_detector
    from vcl_fast.train.detector_config import train_config

    config = train_config(args.preset, args.overrides)
    if args.data is None and args.labels is None:
        raise CliError("give --data DIR (similarity-map samples), --labels JSON with --features DIR, or both")
    if args.labels is None and (args.features or args.pairs or args.fraction != 1.0):
        raise CliError("--features, --pairs and --fraction go with --labels")
    if args.labels is not None and args.features is None:
        raise CliError("--labels needs --features DIR (per-video (L, T, D) .npy files)")
    parts = []
    if args.data is not None:
        from vcl_fast.data.map_dataset import MapDataset

        parts.append(MapDataset(args.data))
    if args.labels is not None:
        from vcl_fast.data.labelled_pairs import LabelledPairMaps

        parts.append(LabelledPairMaps.from_files(args.labels, args.features, pairs_path=args.pairs,
                                                 fraction=args.fraction, seed=config.seed))
    from torch.utils.data import ConcatDataset

    dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    print(f"training on {len(dataset)} maps -> {args.out}", file=sys.stderr)
    try:
        out = train_detector(config, dataset, args.out, init=args.init, resume=not args.no_resume,
                             progress=not args.quiet)
    except FloatingPointError as exc:
        raise CliError(str(exc)) from None
    history = json.loads((out / "config.json").read_text())["history"]
    if history:
        print(json.dumps(history[-1]))
    print(f"detector: {out}", file=sys.stderr)
    return 0


def _cmd_train_ensemble(args: argparse.Namespace) -> int:
    from vcl_fast.models.detector_io import combine_detectors

    out = combine_detectors(args.members, args.out)
    print(f"detector ensemble of {len(args.members)}: {out}", file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    train = command_group(sub, "train", help="train a model")
    p = train.add_parser(
        "detector", help="YOLOX copy detector on similarity maps (resumes when --out holds a checkpoint)",
        description="Train on similarity-map samples (--data, e.g. generated copy pairs), on labelled pairs "
        "(--labels + --features, usually with --init to fine-tune), or on both together.")
    p.add_argument("--preset", default="tiny_cpu", help="paper | tiny_cpu | micro (default tiny_cpu)")
    p.add_argument("--data", help="folder of .npz samples holding 'sim' (Q, R) and 'boxes' (N, 4) in frames")
    p.add_argument("--labels", help="VCSL label JSON {\"qid-rid\": [[q_s, r_s, q_e, r_e], ...]} in seconds")
    p.add_argument("--features", help="folder of per-video features <id>.npy (L, T, D) (+ meta.json fps)")
    p.add_argument("--pairs", help="pair CSV query_id,reference_id: train on these (unlabelled = no copy)")
    p.add_argument("--fraction", type=float, default=1.0,
                   help="train on this share of the labelled pairs, drawn with the config seed (default 1)")
    p.add_argument("--init", help="start from these weights: a detector folder or a reference .pth")
    p.add_argument("--out", required=True, help="output folder: checkpoint.pt, model.safetensors, config.json")
    p.add_argument("--no-resume", action="store_true", help="ignore a checkpoint in --out and start over")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="DetectorTrainConfig fields (epochs=10 batch_size=32), model.FIELD (model.width=0.25) "
                        "or augment.FIELD (augment.crop_prob=0)")
    p.set_defaults(func=_cmd_train_detector)

    p = train.add_parser(
        "ensemble", help="combine trained detectors into one that averages their raw outputs",
        description="Writes one detector folder (model.safetensors + config.json) whose output is the mean of the "
        "members' raw outputs, anchor by anchor. Export it with `vcl-fast export --detector OUT` or load it with "
        "the torch backend like any detector. Members must share one architecture (preset and model.* fields).")
    p.add_argument("members", nargs="+", metavar="DETECTOR", help="detector folders or reference .pth files (>= 2)")
    p.add_argument("--out", required=True, help="output folder (absent or empty)")
    p.set_defaults(func=_cmd_train_ensemble)
