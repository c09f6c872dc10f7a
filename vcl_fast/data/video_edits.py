"""Video-style copy edits applied consistently to a whole clip (one parameter draw per clip).

Every edit takes frames uint8 ``(N, H, W, 3)`` RGB and returns frames of the same shape and dtype (except
``overlay_on_video``, which takes the host's frame size).
Frame-level copy edits (crop, colour, blur, overlays...) come from ``vcl_fast.data.augment``;
``copy_edit_clip`` (a random chain) and ``image_edit_clip`` (one named edit) apply them to a clip with one
parameter draw. The others add what only exists across
time: the clip played inside another video, blurred-background framing and text that moves from frame to
frame. ``clip_augmenter`` chains both into the ``ClipAugmenter`` of ``vcl_fast.data.pair_generation``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from vcl_fast.data.augment import EDITS, TRAIN_EDITS, EditSpace, copy_edit


def _check_clip(frames: np.ndarray, name: str = "frames") -> None:
    if not (isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3):
        raise ValueError(f"{name} must be uint8 (N, H, W, 3) RGB, got "
                         f"{getattr(frames, 'dtype', type(frames).__name__)} {getattr(frames, 'shape', '')}")


def _resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR))


def _resize_clip(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([_resize(frame, width, height) for frame in frames])


def _same_draw_per_frame(rng: np.random.Generator, frames: np.ndarray,
                         edit: Callable[[Image.Image, np.random.Generator], Image.Image]) -> np.ndarray:
    """``edit(image, generator)`` on every frame with a generator made from one seed drawn from ``rng``,
    resized back to the clip's frame size."""
    _check_clip(frames)
    seed = int(rng.integers(0, 2**63 - 1))
    h, w = frames.shape[1:3]
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        edited = edit(Image.fromarray(frame), np.random.default_rng(seed))
        out[i] = np.asarray(edited.resize((w, h), Image.BILINEAR) if edited.size != (w, h) else edited)
    return out


def copy_edit_clip(rng: np.random.Generator, frames: np.ndarray, space: EditSpace = TRAIN_EDITS) -> np.ndarray:
    """The image copy edits of ``vcl_fast.data.augment.copy_edit`` with ONE draw for the whole clip.

    One seed is drawn from ``rng`` and every frame is edited with a generator made from it. The chain draws
    its parameters from the frame size only, never from pixel values, so every frame gets the same edits
    with the same crop window, colour factors, overlay positions and JPEG quality. Frames are resized back
    to the clip's size (a cropped or padded copy shown at the original resolution).
    """
    return _same_draw_per_frame(rng, frames, lambda image, g: copy_edit(image, g, space)[0])


def image_edit_clip(rng: np.random.Generator, frames: np.ndarray, name: str, space: EditSpace = TRAIN_EDITS
                    ) -> np.ndarray:
    """One named edit of ``vcl_fast.data.augment.EDITS`` (``crop``, ``text``, ``color``...) with one parameter
    draw for the whole clip, as :func:`copy_edit_clip` does for the random chain."""
    if name not in EDITS:
        raise ValueError(f"unknown edit {name!r}; choose one of: {', '.join(EDITS)}")
    return _same_draw_per_frame(rng, frames, lambda image, g: EDITS[name](image, g, space, None))


def overlay_on_video(frames: np.ndarray, host: np.ndarray, scale: float, x: float, y: float) -> np.ndarray:
    """Picture-in-picture: the clip shrunk by ``scale`` in (0, 1] and pasted onto the ``host`` video's frames.

    ``host`` is uint8 ``(M, Hh, Wh, 3)`` with M >= 1 (looped when shorter than the clip); the output has the
    host's frame size. ``x``, ``y`` in [0, 1] place the inset's top-left corner within the free space.
    """
    _check_clip(frames)
    _check_clip(host, "host")
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    hh, hw = host.shape[1:3]
    ih, iw = max(1, int(hh * scale)), max(1, int(hw * scale))
    top, left = int((hh - ih) * y), int((hw - iw) * x)
    out = host[np.arange(len(frames)) % len(host)].copy()
    for i, frame in enumerate(frames):
        out[i, top:top + ih, left:left + iw] = _resize(frame, iw, ih)
    return out


def blurred_background(frames: np.ndarray, scale: float, blur_radius: float = 12.0) -> np.ndarray:
    """Frame the clip, shrunk by ``scale`` in (0, 1], centred on a blurred full-size copy of itself."""
    _check_clip(frames)
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    h, w = frames.shape[1:3]
    ih, iw = max(1, int(h * scale)), max(1, int(w * scale))
    top, left = (h - ih) // 2, (w - iw) // 2
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(frame).filter(ImageFilter.GaussianBlur(blur_radius)))
        out[i, top:top + ih, left:left + iw] = _resize(frame, iw, ih)
    return out


def moving_text(frames: np.ndarray, text: str, start: tuple[float, float], velocity: tuple[float, float],
                colour: tuple[int, int, int] = (255, 255, 255), font_size: int = 24) -> np.ndarray:
    """Draw ``text`` moving across the clip: position = start + velocity * frame index, in frame-size units."""
    _check_clip(frames)
    h, w = frames.shape[1:3]
    font = ImageFont.load_default(size=font_size)
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        image = Image.fromarray(frame)
        x = ((start[0] + velocity[0] * i) % 1.0) * w
        y = ((start[1] + velocity[1] * i) % 1.0) * h
        ImageDraw.Draw(image).text((x, y), text, fill=colour, font=font, stroke_width=1, stroke_fill=(0, 0, 0))
        out[i] = np.asarray(image)
    return out


def random_video_edit(rng: np.random.Generator, frames: np.ndarray, other_videos: list[np.ndarray]) -> np.ndarray:
    """Apply one randomly chosen video-style edit (or none) with parameters drawn once for the clip."""
    choice = rng.integers(0, 4)
    if choice == 1 and other_videos:
        host = other_videos[int(rng.integers(0, len(other_videos)))]
        return overlay_on_video(frames, host, float(rng.uniform(0.4, 0.8)), float(rng.random()), float(rng.random()))
    if choice == 2:
        return blurred_background(frames, float(rng.uniform(0.5, 0.85)))
    if choice == 3:
        words = ["breaking", "LIVE", "funny clip", "subscribe", "2026", "wow"]
        text = " ".join(rng.choice(words, size=int(rng.integers(1, 4))))
        velocity = (float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.02, 0.02)))
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        return moving_text(frames, text, (float(rng.random()), float(rng.random())), velocity, colour,
                           font_size=max(8, frames.shape[1] // 8))
    return frames


def clip_augmenter(other_videos: list[np.ndarray], space: EditSpace = TRAIN_EDITS):
    """A ``ClipAugmenter`` ``(rng, clip) -> clip``: :func:`copy_edit_clip` then :func:`random_video_edit`
    (picture-in-picture hosts drawn from ``other_videos``), resized back to the clip's frame size."""
    def augment(rng: np.random.Generator, frames: np.ndarray) -> np.ndarray:
        edited = random_video_edit(rng, copy_edit_clip(rng, frames, space), other_videos)
        return _resize_clip(edited, *frames.shape[1:3])

    return augment
