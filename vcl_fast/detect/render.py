"""Similarity map -> detector input, as the paper's inference code does it: crop the map to the valid
lengths, replicate it to 3 channels and resize it to S x S with bicubic interpolation; the raw cosine values
go in (no normalisation).

The resize is torch-free and separable, ``W_q @ map @ W_r^T``, with precomputed interpolation matrices that
reproduce ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False, antialias=False)``: source
coordinate ``(i + 0.5) * in / out - 0.5`` (not clamped), Keys cubic kernel with a = -0.75 over the 4 nearest
source samples, indices clamped to the border. Each matrix row has 4 non-zeros, so they are stored and
applied as 4 taps (gathers) per output sample (``bicubic_taps``); ``bicubic_matrix`` is the dense form and
``render_maps_reference`` the torch reference.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

CUBIC_A = -0.75


def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """(n,) fractional offsets -> (n, 4) weights of the samples at floor - 1, floor, floor + 1, floor + 2."""
    a = CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)


@lru_cache(maxsize=64)
def bicubic_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's 1-D bicubic resize as taps: source indices (out_size, 4) int64, clamped to the border, and
    weights (out_size, 4) float32; output i is ``sum_k weights[i, k] * x[indices[i, k]]`` (read-only)."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"bicubic_taps needs sizes >= 1, got in_size={in_size}, out_size={out_size}")
    # torch computes the source position in float32 from a float32 scale (one fused multiply-add on the
    # CPUs we target); a 1-ulp difference in it moves the weights by ~1e-5, so follow it exactly.
    scale = np.float64(np.float32(in_size) / np.float32(out_size))
    src = ((np.arange(out_size) + 0.5) * scale - 0.5).astype(np.float32)
    base = np.floor(src)
    weights = _cubic_weights((src - base).astype(np.float64)).astype(np.float32)
    indices = np.clip(base.astype(np.int64)[:, None] + np.arange(-1, 3), 0, in_size - 1)
    indices.setflags(write=False)
    weights.setflags(write=False)
    return indices, weights


@lru_cache(maxsize=64)
def bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) float32 matrix W with ``W @ x`` = torch's 1-D bicubic resize of x (read-only)."""
    indices, weights = bicubic_taps(in_size, out_size)
    matrix = np.zeros((out_size, in_size), dtype=np.float32)
    np.add.at(matrix, (np.repeat(np.arange(out_size), 4), indices.ravel()), weights.ravel())
    matrix.setflags(write=False)
    return matrix


def _resize_rows(x: np.ndarray, out_size: int) -> np.ndarray:
    """(n, m) -> (out_size, m) float32: bicubic resize along axis 0 (one gather of the 4 taps)."""
    indices, weights = bicubic_taps(x.shape[0], out_size)
    return np.einsum("sk,skm->sm", weights, x[indices])


def _as_map_list(maps, lengths) -> list[np.ndarray]:
    if isinstance(maps, np.ndarray) and maps.ndim == 3:
        if lengths is None:
            return list(maps)
        lengths = np.asarray(lengths)
        if lengths.shape != (len(maps), 2):
            raise ValueError(f"lengths must have shape ({len(maps)}, 2) (valid query, reference lengths), "
                             f"got {lengths.shape}")
        if (lengths < 1).any() or (lengths > np.array(maps.shape[1:])).any():
            raise ValueError(f"lengths must lie in [1, {maps.shape[1]}] x [1, {maps.shape[2]}]")
        return [m[:q, :r] for m, (q, r) in zip(maps, lengths.tolist())]
    if lengths is not None:
        raise ValueError("lengths are only accepted with a padded (B, Q, R) array of maps")
    if isinstance(maps, np.ndarray):
        raise ValueError(f"maps must be a (B, Q, R) array or a sequence of (Q, R) arrays, got shape {maps.shape}")
    return list(maps)


def render_maps(maps: Sequence[np.ndarray] | np.ndarray, input_size: int,
                lengths: np.ndarray | None = None) -> np.ndarray:
    """Similarity maps -> detector input (B, 3, S, S) float32.

    ``maps``: a sequence of (Q_b, R_b) arrays (rows = query frames, columns = reference frames; any real
    dtype, sizes may differ), or a padded (B, Q, R) array with ``lengths`` (B, 2) = valid (Q_b, R_b).
    """
    items = _as_map_list(maps, lengths)
    out = np.empty((len(items), 3, input_size, input_size), dtype=np.float32)
    for b, m in enumerate(items):
        m = np.asarray(m)
        if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
            raise ValueError(f"map {b} must be a non-empty 2-D (Q, R) array, got shape {m.shape}")
        if not np.issubdtype(m.dtype, np.floating):
            raise TypeError(f"map {b} must hold floating-point similarities, got dtype {m.dtype}")
        m = m.astype(np.float32, copy=False)
        if not np.isfinite(m).all():
            raise ValueError(f"map {b} contains NaN or infinite values")
        rows_resized = np.ascontiguousarray(_resize_rows(m, input_size).T)  # (R, S)
        out[b, 0] = _resize_rows(rows_resized, input_size).T
    out[:, 1] = out[:, 0]
    out[:, 2] = out[:, 0]
    return out


def render_maps_reference(maps: Sequence[np.ndarray], input_size: int) -> np.ndarray:
    """Torch reference of ``render_maps`` (F.interpolate bicubic, align_corners=False), float32 numpy."""
    import torch
    import torch.nn.functional as F

    out = []
    for m in maps:
        x = torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))[None, None].repeat(1, 3, 1, 1)
        out.append(F.interpolate(x, size=(input_size, input_size), mode="bicubic", align_corners=False))
    if not out:
        return np.empty((0, 3, input_size, input_size), dtype=np.float32)
    return torch.cat(out).numpy()
