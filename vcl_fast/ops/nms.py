"""Greedy non-maximum suppression of segment boxes ``[q_s, r_s, q_e, r_e]``.

Rules shared by the compiled kernels and the numpy reference:

- Area of a box is ``(q_e - q_s) * (r_e - r_s)``, with no +1 (torchvision's convention too).
- A box is suppressed by a kept box of the same group when their IoU is strictly greater than
  ``iou_threshold``; a box exactly at the threshold is kept (torchvision.ops.nms's rule).
- Zero-area boxes are valid; IoU 0/0 is defined as 0, so they neither suppress nor get suppressed.
- Boxes and scores are converted to float32 and IoU is computed in float32 (like torchvision for float32
  input); the threshold is compared exactly, as a float64.
- Boxes are visited by decreasing score; equal scores keep their input order (stable by index).
  The kept indices come back in that order across all groups.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from vcl_fast._ext import cuda_available, extension, extension_error, warn_fallback
from vcl_fast.ops._arrays import (
    NUMPY,
    TORCH_CPU,
    array_kind,
    current_stream,
    device_view,
    dtype_name,
    gpu_as_contiguous,
    gpu_empty,
    gpu_from_host,
    gpu_to_host,
    like_input,
    to_numpy,
)

FLOAT_DTYPES = ("float16", "float32", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32")
MAX_BOXES = 2**31 - 1  # kernels index boxes with 32-bit integers


def segment_nms(boxes: Any, scores: Any, iou_threshold: float, groups: Any = None) -> Any:
    """Indices of the boxes kept by greedy NMS, ordered by decreasing score.

    Args:
        boxes: (N, 4) float16/float32/float64 boxes ``[q_s, r_s, q_e, r_e]`` with q_e >= q_s and r_e >= r_s.
        scores: (N,) float16/float32/float64 scores, finite.
        iou_threshold: boxes whose IoU with a higher-scoring kept box is > this are discarded (>= 0).
        groups: optional (N,) integer group id per box (e.g. the query-reference pair a box belongs to);
            boxes of different groups never suppress each other, so many pairs go in one call.

    Returns:
        (K,) int64 indices into ``boxes``, as a numpy array, torch tensor or CuPy array like ``boxes``,
        on the same device. Class-agnostic; see the module docstring for the exact rules.
    """
    kind, n = _check_inputs(boxes, scores, iou_threshold, groups)
    threshold = float(iou_threshold)
    if kind in (NUMPY, TORCH_CPU):
        return like_input(_segment_nms_cpu(*_host_arrays(boxes, scores, groups), threshold), kind)
    if n == 0:
        return gpu_empty((0,), np.int64, boxes, kind)
    return _segment_nms_gpu(boxes, scores, groups, threshold, kind, n)


def _segment_nms_cpu(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray | None, threshold: float) -> np.ndarray:
    ext = extension()
    if ext is None:
        warn_fallback("segment_nms", extension_error())
        return segment_nms_reference(boxes, scores, threshold, groups)
    ok, keep = ext.segment_nms_cpu(boxes, scores, groups, threshold)
    if not ok:
        _check_values(boxes, scores)
        raise RuntimeError("segment_nms_cpu reported invalid values that _check_values did not find")
    return keep


def _segment_nms_gpu(boxes: Any, scores: Any, groups: Any, threshold: float, kind: str, n: int) -> Any:
    boxes = gpu_as_contiguous(boxes, np.float32, kind)
    scores = gpu_as_contiguous(scores, np.float32, kind)
    groups = None if groups is None else gpu_as_contiguous(groups, np.int64, kind)
    ext = extension()
    if ext is None or not cuda_available():
        warn_fallback("segment_nms", extension_error() or "the extension was built without CUDA or sees no GPU")
        host_boxes, host_scores, host_groups = _gpu_to_host(boxes, scores, groups, kind)
        return gpu_from_host(segment_nms_reference(host_boxes, host_scores, threshold, host_groups), boxes, kind)
    keep = gpu_empty((n,), np.int64, boxes, kind)
    ok, count = ext.segment_nms_cuda(
        device_view(boxes).ptr,
        device_view(scores).ptr,
        0 if groups is None else device_view(groups).ptr,
        n,
        threshold,
        device_view(keep).ptr,
        current_stream(boxes, kind),
    )
    if not ok:
        host_boxes, host_scores, _ = _gpu_to_host(boxes, scores, None, kind)
        _check_values(host_boxes, host_scores)
        raise RuntimeError("segment_nms_cuda reported invalid values that _check_values did not find")
    return keep[:count]


def segment_nms_reference(boxes: Any, scores: Any, iou_threshold: float, groups: Any = None) -> np.ndarray:
    """Plain greedy NMS in numpy, same rules as ``segment_nms`` (used by tests and benchmarks).

    Takes numpy arrays or torch CPU tensors; returns (K,) int64 numpy indices by decreasing score.
    """
    _check_inputs(boxes, scores, iou_threshold, groups)
    boxes, scores, groups = _host_arrays(boxes, scores, groups)
    _check_values(boxes, scores)
    n = len(scores)
    threshold = float(iou_threshold)
    order = np.argsort(-scores, kind="stable")
    q_s, r_s, q_e, r_e = np.ascontiguousarray(boxes[order].T)
    areas = (q_e - q_s) * (r_e - r_s)
    group = np.zeros(n, dtype=np.int64) if groups is None else groups[order]
    suppressed = np.zeros(n, dtype=bool)
    for k in range(n):
        if suppressed[k]:
            continue
        rest = slice(k + 1, n)
        width = np.maximum(np.minimum(q_e[k], q_e[rest]) - np.maximum(q_s[k], q_s[rest]), np.float32(0))
        height = np.maximum(np.minimum(r_e[k], r_e[rest]) - np.maximum(r_s[k], r_s[rest]), np.float32(0))
        inter = width * height
        union = areas[k] + areas[rest] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, inter / union, np.float32(0))
        suppressed[rest] |= (iou.astype(np.float64) > threshold) & (group[rest] == group[k])
    return order[~suppressed].astype(np.int64)


def _check_values(boxes: np.ndarray, scores: np.ndarray) -> None:
    """ValueError for non-finite values or inverted boxes in float32 (N, 4) boxes and (N,) scores."""
    bad = ~np.isfinite(boxes).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"boxes must be finite (after conversion to float32); box {i} is {boxes[i].tolist()}")
    bad = ~np.isfinite(scores)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"scores must be finite (after conversion to float32); score {i} is {scores[i]}")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"boxes must satisfy q_end >= q_start and r_end >= r_start ([q_s, r_s, q_e, r_e]); "
            f"box {i} is {boxes[i].tolist()}"
        )


def _check_inputs(boxes: Any, scores: Any, iou_threshold: Any, groups: Any) -> tuple[str, int]:
    """Shape/dtype/kind/threshold checks that need no look at the values; returns (array kind, N)."""
    kind = array_kind(boxes, "boxes")
    named = [("scores", scores)] + ([("groups", groups)] if groups is not None else [])
    for name, x in named:
        other = array_kind(x, name)
        if other != kind:
            raise TypeError(f"{name} must be the same kind of array as boxes ({kind}), got {other}")
    if len(boxes.shape) != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) as [q_s, r_s, q_e, r_e], got {tuple(boxes.shape)}")
    n = int(boxes.shape[0])
    for name, x in named:
        if tuple(x.shape) != (n,):
            raise ValueError(f"{name} must have shape (N,) = ({n},) to match boxes, got {tuple(x.shape)}")
    for name, x in [("boxes", boxes), ("scores", scores)]:
        if dtype_name(x) not in FLOAT_DTYPES:
            raise TypeError(f"{name} must be float16, float32 or float64, got {dtype_name(x)}")
    if groups is not None and dtype_name(groups) not in INT_DTYPES:
        raise TypeError(f"groups must be an integer array (int8..int64, uint8..uint32), got {dtype_name(groups)}")
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, numbers.Real):
        raise TypeError(f"iou_threshold must be a real number, got {type(iou_threshold).__name__}")
    if not float(iou_threshold) >= 0:
        raise ValueError(f"iou_threshold must be >= 0 (not NaN), got {iou_threshold}")
    if n > MAX_BOXES:
        raise ValueError(f"at most {MAX_BOXES} boxes per call, got {n}; split the input")
    return kind, n


def _host_arrays(boxes: Any, scores: Any, groups: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """C-contiguous float32 boxes and scores and int64 groups from numpy arrays or torch CPU tensors."""
    boxes, scores = _host_float32(boxes), _host_float32(scores)
    if groups is not None:
        groups = np.ascontiguousarray(to_numpy(groups), dtype=np.int64)
    return boxes, scores, groups


def _host_float32(x: Any) -> np.ndarray:
    x = to_numpy(x)
    if x.dtype == np.float32 and x.flags.c_contiguous:
        return x
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, reported by _check_values
        return np.ascontiguousarray(x, dtype=np.float32)


def _gpu_to_host(boxes: Any, scores: Any, groups: Any, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Host copies of converted GPU inputs (see ``gpu_as_contiguous``), for the reference or an error message."""
    host_groups = None if groups is None else gpu_to_host(groups, kind)
    return gpu_to_host(boxes, kind), gpu_to_host(scores, kind), host_groups
