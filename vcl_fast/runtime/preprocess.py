"""Frames -> extractor input without torch: resize to S x S, scale to [0, 1], normalise.

The resize is Pillow's ``Image.resize(..., BILINEAR)`` done in float32: a triangle filter whose support
widens with the downscaling factor (anti-aliased), applied along rows then columns. It is the resize the
extractor is trained with (``vcl_fast.data.images.to_tensor_batch``); ``preprocess_frames_reference`` runs
Pillow itself, which rounds to uint8 after each pass (so the two differ by up to ~1 grey level).

A blank frame (one colour all over: a black or white screen, a fade) shows nothing to match, yet any two of one
colour look alike to the extractor. :func:`blank_images` finds them in the preprocessed batch (every channel
spreads less than ``BLANK_FRAME_STD`` grey levels); the extractors give them zero features, so their
similarity to any frame is 0.

``preprocess_frames`` runs the compiled kernel (``vcl_fast._C.preprocess_frames_cpu``, no full-size float
temporaries, GIL released) and falls back to ``preprocess_frames_numpy``, its plain numpy reference; the two
give identical float32 values bit for bit.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np


@lru_cache(maxsize=32)
def bilinear_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's anti-aliased bilinear filter as taps: source indices (out_size, K) int64 and weights
    (out_size, K) float32 (rows sum to 1; unused taps have weight 0 and index 0). Read-only."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"bilinear_taps needs sizes >= 1, got in_size={in_size}, out_size={out_size}")
    scale = in_size / out_size
    support = max(scale, 1.0)  # the bilinear filter's support is 1, widened by the downscaling factor
    centre = (np.arange(out_size) + 0.5) * scale
    first = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    last = np.minimum((centre + support + 0.5).astype(np.int64), in_size)
    taps = int((last - first).max())
    index = first[:, None] + np.arange(taps)
    weight = np.maximum(0.0, 1.0 - np.abs((index - centre[:, None] + 0.5) / support))
    weight[index >= last[:, None]] = 0.0
    weight /= weight.sum(axis=1, keepdims=True)
    index = np.where(weight > 0, index, 0)
    weight = weight.astype(np.float32)
    index.setflags(write=False)
    weight.setflags(write=False)
    return index, weight


def _resize_axis(x: np.ndarray, axis: int, out_size: int) -> np.ndarray:
    index, weight = bilinear_taps(x.shape[axis], out_size)
    shape = [1] * x.ndim
    shape[axis] = out_size
    out = np.zeros(x.shape[:axis] + (out_size,) + x.shape[axis + 1:], dtype=np.float32)
    for k in range(index.shape[1]):
        out += np.take(x, index[:, k], axis=axis) * weight[:, k].reshape(shape)
    return out


BLANK_FRAME_STD = 3.0  # grey levels (0-255): a frame whose every channel spreads less than this is blank


def check_frames(frames: np.ndarray) -> np.ndarray:
    """``frames`` as a (N, H, W, 3) uint8 array; TypeError/ValueError saying what is wrong otherwise."""
    if not isinstance(frames, np.ndarray):
        raise TypeError(f"frames must be a numpy array (N, H, W, 3) uint8 RGB, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise TypeError(f"frames must be uint8 RGB (N, H, W, 3), got dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[3] != 3 or min(frames.shape[1:3], default=0) < 1:
        raise ValueError(f"frames must be shaped (N, H, W, 3) with H, W >= 1, got {frames.shape}")
    return frames


def _normalisation(mean: Sequence[float], std: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel float32 ``(scale, shift)`` with ``(x / 255 - mean) / std`` computed as ``x * scale - shift``."""
    means = np.asarray(mean, dtype=np.float32)
    stds = np.asarray(std, dtype=np.float32)
    return 1 / (255 * stds), means / stds


def preprocess_frames(frames: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, 3, size, size) float32: resized (squashed, no crop), ``(x / 255 - mean)
    / std`` per channel. Frames already ``size`` x ``size`` are not resampled."""
    from vcl_fast._ext import extension, extension_error, warn_fallback

    frames = check_frames(frames)
    ext = extension()
    if ext is None:
        warn_fallback("preprocess_frames", extension_error())
        return preprocess_frames_numpy(frames, size, mean, std)
    rows = bilinear_taps(frames.shape[1], size) if frames.shape[1] != size else (None, None)
    cols = bilinear_taps(frames.shape[2], size) if frames.shape[2] != size else (None, None)
    return ext.preprocess_frames_cpu(frames, size, *rows, *cols, *_normalisation(mean, std))


def preprocess_frames_numpy(frames: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float]
                            ) -> np.ndarray:
    """Plain numpy reference of ``preprocess_frames`` (same arguments, identical result)."""
    frames = check_frames(frames)
    x = frames
    if x.shape[1] != size:
        x = _resize_axis(x, 1, size)
    if x.shape[2] != size:
        x = _resize_axis(x, 2, size)
    scale, shift = _normalisation(mean, std)
    out = np.empty((len(frames), 3, size, size), dtype=np.float32)
    np.multiply(np.moveaxis(x, 3, 1), scale[:, None, None], out=out, casting="unsafe")
    out -= shift[:, None, None]
    return out


def preprocess_frames_reference(frames: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float]
                                ) -> np.ndarray:
    """Pillow reference of ``preprocess_frames`` (the training preprocessing), float32 (N, 3, size, size)."""
    from PIL import Image

    frames = check_frames(frames)
    resized = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BILINEAR)) for f in frames]) \
        if len(frames) else np.zeros((0, size, size, 3), np.uint8)
    x = resized.astype(np.float32).transpose(0, 3, 1, 2) / 255
    return (x - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[:, None, None]


def blank_images(images: np.ndarray, std: Sequence[float]) -> np.ndarray:
    """(N,) bool: which (N, C, S, S) float images, normalised with per-channel ``std``, are blank: the standard
    deviation of every channel, in grey levels, below ``BLANK_FRAME_STD``. Measured at the extractor's input
    size, so detail finer than the extractor sees does not count."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, S, S), got shape {images.shape}")
    spread = images.reshape(images.shape[0], images.shape[1], images.shape[2] * images.shape[3]).std(
        axis=-1, dtype=np.float64)
    return np.all(spread * (255 * np.asarray(std, dtype=np.float64)) < BLANK_FRAME_STD, axis=1)
