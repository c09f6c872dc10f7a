"""Image files: listing, loading (RGB, optionally downsized) and conversion to model input tensors."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif")


def list_images(directory: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Sorted image files under ``directory`` (by suffix, case-insensitive); raises if none are found."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"image directory {root} does not exist")
    pattern = root.rglob("*") if recursive else root.iterdir()
    files = sorted(p for p in pattern if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {root}")
    return files


def load_image(path: str | os.PathLike, max_side: int | None = None) -> Image.Image:
    """Open ``path`` as RGB; when ``max_side`` is given, shrink (keeping the aspect) so no side exceeds it."""
    try:
        with Image.open(path) as handle:
            if max_side:
                handle.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale
            image = handle.convert("RGB")
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from None
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.BILINEAR)
    return image


def to_tensor_batch(images: Sequence[Image.Image], size: int, mean: Sequence[float], std: Sequence[float]):
    """RGB images -> (B, 3, size, size) float32 torch tensor, each image squashed to the square (no crop, so
    content near the borders, e.g. a picture-in-picture corner, is kept) and normalised by ``mean``/``std``."""
    import torch

    arrays = np.stack([np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR)) for im in images])
    batch = torch.from_numpy(arrays).permute(0, 3, 1, 2).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (batch - mean_t) / std_t
