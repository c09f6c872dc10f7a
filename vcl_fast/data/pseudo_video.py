"""Pseudo-videos from still photos: shots that pan and zoom over a photo with camera shake, joined by cuts.

Training videos for the detector pipeline come from photos (never from the videos reserved for evaluation,
see :mod:`vcl_fast.data.sources`). A plan (:func:`plan_shots`, deterministic by seed) says which photo each
shot shows and where the camera window is at each frame; :func:`render_frames` draws it.

Camera windows are ``(x0, y0, x1, y1)`` in the photo's pixels (corners, x to the right, y down); their
aspect ratio is the output's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np


@dataclass(frozen=True)
class PseudoVideoConfig:
    """How shots move. Lengths are in frames; sizes are fractions of the largest window that fits the photo."""

    shot_frames: tuple[int, int] = (8, 40)  # shortest and longest shot
    zoom: tuple[float, float] = (0.4, 1.0)  # window size at the start and end of a shot is drawn from this
    pan: float = 0.5  # the window centre moves by at most this fraction of the free space over a shot
    shake: float = 0.01  # std of the per-frame camera jitter, as a fraction of the window width
    shake_memory: float = 0.7  # AR(1) coefficient of the jitter (0: white noise, near 1: slow drift)

    def __post_init__(self):
        low, high = self.shot_frames
        if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
            raise ValueError(f"shot_frames must be ints 1 <= min <= max, got {self.shot_frames}")
        if not 0 < self.zoom[0] <= self.zoom[1] <= 1:
            raise ValueError(f"zoom must satisfy 0 < min <= max <= 1, got {self.zoom}")
        if not (0 <= self.pan <= 1 and self.shake >= 0 and 0 <= self.shake_memory < 1):
            raise ValueError("pan must be in [0, 1], shake >= 0 and shake_memory in [0, 1)")


@dataclass(frozen=True)
class Shot:
    """One shot: ``windows[k]`` is the camera window of the shot's frame ``k`` on photo ``photo``."""

    photo: int
    start: int  # first frame index in the video
    windows: np.ndarray  # (length, 4) float64 (x0, y0, x1, y1) photo pixels

    @property
    def length(self) -> int:
        return len(self.windows)


@dataclass(frozen=True)
class PseudoVideo:
    """frames: ``(N, H, W, 3)`` uint8 RGB; photo_index: ``(N,)`` int64 photo shown by each frame."""

    frames: np.ndarray
    photo_index: np.ndarray
    shots: tuple[Shot, ...]

    def write(self, path: str | os.PathLike, fps: float = 25.0) -> None:
        """Encode the frames to ``path`` (mp4, mkv, webm, avi or gif; see :func:`vcl_fast.video.write_video`)."""
        from vcl_fast.video import write_video

        write_video(path, self.frames, fps)


