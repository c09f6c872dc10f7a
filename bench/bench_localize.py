"""Extractor throughput and whole-pipeline pairs per second, per runtime backend (and method).

Random ``tiny_cpu`` weights (speed does not depend on them), exported once for ONNX Runtime; the inputs are
those of ``vcl-fast bench --suite extract|localize`` (vcl_fast.bench_commands). Run from the repository root:

    nice -n 10 python -m pytest bench/bench_localize.py --benchmark-enable --benchmark-columns=min,median,rounds
"""
import itertools
import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from vcl_fast.bench_commands import METHODS, extract_cases, localize_cases, model_sources  # noqa: E402

BACKENDS = ("onnxruntime", "torch")
THREADS = int(os.environ.get("VCL_FAST_BENCH_THREADS", "1"))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    import torch

    torch.set_num_threads(THREADS)
    return model_sources(None, "tiny_cpu", tmp_path_factory.mktemp("tiny_cpu_model"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_extract(benchmark, sources, backend):
    (case,) = extract_cases({backend: sources[backend]}, THREADS)
    benchmark.extra_info["frames_per_call"] = case.work
    benchmark(case.impls[backend])


@pytest.mark.parametrize("backend, method", itertools.product(BACKENDS, METHODS))
def test_localize_pair(benchmark, sources, backend, method):
    (case,) = [c for c in localize_cases({backend: sources[backend]}, THREADS) if c.name.split()[1] == method]
    benchmark(case.impls[backend])
