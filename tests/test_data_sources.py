"""Offline photo sources: the collector (no network), DEP-5 licences, reserved evaluation videos."""
import hashlib
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from vcl_fast.cli import main
from vcl_fast.data import sources
from vcl_fast.data.debian_packages import UNPACKED_MARKER, fetch_package, licence_of, package_root, read_copyright
from vcl_fast.data.sources import (RESERVED_VIDEO_NAMES, collect_photos, find_reserved_videos, is_photo,
                                   read_manifest)
from vcl_fast.video import write_video


def _astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


def test_collect_pip_sources(tmp_path):
    dest = tmp_path / "photos"
    records = collect_photos(dest, tmp_path / "cache", ("scikit-image", "scikit-learn"), max_side=400)
    names = {r.file for r in records}
    assert {"skimage_astronaut.jpg", "skimage_coffee.jpg", "skimage_chelsea.jpg",
            "sklearn_china.jpg", "sklearn_flower.jpg"} <= names
    # grey images, drawings and logos are not photos; the right image of the stereo pair duplicates the left
    assert not names & {"skimage_camera.jpg", "skimage_logo.jpg", "skimage_text.jpg", "skimage_color.jpg"}
    assert len({"skimage_motorcycle_left.jpg", "skimage_motorcycle_right.jpg"} & names) == 1
    manifest = read_manifest(dest)
    assert [r["file"] for r in manifest["photos"]] == [r.file for r in records]
    assert sorted(p.name for p in dest.iterdir()) == sorted(names | {"manifest.json"})
    assert manifest["sources"]["scikit-learn"] == {"candidates": 2, "excluded": 0, "not_photo": 0,
                                                   "duplicate": 0, "kept": 2}
    for record in records:
        with Image.open(dest / record.file) as image:
            assert image.mode == "RGB" and image.size == (record.width, record.height)
            assert max(image.size) <= 400
        assert hashlib.sha256((dest / record.file).read_bytes()).hexdigest() == record.sha256
        assert record.licence
    by_name = {r.file: r for r in records}
    assert "public domain" in by_name["skimage_astronaut.jpg"].licence
    assert by_name["sklearn_china.jpg"].licence.startswith("CC-BY-2.0")
    assert by_name["sklearn_china.jpg"].copyright == "Some rights reserved by danielbuechele"


