"""Typed feature records, per-video feature files and the single-file feature store."""
import dataclasses
import itertools
import json

import numpy as np
import pytest

from vcl_fast.data.features import (
    FeatureStore, VideoFeatures, feature_dir, implied_timestamps, list_video_ids, load_video_features,
    save_video_features,
)


def make_video(video_id, num_frames, tokens=2, dim=8, dtype=np.float32, fps=1.0, irregular=False, seed=0,
               ends=False):
    """``ends``: the video's end is known, a random time within the last frame's 1 / fps."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((num_frames, tokens, dim)).astype(dtype)
    timestamps = np.cumsum(rng.uniform(0.1, 2.0, num_frames)) if irregular else implied_timestamps(num_frames, fps)
    end = (timestamps[-1] if num_frames else 0.0) + rng.uniform(0.01, 1.0) / fps if ends else None
    return VideoFeatures(video_id, features, timestamps, fps, end)


def assert_same(a: VideoFeatures, b: VideoFeatures):
    assert a.video_id == b.video_id and a.fps == b.fps and a.end == b.end
    assert a.features.dtype == b.features.dtype
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    assert b.timestamps.dtype == np.float64


# -------------------------------------------------------------------------------------------- records


def test_from_fps_timestamps():
    video = make_video("v", 4, fps=2.0)
    assert video.timestamps.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert (video.num_frames, video.num_tokens, video.dim) == (4, 2, 8)
    np.testing.assert_array_equal(implied_timestamps(0, 1.0), np.zeros(0))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(video_id=""), ValueError, "video_id"),
    (dict(features=np.zeros((3, 2, 4))), TypeError, "float32 or float16"),
    (dict(features=[[[0.0]]]), TypeError, "numpy array"),
    (dict(features=np.zeros((3, 4), np.float32)), ValueError, r"\(L, T, D\)"),
    (dict(timestamps=np.arange(2.0)), ValueError, r"timestamps must be shaped \(3,\)"),
    (dict(timestamps=np.array([0.0, 2.0, 1.0])), ValueError, "strictly increasing"),
    (dict(timestamps=np.array([0.0, np.nan, 1.0])), ValueError, "finite"),
    (dict(fps=0.0), ValueError, "fps"),
    (dict(end=2.0), ValueError, "end must be a finite time after the last timestamp"),
    (dict(end=float("nan")), ValueError, "end must be a finite time"),
])
def test_video_features_validation(kwargs, error, message):
    fields = dict(video_id="v", features=np.zeros((3, 2, 4), np.float32), timestamps=np.arange(3.0), fps=1.0)
    fields.update(kwargs)
    with pytest.raises(error, match=message):
        VideoFeatures(**fields)


# ------------------------------------------------------------------------------------ per-video files


@pytest.mark.parametrize("dtype, num_frames, irregular, mmap, ends", list(itertools.product(
    [np.float32, np.float16], [0, 1, 7], [False, True], [False, True], [False, True])))
def test_per_video_round_trip(tmp_path, dtype, num_frames, irregular, mmap, ends):
    directory = feature_dir(tmp_path, "vcsl", "rtr")
    assert directory == tmp_path / "features" / "vcsl" / "rtr"
    video = make_video("vid_1", num_frames, dtype=dtype, fps=2.0, irregular=irregular, ends=ends)
    path = save_video_features(directory, video)
    assert path == directory / "vid_1.npy" and np.load(path).shape == (num_frames, 2, 8)
    assert (directory / "vid_1.timestamps.npy").exists() == ((irregular and num_frames > 0) or ends)
    assert_same(video, load_video_features(directory, "vid_1", mmap=mmap))
    # written again without its end (a feature directory of an earlier version): the end is unknown
    save_video_features(directory, dataclasses.replace(video, end=None))
    assert load_video_features(directory, "vid_1").end is None
    assert list_video_ids(directory) == ["vid_1"]


def test_per_video_layout_errors(tmp_path):
    directory = tmp_path / "f"
    save_video_features(directory, make_video("a", 3, fps=1.0))
    with pytest.raises(ValueError, match="at 1.0 fps, video b is at 2.0 fps"):
        save_video_features(directory, make_video("b", 3, fps=2.0))
    with pytest.raises(KeyError, match="unknown video id 'missing'"):
        load_video_features(directory, "missing")
    with pytest.raises(ValueError, match="cannot name a file"):
        save_video_features(directory, make_video("../x", 1))
    np.save(directory / "flat.npy", np.zeros((5, 16), np.float32))  # VCSL's (L, D) layout reads as T=1
    assert load_video_features(directory, "flat").features.shape == (5, 1, 16)
    np.save(directory / "bad.npy", np.zeros((5,), np.float32))
    with pytest.raises(ValueError, match=r"bad\.npy: features must be shaped"):
        load_video_features(directory, "bad")
    np.save(directory / "wide.npy", np.zeros((2, 1, 4), np.float64))
    with pytest.raises(TypeError, match=r"wide\.npy: .*float32 or float16"):
        load_video_features(directory, "wide")


# ---------------------------------------------------------------------------------- single-file store


@pytest.mark.parametrize("dtype, tokens, lengths", list(itertools.product(
    [np.float32, np.float16], [1, 2, 4], [(1,), (0, 3), (5, 1, 0, 12)])))
def test_store_round_trip(tmp_path, dtype, tokens, lengths):
    videos = [make_video(f"v{i}", n, tokens=tokens, dtype=dtype, fps=1.0 + i, irregular=i % 2 == 1, seed=i,
                         ends=i % 3 != 1) for i, n in enumerate(lengths)]
    store = FeatureStore.write(tmp_path / "s.vclf", iter(videos))
    reopened = FeatureStore(tmp_path / "s.vclf")
    for opened in (store, reopened):
        assert len(opened) == len(videos) and opened.video_ids == tuple(v.video_id for v in videos)
        assert (opened.num_tokens, opened.dim, opened.dtype) == (tokens, 8, np.dtype(dtype))
        for video, read in zip(videos, opened):
            assert_same(video, read)
            assert not read.features.flags.writeable
        assert "v0" in opened and "nope" not in opened


def test_store_rebuild_with_more_videos(tmp_path):
    first = FeatureStore.write(tmp_path / "a.vclf", [make_video("a", 3)])
    both = FeatureStore.write(tmp_path / "b.vclf", itertools.chain(first, [make_video("b", 2, seed=1)]))
    assert both.video_ids == ("a", "b")
    assert_same(first["a"], both["a"])


@pytest.mark.parametrize("videos, error, message", [
    ([make_video("a", 2), make_video("b", 2, dim=4)], ValueError, "video b: .* differs"),
    ([make_video("a", 2), make_video("b", 2, tokens=3)], ValueError, "video b: .* differs"),
    ([make_video("a", 2), make_video("b", 2, dtype=np.float16)], ValueError, "video b: .* differs"),
    ([make_video("a", 2), make_video("a", 1)], ValueError, "appears twice"),
    ([], ValueError, "at least one video"),
    ([np.zeros((2, 1, 8), np.float32)], TypeError, "VideoFeatures"),
])
def test_store_write_errors_leave_nothing(tmp_path, videos, error, message):
    with pytest.raises(error, match=message):
        FeatureStore.write(tmp_path / "s.vclf", videos)
    assert list(tmp_path.iterdir()) == []


def test_store_written_before_ends_reads_them_as_unknown(tmp_path):
    import struct

    FeatureStore.write(tmp_path / "s.vclf", [make_video("a", 2, ends=True)])
    data = (tmp_path / "s.vclf").read_bytes()
    offset, length, magic = struct.unpack("<QQ8s", data[-24:])
    header = json.loads(data[offset:offset + length])
    assert header["ends"][0] is not None
    del header["ends"]
    old = json.dumps(header).encode()
    (tmp_path / "old.vclf").write_bytes(data[:offset] + old + struct.pack("<QQ8s", offset, len(old), magic))
    read = FeatureStore(tmp_path / "old.vclf")["a"]
    assert read.end is None and read.num_frames == 2


def test_store_read_errors(tmp_path):
    store = FeatureStore.write(tmp_path / "s.vclf", [make_video("a", 2)])
    with pytest.raises(KeyError, match="unknown video id 'b'"):
        store["b"]
    (tmp_path / "junk.vclf").write_bytes(b"not a store at all, definitely not")
    with pytest.raises(ValueError, match="bad magic"):
        FeatureStore(tmp_path / "junk.vclf")
    data = (tmp_path / "s.vclf").read_bytes()
    (tmp_path / "cut.vclf").write_bytes(data[:-5])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        FeatureStore(tmp_path / "cut.vclf")
    with pytest.raises(FileNotFoundError):
        FeatureStore(tmp_path / "missing.vclf")


def test_claim_feature_dir_keeps_one_source_and_rate(tmp_path):
    from vcl_fast.data.features import claim_feature_dir, save_video_features

    folder = tmp_path / "cache"
    assert claim_feature_dir(folder, 1.0, "model A") == folder
    save_video_features(folder, VideoFeatures.from_fps("v", np.ones((3, 2, 4), np.float32), 1.0))
    assert json.loads((folder / "meta.json").read_text()) == {"fps": 1.0, "source": "model A"}
    claim_feature_dir(folder, 1.0, "model A")  # the same: fine
    for fps, source in ((1.0, "model B"), (2.0, "model A")):
        with pytest.raises(ValueError, match="holds features of model A at 1 fps, not of "):
            claim_feature_dir(folder, fps, source)
    unrecorded = tmp_path / "extracted"  # features written without a source: not reused
    save_video_features(unrecorded, VideoFeatures.from_fps("v", np.ones((3, 2, 4), np.float32), 1.0))
    with pytest.raises(ValueError, match="holds features of an unrecorded extractor at 1 fps"):
        claim_feature_dir(unrecorded, 1.0, "model A")
    (unrecorded / "meta.json").unlink()
    with pytest.raises(ValueError, match="holds features but no meta.json"):
        claim_feature_dir(unrecorded, 1.0, "model A")
