"""Real photos for the RTR tests: scikit-image's bundled images, written small into a folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Bundled with scikit-image (no download needed).
SKIMAGE_PHOTOS = (
    "astronaut", "camera", "cat", "chelsea", "coffee", "coins", "colorwheel", "grass", "gravel",
    "horse", "immunohistochemistry", "logo", "moon", "page", "rocket", "text", "brick", "clock",
)


def skimage_photo(name: str, side: int = 96) -> Image.Image:
    """One bundled photo as RGB, shrunk so its longer side is ``side`` pixels."""
    import skimage.data

    array = getattr(skimage.data, name)()
    if array.dtype != np.uint8:
        array = (255 * (array.astype(np.float64) / max(1, array.max()))).astype(np.uint8)
    image = Image.fromarray(array[..., :3] if array.ndim == 3 else array).convert("RGB")
    image.thumbnail((side, side))
    return image


def write_photos(folder: Path, count: int = len(SKIMAGE_PHOTOS), side: int = 96) -> list[Path]:
    """Write the first ``count`` photos as PNG files into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in SKIMAGE_PHOTOS[:count]:
        path = folder / f"{name}.png"
        skimage_photo(name, side).save(path)
        paths.append(path)
    return paths
