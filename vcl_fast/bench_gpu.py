"""``vcl-fast bench --suite gpu``: the GPU engines and kernels against torch on one CUDA device, with the
roofline and speed-up targets of the GPU work computed and printed.

Cases (every implementation synchronises the device before it returns, so a time is the GPU time of a call):

- similarity map, Q = R = 600 frames, T = 2 tokens, D = 256, float16 features: ours (CUDA, tensor cores) vs
  torch ``matmul`` + ``amax`` in float16 and the float32 torch reference; and one query against 1,000
  references of 600 frames in one call (``similarity_maps``) vs one torch matmul over all of them;
- segment NMS on the device: 8,400 boxes (one map's anchors) vs ``torchvision.ops.nms``, and 1,000 pairs x
  50 boxes with groups vs ``torchvision.ops.batched_nms``;
- the extractor (64 frames) and the detector (16 maps): torch eager float32, torch float16 autocast,
  ONNX Runtime CUDA (when this onnxruntime has it) and TensorRT fp16 (when TensorRT is importable);
- end to end, pairs/s of one query against 16 references of 60 frames (360p, on the device):
  :class:`~vcl_fast.runtime.gpu_pipeline.GpuPipeline` on each engine vs the torch backend of the
  Localizer on CUDA (torch eager float32: numpy preprocessing, per-stage host copies), the reference.

Targets: the similarity kernel at >= 70% of its roofline (the larger of its tensor-core time and its memory
time at the measured peaks: float16 matmul 8192^3 through cuBLAS, and a 1 GiB device-to-device copy); the
end-to-end pipeline at >= 5x the pairs/s of torch eager. Models are random-weight presets (``--preset``;
speed does not depend on the weights), exported to ONNX and built into TensorRT engines in a temporary
directory.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vcl_fast.benchmark import BenchCase, BenchResult, time_callable

SIM_FRAMES, SIM_TOKENS, SIM_DIM = 600, 2, 256
BATCH_REFERENCES = 1000
NMS_BOXES, NMS_PAIRS, NMS_PER_PAIR, NMS_IOU = 8400, 1000, 50, 0.3
EXTRACT_BATCH, DETECT_BATCH = 64, 16
E2E_FRAMES, E2E_REFERENCES, E2E_SHAPE = 60, 16, (360, 640)
TARGET_ROOFLINE, TARGET_SPEEDUP = 0.70, 5.0
TORCH_EAGER = "torch eager fp32"
E2E_CASE = f"end to end 1 x {E2E_REFERENCES} pairs of {E2E_FRAMES} frames"


@dataclass(frozen=True)
class Roofline:
    """Minimal work of one call: floating-point operations and bytes moved to or from device memory."""

    flops: float
    bytes: float

    def seconds(self, peak_flops: float, peak_bandwidth: float) -> float:
        """The roofline time: the larger of the compute time and the memory time at the peaks."""
        return max(self.flops / peak_flops, self.bytes / peak_bandwidth)


def similarity_roofline(query_frames: int, reference_frames: int, pairs: int = 1, tokens: int = SIM_TOKENS,
                        dim: int = SIM_DIM, itemsize: int = 2) -> Roofline:
    """``pairs`` maps of one query against references of equal length: every token dot product once, the
    features read once and the float32 maps written once."""
    flops = 2.0 * query_frames * tokens * reference_frames * tokens * dim * pairs
    read = (query_frames + reference_frames * pairs) * tokens * dim * itemsize
    return Roofline(flops, read + 4.0 * query_frames * reference_frames * pairs)


def unavailable() -> str | None:
    """Why the GPU suite cannot run here (None when it can)."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    import torch

    from vcl_fast._ext import cuda_available

    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    if not cuda_available():
        return "vcl_fast._C has no CUDA kernels (rebuild with nvcc and VCL_FAST_CUDA=1)"
    return None


