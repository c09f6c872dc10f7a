"""PyAV helpers shared by the readers: opening an input with one-line errors, frames to RGB arrays."""
from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from vcl_fast.video.records import VideoDecodeError

if TYPE_CHECKING:
    import av

# swscale filter for resizing; its bilinear filter widens with the scale factor, so downscaling is anti-aliased.
INTERPOLATION = "BILINEAR"
# Decoders whose ``lowres`` option decodes the picture at 1/2, 1/4 or 1/8 of its size (checked by
# tests/test_video.py). Others must not get it: most then fill a smaller frame with garbage (cinepak, msvideo1,
# ffv1, utvideo), and wmv2 claims it but decodes garbage too.
LOWRES_DECODERS = frozenset({"mpeg1video", "mpeg2video", "mpeg4", "h261", "h263", "flv", "msmpeg4v2", "msmpeg4",
                             "wmv1", "rv10", "rv20", "mjpeg"})
MAX_LOWRES = 3  # the most halvings those decoders do
# In draft mode a picture is converted at no more than this many pixels (its sides halved while above it): a 4K or
# 8K video then holds ~6 MB per decoded frame instead of 25-100 MB, and converts faster. Every local evaluation
# video (1280x720 at most) is below it, so their frames are unchanged.
DRAFT_MAX_PIXELS = 1920 * 1080


def existing_path(source: str | os.PathLike) -> Path:
    """``source`` as a Path that exists (file or directory); VideoDecodeError saying so for a URL (``scheme://``)
    or ``-`` (standard input), which are not read."""
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"a video source is a file or directory path, got {type(source).__name__}")
    path = Path(source)
    if not path.exists():
        text = os.fspath(source)
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text):
            raise VideoDecodeError(text, "a URL: videos are read from local files only (no network access); "
                                   "download it and give its path")
        if text == "-":
            raise VideoDecodeError(text, "videos are not read from standard input; give a file path")
        raise VideoDecodeError(path, "no such file or directory")
    return path


@contextlib.contextmanager
def open_input(path: Path) -> Iterator["av.container.InputContainer"]:
    """Open ``path`` for demuxing; any failure becomes a :class:`VideoDecodeError` naming the file."""
    import av

    if path.is_file() and path.stat().st_size == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise VideoDecodeError(path, f"cannot open ({exc.strerror}): not a video or image, or truncated") from None
    except OSError as exc:
        raise VideoDecodeError(path, f"cannot open ({exc.strerror or exc})") from None
    with container:
        yield container


def video_stream(path: Path, container, draft: int | None = None) -> "av.video.stream.VideoStream":
    """The first video stream of ``container`` that is not a cover picture (an ``attached_pic`` stream: the album
    art of an audio file, the thumbnail some download tools embed), set up for multi-threaded decoding (and
    ``draft``: see :func:`draft_options`; set before the first packet is decoded)."""
    import av

    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not videos:
        kinds = sorted({s.type for s in container.streams} - {"video"})
        why = "audio-only file" if kinds == ["audio"] else f"streams: {', '.join(kinds) or 'none'}"
        cover = " with a cover picture" if container.streams.video else ""
        raise VideoDecodeError(path, f"no video stream ({why}{cover})")
    stream = videos[0]
    stream.thread_type = "AUTO"
    if draft is not None:
        context = stream.codec_context
        context.options = draft_options(context.name, context.width, context.height, draft)
    return stream


def lowres_factor(decoder: str, width: int, height: int, draft: int) -> int:
    """``k``: a ``decoder`` whose frames are only needed at ``draft`` pixels or more per side decodes a ``width x
    height`` video at 1/2^k of its size; the largest ``k <= MAX_LOWRES`` that keeps both sides >= ``draft`` for the
    ``LOWRES_DECODERS``, 0 for the others and when the size is unknown (0)."""
    check_draft_arg(draft)
    k = 0
    while (decoder in LOWRES_DECODERS and k < MAX_LOWRES
           and min(-(-width >> (k + 1)), -(-height >> (k + 1))) >= draft):
        k += 1
    return k


def draft_options(decoder: str, width: int, height: int, draft: int) -> dict[str, str]:
    """FFmpeg options for :func:`lowres_factor`."""
    k = lowres_factor(decoder, width, height, draft)
    return {"lowres": str(k)} if k else {}


