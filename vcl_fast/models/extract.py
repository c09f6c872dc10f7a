"""Batched feature extraction with a trained extractor: images -> ``(N, k+1, out_dim)`` float32 numpy."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from vcl_fast.data.images import to_tensor_batch
from vcl_fast.models.rtr import RegionalTokenViT
from vcl_fast.runtime.preprocess import blank_images


@torch.no_grad()
def extract_features(
    model: RegionalTokenViT,
    images: Sequence[Image.Image] | Sequence[Callable[[], Image.Image]],
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Features of ``images`` (RGB PIL images, or zero-argument callables that load one, so large sets need
    not be held in memory) -> (N, k+1, out_dim) float32, unit rows, CLS last; blank images
    (:func:`~vcl_fast.runtime.preprocess.blank_images`) get zero rows. The model is left in the mode it had."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    config = model.config
    out = np.empty((len(images), config.num_tokens, config.out_dim), dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            chunk = [im if isinstance(im, Image.Image) else im() for im in images[start : start + batch_size]]
            batch = to_tensor_batch(chunk, config.img_size, config.mean, config.std)
            out[start : start + len(chunk)] = model(batch.to(device)).float().cpu().numpy()
            out[start + np.flatnonzero(blank_images(batch.numpy(), config.std))] = 0.0
    finally:
        model.train(was_training)
    return out
