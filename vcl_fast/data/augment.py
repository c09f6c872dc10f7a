"""Copy-edit augmentations: the edits that turn an image into a "copy" of itself (positive pairs for
contrastive training, queries for copy-detection evaluation).

Every edit is ``edit(image, rng, space, background) -> image`` on RGB ``PIL.Image``; all randomness comes
from the ``numpy.random.Generator`` passed in, so a seed reproduces the result exactly. Geometric and
photometric edits call ``torchvision.transforms.v2.functional``; JPEG re-encoding, text and emoji overlays
and picture-in-picture are drawn here with Pillow (AugLy was not used: its image extra pins Pillow < 9 and
needs libmagic). Text uses Pillow's bundled default font; emoji are drawn as vector stickers (smiley,
heart, star) because no colour-emoji font can be assumed offline.

Two parameter spaces: :data:`TRAIN_EDITS` for training and :data:`HELDOUT_EDITS`, whose ranges do not
overlap training's where a range exists, for building evaluation queries.
"""
from __future__ import annotations

import io
import string
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Range = tuple[float, float]


@dataclass(frozen=True)
class EditSpace:
    """Parameter ranges ``(low, high)`` of every edit and the probability that the chain applies it."""

    crop_scale: Range = (0.35, 1.0)  # kept area fraction
    crop_ratio: Range = (0.75, 1.333)  # kept aspect ratio w/h
    rotation_deg: Range = (-25.0, 25.0)
    brightness: Range = (0.6, 1.4)
    contrast: Range = (0.6, 1.4)
    saturation: Range = (0.5, 1.5)
    hue: Range = (-0.08, 0.08)
    blur_sigma: Range = (0.5, 2.0)
    jpeg_quality: Range = (30, 90)
    text_height: Range = (0.06, 0.14)  # glyph height / image height
    emoji_size: Range = (0.12, 0.30)  # sticker side / short image side
    pip_scale: Range = (0.35, 0.65)  # pasted side / background side
    pad_fraction: Range = (0.05, 0.25)  # padding per side / image side
    perspective: Range = (0.03, 0.2)  # corner displacement / image side
    probabilities: dict[str, float] = field(
        default_factory=lambda: {
            "crop": 0.6, "hflip": 0.5, "vflip": 0.05, "rotate": 0.2, "perspective": 0.15,
            "color": 0.6, "grayscale": 0.15, "blur": 0.25,
            "pip": 0.35, "pad": 0.15, "text": 0.3, "emoji": 0.3, "jpeg": 0.5,
        }
    )


TRAIN_EDITS = EditSpace()
HELDOUT_EDITS = EditSpace(
    crop_scale=(0.25, 0.35),
    crop_ratio=(0.6, 0.75),
    rotation_deg=(25.0, 40.0),
    brightness=(1.4, 1.7),
    contrast=(0.45, 0.6),
    saturation=(0.2, 0.5),
    hue=(0.08, 0.15),
    blur_sigma=(2.0, 3.0),
    jpeg_quality=(15, 30),
    text_height=(0.14, 0.2),
    emoji_size=(0.30, 0.40),
    pip_scale=(0.25, 0.35),
    pad_fraction=(0.25, 0.35),
    perspective=(0.2, 0.25),
    probabilities={
        "crop": 0.5, "hflip": 0.5, "vflip": 0.1, "rotate": 0.25, "perspective": 0.2,
        "color": 0.6, "grayscale": 0.2, "blur": 0.3,
        "pip": 0.4, "pad": 0.2, "text": 0.35, "emoji": 0.35, "jpeg": 0.6,
    },
)


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _signed(rng: np.random.Generator, bounds: Range) -> float:
    """A value in ``bounds`` with a random sign (ranges given as magnitudes become symmetric)."""
    value = _uniform(rng, bounds)
    return value if bounds[0] < 0 or rng.random() < 0.5 else -value


def _color(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, size=3))


def crop(image: Image.Image, rng: np.random.Generator, space: EditSpace, background=None) -> Image.Image:
    """Random resized crop without the resize: keep a random window of the sampled area and aspect."""
    from torchvision.transforms.v2 import functional as TF

    w, h = image.size
    area = _uniform(rng, space.crop_scale) * w * h
    ratio = float(np.exp(rng.uniform(np.log(space.crop_ratio[0]), np.log(space.crop_ratio[1]))))
    cw = int(round(min(w, max(8, np.sqrt(area * ratio)))))
    ch = int(round(min(h, max(8, np.sqrt(area / ratio)))))
    if (cw, ch) == (w, h):
        cw, ch = max(8, int(w * 0.9)), max(8, int(h * 0.9))
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    return TF.crop(image, top, left, ch, cw)