def test_collect_replaces_a_collection_and_refuses_other_folders(tmp_path):
    dest = tmp_path / "photos"
    collect_photos(dest, tmp_path / "cache", ("scikit-learn",))
    (dest / "stale.jpg").write_bytes(b"old")
    collect_photos(dest, tmp_path / "cache", ("scikit-learn",))
    assert not (dest / "stale.jpg").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("user data")
    with pytest.raises(ValueError, match="not a photo collection"):
        collect_photos(other, tmp_path / "cache", ("scikit-learn",))
    assert [p.name for p in other.iterdir()] == ["keep.txt"]
    with pytest.raises(ValueError, match="unknown photo source"):
        collect_photos(tmp_path / "x", tmp_path / "cache", ("flickr",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "photos"]  # nothing half-written


def test_is_photo():
    astronaut = Image.fromarray(_astronaut())
    assert is_photo(astronaut)
    assert not is_photo(astronaut.resize((200, 200)))  # too small
    assert not is_photo(astronaut.convert("L"))  # grey
    assert not is_photo(Image.new("RGB", (512, 512), (200, 30, 30)))  # flat
    gradient = np.linspace(0, 255, 512, dtype=np.float32)
    smooth = np.stack(np.broadcast_arrays(gradient[None, :], gradient[:, None], 128.0), axis=2).astype(np.uint8)
    assert not is_photo(Image.fromarray(smooth))  # many colours but no texture


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2020, Someone
License: Apache-2.0 AND BSD-3-Clause
Comment: everything else

# a comment line
Files: data/*
Copyright: 2000, Haar Cascades
License: BSD-3-Clause

Files: samples/data/astro*.jpg
       samples/data/other.png
Copyright: NASA
License: public-domain
"""


def _fake_opencv_doc(cache) -> tuple:
    """An unpacked opencv-doc in the cache: photos, a non-photo, an excluded test pattern and two videos."""
    root = package_root("opencv-doc", cache)
    data = root / "usr/share/doc/opencv-doc/examples/data"
    data.mkdir(parents=True)
    (root / "usr/share/doc/opencv-doc/copyright").write_text(COPYRIGHT)
    astronaut = Image.fromarray(_astronaut())
    astronaut.save(data / "astronaut.jpg", quality=95)
    astronaut.resize((384, 384)).save(data / "astronaut_small.png")  # the same picture smaller
    Image.fromarray(np.asarray(astronaut)[:, ::-1]).save(data / "pic2.png")  # passes the photo test; excluded
    Image.new("RGB", (640, 480), (0, 0, 255)).save(data / "logo.png")
    frames = np.zeros((5, 64, 96, 3), np.uint8)
    for name in ("vtest.avi", "tree.avi"):
        write_video(data / name, frames, 5.0)
    (root / UNPACKED_MARKER).write_text("fake\n")
    return root, data


def test_debian_source_licences_and_reserved_videos(tmp_path):
    cache = tmp_path / "cache"
    root, data = _fake_opencv_doc(cache)
    dest = tmp_path / "photos"
    records = collect_photos(dest, cache, ("opencv-doc",))
    assert [r.file for r in records] == ["opencv_astronaut.jpg"]
    assert records[0].licence == "public-domain" and records[0].copyright == "NASA"
    assert records[0].origin == "opencv-doc:/usr/share/doc/opencv-doc/examples/data/astronaut.jpg"
    assert read_manifest(dest)["sources"]["opencv-doc"] == {"candidates": 4, "excluded": 1, "not_photo": 1,
                                                            "duplicate": 1, "kept": 1}
    # the reserved videos are found for evaluation and never reach the training photos
    assert find_reserved_videos(cache) == [data / "vtest.avi", data / "tree.avi"]
    assert all(p.suffix == ".jpg" or p.name == "manifest.json" for p in dest.iterdir())
    manifest_text = (dest / "manifest.json").read_text()
    for photo in json.loads(manifest_text)["photos"]:
        assert not any(photo["origin"].endswith(name) for name in RESERVED_VIDEO_NAMES)


def test_reserved_names_cannot_be_photo_candidates(tmp_path):
    (tmp_path / "vtest.avi").write_bytes(b"video")
    (tmp_path / "Megamind.avi.jpg").write_bytes(b"not reserved by name")
    Image.new("RGB", (8, 8)).save(tmp_path / "bikes.mp4.png")
    (tmp_path / "tree.avi").mkdir()
    assert [p.name for p in sources._photo_files(tmp_path)] == ["Megamind.avi.jpg", "bikes.mp4.png"]
    assert RESERVED_VIDEO_NAMES == {"vtest.avi", "Megamind.avi", "Megamind_bugy.avi", "tree.avi", "bigbuckbunny.mp4",
                                    "bikes.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4"}


def test_dep5_copyright(tmp_path):
    doc = tmp_path / "usr/share/doc/fake"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    paragraphs = read_copyright(tmp_path, "fake")
    assert [p.patterns for p in paragraphs] == [("*",), ("data/*",), ("samples/data/astro*.jpg", "samples/data/other.png")]
    assert licence_of(paragraphs, "samples/data/fruits.jpg").licence == "Apache-2.0 AND BSD-3-Clause"
    assert licence_of(paragraphs, "data/haarcascade.xml").licence == "BSD-3-Clause"
    assert licence_of(paragraphs, "samples/data/other.png").copyright == "NASA"
    assert read_copyright(tmp_path, "missing") == []


def test_fetch_package_errors_are_os_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get, no dpkg
    with pytest.raises(OSError, match="apt-get is not installed"):
        fetch_package("hello", tmp_path / "cache")


def test_fetch_package_into_a_relative_cache(tmp_path, monkeypatch):
    """apt-get and dpkg run inside the package's folder: a relative cache path still names the .deb (it did not)."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "apt-get").write_text('#!/bin/sh\necho deb > "$2"_1.0_all.deb\n')
    (tools / "dpkg").write_text('#!/bin/sh\ntest -f "$2" && mkdir -p "$3"\n')
    for tool in tools.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    monkeypatch.chdir(tmp_path)
    root = fetch_package("hello", "cache")
    assert root == tmp_path / "cache" / "debian" / "hello" / "root" and (root / UNPACKED_MARKER).is_file()


@pytest.mark.slow
def test_fetch_package_with_apt(tmp_path):
    """Downloads the tiny 'hello' package (skipped without apt-get or network)."""
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        pytest.skip("apt-get/dpkg not available")
    try:
        root = fetch_package("hello", tmp_path)
    except OSError as exc:
        pytest.skip(f"apt-get download failed: {exc}")
    assert (root / "usr/bin/hello").is_file() and (root / UNPACKED_MARKER).is_file()
    assert fetch_package("hello", tmp_path) == root  # cached


def test_cli_fetch(tmp_path, capsys):
    dest = tmp_path / "photos"
    code = main(["data", "fetch", "--dest", str(dest), "--cache", str(tmp_path / "cache"),
                 "--sources", "scikit-learn", "--no-reserved"])
    out = capsys.readouterr().out
    assert code == 0 and "scikit-learn: 2 photos (of 2 images" in out and "2 photos in" in out
    (tmp_path / "file").write_text("x")
    code = main(["data", "fetch", "--dest", str(tmp_path / "file"), "--cache", str(tmp_path / "cache"),
                 "--sources", "scikit-learn", "--no-reserved"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not a photo collection" in err
    code = main(["data", "fetch", "--dest", str(tmp_path / "file" / "photos"), "--cache", str(tmp_path / "cache"),
                 "--sources", "scikit-learn", "--no-reserved"])  # under a file: refused before any download
    assert code == 2 and "photos: " in capsys.readouterr().err.split("is a file, not a folder")[0]
