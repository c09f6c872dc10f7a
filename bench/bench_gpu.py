"""GPU engines and kernels (skipped without a CUDA GPU): the cases of ``vcl-fast bench --suite gpu``
(vcl_fast.bench_gpu) as pytest-benchmark tests. The command also prints the roofline and speed-up targets.

    python -m pytest bench/bench_gpu.py --benchmark-enable --benchmark-columns=min,median,rounds

Models: random weights of the ``paper`` preset (``VCL_FAST_BENCH_PRESET`` to change), exported to ONNX and,
when TensorRT is importable, built into fp16 engines once per session.
"""
import os

import pytest

from vcl_fast.bench_gpu import E2E_CASE, TORCH_EAGER, GpuSuite, unavailable

pytestmark = pytest.mark.cuda
PRESET = os.environ.get("VCL_FAST_BENCH_PRESET", "paper")
ENGINES = ("TensorRT fp16", "ONNX Runtime CUDA", "torch fp16 autocast", TORCH_EAGER)
CASES = [
    *(("similarity_map ", impl) for impl in ("vcl_fast CUDA", "torch matmul+amax fp16", "torch reference fp32")),
    *(("similarity_maps ", impl) for impl in ("vcl_fast CUDA", "torch matmul+amax fp16")),
    *(("segment_nms N=", impl) for impl in ("vcl_fast CUDA", "torchvision.ops.nms")),
    *(("segment_nms 1000 pairs", impl) for impl in ("vcl_fast CUDA", "torchvision batched_nms")),
    *(("extractor ", impl) for impl in ENGINES),
    *(("detector ", impl) for impl in ENGINES),
    *((E2E_CASE, f"GpuPipeline {impl}") for impl in ENGINES),
    (E2E_CASE, f"Localizer {TORCH_EAGER}"),
]


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    return GpuSuite(PRESET, tmp_path_factory.mktemp("gpu_bench")).cases()


@pytest.mark.parametrize("case_prefix, impl", CASES)
def test_gpu(benchmark, cases, case_prefix, impl):
    (case,) = [c for c in cases if c.name.startswith(case_prefix)]
    if impl not in case.impls:
        pytest.skip(f"{impl} is not available here")
    benchmark.extra_info["work_per_call"] = f"{case.work:g} {case.work_unit}"
    benchmark(case.impls[impl])
