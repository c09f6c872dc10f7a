"""Micro models and tiny planted-copy videos for the export, runtime, API and localize CLI tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rtr_fixtures import skimage_photo

# Distinct bundled photos (scikit-image's "chelsea" is "cat" again, so it is left out).
PHOTOS = ("astronaut", "camera", "cat", "coffee", "coins", "colorwheel", "grass", "gravel", "horse",
          "immunohistochemistry", "logo", "moon", "page", "rocket", "text", "brick", "clock")
FRAME_SIZE = (64, 48)  # width, height of the test videos
VIDEO_FPS = 4  # each photo stays on screen for one second (4 frames)

# The planted copy: the reference shows photos 0..8 for one second each; the query shows 3 other photos,
# then reference seconds 1..8 (photos 1..7), then 2 other photos. So query [3, 10) s copies reference [1, 8) s.
REFERENCE_PHOTOS = PHOTOS[:9]
QUERY_PHOTOS = PHOTOS[9:12] + PHOTOS[1:8] + PHOTOS[12:14]
PLANTED = (3.0, 10.0, 1.0, 8.0)  # q_start, q_end, r_start, r_end in seconds


def micro_extractor(seed: int = 0):
    """The ``micro`` RTR preset with random weights. Its position embedding and prefix tokens are zeroed so
    that its features follow the image content (a random ViT otherwise maps every photo to nearly the same
    vector, cosine ~0.9), which the planted-copy tests need."""
    import torch

    from vcl_fast.models.rtr import build_extractor

    torch.set_num_threads(1)  # several threads are far slower on the shared 2-core test machines
    torch.manual_seed(seed)
    model = build_extractor("micro").eval()
    with torch.no_grad():
        model.pos_embed.zero_()
        model.cls_token.zero_()
        model.reg_token.zero_()
    return model


def micro_detector(seed: int = 0):
    """The ``micro`` YOLOX preset (64 px input) with random weights."""
    import torch

    from vcl_fast.models.yolox import build_detector

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    return build_detector("micro").eval()


def photo_frames(names: tuple[str, ...], repeat: int = VIDEO_FPS) -> np.ndarray:
    """(len(names) * repeat, H, W, 3) uint8: each photo squashed to FRAME_SIZE, ``repeat`` times."""
    images = [np.asarray(skimage_photo(name, 128).resize(FRAME_SIZE, Image.BILINEAR)) for name in names]
    return np.repeat(np.stack(images), repeat, axis=0)


def write_planted_pair(folder: Path) -> tuple[Path, Path]:
    """Write ``query.mp4`` and ``reference.mp4`` (the planted copy above) into ``folder``."""
    from vcl_fast.video import write_video

    folder.mkdir(parents=True, exist_ok=True)
    query, reference = folder / "query.mp4", folder / "reference.mp4"
    write_video(reference, photo_frames(REFERENCE_PHOTOS), fps=VIDEO_FPS)
    write_video(query, photo_frames(QUERY_PHOTOS), fps=VIDEO_FPS)
    return query, reference


_EXPORTED: dict[str, Path] = {}


def exported_micro_model(tmp_path_factory) -> Path:
    """``micro_extractor()`` and ``micro_detector()`` exported once per test session (a directory)."""
    if "micro" not in _EXPORTED:
        from vcl_fast.export.onnx import export_onnx

        directory = tmp_path_factory.mktemp("micro_model")
        export_onnx(directory, micro_extractor(), micro_detector())
        _EXPORTED["micro"] = directory
    return _EXPORTED["micro"]


@pytest.fixture(scope="module")
def micro_model_dir(tmp_path_factory) -> Path:
    """Fixture: the exported micro model directory (import it into a test module to use it)."""
    return exported_micro_model(tmp_path_factory)


@pytest.fixture(scope="module")
def planted_videos(tmp_path_factory) -> tuple[Path, Path]:
    """Fixture: (query.mp4, reference.mp4) of the planted copy."""
    return write_planted_pair(tmp_path_factory.mktemp("videos"))
