"""``vcl-fast export``: trained models -> an exported model directory the runtime loads."""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from vcl_fast.cli import CliError
from vcl_fast.export import OPSET


def _cmd_export(args: argparse.Namespace) -> int:
    if not (args.extractor or args.detector):
        raise CliError("nothing to export: pass --extractor DIR and/or --detector PATH")
    for given in (args.extractor, args.detector):
        if given and not Path(given).exists():
            raise FileNotFoundError(f"{given}: no such model directory or checkpoint")
    if args.format == "trt":
        if importlib.util.find_spec("tensorrt") is None:
            raise CliError("TensorRT is not importable in this environment (no 'tensorrt' Python package); "
                           "--format trt needs it. Use --format onnx and the onnxruntime backend.")
        raise CliError("--format trt: TensorRT engine building is not part of this build; use --format onnx")
    try:
        from vcl_fast.export.onnx import export_onnx
    except ImportError as exc:
        raise CliError(f"export needs torch and onnx ({exc}): pip install 'vcl_fast[torch,export]'") from None
    manifest = export_onnx(args.output, args.extractor, args.detector, opset=args.opset)
    print(f"{manifest.parent}: " + ", ".join(sorted(p.name for p in manifest.parent.iterdir()
                                                  if p.suffix in (".onnx", ".json"))))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export trained models (ONNX) for `vcl-fast localize` and vcl_fast.Localizer",
        description="Writes extractor.onnx, detector.onnx and manifest.json (input sizes, normalisation, token "
        "count, feature dim, strides, tool versions, opset, SHA-256 of each file) into OUT.",
    )
    p.add_argument("--format", default="onnx", choices=("onnx", "trt"), help="default: onnx")
    p.add_argument("--extractor", metavar="DIR", help="extractor weight directory (vcl-fast train extractor)")
    p.add_argument("--detector", metavar="PATH", help="detector directory or reference-layout .pth checkpoint")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output directory")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    p.set_defaults(func=_cmd_export)
