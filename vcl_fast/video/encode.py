"""Writing frames to a video file with PyAV (test clips, benchmarks, pseudo-videos).

The container and codec follow the file suffix (``FORMATS``). Frames are RGB uint8; timestamps are either
``i / fps`` (constant frame rate) or given per frame in seconds (variable frame rate).
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from vcl_fast.atomic import atomic_save

# suffix -> (FFmpeg muxer, encoder, pixel format, encoder options)
FORMATS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    ".mp4": ("mp4", "libx264", "yuv420p", {"preset": "veryfast"}),
    ".mov": ("mov", "libx264", "yuv420p", {"preset": "veryfast"}),
    ".mkv": ("matroska", "libx264", "yuv420p", {"preset": "veryfast"}),
    ".webm": ("webm", "libvpx-vp9", "yuv420p", {"deadline": "realtime", "cpu-used": "8"}),
    ".avi": ("avi", "mpeg4", "yuv420p", {"qscale": "3"}),
    ".gif": ("gif", "gif", "rgb8", {}),
}
# Timestamp resolution (ticks per second) for variable frame rates; GIF delays are in centiseconds.
VFR_TICKS_PER_SECOND = 1000
GIF_TICKS_PER_SECOND = 100


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float = 25.0,
    *,
    timestamps: np.ndarray | None = None,
    gop_size: int | None = None,
) -> None:
    """Encode RGB frames to ``path`` (written atomically).

    frames: ``(L, H, W, 3)`` uint8, or an iterable of ``(H, W, 3)`` uint8 arrays of one size (streamed).
    fps: frame rate when ``timestamps`` is None; frame ``i`` is shown at ``i / fps`` seconds.
    timestamps: ``(L,)`` strictly increasing seconds, one per frame (variable frame rate); the last frame
    lasts as long as the interval before it. Rounded to milliseconds (centiseconds for GIF).
    gop_size: frames between keyframes (the encoder's default when None).
    """
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"{path}: unsupported video suffix; use one of {', '.join(sorted(FORMATS))}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    muxer, codec, pix_fmt, options = FORMATS[path.suffix.lower()]
    if timestamps is not None or codec == "gif":
        ticks = GIF_TICKS_PER_SECOND if codec == "gif" else VFR_TICKS_PER_SECOND
        time_base = Fraction(1, ticks)
        seconds = None if timestamps is None else np.asarray(timestamps, dtype=np.float64)
        pts = None if seconds is None else np.round(seconds * ticks).astype(np.int64)
        if pts is not None and (pts.ndim != 1 or np.any(np.diff(pts) <= 0)):
            raise ValueError(f"timestamps must be strictly increasing 1-D seconds at least 1/{ticks} s apart")
    else:
        time_base, pts = 1 / Fraction(fps).limit_denominator(1_000_000), None
    frame_ticks = max(1, round(1 / (fps * time_base)))  # ticks per frame at the constant rate
    if pts is not None and len(pts) > 1:  # the nominal rate muxers record: the average one
        rate = Fraction(len(pts) - 1) / (Fraction(int(pts[-1] - pts[0])) * time_base)
    else:
        rate = Fraction(fps)
    rate = rate.limit_denominator(1001)

    def encode(tmp: str) -> None:
        import av

        with av.open(tmp, mode="w", format=muxer) as container:
            stream = None
            for i, image in enumerate(frames):
                image = np.ascontiguousarray(image)
                if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                    raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {image.dtype} {image.shape}")
                if stream is None:
                    stream = _add_stream(container, codec, pix_fmt, options, image, rate, time_base, gop_size)
                if pts is not None and i >= len(pts):
                    raise ValueError(f"more frames than timestamps ({len(pts)})")
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = int(pts[i]) if pts is not None else i * frame_ticks
                frame.time_base = time_base
                frame.duration = _frame_duration(pts, i, frame_ticks)
                container.mux(stream.encode(frame))
            if stream is None:
                raise ValueError("no frames to write")
            if pts is not None and i + 1 != len(pts):
                raise ValueError(f"{i + 1} frames but {len(pts)} timestamps")
            container.mux(stream.encode(None))

    atomic_save(path, encode)


def _add_stream(container, codec, pix_fmt, options, image, rate, time_base, gop_size):
    height, width = image.shape[:2]
    if pix_fmt == "yuv420p" and (width % 2 or height % 2):
        raise ValueError(f"{codec} needs an even frame width and height, got {width}x{height}")
    stream = container.add_stream(codec, rate=rate, options=dict(options))
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    stream.time_base = time_base
    stream.codec_context.time_base = time_base
    stream.thread_type = "AUTO"
    if gop_size is not None:
        stream.codec_context.gop_size = int(gop_size)
    return stream


def _frame_duration(pts: np.ndarray | None, i: int, frame_ticks: int) -> int:
    """Ticks frame ``i`` lasts: until the next timestamp; the last frame repeats the interval before it."""
    if pts is None or len(pts) == 1:
        return frame_ticks
    return int(pts[i + 1] - pts[i]) if i + 1 < len(pts) else int(pts[i] - pts[i - 1])