def draft_size(decoder: str, width: int, height: int, draft: int) -> tuple[int, int]:
    """``(width, height)`` of the frames in draft mode: those :func:`draft_options` decodes (FFmpeg rounds up),
    halved again while they hold more than ``DRAFT_MAX_PIXELS`` and both sides stay >= ``draft`` (the RGB
    conversion resizes them)."""
    k = lowres_factor(decoder, width, height, draft)
    width, height = -(-width >> k), -(-height >> k)
    while width * height > DRAFT_MAX_PIXELS and min(-(-width // 2), -(-height // 2)) >= draft:
        width, height = -(-width // 2), -(-height // 2)
    return width, height


def check_draft_arg(draft: int | None) -> None:
    """``draft`` is None or a positive int (pixels)."""
    if draft is not None and (isinstance(draft, bool) or not isinstance(draft, (int, np.integer)) or draft < 1):
        raise ValueError(f"draft must be None or a positive int (pixels per side), got {draft!r}")


def output_size(width: int, height: int, size: None | int | tuple[int, int]) -> tuple[int, int]:
    """Output ``(width, height)`` in pixels for a ``width x height`` source.

    size: None keeps the source size; an int is the short side (aspect ratio kept); ``(w, h)`` is exact.
    """
    if size is None:
        return width, height
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        if size < 1:
            raise ValueError(f"size (the short side) must be a positive number of pixels, got {size}")
        scale = int(size) / min(width, height)
        return max(1, round(width * scale)), max(1, round(height * scale))
    if (isinstance(size, (tuple, list)) and len(size) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in size)):
        return int(size[0]), int(size[1])
    raise TypeError(f"size must be None, a short side (int) or (width, height) positive ints, got {size!r}")


def display_matrix(frame: "av.VideoFrame") -> np.ndarray | None:
    """The frame's display matrix (``DISPLAYMATRIX`` side data, libavutil/display.h): ``(9,)`` int32, 16.16
    fixed point, row-major; None when the frame has none (it is shown as decoded)."""
    try:
        sides: list[Any] = list(frame.side_data)  # SideData objects (PyAV's stubs say str)
    except ValueError:  # a kind of side data this PyAV has no name for (FFmpeg 8's EXIF): the angle alone is known,
        # not the mirroring (image files read their EXIF orientation instead: image_folder.exif_matrix)
        return None if frame.rotation == 0 else rotation_matrix(frame.rotation)
    for side in sides:
        if side.type.name == "DISPLAYMATRIX":
            return np.frombuffer(bytes(side), dtype=np.int32, count=9)
    return None


def rotation_matrix(degrees: float) -> np.ndarray:
    """The display matrix of a picture shown turned ``degrees`` counter-clockwise (``av_display_rotation_set`` of
    ``-degrees``): ``(9,)`` int32."""
    radians = np.radians(degrees)
    cos, sin = (int(round(v * 65536)) for v in (np.cos(radians), np.sin(radians)))
    return np.array([cos, -sin, 0, sin, cos, 0, 0, 0, 1 << 30], dtype=np.int32)


def transposes(matrix: np.ndarray | None) -> bool:
    """True when :func:`upright` swaps the picture's width and height (a quarter turn)."""
    return _display_rotation(matrix) in (90, 270)


def upright(image: np.ndarray, matrix: np.ndarray | None) -> np.ndarray:
    """``image`` ``(H, W, C)`` as a player shows it: turned by the quarter turns and mirrored by the flips of its
    display ``matrix``, by the rules of FFmpeg's autorotate (phone videos store the picture sideways and say how
    to show it). A matrix of another angle is left unapplied. Returns a view of ``image``."""
    if matrix is None:
        return image
    theta = _display_rotation(matrix)
    if theta == 90:  # FFmpeg's transpose=clock, or cclock_flip (a plain transpose) when mirrored
        return image.transpose(1, 0, 2) if matrix[3] > 0 else np.rot90(image, -1)
    if theta == 270:  # transpose=cclock, or clock_flip when mirrored
        return np.rot90(image, -1)[::-1] if matrix[3] < 0 else np.rot90(image, 1)
    if theta == 180:
        return image[slice(None, None, -1 if matrix[4] < 0 else 1), slice(None, None, -1 if matrix[0] < 0 else 1)]
    if theta == 0 and matrix[4] < 0:
        return image[::-1]
    return image


def _display_rotation(matrix: np.ndarray | None) -> int | None:
    """The clockwise turn ``matrix`` shows the picture at, in whole degrees: 0, 90, 180 or 270, else None (FFmpeg's
    ``get_rotation``, 1 degree of tolerance); 0 without a matrix."""
    if matrix is None:
        return 0
    a, b, c, d = (float(v) / 65536 for v in matrix[[0, 1, 3, 4]])
    scale_x, scale_y = np.hypot(a, c), np.hypot(b, d)
    if scale_x == 0 or scale_y == 0:
        return None
    theta = float(np.degrees(np.arctan2(b / scale_y, a / scale_x))) % 360
    nearest = round(theta / 90) % 4 * 90
    return nearest if min(abs(theta - nearest), 360 - abs(theta - nearest)) < 1 else None


def check_size_arg(size: None | int | tuple[int, int]) -> None:
    """Validate ``size`` before any file is opened (same rules as :func:`output_size`)."""
    output_size(1, 1, size)


class RgbConverter:
    """Decoded frames -> upright ``(height, width, 3)`` uint8 RGB arrays of one size, resized where needed.

    Each picture is turned and mirrored as its display matrix says (:func:`upright`). ``width x height`` is the
    output size as shown when ``shown``; otherwise it is the size in the orientation the first frame is coded in
    (so that a short side computed from the coded size stays the short side). Every frame comes out at the first
    one's shown size. One swscale context serves every frame (``frame.to_ndarray`` would set one up, with its own
    threads, per frame, which costs more than converting a small frame) and converts on the calling thread only
    (the Localizer reads videos in a decoding thread beside the extractor). The pixels are those of
    ``frame.to_ndarray(width=..., height=..., format="rgb24")`` turned upright.
    """

    def __init__(self, width: int, height: int, shown: bool = False):
        from av.video.reformatter import VideoReformatter

        self._size = (width, height)
        self._shown_size = self._size if shown else None
        self._reformatter = VideoReformatter()

    def __call__(self, frame: "av.VideoFrame", matrix: np.ndarray | None = None) -> np.ndarray:
        """``frame`` upright by ``matrix`` (a display matrix, :func:`display_matrix`), by default its own."""
        matrix = display_matrix(frame) if matrix is None else matrix
        turned = transposes(matrix)
        if self._shown_size is None:
            self._shown_size = self._size[::-1] if turned else self._size
        width, height = self._shown_size[::-1] if turned else self._shown_size
        if frame.width == width and frame.height == height:
            rgb = self._reformatter.reformat(frame, format="rgb24", threads=1)
        else:
            rgb = self._reformatter.reformat(frame, width, height, "rgb24", interpolation=INTERPOLATION, threads=1)
        return upright(rgb.to_ndarray(), matrix)
