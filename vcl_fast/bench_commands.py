"""``vcl-fast bench``: side-by-side timings of our implementations and their references on this machine.

Suites (:mod:`vcl_fast.benchmark` times them):
- ``ops``: the similarity map (ours, torch reference, numpy reference, and a plain sgemm of the same FLOPs as
  a rate ceiling) at Q = R in 64 / 600 / 1,800 frames, T = 2, D = 256; segment NMS (ours, torchvision,
  numpy reference) at 100 / 1,000 / 8,400 boxes.
- ``extract``: frames per second of the extractor on every available backend (360p frames, preprocessing
  included).
- ``localize``: pairs per second of the whole pipeline (frames -> segments) per backend and method.
- ``gpu``: the GPU engines and kernels against torch on a CUDA device, with roofline and speed-up targets
  (:mod:`vcl_fast.bench_gpu`; skipped, with one line saying why, without a GPU).
The extract and localize suites use ``--model DIR`` (onnxruntime only) or, when torch is installed, random
weights of a model preset (``--preset``, exported to a temporary directory for onnxruntime): speed does not
depend on the weights.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
from pathlib import Path

import numpy as np

from vcl_fast.api import METHODS
from vcl_fast.atomic import atomic_write, check_output_file
from vcl_fast.benchmark import BenchCase, format_results, run_case
from vcl_fast.cli import CliError

SUITES = ("ops", "extract", "localize", "gpu")
SIM_SIZES = (64, 600, 1800)
SIM_TOKENS, SIM_DIM = 2, 256
NMS_SIZES = (100, 1000, 8400)
NMS_IOU = 0.3
EXTRACT_FRAMES, EXTRACT_SHAPE = 32, (360, 640)
LOCALIZE_FRAMES = 60  # frames per video of a benchmarked pair (one minute at 1 fps)


def _optional(name: str):
    """The module ``name``, or None when it is not installed."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def random_boxes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` boxes ``[q_s, r_s, q_e, r_e]`` (float32, starts in [0, 1000), sides in [5, 200)) and scores."""
    starts = rng.uniform(0, 1000, (n, 2))
    boxes = np.concatenate([starts, starts + rng.uniform(5, 200, (n, 2))], axis=1).astype(np.float32)
    return boxes, rng.random(n, dtype=np.float32)


def ops_cases() -> list[BenchCase]:
    from vcl_fast.ops import (segment_nms, segment_nms_reference, similarity_map, similarity_map_reference,
                              similarity_map_torch_reference)

    torch, torchvision = _optional("torch"), _optional("torchvision")
    rng = np.random.default_rng(0)
    cases = []
    for n in SIM_SIZES:
        q = rng.standard_normal((n, SIM_TOKENS, SIM_DIM), dtype=np.float32)
        r = rng.standard_normal((n, SIM_TOKENS, SIM_DIM), dtype=np.float32)
        q_flat, r_flat = q.reshape(-1, SIM_DIM), r.reshape(-1, SIM_DIM)
        impls = {"vcl_fast": lambda q=q, r=r: similarity_map(q, r)}
        if torch is not None:
            tq, tr = torch.from_numpy(q), torch.from_numpy(r)
            impls["torch reference"] = lambda tq=tq, tr=tr: similarity_map_torch_reference(tq, tr)
        impls["numpy reference"] = lambda q=q, r=r: similarity_map_reference(q, r)
        impls["sgemm same FLOPs"] = lambda a=q_flat, b=r_flat: a @ b.T
        flops = 2.0 * (n * SIM_TOKENS) ** 2 * SIM_DIM
        cases.append(BenchCase(f"similarity_map Q=R={n} T={SIM_TOKENS} D={SIM_DIM}", impls, "vcl_fast",
                               "numpy reference", flops, "FLOP/s"))
    for n in NMS_SIZES:
        boxes, scores = random_boxes(n, rng)
        impls = {"vcl_fast": lambda b=boxes, s=scores: segment_nms(b, s, NMS_IOU)}
        if torchvision is not None:
            tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
            impls["torchvision"] = lambda tb=tb, ts=ts: torchvision.ops.nms(tb, ts, NMS_IOU)
        impls["numpy reference"] = lambda b=boxes, s=scores: segment_nms_reference(b, s, NMS_IOU)
        cases.append(BenchCase(f"segment_nms N={n} iou={NMS_IOU}", impls, "vcl_fast", "numpy reference",
                               float(n), "boxes/s"))
    return cases