def hflip(image: Image.Image, rng: np.random.Generator, space: EditSpace, background=None) -> Image.Image:
    from torchvision.transforms.v2 import functional as TF

    return TF.horizontal_flip(image)


def vflip(image: Image.Image, rng: np.random.Generator, space: EditSpace, background=None) -> Image.Image:
    from torchvision.transforms.v2 import functional as TF

    return TF.vertical_flip(image)


def rotate(image: Image.Image, rng: np.random.Generator, space: EditSpace, background=None) -> Image.Image:
    """Rotate by a sampled angle (degrees), expanding the canvas half the time; corners get a random colour."""
    from torchvision.transforms.v2 import functional as TF

    angle = _signed(rng, space.rotation_deg)
    expand = bool(rng.random() < 0.5)
    return TF.rotate(image, angle, expand=expand, fill=list(_color(rng)))


def perspective(image: Image.Image, rng: np.random.Generator, space: EditSpace, background=None) -> Image.Image:
    """Move each corner inwards by a sampled fraction of the image side."""
    from torchvision.transforms.v2 import functional as TF

    w, h = image.size
    start = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
    signs = [(1, 1), (-1, 1), (-1, -1), (1, -1)]
    end = [
        [int(x + sx * _uniform(rng, space.perspective) * w), int(y + sy * _uniform(rng, space.perspective) * h)]
        for (x, y), (sx, sy) in zip(start, signs)
    ]
    return TF.perspective(image, start, end, fill=list(_color(rng)))


def color(image: Image.Image, rng: np.random.Generator, space: EditSpace, background=None) -> Image.Image:
    """Colour jitter: brightness, contrast, saturation and hue, each factor sampled from its range."""
    from torchvision.transforms.v2 import functional as TF

    image = TF.adjust_brightness(image, _uniform(rng, space.brightness))
    image = TF.adjust_contrast(image, _uniform(rng, space.contrast))
    image = TF.adjust_saturation(image, _uniform(rng, space.saturation))
    return TF.adjust_hue(image, _signed(rng, space.hue))


def grayscale(image: Image.Image, rng: np.random.Generator, space: EditSpace, background=None) -> Image.Image:
    from torchvision.transforms.v2 import functional as TF

    return TF.rgb_to_grayscale(image, num_output_channels=3)


def blur(image: Image.Image, rng: np.random.Generator, space: EditSpace, background=None) -> Image.Image:
    """Gaussian blur with a sampled sigma (pixels)."""
    return image.filter(ImageFilter.GaussianBlur(_uniform(rng, space.blur_sigma)))


