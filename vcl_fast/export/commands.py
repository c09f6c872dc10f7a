"""``vcl-fast export``: trained models -> an exported model directory the runtime loads (``--format onnx``), plus
TensorRT engines for this GPU (``--format trt``, :mod:`vcl_fast.runtime.tensorrt_build`; also from an existing
export with ``--onnx DIR``)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from vcl_fast.cli import CliError
from vcl_fast.export import OPSET
from vcl_fast.runtime.specs import CALIBRATED_FIELDS, TILING_FIELDS


def _cmd_export(args: argparse.Namespace) -> int:
    if args.format == "onnx" and (args.onnx or args.precision or args.calib):
        raise CliError("--onnx, --precision and --calib are for --format trt")
    if not (args.extractor or args.detector or args.onnx):
        raise CliError("nothing to export: pass --extractor DIR and/or --detector PATH"
                       + (" (or --onnx DIR, an exported model directory)" if args.format == "trt" else ""))
    if args.onnx and (args.extractor or args.detector):
        raise CliError("--onnx builds engines from an existing export; do not also pass --extractor/--detector")
    for given in (args.extractor, args.detector, args.onnx):
        if given and not Path(given).exists():
            raise FileNotFoundError(f"{given}: no such model directory or checkpoint")
    if args.calib and not Path(args.calib).is_dir():
        raise FileNotFoundError(f"{args.calib}: no such calibration frame directory")
    if args.precision == "int8" and not (args.calib or args.onnx):
        raise CliError("--precision int8 needs --calib DIR (a folder of video frames to calibrate the extractor on)")
    if args.format == "trt":
        from vcl_fast.runtime.tensorrt_runtime import import_tensorrt

        try:
            import_tensorrt()
        except ImportError as exc:
            raise CliError(str(exc)) from None
    onnx_dir = Path(args.onnx) if args.onnx else Path(args.output)
    if not args.onnx:
        try:
            from vcl_fast.export.onnx import export_onnx
        except ImportError as exc:
            raise CliError(f"export needs torch and onnx ({exc}): pip install 'vcl_fast[torch,export]'") from None
        export_onnx(args.output, args.extractor, args.detector, opset=args.opset, chunk_length=args.chunk_length,
                    chunk_overlap=args.chunk_overlap, **{name: getattr(args, name) for name in CALIBRATED_FIELDS})
    if args.format == "trt":
        _build_engines(args, onnx_dir)
    out = Path(args.output)
    print(f"{out}: " + ", ".join(sorted(p.name for p in out.iterdir() if p.suffix in (".onnx", ".json", ".engine"))))
    return 0


def _build_engines(args: argparse.Namespace, onnx_dir: Path) -> None:
    """TensorRT engines into OUT, the builder's log (network inputs/outputs, profiles, calibration) on stderr."""
    from vcl_fast.runtime.tensorrt_build import EngineBuildError, build_engines

    log = logging.getLogger("vcl_fast.tensorrt")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        build_engines(onnx_dir, args.output, args.precision or "fp16", args.calib, workspace_gib=args.workspace,
                      timing_cache=args.timing_cache, verbose=args.verbose)
    except EngineBuildError as exc:
        raise CliError(str(exc)) from None
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export trained models (ONNX, TensorRT) for `vcl-fast localize` and vcl_fast.Localizer",
        description="Writes extractor.onnx, detector.onnx and manifest.json (input sizes, normalisation, token "
        "count, feature dim, strides, tool versions, opset, SHA-256 of each file) into OUT. --format trt also "
        "builds extractor.engine and detector.engine (+ .engine.json metadata) for this GPU.",
    )
    p.add_argument("--format", default="onnx", choices=("onnx", "trt"), help="default: onnx")
    p.add_argument("--extractor", metavar="DIR", help="extractor weight directory (vcl-fast train extractor)")
    p.add_argument("--detector", metavar="PATH", help="detector directory or reference-layout .pth checkpoint")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output directory")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    p.add_argument("--min-similarity", type=float, default=-1.0, metavar="COSINE",
                   help="the detector's cosine floor for this extractor, written to the manifest: detections whose "
                        "box holds no cell >= COSINE are dropped (default -1: none)")
    p.add_argument("--extent-similarity", type=float, default=-1.0, metavar="COSINE",
                   help="the cosine the detector's boxes are fitted to for this extractor, written to the manifest "
                        "(default -1: boxes as detected)")
    p.add_argument("--confident-similarity", type=float, default=-1.0, metavar="COSINE",
                   help="a lower floor for detections scored >= --confident-score, written to the manifest "
                        "(default -1: every detection needs --min-similarity)")
    p.add_argument("--confident-score", type=float, default=1.0, metavar="SCORE",
                   help="the detector score (0-1) from which --confident-similarity applies (default 1)")
    p.add_argument("--transpose-fusion-iou", type=float, default=-1.0, metavar="IOU",
                   help="also detect on each transposed map and fuse boxes that overlap at IOU (0-1), written to "
                        "the manifest (default -1: one view)")
    p.add_argument("--query-margin", type=float, default=0.0, metavar="FRAMES",
                   help="frames added to each end of a box's query extent (negative: removed), written to the "
                        "manifest (default 0: boxes as detected)")
    p.add_argument("--reference-margin", type=float, default=0.0, metavar="FRAMES",
                   help="the same on the reference axis (default 0)")
    p.add_argument("--merge-overlap", type=float, default=-1.0, metavar="SHARE",
                   help="two boxes whose intersection covers SHARE (0-1) of the smaller merge into their union, "
                        "written to the manifest (default -1: boxes as detected)")
    p.add_argument("--chunk-length", type=int, default=TILING_FIELDS["chunk_length"], metavar="FRAMES",
                   help="maps longer than this are cut into tiles of FRAMES for the detector: about the longest maps "
                        "it was trained on, written to the manifest (default %(default)s, the paper's)")
    p.add_argument("--chunk-overlap", type=int, default=TILING_FIELDS["chunk_overlap"], metavar="FRAMES",
                   help="frames neighbouring tiles share, so that a copy at a seam is whole in some tile and the pieces "
                        "of a longer one are joined (default %(default)s: disjoint tiles)")
    trt = p.add_argument_group("TensorRT engines (--format trt; see docs/gpu.md)")
    trt.add_argument("--onnx", metavar="DIR", help="build from this exported model directory instead of exporting")
    trt.add_argument("--precision", choices=("fp32", "fp16", "int8"), help="engine precision (default fp16)")
    trt.add_argument("--calib", metavar="DIR", help="int8: folder of video frames to calibrate the extractor on")
    trt.add_argument("--workspace", type=float, default=4.0, metavar="GIB",
                     help="scratch memory TensorRT tactics may use (default 4 GiB)")
    trt.add_argument("--timing-cache", metavar="FILE", help="TensorRT timing cache to reuse (default OUT/timing.cache)")
    trt.add_argument("--verbose", action="store_true", help="also print TensorRT's verbose build log")
    p.set_defaults(func=_cmd_export)
