"""Photo folders for the extractor report (docs/extractor_report.md): train/ and heldout/, disjoint.

Sources (all offline): Debian packages mate-backgrounds, plasma-workspace-wallpapers and opencv-doc (its
examples/data still images only, never its videos), unpacked with ``apt-get download`` + ``dpkg -x`` into
DEBS; scikit-image's and scikit-learn's bundled photos. Every image is shrunk to 512 px, near-duplicates
(16x16 grey thumbnails correlating >= 0.9) are dropped, 40 images are held out at random (seed 2026), and
training also gets the four quadrants of every large (>= 1400 px) wallpaper that is not held out.

Usage: python docs/make_report_photos.py DEBS OUT
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from rtr_fixtures import SKIMAGE_PHOTOS, skimage_photo  # noqa: E402

# opencv-doc examples/data files that are calibration boards, synthetic drawings, logos, or the second view of
# a stereo/sequence pair (near-duplicates of a kept image).
OPENCV_SKIP = (
    "left", "right", "aloeR", "aloeGT", "rubberwhale2", "basketball2", "graf3", "leuvenB", "ela_modified",
    "Blender_Suzanne2", "aero3", "pic", "mask", "gradient", "chessboard", "digits", "templ", "tmpl", "opencv-logo",
    "WindowsLogo", "LinuxLogo", "sudoku", "notes", "ml", "box", "detect_blob", "imageText", "text_", "licenseplate",
    "ellipses", "pca_test1", "HappyFish",
)


def _open(path: Path, side: int) -> Image.Image:
    image = Image.open(path)
    image.draft("RGB", (2 * side, 2 * side))
    image = image.convert("RGB")
    image.thumbnail((side, side))
    return image


def _sources(debs: Path) -> dict[str, Path]:
    found = {}
    for folder in debs.glob("usr/share/wallpapers/*/contents/images"):
        found["plasma_" + folder.parts[-3]] = max(folder.iterdir(), key=lambda p: p.stat().st_size)
    for path in debs.glob("usr/share/backgrounds/mate/**/*.*"):
        found["mate_" + path.stem] = path
    for path in debs.glob("usr/share/doc/opencv-doc/examples/data/*.*"):
        if path.suffix.lower() in (".jpg", ".png") and not path.stem.startswith(OPENCV_SKIP):
            found["ocv_" + path.stem] = path
    return found


def main(debs: Path, out: Path) -> None:
    from sklearn.datasets import load_sample_images

    sources = _sources(debs)
    images = {name: _open(path, 512) for name, path in sorted(sources.items())}
    images.update({"skimage_" + n: skimage_photo(n, 512) for n in SKIMAGE_PHOTOS})
    images.update({f"sklearn_{i}": Image.fromarray(a) for i, a in enumerate(load_sample_images().images)})
    kept, thumbs = [], []
    for name in sorted(images):
        t = np.asarray(images[name].convert("L").resize((16, 16)), dtype=np.float64).ravel()
        t = (t - t.mean()) / (t.std() + 1e-6)
        if all(float(t @ u) / len(t) < 0.9 for u in thumbs):
            kept.append(name)
            thumbs.append(t)
    held = {kept[i] for i in np.random.default_rng(2026).permutation(len(kept))[:40]}
    for name in kept:
        folder = out / ("heldout" if name in held else "train")
        folder.mkdir(parents=True, exist_ok=True)
        images[name].save(folder / f"{name}.png")
        if name in held or name.startswith("ocv_") or name not in sources:
            continue
        full = Image.open(sources[name])
        if min(full.size) >= 1400:
            full.draft("RGB", (2048, 2048))
            full = full.convert("RGB")
            w, h = full.size
            for t, (x, y) in enumerate([(0, 0), (w // 2, 0), (0, h // 2), (w // 2, h // 2)]):
                tile = full.crop((x, y, x + w // 2, y + h // 2))
                tile.thumbnail((512, 512))
                tile.save(folder / f"{name}_tile{t}.png")
    print(f"{len(images)} images, {len(kept)} after de-duplication, {len(held)} held out")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