def jpeg(image: Image.Image, rng: np.random.Generator, space: EditSpace, background=None) -> Image.Image:
    """Re-encode as JPEG at a sampled quality."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(round(_uniform(rng, space.jpeg_quality))))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def text(image: Image.Image, rng: np.random.Generator, space: EditSpace, background=None) -> Image.Image:
    """Overlay 1-3 lines of random text in random colours with Pillow's default font."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    w, h = image.size
    alphabet = string.ascii_letters + string.digits + "!?#@&"
    for _ in range(int(rng.integers(1, 4))):
        size = max(6, int(_uniform(rng, space.text_height) * h))
        font = ImageFont.load_default(size=size)
        words = "".join(rng.choice(list(alphabet), size=int(rng.integers(4, 14))))
        x = int(rng.integers(0, max(1, w - size * 2)))
        y = int(rng.integers(0, max(1, h - size)))
        draw.text((x, y), words, fill=_color(rng), font=font, stroke_width=max(1, size // 12), stroke_fill=_color(rng))
    return image


def _sticker(rng: np.random.Generator, side: int) -> Image.Image:
    """An RGBA emoji-like sticker of ``side`` pixels: a smiley, a heart or a star."""
    sticker = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(sticker)
    fill = _color(rng) + (255,)
    s = side - 1
    kind = int(rng.integers(0, 3))
    if kind == 0:
        draw.ellipse([0, 0, s, s], fill=fill, outline=(0, 0, 0, 255), width=max(1, side // 20))
        eye = max(1, side // 10)
        for ex in (0.33, 0.67):
            draw.ellipse([ex * s - eye, 0.35 * s - eye, ex * s + eye, 0.35 * s + eye], fill=(0, 0, 0, 255))
        draw.arc([0.25 * s, 0.35 * s, 0.75 * s, 0.8 * s], 20, 160, fill=(0, 0, 0, 255), width=max(1, side // 16))
    elif kind == 1:
        r = s / 4
        draw.ellipse([0, 0, 2 * r, 2 * r], fill=fill)
        draw.ellipse([2 * r, 0, 4 * r, 2 * r], fill=fill)
        draw.polygon([(0.02 * s, 1.2 * r), (s / 2, s), (0.98 * s, 1.2 * r), (s / 2, r)], fill=fill)
    else:
        angles = np.linspace(-np.pi / 2, 1.5 * np.pi, 11)[:-1]
        radii = np.where(np.arange(10) % 2 == 0, s / 2, s / 5)
        points = [(s / 2 + r * np.cos(a), s / 2 + r * np.sin(a)) for r, a in zip(radii, angles)]
        draw.polygon(points, fill=fill, outline=(0, 0, 0, 255))
    return sticker


def emoji(image: Image.Image, rng: np.random.Generator, space: EditSpace, background=None) -> Image.Image:
    """Paste 1-3 emoji-like stickers at random places."""
    image = image.copy()
    w, h = image.size
    for _ in range(int(rng.integers(1, 4))):
        side = max(8, int(_uniform(rng, space.emoji_size) * min(w, h)))
        sticker = _sticker(rng, side)
        image.paste(sticker, (int(rng.integers(0, max(1, w - side))), int(rng.integers(0, max(1, h - side)))), sticker)
    return image


def pip(image: Image.Image, rng: np.random.Generator, space: EditSpace, background=None) -> Image.Image:
    """Picture-in-picture: paste ``image`` shrunk onto ``background`` (or, when None, onto a strongly blurred,
    enlarged copy of itself) at a random position. The canvas has the background's size."""
    if background is None:
        w, h = image.size
        canvas = image.resize((w, h)).filter(ImageFilter.GaussianBlur(max(4.0, 0.05 * max(w, h))))
    else:
        canvas = background.convert("RGB").copy()
    cw, ch = canvas.size
    scale = _uniform(rng, space.pip_scale)
    w, h = image.size
    factor = scale * min(cw / w, ch / h)
    pw, ph = max(4, int(w * factor)), max(4, int(h * factor))
    small = image.resize((pw, ph), Image.BILINEAR)
    canvas.paste(small, (int(rng.integers(0, cw - pw + 1)), int(rng.integers(0, ch - ph + 1))))
    return canvas


def pad(image: Image.Image, rng: np.random.Generator, space: EditSpace, background=None) -> Image.Image:
    """Letterbox/pillarbox: add bars of one random colour, each side a sampled fraction of the image."""
    from torchvision.transforms.v2 import functional as TF

    w, h = image.size
    if rng.random() < 0.5:
        sides = [int(_uniform(rng, space.pad_fraction) * w), 0, int(_uniform(rng, space.pad_fraction) * w), 0]
    else:
        sides = [0, int(_uniform(rng, space.pad_fraction) * h), 0, int(_uniform(rng, space.pad_fraction) * h)]
    return TF.pad(image, sides, fill=list(_color(rng)))


Edit = Callable[[Image.Image, np.random.Generator, EditSpace, "Image.Image | None"], Image.Image]

# Every edit, in the order the chain applies them: geometry, photometry, composition, overlays, encoding.
EDITS: dict[str, Edit] = {
    "crop": crop, "hflip": hflip, "vflip": vflip, "rotate": rotate, "perspective": perspective,
    "color": color, "grayscale": grayscale, "blur": blur,
    "pip": pip, "pad": pad, "text": text, "emoji": emoji, "jpeg": jpeg,
}


def copy_edit(
    image: Image.Image,
    rng: np.random.Generator,
    space: EditSpace = TRAIN_EDITS,
    background: Image.Image | None = None,
    min_edits: int = 1,
) -> tuple[Image.Image, list[str]]:
    """Apply a random chain of edits (each with its probability in ``space``; ``pip`` and ``pad`` exclude each
    other) and return the edited RGB image and the names of the edits applied, in order. At least
    ``min_edits`` edits are applied (extra ones drawn uniformly from those not chosen)."""
    image = image.convert("RGB")
    chosen = [name for name in EDITS if rng.random() < space.probabilities.get(name, 0.0)]
    if "pip" in chosen and "pad" in chosen:
        chosen.remove("pad")
    if len(chosen) < min_edits:
        rest = [n for n in EDITS if n not in chosen and not ({n, *chosen} >= {"pip", "pad"})]
        extra = rng.choice(rest, size=min(min_edits - len(chosen), len(rest)), replace=False)
        chosen = [n for n in EDITS if n in chosen or n in set(extra)]
    for name in chosen:
        image = EDITS[name](image, rng, space, background)
    return image, chosen