def synchronized(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` followed by a device synchronisation."""
    import torch

    def call():
        fn()
        torch.cuda.synchronize()

    return call


def measured_peaks(min_time: float = 0.2) -> tuple[float, float]:
    """(float16 tensor-core FLOP/s of a cuBLAS 8192^3 matmul, bytes/s of a 1 GiB device-to-device copy)."""
    import torch

    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.float16)
    b = torch.randn(n, n, device="cuda", dtype=torch.float16)
    matmul = np.median(time_callable(synchronized(lambda: a @ b), min_time))
    src = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    copy = np.median(time_callable(synchronized(lambda: dst.copy_(src)), min_time))
    return 2.0 * n**3 / matmul, 2.0 * src.numel() / copy


def _random_features(frames: int, generator, dtype):
    """(frames, T, D) standard normal features on the GPU."""
    import torch

    return torch.randn(frames, SIM_TOKENS, SIM_DIM, device="cuda", generator=generator).to(dtype)


def _torch_similarity(query, references):
    """torch matmul + amax over token pairs in the features' dtype (features assumed unit vectors)."""
    (n_q, t_q, dim), (n_r, t_r, _) = query.shape, references.shape
    product = query.reshape(n_q * t_q, dim) @ references.reshape(n_r * t_r, dim).T
    return product.reshape(n_q, t_q, n_r, t_r).amax(dim=(1, 3))


class GpuSuite:
    """The cases above for one preset; ``report(results)`` gives the roofline and target lines."""

    def __init__(self, preset: str, workdir: str | os.PathLike, min_time: float = 0.2):
        self.preset, self.workdir, self.min_time = preset, Path(workdir), min_time
        self.rooflines: dict[str, Roofline] = {}
        self.peaks: tuple[float, float] | None = None
        self.ort_stream = None

    def cases(self) -> list[BenchCase]:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False  # float32 means float32 in every torch case
        self.peaks = measured_peaks(self.min_time)
        return [*self.similarity_cases(), *self.nms_cases(), *self.model_cases()]

    def similarity_cases(self) -> list[BenchCase]:
        import torch
        import torch.nn.functional as F

        from vcl_fast.ops import similarity_map, similarity_map_torch_reference, similarity_maps

        generator = torch.Generator(device="cuda").manual_seed(0)
        q = F.normalize(_random_features(SIM_FRAMES, generator, torch.float32), dim=-1)
        r = F.normalize(_random_features(SIM_FRAMES, generator, torch.float32), dim=-1)
        q16, r16 = q.half(), r.half()
        single = f"similarity_map {SIM_FRAMES}x{SIM_FRAMES} T={SIM_TOKENS} D={SIM_DIM} fp16"
        self.rooflines[single] = similarity_roofline(SIM_FRAMES, SIM_FRAMES)
        cases = [BenchCase(single, {
            "vcl_fast CUDA": synchronized(lambda: similarity_map(q16, r16, normalized=True)),
            "torch matmul+amax fp16": synchronized(lambda: _torch_similarity(q16, r16)),
            "torch reference fp32": synchronized(lambda: similarity_map_torch_reference(q, r, normalized=True)),
        }, "vcl_fast CUDA", "torch matmul+amax fp16", self.rooflines[single].flops, "FLOP/s")]
        refs = F.normalize(_random_features(SIM_FRAMES * BATCH_REFERENCES, generator, torch.float32), dim=-1).half()
        ref_list = list(refs.split(SIM_FRAMES))
        batched = f"similarity_maps 1 x {BATCH_REFERENCES:,} maps of {SIM_FRAMES}x{SIM_FRAMES} fp16"
        self.rooflines[batched] = similarity_roofline(SIM_FRAMES, SIM_FRAMES, BATCH_REFERENCES)
        cases.append(BenchCase(batched, {
            "vcl_fast CUDA": synchronized(lambda: similarity_maps(q16, ref_list, normalized=True)),
            "torch matmul+amax fp16": synchronized(lambda: _torch_similarity(q16, refs)),
        }, "vcl_fast CUDA", "torch matmul+amax fp16", self.rooflines[batched].flops, "FLOP/s"))
        return cases

    def nms_cases(self) -> list[BenchCase]:
        import torch
        import torchvision

        from vcl_fast.bench_commands import random_boxes
        from vcl_fast.ops import segment_nms

        rng = np.random.default_rng(0)
        boxes, scores = (torch.from_numpy(a).cuda() for a in random_boxes(NMS_BOXES, rng))
        cases = [BenchCase(f"segment_nms N={NMS_BOXES} iou={NMS_IOU} on the GPU", {
            "vcl_fast CUDA": synchronized(lambda: segment_nms(boxes, scores, NMS_IOU)),
            "torchvision.ops.nms": synchronized(lambda: torchvision.ops.nms(boxes, scores, NMS_IOU)),
        }, "vcl_fast CUDA", "torchvision.ops.nms", float(NMS_BOXES), "boxes/s")]
        many, many_scores = (torch.from_numpy(a).cuda() for a in random_boxes(NMS_PAIRS * NMS_PER_PAIR, rng))
        groups = torch.arange(NMS_PAIRS, device="cuda").repeat_interleave(NMS_PER_PAIR)
        cases.append(BenchCase(f"segment_nms {NMS_PAIRS} pairs x {NMS_PER_PAIR} boxes, groups, on the GPU", {
            "vcl_fast CUDA": synchronized(lambda: segment_nms(many, many_scores, NMS_IOU, groups)),
            "torchvision batched_nms": synchronized(
                lambda: torchvision.ops.batched_nms(many, many_scores, groups, NMS_IOU)),
        }, "vcl_fast CUDA", "torchvision batched_nms", float(NMS_PAIRS * NMS_PER_PAIR), "boxes/s"))
        return cases

    def _engines(self, extractor, detector) -> dict[str, tuple]:
        """engine name -> (extractor runner, detector runner, GpuPipeline factory), fastest kind first."""
        import torch

        from vcl_fast.export.onnx import export_onnx
        from vcl_fast.runtime.gpu_pipeline import GpuPipeline, OrtCudaRunner, TensorRTRunner, TorchDeviceRunner
        from vcl_fast.runtime.manifest import load_component

        device = torch.device("cuda", 0)
        onnx_dir = self.workdir / "onnx"
        export_onnx(onnx_dir, extractor, detector)
        engines = {}
        if importlib.util.find_spec("tensorrt") is not None:
            from vcl_fast.runtime.tensorrt_build import build_engines
            from vcl_fast.runtime.tensorrt_runtime import load_engine

            build_engines(onnx_dir, self.workdir / "trt_fp16", "fp16")
            runners = [TensorRTRunner(load_engine(self.workdir / "trt_fp16", name)[0], device)
                       for name in ("extractor", "detector")]
            engines["TensorRT fp16"] = (*runners, lambda: GpuPipeline.from_engines(self.workdir / "trt_fp16"))
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            self.ort_stream = torch.cuda.Stream(device)  # its own stream: every timed call ends in a device sync
            runners = [OrtCudaRunner(load_component(onnx_dir, name), device, self.ort_stream.cuda_stream)
                       for name in ("extractor", "detector")]
            engines["ONNX Runtime CUDA"] = (*runners, lambda: GpuPipeline.from_onnx(onnx_dir))
        engines["torch fp16 autocast"] = (TorchDeviceRunner(extractor, device, amp=True),
                                          TorchDeviceRunner(detector, device, amp=True),
                                          lambda: GpuPipeline.from_torch(extractor, detector, amp=True))
        engines[TORCH_EAGER] = (TorchDeviceRunner(extractor, device), TorchDeviceRunner(detector, device),
                                lambda: GpuPipeline.from_torch(extractor, detector))
        return engines

    def model_cases(self) -> list[BenchCase]:
        import torch

        from vcl_fast.api import Localizer
        from vcl_fast.models import build_detector, build_extractor

        extractor, detector = build_extractor(self.preset).eval(), build_detector(self.preset).eval()
        engines = self._engines(extractor, detector)
        ours = next(iter(engines))
        size, map_size = extractor.config.img_size, detector.config.input_size
        images = torch.randn(EXTRACT_BATCH, 3, size, size, device="cuda")
        maps = torch.rand(DETECT_BATCH, 3, map_size, map_size, device="cuda") * 2 - 1
        cases = [
            BenchCase(f"extractor {self.preset} {EXTRACT_BATCH} frames {size}px",
                      {name: synchronized(lambda run=e[0]: run(images)) for name, e in engines.items()},
                      ours, TORCH_EAGER, float(EXTRACT_BATCH), "frames/s"),
            BenchCase(f"detector {self.preset} {DETECT_BATCH} maps {map_size}px",
                      {name: synchronized(lambda run=e[1]: run(maps)) for name, e in engines.items()},
                      ours, TORCH_EAGER, float(DETECT_BATCH), "maps/s"),
        ]
        rng = np.random.default_rng(0)
        frames = torch.from_numpy(rng.integers(0, 256, (E2E_FRAMES * (E2E_REFERENCES + 1), *E2E_SHAPE, 3),
                                               dtype=np.uint8)).cuda()
        query, references = frames[:E2E_FRAMES], list(frames[E2E_FRAMES:].split(E2E_FRAMES))
        impls = {}
        for name, (_, _, make) in engines.items():
            pipeline = make()
            impls[f"GpuPipeline {name}"] = synchronized(lambda p=pipeline: p.localize_many(query, references))
        localizer = Localizer(extractor, detector, backend="torch", device="cuda")
        host_query, host_references = query.cpu().numpy(), [r.cpu().numpy() for r in references]
        impls[f"Localizer {TORCH_EAGER}"] = synchronized(
            lambda: localizer.localize_many(host_query, host_references))
        cases.append(BenchCase(E2E_CASE, impls, f"GpuPipeline {ours}", f"Localizer {TORCH_EAGER}",
                               float(E2E_REFERENCES), "pairs/s"))
        return cases

    def report(self, results: list[BenchResult]) -> str:
        """Roofline fractions of the similarity cases and the end-to-end speed-up, against their targets."""
        return targets_report(results, self.rooflines, self.peaks)


def targets_report(results: list[BenchResult], rooflines: dict[str, Roofline],
                   peaks: tuple[float, float]) -> str:
    """Lines: per roofline case its fraction of the roofline (target >= 70%), then the best pipeline's
    end-to-end speed-up over the torch eager reference (target >= 5x)."""
    peak_flops, peak_bandwidth = peaks
    lines = [f"GPU targets (measured peaks: float16 tensor cores {peak_flops / 1e12:.0f} TFLOP/s, "
             f"memory {peak_bandwidth / 1e9:.0f} GB/s)"]
    for result in results:
        if result.case in rooflines and result.impl.startswith("vcl_fast"):
            bound = rooflines[result.case].seconds(peak_flops, peak_bandwidth)
            fraction = bound / result.median_s
            lines.append(f"  {result.case}: {result.median_s * 1e6:.1f} us, roofline {bound * 1e6:.1f} us -> "
                         f"{fraction:.0%} of roofline (target >= {TARGET_ROOFLINE:.0%}): "
                         f"{'met' if fraction >= TARGET_ROOFLINE else 'MISSED'}")
    e2e = {r.impl: r for r in results if r.case == E2E_CASE}
    reference = e2e.get(f"Localizer {TORCH_EAGER}")
    pipelines = [r for name, r in e2e.items() if name.startswith("GpuPipeline")]
    if reference is not None and pipelines:
        best = min(pipelines, key=lambda r: r.median_s)
        speedup = reference.median_s / best.median_s
        lines.append(f"  end to end: {best.impl} {E2E_REFERENCES / best.median_s:.1f} pairs/s = {speedup:.1f}x "
                     f"{reference.impl} (target >= {TARGET_SPEEDUP:.0f}x): "
                     f"{'met' if speedup >= TARGET_SPEEDUP else 'MISSED'}")
    return "\n".join(lines)
