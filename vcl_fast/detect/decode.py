"""Raw YOLOX head outputs -> scored boxes, in numpy (the torch twin is ``vcl_fast.models.yolox``).

Raw outputs (B, A, 5 + C) float32 per anchor: ``[tx, ty, tw, th, obj_logit, cls_logit_1..C]``; anchors run
stride by stride (8, 16, 32), row-major within a level. Decoding: ``cx = (tx + grid_x) * stride``,
``w = exp(tw) * stride`` (likewise y, h), probabilities = sigmoid of the logits. In the detector input x is
the reference axis (columns) and y the query axis (rows).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

STRIDES = (8, 16, 32)  # YOLOX feature levels (PAFPN outputs)


@lru_cache(maxsize=16)
def anchor_points(input_size: int, strides: tuple[int, ...] = STRIDES) -> np.ndarray:
    """(A, 3) float32 per anchor ``[grid_x, grid_y, stride]`` in the order of the head outputs (read-only)."""
    rows = []
    for stride in strides:
        n = input_size // stride
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        rows.append(np.stack([xs.ravel(), ys.ravel(), np.full(n * n, stride)], axis=1))
    out = np.concatenate(rows).astype(np.float32)
    out.setflags(write=False)
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Overflow-free logistic function, same dtype as x."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def decode_raw_outputs(raw: np.ndarray, input_size: int, strides: tuple[int, ...] = STRIDES
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (B, A, 5 + C) -> boxes (B, A, 4) ``[cx, cy, w, h]`` input pixels, objectness (B, A), class
    probabilities (B, A, C); all float32. Huge ``tw``/``th`` give infinite sizes (no warning)."""
    raw = np.asarray(raw)
    anchors = anchor_points(int(input_size), tuple(strides))
    if raw.ndim != 3 or raw.shape[1] != anchors.shape[0] or raw.shape[2] < 6:
        raise ValueError(f"raw outputs must have shape (B, {anchors.shape[0]}, 5 + num_classes) for "
                         f"input_size={input_size} and strides {tuple(strides)}, got {raw.shape}")
    raw = raw.astype(np.float32, copy=False)
    stride = anchors[:, 2:3]
    with np.errstate(over="ignore"):
        sizes = np.exp(raw[..., 2:4]) * stride
    boxes = np.concatenate([(raw[..., 0:2] + anchors[:, :2]) * stride, sizes], axis=-1)
    return boxes, sigmoid(raw[..., 4]), sigmoid(raw[..., 5:])
