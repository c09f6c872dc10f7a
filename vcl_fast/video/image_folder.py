"""Image sequences: a folder of image files read as a video, image ``k`` shown from ``k / image_fps`` s.

Files are ordered by name with digit runs compared as numbers (``frame2.png`` before ``frame10.png``);
files whose suffix is not an image suffix are ignored. Images are decoded with PyAV, only those sampled, and shown
as their EXIF orientation says (read with Pillow: PyAV cannot hand over FFmpeg 8's EXIF side data, so the frame alone
tells the angle but not the mirroring).
"""
from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from vcl_fast.video._pyav import RgbConverter, open_input, output_size, rotation_matrix, video_stream
from vcl_fast.video.records import VIDEO_SUFFIXES, VideoDamageWarning, VideoDecodeError, VideoInfo
from vcl_fast.video.sampling import sample_times, select_frames

if TYPE_CHECKING:
    import av

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm"})
JPEG_END_MARKER = b"\xff\xd9"  # EOI: the last two bytes of a whole JPEG file


def natural_key(name: str) -> tuple:
    """Sort key comparing digit runs as numbers: ``"f2" < "f10"``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def list_images(folder: Path) -> list[Path]:
    """The image files of ``folder`` in natural name order; VideoDecodeError when there are none."""
    entries = sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
    files = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not files:
        videos = [p.name for p in entries if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()]
        if videos:
            shown = ", ".join(videos[:3]) + (f" and {len(videos) - 3} more" if len(videos) > 3 else "")
            raise VideoDecodeError(folder, f"a folder is read as a sequence of images, and this one holds videos "
                                   f"({shown}): name one video, or list pairs with --pairs CSV --videos DIR")
        raise VideoDecodeError(folder, f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in the directory")
    return files


def decode_image(path: Path) -> "av.VideoFrame":
    """The first picture of an image file; VideoDecodeError naming the file when it cannot be decoded."""
    import av

    with open_input(path) as container:
        stream = video_stream(path, container)
        try:
            for frame in container.decode(stream):
                return frame
        except av.FFmpegError as exc:
            raise VideoDecodeError(path, f"corrupt image ({exc.strerror})") from None
    raise VideoDecodeError(path, "no decodable picture (corrupt or truncated image)")


# EXIF orientation (TIFF tag 274) -> (counter-clockwise turn in degrees, mirrored left-right) of its display matrix
EXIF_ORIENTATION_TAG = 0x0112
EXIF_TURNS = {1: (0, False), 2: (0, True), 3: (180, False), 4: (180, True),
              5: (270, True), 6: (270, False), 7: (90, True), 8: (90, False)}


def pillow_refusals() -> tuple[type[Exception], ...]:
    """What Pillow raises for an image file it cannot read, or will not: one above its size limit
    (``Image.MAX_IMAGE_PIXELS`` twice over), which FFmpeg decodes."""
    from PIL import Image

    return OSError, SyntaxError, ValueError, Image.DecompressionBombError


def exif_matrix(path: Path) -> np.ndarray | None:
    """The display matrix (``(9,)`` int32, :func:`~vcl_fast.video._pyav.display_matrix`) of the EXIF orientation of
    image file ``path``: None when the file has no valid orientation or Pillow cannot read it (then the decoded
    frame's own display matrix holds)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            orientation = image.getexif().get(EXIF_ORIENTATION_TAG)
    except pillow_refusals():  # not Pillow's to read: FFmpeg decodes it
        return None
    if orientation not in EXIF_TURNS:
        return None
    degrees, mirrored = EXIF_TURNS[orientation]
    matrix = rotation_matrix(degrees)
    if mirrored:  # av_display_matrix_flip(matrix, 1, 0)
        matrix[[0, 3, 6]] *= -1
    return matrix


def damaged_jpeg(path: Path) -> bool:
    """Whether ``path`` is a JPEG file cut short (or corrupt before its end). FFmpeg decodes such a file without a
    word (it makes up the part it lacks). A file that ends with the JPEG end marker is whole; any other (data
    appended after the picture, as in motion photos, or none of the marker) is decoded once more by Pillow, at
    1/8 of its size, which tells. False for other formats (FFmpeg refuses them damaged) and for files Pillow does
    not read."""
    from PIL import Image

    with open(path, "rb") as handle:
        handle.seek(-min(2, path.stat().st_size), os.SEEK_END)
        if handle.read() == JPEG_END_MARKER:
            return False
    try:
        image = Image.open(path)
    except pillow_refusals():
        return False
    with image:
        if image.format != "JPEG":
            return False
        try:
            image.draft("RGB", (1, 1))
            image.load()
        except pillow_refusals():
            return True
    return False


def warn_damaged_images(source: Path, damaged: list[str], sampled: int) -> None:
    """A :class:`VideoDamageWarning` that the images ``damaged`` (file names) of ``source`` (an image file or
    folder), among ``sampled`` images read, were decoded in part."""
    shown = ", ".join(damaged[:3]) + (f" and {len(damaged) - 3} more" if len(damaged) > 3 else "")
    where = f"{len(damaged)} of {sampled} images read ({shown}) are" if source.is_dir() else "the image is"
    warnings.warn(VideoDamageWarning(f"{source}: damaged image data: {where} cut short or corrupt, and FFmpeg "
                                     "made up the missing part: copies shown there may be missed"), stacklevel=2)


def probe_images(folder: Path, image_fps: float | None) -> VideoInfo:
    """VideoInfo of an image folder (the first image gives the size; fps and duration nan without image_fps)."""
    files = list_images(folder)
    first = decode_image(files[0])
    return VideoInfo(
        path=str(folder),
        width=first.width,
        height=first.height,
        fps=float(image_fps) if image_fps else math.nan,
        duration=len(files) / image_fps if image_fps else math.nan,
        codec="images",
    )


def sample_images(
    folder: Path, fps: float, size: None | int | tuple[int, int], image_fps: float
) -> tuple[VideoInfo, Iterator[tuple[float, np.ndarray]]]:
    """``(info, samples)``: ``samples`` yields ``(t, (H, W, 3) uint8 RGB)`` for ``t = i / fps``.

    Without ``size`` every image comes at the first one's size as shown: the others are resized to it, as in a
    video whose picture size changes (:class:`~vcl_fast.video._pyav.RgbConverter`).
    """
    if not (math.isfinite(image_fps) and image_fps > 0):
        raise ValueError(f"image_fps must be a positive finite number of images per second, got {image_fps}")
    info = probe_images(folder, image_fps)
    width, height = output_size(info.width, info.height, size)
    files = list_images(folder)
    times = sample_times(len(files) / image_fps, fps)
    shown = select_frames(np.arange(len(files)) / image_fps, times)

    def samples() -> Iterator[tuple[float, np.ndarray]]:
        to_rgb = RgbConverter(width, height, shown=isinstance(size, (tuple, list)))
        last_index = -1
        last_image: np.ndarray  # converted at the first sample
        read, damaged = 0, []
        for time, index in zip(times.tolist(), shown.tolist()):
            if index != last_index:
                frame = decode_image(files[index])
                last_index, last_image = index, to_rgb(frame, exif_matrix(files[index]))
                read += 1
                if frame.is_corrupt or damaged_jpeg(files[index]):
                    damaged.append(files[index].name)
            yield time, last_image
        if damaged:
            warn_damaged_images(folder, damaged, read)

    return info, samples()
