"""Classical temporal-alignment localizers of the VCSL benchmark (HV, TN, DP, DTW) on a similarity map.

``align(sim, method, **overrides)`` takes a ``(Q, R)`` float map (rows = query frames, columns = reference
frames) and returns ``(N, 5)`` float32 rows ``[q_start, r_start, q_end, r_end, score]`` in FRAME units with
exclusive ends (a copy over query frames ``a..b`` is ``[a, b + 1)``), the same output as the detector. Each
method has a frozen parameter dataclass whose defaults are the benchmark's tuned values; any field can be
overridden by keyword (type-checked). Scores: TN, DP and DTW give the mean similarity along the path the box
was cut from, HV the mean similarity along the box's whole diagonal.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from vcl_fast.config import apply_overrides
from vcl_fast.eval.localizers.dp import DPParams, dp
from vcl_fast.eval.localizers.dtw import DTWParams, dtw
from vcl_fast.eval.localizers.hv import HVParams, hv
from vcl_fast.eval.localizers.params import LocalizerParams
from vcl_fast.eval.localizers.tn import TNParams, tn


@dataclasses.dataclass(frozen=True)
class Localizer:
    """A localizer: its parameter preset and the function ``run(sim, params) -> (N, 5) boxes`` (params of the
    preset's type)."""

    preset: LocalizerParams
    run: Callable[[np.ndarray, Any], np.ndarray]


LOCALIZERS: dict[str, Localizer] = {
    "hv": Localizer(HVParams(), hv),
    "tn": Localizer(TNParams(), tn),
    "dp": Localizer(DPParams(), dp),
    "dtw": Localizer(DTWParams(), dtw),
}


def get_localizer(method: str) -> Localizer:
    """The registered localizer ``method`` (case-insensitive); ValueError naming the known ones otherwise."""
    if not isinstance(method, str) or method.lower() not in LOCALIZERS:
        raise ValueError(f"unknown localizer {method!r}; choose one of: {', '.join(LOCALIZERS)}")
    return LOCALIZERS[method.lower()]


def localizer_params(method: str, overrides: Mapping[str, Any] | Iterable[str] | None = None) -> LocalizerParams:
    """The preset of ``method`` with overrides (a mapping or ``key=value`` strings; unknown names and wrong
    types raise)."""
    return apply_overrides(get_localizer(method).preset, overrides)


def align(sim: np.ndarray, method: str = "tn", **overrides) -> np.ndarray:
    """Copied segments of a ``(Q, R)`` similarity map found by ``method`` (``hv``, ``tn``, ``dp``, ``dtw``).

    Returns ``(N, 5)`` float32 ``[q_s, r_s, q_e, r_e, score]`` in frames (exclusive ends); ``(0, 5)`` for an
    empty map or when nothing is found.
    """
    localizer = get_localizer(method)
    return localizer.run(sim, apply_overrides(localizer.preset, overrides))


__all__ = [
    "DPParams", "DTWParams", "HVParams", "LOCALIZERS", "Localizer", "LocalizerParams", "TNParams", "align",
    "dp", "dtw", "get_localizer", "hv", "localizer_params", "tn",
]