def plan_shots(
    photo_sizes: Sequence[tuple[int, int]],
    num_frames: int,
    size: tuple[int, int],
    seed: int,
    config: PseudoVideoConfig = PseudoVideoConfig(),
) -> list[Shot]:
    """Shots covering ``num_frames`` frames of ``size = (width, height)`` over photos of ``photo_sizes``
    (``(width, height)`` each). Consecutive shots show different photos when there are two or more."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if not photo_sizes:
        raise ValueError("need at least one photo")
    rng = np.random.default_rng(seed)
    aspect = size[0] / size[1]
    shots, start, previous = [], 0, -1
    while start < num_frames:
        length = min(int(rng.integers(config.shot_frames[0], config.shot_frames[1] + 1)), num_frames - start)
        choices = [i for i in range(len(photo_sizes)) if i != previous] or [previous]
        photo = int(choices[rng.integers(len(choices))])
        windows = _shot_windows(rng, photo_sizes[photo], aspect, length, config)
        shots.append(Shot(photo, start, windows))
        start, previous = start + length, photo
    return shots


def _shot_windows(rng: np.random.Generator, photo_size: tuple[int, int], aspect: float, length: int,
                  config: PseudoVideoConfig) -> np.ndarray:
    """``(length, 4)`` windows: a pan and zoom (eased) from one window to another, plus jitter."""
    width, height = photo_size
    fit = min(width, height * aspect)  # width of the largest window of this aspect inside the photo
    widths = fit * rng.uniform(*config.zoom, size=2)
    centres = []
    for w in widths:  # centre anywhere the window fits
        free_x, free_y = (width - w) / 2, (height - w / aspect) / 2
        centres.append((width / 2 + free_x * rng.uniform(-1, 1), height / 2 + free_y * rng.uniform(-1, 1)))
    (cx0, cy0), (cx1, cy1) = centres
    cx1, cy1 = cx0 + config.pan * (cx1 - cx0), cy0 + config.pan * (cy1 - cy0)
    t = np.linspace(0.0, 1.0, length) if length > 1 else np.zeros(1)
    ease = t * t * (3 - 2 * t)
    w = widths[0] * (widths[1] / widths[0]) ** ease  # zoom at a constant rate
    cx, cy = cx0 + (cx1 - cx0) * ease, cy0 + (cy1 - cy0) * ease
    jitter = np.zeros((length, 2))
    noise = rng.normal(0.0, config.shake, size=(length, 2)) * np.sqrt(1 - config.shake_memory ** 2)
    for k in range(length):
        jitter[k] = (config.shake_memory * jitter[k - 1] if k else 0.0) + noise[k]
    cx, cy = cx + jitter[:, 0] * w, cy + jitter[:, 1] * w
    h = w / aspect
    cx = np.clip(cx, w / 2, width - w / 2)  # keep the window inside the photo
    cy = np.clip(cy, h / 2, height - h / 2)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def render_frames(photos: Sequence[np.ndarray], shots: Sequence[Shot], size: tuple[int, int]) -> Iterator[np.ndarray]:
    """Draw the planned shots: yields ``(height, width, 3)`` uint8 RGB frames in order (bilinear sampling).

    Each photo is first shrunk (Lanczos) so its largest window is at most twice the output size, which keeps
    zoomed-out frames from aliasing.
    """
    from PIL import Image

    prepared: dict[int, tuple[Image.Image, float]] = {}
    for shot in shots:
        if shot.photo not in prepared:
            photo = Image.fromarray(_check_photo(photos[shot.photo], shot.photo))
            fit = min(photo.width, photo.height * size[0] / size[1])
            scale = min(1.0, 2 * size[0] / fit)
            if scale < 1:
                photo = photo.resize((max(1, round(photo.width * scale)), max(1, round(photo.height * scale))),
                                     Image.LANCZOS)
            prepared[shot.photo] = (photo, scale)
        photo, scale = prepared[shot.photo]
        for window in shot.windows:
            box = tuple(float(v) * scale for v in window)
            yield np.asarray(photo.transform(size, Image.EXTENT, box, resample=Image.BILINEAR))


def make_pseudo_video(
    photos: Sequence[np.ndarray],
    num_frames: int,
    size: tuple[int, int] = (320, 180),
    seed: int = 0,
    config: PseudoVideoConfig = PseudoVideoConfig(),
) -> PseudoVideo:
    """A pseudo-video of ``num_frames`` frames of ``size = (width, height)`` from RGB uint8 ``(H, W, 3)`` photos.

    Same photos, size, seed and config give the same frames.
    """
    if not (len(size) == 2 and all(isinstance(v, (int, np.integer)) and v >= 1 for v in size)):
        raise ValueError(f"size must be (width, height) positive ints, got {size!r}")
    sizes = [(_check_photo(p, i).shape[1], p.shape[0]) for i, p in enumerate(photos)]
    shots = plan_shots(sizes, num_frames, size, seed, config)
    frames = np.stack(list(render_frames(photos, shots, size)))
    photo_index = np.concatenate([np.full(s.length, s.photo, dtype=np.int64) for s in shots])
    return PseudoVideo(frames, photo_index, tuple(shots))


def _check_photo(photo: np.ndarray, index: int) -> np.ndarray:
    if not (isinstance(photo, np.ndarray) and photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3):
        raise ValueError(f"photo {index} must be a uint8 (H, W, 3) RGB array, got "
                         f"{getattr(photo, 'dtype', type(photo).__name__)} {getattr(photo, 'shape', '')}")
    return photo
