"""Typed records returned by the video readers, and the error they raise."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np



# File name suffixes treated as video files when scanning folders (lower case, ordered by how common they are).
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".flv", ".mpg", ".mpeg",
                                   ".wmv", ".ts", ".ogv", ".gif", ".3gp", ".3g2", ".mts", ".m2ts", ".vob", ".asf",
                                   ".mxf", ".f4v", ".divx", ".rmvb")

class VideoDecodeError(ValueError):
    """A video (or image folder) that cannot be read. The message is one line: ``"<path>: <reason>"``."""

    def __init__(self, path: object, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):  # picklable, so errors cross DataLoader worker processes intact
        return type(self), (self.path, self.reason)


class VideoDamageWarning(UserWarning):
    """Some sampled frames of a video were decoded from damaged data (FFmpeg concealed the errors, as players
    do): the picture there may be wrong, and a copy shown there missed. The message is one line."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container header says about a video's picture stream (no frame is decoded).

    ``fps`` is the source's average frame rate in frames per second and ``duration`` its declared
    length in seconds; either is ``nan`` when the header does not say. For an image folder, ``fps``
    is the rate the images were taken at and ``duration`` is ``num_images / fps``. ``width`` and ``height`` are
    the coded picture's (the first image's, for a folder): frames are read upright, so a picture shown turned a
    quarter (a phone video) comes out ``height x width``.
    """

    path: str
    width: int
    height: int
    fps: float
    duration: float
    codec: str


@dataclass(frozen=True)
class DecodedFrames:
    """Frames sampled at ``fps`` by timestamp.

    frames: ``(L, H, W, 3)`` uint8 RGB. ``frames[i]`` is the frame on screen at ``timestamps[i]``.
    timestamps: ``(L,)`` float64 seconds from the start of the video stream; ``timestamps[i] == k / fps``
    for consecutive integers ``k`` (from 0 for a whole video; a streamed chunk starts where the last ended).
    fps: the sampling rate in frames per second. source: the video the frames came from.
    end: on the last chunk of a video, the time (seconds) its last frame leaves the screen, when the video
    says (after the last timestamp, at most ``1 / fps`` after it); None otherwise.
    """

    frames: np.ndarray
    timestamps: np.ndarray
    fps: float
    source: VideoInfo
    end: float | None = None

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])
