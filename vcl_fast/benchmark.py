"""`vcl-fast bench`: times each implementation of an operation side by side in one run.

A case is a name plus a mapping implementation-name -> zero-argument callable; the first implementation is
the one under test, one other is marked as the reference. Reported per implementation: median and best
wall time over repeats, and the speed ratio against the reference and against the fastest peer (every
implementation that is neither ours nor the reference). Machines are noisy: compare ratios from one run.
"""
from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class BenchCase:
    """Implementations of one operation on one input; ``ours`` and ``reference`` name two of them."""

    name: str
    impls: dict[str, Callable[[], object]]
    ours: str
    reference: str
    work: float | None = None  # e.g. FLOPs or items per call, for a rate column
    work_unit: str = ""


@dataclass
class BenchResult:
    case: str
    impl: str
    median_s: float
    best_s: float
    repeats: int
    rate: float | None = None
    rate_unit: str = ""
    ratios: dict[str, float] = field(default_factory=dict)


def time_callable(fn: Callable[[], object], min_time: float = 0.2, max_repeats: int = 50) -> list[float]:
    """Wall times (s) of repeated calls after one warm-up, until ``min_time`` is spent or ``max_repeats`` reached."""
    fn()
    times: list[float] = []
    gc.disable()
    try:
        while len(times) < max_repeats and (sum(times) < min_time or len(times) < 3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return times


def run_case(case: BenchCase, min_time: float = 0.2) -> list[BenchResult]:
    """Time every implementation of ``case``; ratios are reference/ours-style speed-ups (higher = faster)."""
    if case.ours not in case.impls or case.reference not in case.impls:
        raise ValueError(f"bench case {case.name!r}: ours/reference must name implementations of it")
    results = []
    for impl, fn in case.impls.items():
        times = time_callable(fn, min_time)
        median = statistics.median(times)
        rate = case.work / median if case.work else None
        results.append(BenchResult(case.name, impl, median, min(times), len(times), rate, case.work_unit))
    by_impl = {r.impl: r for r in results}
    peers = [r for r in results if r.impl not in (case.ours, case.reference)]
    best_peer = min(peers, key=lambda r: r.median_s) if peers else None
    for r in results:
        r.ratios["vs_reference"] = by_impl[case.reference].median_s / r.median_s
        if best_peer is not None:
            r.ratios[f"vs_best_peer({best_peer.impl})"] = best_peer.median_s / r.median_s
    return results


def format_results(results: list[BenchResult]) -> str:
    """A plain-text table, one row per (case, implementation)."""
    header = f"{'case':<40} {'impl':<22} {'median ms':>10} {'best ms':>9} {'rate':>16}  speed-ups"
    lines = [header, "-" * len(header)]
    for r in results:
        rate = f"{r.rate:.3g} {r.rate_unit}" if r.rate else ""
        ratios = ", ".join(f"{k} {v:.2f}x" for k, v in r.ratios.items())
        lines.append(f"{r.case:<40} {r.impl:<22} {r.median_s * 1e3:>10.3f} {r.best_s * 1e3:>9.3f} {rate:>16}  {ratios}")
    return "\n".join(lines)
