"""Speed of the classical localizers (HV, TN, DP, DTW) on planted-copy maps of 600x600 and 1,800x1,800.

``compiled``: the path searches of TN, DP and DTW run in ``vcl_fast._C``; ``reference``: their numpy
references (what runs without the extension). HV is numpy only.
Run: ``python -m pytest bench/bench_localizers.py --benchmark-enable``.
"""
import warnings

import numpy as np
import pytest

from vcl_fast.eval.localizers import align
from vcl_fast.ops import alignment_paths

SIZES = [600, 1800]


def planted_map(size: int) -> np.ndarray:
    """Background uniform 0..0.3 plus N(0, 0.05) with two copies (slopes 1.3 and 0.7), float32."""
    rng = np.random.default_rng(size)
    sim = rng.uniform(0.0, 0.3, (size, size)) + rng.normal(0.0, 0.05, (size, size))
    copies = [(size // 10, size // 5, size // 3, size * 13 // 30), (size // 2, size * 3 // 5, size // 4, size * 7 // 40)]
    for q0, r0, q_len, r_len in copies:
        steps = 4 * max(q_len, r_len)
        t = np.arange(steps) / steps
        sim[q0 + (t * q_len).astype(int), r0 + (t * r_len).astype(int)] = rng.uniform(0.6, 0.9, steps)
    return sim.astype(np.float32)


# HV is numpy only; TN, DP and DTW run their path searches compiled or as the numpy references.
CASES = [("compiled", "hv")] + [(impl, method) for impl in ("compiled", "reference") for method in ("tn", "dp", "dtw")]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("implementation, method", CASES)
def test_align(benchmark, monkeypatch, implementation, method, size):
    sim = planted_map(size)
    if implementation == "reference":
        monkeypatch.setattr(alignment_paths, "extension", lambda: None)
        warnings.filterwarnings("ignore", "vcl_fast.ops", RuntimeWarning)
    benchmark.group = f"align {size}x{size}"
    rounds = 3 if implementation == "reference" else 10
    boxes = benchmark.pedantic(align, args=(sim, method), rounds=rounds, warmup_rounds=1)
    assert len(boxes) > 0
