"""Similarity map: compiled kernel (float32 and int16 precision) vs the torch (matmul + amax) and numpy
references, and the machine's sgemm.

Run: python -m pytest bench/bench_similarity.py --benchmark-enable
(about 2 minutes on 2 cores). The summary table printed at the end gives GFLOP/s (counting
2 * Q*T * R*T2 * D per map, whatever the arithmetic) and each kernel's speed relative to the torch reference
and to sgemm of the same FLOPs (torch.mm / numpy matmul of the (Q*T, D) x (D, R*T2) token product), from the
best round of each (the least disturbed one on a shared machine; pytest-benchmark's own table has the medians).
"""
import time

import numpy as np
import pytest
import torch

from vcl_fast.ops import similarity_map, similarity_map_reference, similarity_map_torch_reference, similarity_maps

TOKENS, DIM = 2, 256
SIZES = (64, 600, 1800)
ROUNDS = {64: 100, 600: 30, 1800: 5}
BATCH_QUERY_FRAMES, BATCH_REFERENCES, BATCH_FRAMES = 60, 1000, (60, 600)
# Pause before each benchmark: OpenBLAS (numpy) and OpenMP worker threads keep spinning for a while after a
# call and would otherwise steal the cores from the next implementation measured.
IDLE_SECONDS = 0.5


def flops(n_q, n_r):
    return 2 * n_q * TOKENS * n_r * TOKENS * DIM


@pytest.fixture(scope="module")
def results(request):
    """Best-round seconds per (name, size); printed as a summary table after the module's benchmarks."""
    table = {}
    yield table
    if table:
        with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
            print("\n" + summary(table))


def summary(table):
    lines = [f"similarity map, T={TOKENS}, D={DIM}, {torch.get_num_threads()} threads, best round:"]
    for size in SIZES:
        for kernel_name in ("kernel", "kernel_int16"):
            kernel = table.get((kernel_name, size))
            if kernel is None:
                continue
            gflop = flops(size, size) / 1e9
            line = f"  Q=R={size:5d}  {kernel_name} {gflop / kernel:6.1f} GFLOP/s"
            for name in ("kernel", "torch_reference", "numpy_reference", "sgemm_torch", "sgemm_numpy"):
                if (name, size) in table and name != kernel_name:
                    seconds = table[(name, size)]
                    line += f" | {name} {gflop / seconds:6.1f} (x{seconds / kernel:.2f})"
            lines.append(line)
    for name in ("batched_kernel", "batched_kernel_int16", "per_pair_kernel", "per_pair_torch_reference"):
        if (name, "batch") in table:
            seconds = table[(name, "batch")]
            lines.append(f"  1 query x {BATCH_REFERENCES} references: {name} {seconds * 1e3:.0f} ms "
                         f"({table['batch_flops'] / seconds / 1e9:.1f} GFLOP/s)")
    return "\n".join(lines)


def run(benchmark, results, key, fn, rounds, gflop=None):
    time.sleep(IDLE_SECONDS)
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    if not benchmark.disabled:
        results[key] = benchmark.stats.stats.min
        if gflop is not None:
            benchmark.extra_info["gflop_per_s_median"] = gflop / benchmark.stats.stats.median


@pytest.fixture(scope="module", params=SIZES)
def pair(request):
    rng = np.random.default_rng(0)
    size = request.param
    return size, rng.standard_normal((size, TOKENS, DIM), dtype=np.float32), rng.standard_normal(
        (size, TOKENS, DIM), dtype=np.float32)


@pytest.mark.parametrize("name", ["kernel", "kernel_int16", "torch_reference", "numpy_reference", "sgemm_torch",
                                  "sgemm_numpy"])
def test_similarity_map(benchmark, results, pair, name):
    size, query, reference = pair
    tq, tr = torch.from_numpy(query), torch.from_numpy(reference)
    a, b = query.reshape(-1, DIM), reference.reshape(-1, DIM)
    ta, tb = tq.reshape(-1, DIM), tr.reshape(-1, DIM)
    fn = {
        "kernel": lambda: similarity_map(query, reference),
        "kernel_int16": lambda: similarity_map(query, reference, precision="int16"),
        "torch_reference": lambda: similarity_map_torch_reference(tq, tr),
        "numpy_reference": lambda: similarity_map_reference(query, reference),
        "sgemm_torch": lambda: torch.mm(ta, tb.T),
        "sgemm_numpy": lambda: a @ b.T,
    }[name]
    benchmark.group = f"similarity Q=R={size}"
    run(benchmark, results, (name, size), fn, ROUNDS[size], flops(size, size) / 1e9)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(1)
    query = rng.standard_normal((BATCH_QUERY_FRAMES, TOKENS, DIM), dtype=np.float32)
    lengths = rng.integers(BATCH_FRAMES[0], BATCH_FRAMES[1] + 1, size=BATCH_REFERENCES)
    references = [rng.standard_normal((n, TOKENS, DIM), dtype=np.float32) for n in lengths]
    return query, references


@pytest.mark.parametrize("name", ["batched_kernel", "batched_kernel_int16", "per_pair_kernel",
                                  "per_pair_torch_reference"])
def test_one_query_many_references(benchmark, results, batch, name):
    query, references = batch
    results["batch_flops"] = sum(flops(len(query), len(r)) for r in references)
    tq, trs = torch.from_numpy(query), [torch.from_numpy(r) for r in references]
    fn = {
        "batched_kernel": lambda: similarity_maps(query, references),
        "batched_kernel_int16": lambda: similarity_maps(query, references, precision="int16"),
        "per_pair_kernel": lambda: [similarity_map(query, r) for r in references],
        "per_pair_torch_reference": lambda: [similarity_map_torch_reference(tq, r) for r in trs],
    }[name]
    benchmark.group = f"similarity 1 x {BATCH_REFERENCES} references"
    run(benchmark, results, (name, "batch"), fn, 3, results["batch_flops"] / 1e9)
