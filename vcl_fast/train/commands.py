"""``vcl-fast train extractor``, ``vcl-fast extract``, ``vcl-fast icd build`` and ``vcl-fast icd eval``."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vcl_fast.cli import command_group

MODEL_ENV = "VCL_FAST_RTR_MODEL"


def _cmd_train_extractor(args: argparse.Namespace) -> int:
    from vcl_fast.config import parse_overrides
    from vcl_fast.train.extractor import ExtractorTrainer, train_config

    config, model_overrides = train_config(args.preset, parse_overrides(args.overrides))
    trainer = ExtractorTrainer(config, args.data, args.out, model_overrides)
    if trainer.step:
        print(f"resuming {args.out} at step {trainer.step}/{config.steps}", file=sys.stderr)
    history = trainer.run()
    if trainer.rank == 0:
        if history:
            print(json.dumps(history[-1]))
        print(f"weights: {Path(args.out)}", file=sys.stderr)
    return 0


def _model_dir(arg: str | None) -> Path:
    directory = arg or os.environ.get(MODEL_ENV)
    if not directory:
        raise ValueError(f"no extractor weights given: pass --model DIR or set {MODEL_ENV}")
    return Path(directory)


def _extract_model_dir(arg: str | None) -> Path:
    """--model of `vcl-fast extract`: the folder given, else ``$VCL_FAST_RTR_MODEL``, else the embedded model."""
    from vcl_fast.runtime.manifest import default_model_dir

    return Path(arg or os.environ.get(MODEL_ENV) or default_model_dir())


def _cmd_extract(args: argparse.Namespace) -> int:
    import dataclasses

    from vcl_fast.api import Localizer
    from vcl_fast.atomic import check_output_file
    from vcl_fast.data.features import save_video_features

    out = Path(args.output)
    if out.suffix != ".npy":
        raise ValueError(f"-o must name a .npy file, got {out}")
    check_output_file(out)
    if args.fps <= 0:
        raise ValueError(f"--fps must be > 0, got {args.fps}")
    if not Path(args.input).exists():
        raise FileNotFoundError(f"{args.input} does not exist")
    model_dir, source = _extract_model_dir(args.model), Path(args.input)
    exported = (model_dir / "manifest.json").is_file()
    if source.is_dir() and not exported:  # torch weights: frames or photos of any sizes, resized as in training
        from vcl_fast.data.features import VideoFeatures
        from vcl_fast.data.images import list_images, load_image
        from vcl_fast.models.extract import extract_features
        from vcl_fast.models.weights import load_extractor

        model = load_extractor(model_dir)
        loaders = [lambda p=p: load_image(p, 2 * model.config.img_size) for p in list_images(source, recursive=False)]
        video = VideoFeatures.from_fps(out.stem, extract_features(model, loaders, args.batch_size), args.fps)
    else:  # a video file decoded at --fps in bounded-memory chunks, or an exported model's frame folder (one size)
        from vcl_fast.localize_commands import frame_progress, probe_readable, warn_fps_above_rates

        localizer = Localizer(str(model_dir), backend="onnxruntime" if exported else "torch", method="tn",
                              fps=args.fps, batch_size=args.batch_size, exact_decoding=args.exact_decoding)
        infos = probe_readable([source])
        warn_fps_above_rates(args.fps, infos)
        with frame_progress(args.fps, [source], infos) as progress:
            video = localizer.features(source, progress=progress)
    path = save_video_features(out.parent, dataclasses.replace(video, video_id=out.stem))
    length, tokens, dim = video.features.shape
    print(f"{path}: {length} frames x {tokens} tokens (CLS last) x {dim} dims at {video.fps:g} fps")
    return 0


def _cmd_icd_build(args: argparse.Namespace) -> int:
    from vcl_fast.data.augment import HELDOUT_EDITS, TRAIN_EDITS
    from vcl_fast.data.images import list_images
    from vcl_fast.eval.icd import build_icd_set

    icd = build_icd_set(
        list_images(args.images), args.out, args.positives, args.negatives, args.distractors,
        queries_per_positive=args.queries_per_positive, pip_fraction=args.pip_fraction,
        space=HELDOUT_EDITS if args.edits == "heldout" else TRAIN_EDITS, max_side=args.max_side, seed=args.seed,
    )
    print(f"{args.out}: {len(icd.queries)} queries, {len(icd.references)} references, "
          f"{len(icd.ground_truth)} ground-truth pairs")
    return 0


def _cmd_icd_eval(args: argparse.Namespace) -> int:
    from vcl_fast.atomic import atomic_write, check_output_file
    from vcl_fast.eval.icd import evaluate_extractor, load_icd_set
    from vcl_fast.models.weights import load_extractor

    if args.json:
        check_output_file(args.json)
    icd = load_icd_set(args.data)
    model = load_extractor(_model_dir(args.model))
    result = evaluate_extractor(model, icd, top_k=args.top_k, batch_size=args.batch_size)
    text = json.dumps(result, indent=2)
    if args.json:
        with atomic_write(args.json) as handle:
            handle.write(text)
    print(text)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    train_sub = command_group(sub, "train", help="train a model")
    p = train_sub.add_parser("extractor", help="self-supervised RTR feature extractor (resumes when --out has a checkpoint)")
    p.add_argument("--preset", default="tiny_cpu", help="paper | tiny_cpu | micro (default tiny_cpu)")
    p.add_argument("--data", required=True, help="image folder, or a DISC21 folder with train/")
    p.add_argument("--out", required=True, help="output folder: checkpoint, log, final weights")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="TrainConfig fields (e.g. steps=2000 num_regional_tokens=0 schedule=symmetric) "
                        "or model.FIELD for the extractor (e.g. model.depth=4)")
    p.set_defaults(func=_cmd_train_extractor)

    p = sub.add_parser("extract", help="frame features (L, k+1, D) float32 .npy of a video or a frame folder")
    p.add_argument("input", help="video file, or folder of frames (one frame per 1/fps seconds, natural name order)")
    p.add_argument("-o", "--output", required=True,
                   help="OUT.npy; beside it meta.json (fps) and OUT.timestamps.npy when the timestamps are not "
                        "i/fps or the video's end is known (the vcl_fast.data.features per-video layout)")
    p.add_argument("--fps", type=float, default=1.0, help="frames sampled per second (default 1)")
    p.add_argument("--model", help=f"extractor weights folder or exported model directory (default: ${MODEL_ENV}, "
                   "else the embedded model, as `vcl-fast localize` uses)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--exact-decoding", action="store_true", help="a video file: decode it at full size (default: "
                   "draft decoding, as `vcl-fast localize`)")
    p.set_defaults(func=_cmd_extract)

    icd = sub.add_parser("icd", help="image copy detection sets and evaluation (DISC21 metrics)")
    icd_sub = icd.add_subparsers(dest="what", required=True, metavar="ACTION")
    p = icd_sub.add_parser("build", help="make a query/reference/ground-truth set with held-out edits")
    p.add_argument("--images", required=True, help="folder of source images (none of them used in training)")
    p.add_argument("--out", required=True)
    p.add_argument("--positives", type=int, required=True, help="queries with a copy in the references")
    p.add_argument("--negatives", type=int, default=0, help="queries without a copy")
    p.add_argument("--distractors", type=int, default=0, help="references no query copies")
    p.add_argument("--queries-per-positive", type=int, default=1, help="edited queries made from each positive")
    p.add_argument("--pip-fraction", type=float, default=0.4, help="share of positive queries that are PiP")
    p.add_argument("--edits", choices=["heldout", "train"], default="heldout",
                   help="edit parameter space: held-out ranges (default) or training's")
    p.add_argument("--max-side", type=int, default=384)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_icd_build)
    p = icd_sub.add_parser("eval", help="muAP, recall@P90 (overall, per edit) and Regional Token Hit Rate")
    p.add_argument("--data", required=True, help="ICD set folder (vcl-fast icd build, or DISC21 dev layout)")
    p.add_argument("--model", help=f"extractor weights folder, or an ONNX export folder (default: ${MODEL_ENV})")
    p.add_argument("--top-k", type=int, default=10, help="predictions per query")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json", help="also write the result here")
    p.set_defaults(func=_cmd_icd_eval)