def model_sources(model: str | None, preset: str, workdir: Path) -> dict[str, tuple]:
    """backend -> (extractor source, detector source) for the extract and localize suites: the exported
    ``model`` directory (onnxruntime only), or random-weight ``preset`` models (torch, and onnxruntime through
    an export into ``workdir``), or without torch the embedded model (onnxruntime only)."""
    from vcl_fast.runtime import available_backends
    from vcl_fast.runtime.manifest import default_model_dir

    backends = available_backends()
    if not model and _optional("torch") is None:
        model = str(default_model_dir())
    if model:
        if "onnxruntime" not in backends:
            raise CliError("--model needs onnxruntime, which is not installed")
        return {"onnxruntime": (model, model)}
    from vcl_fast.models import build_detector, build_extractor

    extractor, detector = build_extractor(preset), build_detector(preset)
    sources = {"torch": (extractor, detector)}
    if "onnxruntime" in backends:
        from vcl_fast.export.onnx import export_onnx

        export_onnx(workdir, extractor, detector)
        sources = {"onnxruntime": (str(workdir), str(workdir)), **sources}
    return sources


def extract_cases(sources: dict[str, tuple], threads: int | None) -> list[BenchCase]:
    from vcl_fast.runtime import get_backend

    frames = np.random.default_rng(0).integers(0, 256, (EXTRACT_FRAMES, *EXTRACT_SHAPE, 3), dtype=np.uint8)
    impls = {}
    for backend, (extractor, _) in sources.items():
        model = get_backend(backend).load_extractor(extractor, "cpu", threads, EXTRACT_FRAMES)
        impls[backend] = lambda m=model: m.embed(frames)
    names = list(impls)
    return [BenchCase(f"extract {EXTRACT_FRAMES} frames {EXTRACT_SHAPE[1]}x{EXTRACT_SHAPE[0]}", impls, names[0],
                      names[-1], float(EXTRACT_FRAMES), "frames/s")]


def localize_cases(sources: dict[str, tuple], threads: int | None) -> list[BenchCase]:
    from vcl_fast.api import Localizer

    rng = np.random.default_rng(0)
    cases = []
    for method in METHODS:
        impls = {}
        for backend, (extractor, detector) in sources.items():
            loc = Localizer(extractor, detector, backend=backend, method=method, threads=threads)
            size = loc.extractor.spec.input_size
            query = rng.integers(0, 256, (LOCALIZE_FRAMES, size, size, 3), dtype=np.uint8)
            reference = np.concatenate([query[LOCALIZE_FRAMES // 2:], query[:LOCALIZE_FRAMES // 2]])
            impls[backend] = lambda loc=loc, q=query, r=reference: loc.localize(q, r)
        names = list(impls)
        cases.append(BenchCase(f"localize {method} {LOCALIZE_FRAMES}x{LOCALIZE_FRAMES} frames", impls, names[0],
                               names[-1], 1.0, "pairs/s"))
    return cases


def _cmd_bench(args: argparse.Namespace) -> int:
    if not 0 <= args.min_time < float("inf"):
        raise CliError(f"--min-time must be a finite number of seconds >= 0 (0: each once), got {args.min_time}")
    if args.json:
        check_output_file(args.json)
    suites = SUITES if args.suite == "all" else (args.suite,)
    results = []
    with tempfile.TemporaryDirectory(prefix="vcl-fast-bench-") as workdir:
        needs_models = set(suites) & {"extract", "localize"}
        sources = model_sources(args.model, args.preset, Path(workdir)) if needs_models else {}
        for suite in suites:
            gpu = None
            if suite == "gpu":
                from vcl_fast import bench_gpu

                reason = bench_gpu.unavailable()
                if reason:
                    print(f"gpu suite skipped: {reason}", flush=True)
                    continue
                gpu = bench_gpu.GpuSuite(args.preset, Path(workdir) / "gpu", args.min_time)
            cases = {"ops": ops_cases, "extract": lambda: extract_cases(sources, args.threads),
                     "localize": lambda: localize_cases(sources, args.threads), "gpu": lambda: gpu.cases()}[suite]()
            suite_results = []
            for case in cases:
                case_results = run_case(case, args.min_time)
                print(format_results(case_results), flush=True)
                suite_results += case_results
            if gpu is not None:
                print(gpu.report(suite_results), flush=True)
            results += [{"suite": suite, **dataclasses.asdict(r)} for r in suite_results]
    if args.json:
        from vcl_fast.info import collect

        report = {"machine": {"processor": platform.processor(), "info": collect()}, "results": results}
        with atomic_write(args.json) as handle:
            json.dump(report, handle, indent=2)
            handle.write("\n")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time our kernels and models against their references on this machine",
                       description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="ops", choices=(*SUITES, "all"), help="default: ops")
    p.add_argument("--json", metavar="OUT.json", help="also write every timing as JSON")
    p.add_argument("--model", metavar="DIR", help="exported model for the extract/localize suites (default: "
                   "random-weight --preset models on every backend, or without torch the embedded model)")
    p.add_argument("--preset", default="tiny_cpu", choices=("micro", "tiny_cpu", "paper"),
                   help="random-weight models for the extract/localize suites without --model, and for the gpu "
                   "suite (default tiny_cpu; the gpu targets are for paper)")
    p.add_argument("--threads", type=int, default=None, help="backend intra-op threads (default: the backend's)")
    p.add_argument("--min-time", type=float, default=0.2, help="seconds spent timing each implementation (0: run each once)")
    p.set_defaults(func=_cmd_bench)
