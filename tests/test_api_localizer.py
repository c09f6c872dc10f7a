"""vcl_fast.Localizer end to end on tiny generated videos: the planted copy found at the right seconds (TN),
ONNX Runtime vs torch, batching, the default-model loader, bad inputs and thread safety."""
import math
import threading
import wave
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

from localize_fixtures import (  # noqa: E402,F401 (micro_model_dir and planted_videos are fixtures)
    PLANTED, QUERY_PHOTOS, micro_detector, micro_extractor, micro_model_dir, photo_frames, planted_videos,
)
from vcl_fast import LocalizationResult, Localizer, Segment  # noqa: E402
from vcl_fast.api import DECODE_AHEAD_FRAMES, STAGES, decode_ahead, default_batch_size  # noqa: E402
from vcl_fast.data.features import VideoFeatures  # noqa: E402

# TN settings for the micro extractor's random features: only near-identical frames (cosine >= 0.9) join a
# path, one candidate per query frame, steps of one frame (the defaults are tuned for trained features).
TN_PARAMS = {"top_k": 1, "max_step": 2, "min_sim": 0.9}
# Random detector weights put every objectness near 0.01: threshold 0 keeps boxes to compare backends on.
YOLOX_PARAMS = {"conf_threshold": 0.0}
# ONNX Runtime and torch outputs differ by < 1e-4 (raw); segments must agree to 1e-3 s and scores to 1e-5.
SECONDS_TOL, SCORE_TOL = 1e-3, 1e-5


@pytest.fixture(scope="module")
def tn_localizer(micro_model_dir):
    return Localizer(micro_model_dir, method="tn", method_params=TN_PARAMS, threads=1)


def test_planted_copy_found_at_the_right_seconds(tn_localizer, planted_videos):
    query, reference = planted_videos
    result = tn_localizer.localize(query, reference, return_map=True)
    assert isinstance(result, LocalizationResult)
    assert result.query == str(query) and result.reference == str(reference)
    assert result.copied and len(result.segments) == 1
    segment = result.segments[0]
    assert (segment.q_start, segment.q_end, segment.r_start, segment.r_end) == pytest.approx(PLANTED, abs=1e-6)
    assert result.score == segment.score > 0.9
    assert result.similarity.shape == (12, 9) and result.similarity.dtype == np.float32
    assert set(result.timings) == set(STAGES) and all(v >= 0 for v in result.timings.values())
    assert result.timings["total"] >= result.timings["decode"] > 0
    assert result.boxes().tolist() == [[3.0, 1.0, 10.0, 8.0, pytest.approx(segment.score)]]


def test_the_map_comes_with_the_times_it_spans(tn_localizer, planted_videos):
    """``map_edges``: where each row (query) and column (reference) of the map starts, and where the last ends:
    the video's end when that is sooner than a sample period after the last sample."""
    from vcl_fast.data.features import VideoFeatures

    result = tn_localizer.localize(*planted_videos, return_map=True)
    query_edges, reference_edges = result.map_edges
    np.testing.assert_array_equal(query_edges, np.arange(13.0))  # 12 s at 1 fps: whole sample periods
    np.testing.assert_array_equal(reference_edges, np.arange(10.0))
    assert tn_localizer.localize(*planted_videos).map_edges is None  # no map, no edges
    rng = np.random.default_rng(0)
    cut = VideoFeatures("cut", rng.standard_normal((5, 2, 8)).astype(np.float32), np.arange(5) * 0.5, 2.0, end=2.2)
    open_ended = VideoFeatures("open", rng.standard_normal((3, 2, 8)).astype(np.float32), np.array([1.0, 2, 3]), 1.0)
    empty = VideoFeatures("empty", np.zeros((0, 2, 8), np.float32), np.zeros(0), 1.0)
    (first, second) = tn_localizer.localize_many(cut, [open_ended, empty], return_map=True)
    np.testing.assert_array_equal(first.map_edges[0], [0.0, 0.5, 1.0, 1.5, 2.0, 2.2])
    np.testing.assert_array_equal(first.map_edges[1], [1.0, 2.0, 3.0, 4.0])
    assert first.similarity.shape == (5, 3) and second.similarity.shape == (5, 0)
    np.testing.assert_array_equal(second.map_edges[1], [0.0])


def test_result_dict_schema(tn_localizer, planted_videos):
    data = tn_localizer.localize(*planted_videos).to_dict()
    assert list(data) == ["query", "reference", "copied", "score", "segments", "timings"]
    assert list(data["segments"][0]) == ["q_start", "q_end", "r_start", "r_end", "score"]
    assert all(isinstance(v, float) for v in data["segments"][0].values())
    assert isinstance(data["copied"], bool) and isinstance(data["score"], float)


def test_features_from_path_frames_and_arrays(tn_localizer, planted_videos):
    from vcl_fast.video import read_frames

    query, _ = planted_videos
    from_path = tn_localizer.features(query)
    assert from_path.video_id == "query" and from_path.fps == 1.0
    np.testing.assert_array_equal(from_path.timestamps, np.arange(12.0))
    assert from_path.features.shape == (12, 2, 16) and from_path.features.dtype == np.float32
    decoded = read_frames(query)
    from_frames = tn_localizer.features(decoded.frames, video_id="q")
    np.testing.assert_array_equal(from_frames.features, from_path.features)
    assert from_frames.video_id == "q"
    assert tn_localizer.features(from_path) is from_path
    as_array = tn_localizer.features(from_path.features.astype(np.float64))
    np.testing.assert_array_equal(as_array.features, from_path.features)
    assert tn_localizer.features(from_path.features[:, 0]).features.shape == (12, 1, 16)


def test_streaming_chunks_do_not_change_features(micro_model_dir, tn_localizer, planted_videos):
    small_batches = Localizer(micro_model_dir, method="tn", batch_size=5, threads=1)
    np.testing.assert_array_equal(small_batches.features(planted_videos[0]).features,
                                  tn_localizer.features(planted_videos[0]).features)


def test_default_batch_size_is_small_on_a_cpu(micro_model_dir):
    assert Localizer(micro_model_dir, method="tn").extractor.batch_size == 4
    assert Localizer(micro_model_dir, method="tn", batch_size=16).extractor.batch_size == 16
    assert default_batch_size("cpu") == 4 and default_batch_size("cuda:1") == default_batch_size("auto") == 16


@pytest.mark.parametrize("batch_size", [1, 3, 4, 5, 16, 17, 64])
def test_decode_ahead_holds_whole_chunks_up_to_the_frame_budget(batch_size):
    chunks = decode_ahead(batch_size)
    assert chunks >= 1 and (chunks == 1 or chunks * batch_size <= DECODE_AHEAD_FRAMES)
    assert (chunks + 1) * batch_size > DECODE_AHEAD_FRAMES  # no further whole chunk fits
    assert decode_ahead(default_batch_size("cpu")) == 4 and decode_ahead(default_batch_size("cuda")) == 1


def test_image_folder_and_timestamps_in_seconds(tn_localizer, tmp_path):
    from PIL import Image

    frames = photo_frames(QUERY_PHOTOS, repeat=1)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"frame{i}.png")
    features = tn_localizer.features(tmp_path)
    assert features.num_frames == len(frames) and features.video_id == tmp_path.name
    np.testing.assert_array_equal(features.features, tn_localizer.features(frames).features)
    # The same features sampled at 2 fps: frame positions map to half seconds.
    twice = VideoFeatures.from_fps("q", features.features, 2.0)
    segment = tn_localizer.localize(twice, twice).segments[0]
    assert (segment.q_start, segment.q_end, segment.r_start, segment.r_end) == (0.0, 6.0, 0.0, 6.0)


def test_segments_end_with_their_videos(tn_localizer, tmp_path):
    import dataclasses

    from vcl_fast.api import frames_to_seconds

    features = tn_localizer.features(photo_frames(QUERY_PHOTOS, repeat=1))  # L frames at 1 fps, end unknown
    last = features.num_frames - 1
    assert features.end is None
    ended = dataclasses.replace(features, end=last + 0.25)  # the last frame shows for a quarter of a second
    positions = np.array([0.0, last, last + 0.5, last + 1])
    np.testing.assert_allclose(frames_to_seconds(positions, features), positions)
    np.testing.assert_allclose(frames_to_seconds(positions, ended), [0, last, last + 0.125, last + 0.25])
    segment = tn_localizer.localize(ended, ended).segments[0]
    assert (segment.q_start, segment.q_end, segment.r_start, segment.r_end) == (0.0, last + 0.25, 0.0, last + 0.25)
    # a video file of L + 1 frames at 4 fps, sampled at 1 fps: the video ends at (L + 1) / 4 s
    from vcl_fast.video import write_video

    write_video(tmp_path / "short.mp4", photo_frames(QUERY_PHOTOS, repeat=1), 4.0)
    decoded = tn_localizer.features(tmp_path / "short.mp4")
    assert decoded.num_frames == int(np.ceil((last + 1) / 4)) and decoded.end == pytest.approx((last + 1) / 4)


def test_localize_many_matches_single_calls(tn_localizer, planted_videos):
    query, reference = planted_videos
    other = tn_localizer.features(photo_frames(QUERY_PHOTOS[::-1], repeat=1), video_id="other")
    many = tn_localizer.localize_many(query, [reference, other, query], return_map=True)
    assert [r.reference for r in many] == [str(reference), "other", str(query)]
    for result, ref in zip(many, [reference, other, query]):
        single = tn_localizer.localize(query, ref, return_map=True)
        assert result.segments == single.segments
        np.testing.assert_array_equal(result.similarity, single.similarity)
    assert tn_localizer.localize_many(query, []) == []


def _assert_same_segments(found: list[Segment], expected: list[Segment]) -> None:
    assert len(found) == len(expected)
    for a, b in zip(found, expected):
        assert (a.q_start, a.q_end, a.r_start, a.r_end) == pytest.approx(
            (b.q_start, b.q_end, b.r_start, b.r_end), abs=SECONDS_TOL)
        assert a.score == pytest.approx(b.score, abs=SCORE_TOL)


def test_large_maps_are_read_tile_by_tile_with_the_same_result(micro_model_dir, monkeypatch):
    from vcl_fast import api
    from vcl_fast.ops import LazySimilarityMap

    rng = np.random.default_rng(5)
    query = rng.standard_normal((90, 2, 16)).astype(np.float32)
    references = [np.concatenate([rng.standard_normal((30, 2, 16)), query[20:60]]).astype(np.float32),
                  rng.standard_normal((1, 2, 16)).astype(np.float32)]
    loc = Localizer(micro_model_dir, micro_model_dir, threads=1,
                    method_params={"conf_threshold": 0.0, "chunk_length": 32, "min_similarity": 0.5})
    whole = loc.localize_many(query, references)
    seen = []
    monkeypatch.setattr(api, "WHOLE_MAP_CELLS", 0)
    monkeypatch.setattr(loc, "_detect", lambda maps, detect=loc._detect: seen.extend(maps) or detect(maps))
    tiled = loc.localize_many(query, references)
    assert len(seen) == 2 and all(isinstance(m, LazySimilarityMap) for m in seen)
    assert sum(len(r.segments) for r in whole) > 0
    assert [r.segments for r in tiled] == [r.segments for r in whole]
    seen.clear()
    mapped = loc.localize(query, references[0], return_map=True)  # a map to return is computed whole
    assert isinstance(seen[0], np.ndarray) and mapped.similarity.shape == (90, 70)


def test_onnxruntime_and_torch_localize_alike(micro_model_dir, planted_videos):
    ort_loc = Localizer(micro_model_dir, micro_model_dir, method_params=YOLOX_PARAMS, threads=1)
    torch_loc = Localizer(micro_extractor(), micro_detector(), backend="torch", method_params=YOLOX_PARAMS)
    for query, reference in (planted_videos, planted_videos[::-1]):
        a, b = ort_loc.localize(query, reference), torch_loc.localize(query, reference)
        assert a.segments, "threshold 0 must keep boxes"
        _assert_same_segments(a.segments, b.segments)
        assert a.score == max(s.score for s in a.segments)


def test_yolox_localize_many_is_one_batched_detector_pass(micro_model_dir, planted_videos):
    loc = Localizer(micro_model_dir, micro_model_dir, method_params=YOLOX_PARAMS, threads=1)
    calls = []
    run = loc.detector.run
    loc.detector.run = lambda images: calls.append(len(images)) or run(images)
    query, reference = planted_videos
    many = loc.localize_many(query, [reference, query, reference])
    assert calls == [3]
    for result, ref in zip(many, [reference, query, reference]):
        _assert_same_segments(result.segments, loc.localize(query, ref).segments)


def test_default_model_loader(micro_model_dir, monkeypatch, tmp_path):
    import vcl_fast.runtime.manifest as manifest

    monkeypatch.setattr(manifest, "DEFAULT_MODEL_DIR", tmp_path / "absent")
    with pytest.raises(ValueError, match="no embedded default model in this build: pass extractor=/detector= "
                                         "paths or run `vcl-fast export`"):
        Localizer()
    monkeypatch.setattr(manifest, "DEFAULT_MODEL_DIR", micro_model_dir)
    loc = Localizer(threads=1)
    assert loc.extractor.spec.dim == 16 and loc.detector.spec.input_size == 64
    with pytest.raises(ValueError, match="torch backend needs detector="):
        Localizer(backend="torch")


def test_a_torch_localizer_without_extractor_takes_features_only(planted_videos):
    full = Localizer(micro_extractor(), micro_detector(), backend="torch", method_params=YOLOX_PARAMS)
    query, reference = (full.features(video) for video in planted_videos)
    features_only = Localizer(detector=micro_detector(), backend="torch", method_params=YOLOX_PARAMS)
    _assert_same_segments(features_only.localize(query, reference).segments,
                          full.localize(*planted_videos).segments)
    for frames_or_path in (planted_videos[0], photo_frames(QUERY_PHOTOS[:1], 2)):
        with pytest.raises(ValueError, match="no extractor to embed frames with: the torch backend needs extractor="):
            features_only.localize(frames_or_path, reference)
    assert Localizer(backend="torch", method="tn").localize(query, reference).copied


def test_an_exported_directory_gives_its_own_detector(micro_model_dir, tmp_path):
    from vcl_fast.export.onnx import export_onnx

    assert Localizer(micro_model_dir, threads=1).detector.spec.input_size == 64  # the micro detector, not 256
    extractor_only = tmp_path / "extractor_only"
    export_onnx(extractor_only, micro_extractor())
    assert Localizer(extractor_only, threads=1).detector.spec.input_size == 256  # the embedded default one
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest"):
        Localizer(broken)
    assert Localizer(broken, micro_model_dir, threads=1).detector.spec.input_size == 64


def test_extractor_is_loaded_once_on_first_use(micro_model_dir, monkeypatch):
    from vcl_fast.runtime import ort_backend

    loads = []
    load = ort_backend.load_extractor
    monkeypatch.setattr(ort_backend, "load_extractor", lambda *args: loads.append(args) or load(*args))
    loc = Localizer(micro_model_dir, method="tn", threads=1)
    features = np.random.default_rng(0).normal(size=(5, 2, 16)).astype(np.float32)
    loc.localize(features, features)
    assert loads == []  # features only: the extractor is never needed
    with ThreadPoolExecutor(4) as pool:
        extractors = list(pool.map(lambda _: loc.extractor, range(8)))
    assert len(loads) == 1 and all(e is extractors[0] for e in extractors)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        Localizer(micro_model_dir, method="tn", batch_size=0)


def test_onnxruntime_extractor_leaves_a_core_to_the_decoder(micro_model_dir, monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    threads = lambda loc: loc.extractor.session.get_session_options().intra_op_num_threads  # noqa: E731
    assert threads(Localizer(micro_model_dir, method="tn")) == 3
    assert threads(Localizer(micro_model_dir, method="tn", threads=2)) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert threads(Localizer(micro_model_dir, method="tn")) == 1


def _write_audio_only(path):
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes((np.sin(np.arange(8000) / 5) * 3000).astype(np.int16).tobytes())


def test_bad_planted_videos_name_the_file(tn_localizer, planted_videos, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    audio = tmp_path / "audio.wav"
    _write_audio_only(audio)
    for path, reason in ((tmp_path / "missing.mp4", "no such file"), (corrupt, "cannot open"),
                         (empty, "empty file"), (audio, "audio-only"), ("https://example.com/a.mp4", "a URL")):
        with pytest.raises(ValueError, match=reason) as info:
            tn_localizer.localize(planted_videos[0], path)
        assert str(path) in str(info.value)
        with pytest.raises(ValueError, match=reason):  # the query, decoded first
            tn_localizer.localize(path, planted_videos[1])
        with pytest.raises(ValueError, match=reason):  # between good videos decoded ahead
            tn_localizer.localize_many(planted_videos[0], [planted_videos[1], path, planted_videos[1]])
    assert not any(t.name == "vcl_fast-prefetch" for t in threading.enumerate())  # decoder threads ended


def test_bad_arguments(micro_model_dir, tn_localizer):
    features = np.ones((5, 2, 16), np.float32)
    with pytest.raises(ValueError, match="^reference: its features have 8 dims but the query's have 16; both must"):
        tn_localizer.localize(features, np.ones((5, 2, 8), np.float32))
    with pytest.raises(ValueError, match=r"^references\[1\]: its features have 8 dims but the query's have 16"):
        tn_localizer.localize_many(features, [features, np.ones((5, 2, 8), np.float32)])
    for bad in (np.zeros((3, 32, 32), np.uint8), np.zeros((3, 32, 32, 4), np.uint8)):  # grey, RGBA
        with pytest.raises(ValueError, match=r"^reference: frames must be shaped \(N, H, W, 3\)"):
            tn_localizer.localize(features, bad)
    with pytest.raises(TypeError, match="a video is a path"):
        tn_localizer.localize(features, [1, 2, 3])
    with pytest.raises(ValueError, match="frames .* uint8 or features"):
        tn_localizer.localize(features, np.ones((5, 2), np.int32))
    with pytest.raises(ValueError, match="^reference: its features contain NaN or infinite values"):
        tn_localizer.localize(features, np.full((5, 2, 16), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"^references\[1\]: its features contain NaN or infinite values"):
        tn_localizer.localize_many(features, [features, np.full((5, 2, 16), np.inf, np.float32)])
    with pytest.raises(TypeError, match="references must be a list"):
        tn_localizer.localize_many(features, features)
    with pytest.raises(ValueError, match="unknown method 'sift'"):
        Localizer(micro_model_dir, method="sift")
    for fps in (0, -1, math.nan, True):
        with pytest.raises(ValueError, match="fps must be a positive"):
            Localizer(micro_model_dir, method="tn", fps=fps)
    with pytest.raises(ValueError, match="unknown backend"):
        Localizer(micro_model_dir, backend="tflite")
    with pytest.raises(TypeError, match="exact_decoding must be True or False"):
        Localizer(micro_model_dir, method="tn", exact_decoding="yes")
    with pytest.raises(ValueError, match="min_sim"):
        Localizer(micro_model_dir, method="tn", method_params={"min_simm": 0.5})
    with pytest.raises(ValueError, match="input_size"):
        Localizer(micro_model_dir, micro_model_dir, method_params={"input_size": 128})
    with pytest.raises(ValueError, match="conf_threshold"):
        Localizer(micro_model_dir, micro_model_dir, method_params={"conf_threshold": 2.0})
    with pytest.raises(FileNotFoundError):
        Localizer(micro_model_dir / "nothing")


def test_empty_features_give_no_segments(tn_localizer):
    result = tn_localizer.localize(np.zeros((0, 2, 16), np.float32), np.ones((4, 2, 16), np.float32))
    assert result.segments == [] and not result.copied and result.score == 0.0


@pytest.mark.parametrize("method", ["yolox", "tn"])
def test_concurrent_calls_equal_sequential_ones(micro_model_dir, planted_videos, method):
    params = YOLOX_PARAMS if method == "yolox" else TN_PARAMS
    loc = Localizer(micro_model_dir, micro_model_dir, method=method, method_params=params, threads=1)
    query, reference = planted_videos
    jobs = [(query, reference), (reference, query), (query, query), (reference, reference)] * 2
    sequential = [loc.localize(q, r, return_map=True) for q, r in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda job: loc.localize(*job, return_map=True), jobs))
    for a, b in zip(concurrent, sequential):
        assert a.segments == b.segments
        np.testing.assert_array_equal(a.similarity, b.similarity)


@pytest.mark.cuda
def test_torch_backend_on_cuda_matches_cpu(micro_model_dir, planted_videos):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cpu = Localizer(micro_extractor(), micro_detector(), backend="torch", method_params=YOLOX_PARAMS)
    gpu = Localizer(micro_extractor(), micro_detector(), backend="torch", device="cuda", method_params=YOLOX_PARAMS)
    np.testing.assert_allclose(gpu.features(planted_videos[0]).features, cpu.features(planted_videos[0]).features,
                               atol=1e-4)
    _assert_same_segments(gpu.localize(*planted_videos).segments, cpu.localize(*planted_videos).segments)


@pytest.mark.cuda
def test_onnxruntime_cuda_provider_matches_cpu(micro_model_dir, planted_videos):
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA execution provider")
    cpu = Localizer(micro_model_dir, micro_model_dir, method_params=YOLOX_PARAMS)
    gpu = Localizer(micro_model_dir, micro_model_dir, device="cuda", method_params=YOLOX_PARAMS)
    np.testing.assert_allclose(gpu.features(planted_videos[0]).features, cpu.features(planted_videos[0]).features,
                               atol=1e-4)
    _assert_same_segments(gpu.localize(*planted_videos).segments, cpu.localize(*planted_videos).segments)


def test_calibrated_cosines_default_to_the_manifests(micro_model_dir, tmp_path):
    import json
    import shutil

    params = Localizer(micro_model_dir, micro_model_dir, threads=1).params
    assert (params.min_similarity, params.extent_similarity) == (-1.0, -1.0)
    calibrated = tmp_path / "calibrated"
    shutil.copytree(micro_model_dir, calibrated)
    manifest = json.loads((calibrated / "manifest.json").read_text())
    manifest["detector"].update(min_similarity=0.85, extent_similarity=0.75, confident_similarity=0.8,
                                confident_score=0.5, query_margin=0.5, reference_margin=-0.25)
    (calibrated / "manifest.json").write_text(json.dumps(manifest))
    params = Localizer(calibrated, calibrated, threads=1).params
    assert (params.min_similarity, params.extent_similarity, params.confident_similarity, params.confident_score,
            params.query_margin, params.reference_margin) == (0.85, 0.75, 0.8, 0.5, 0.5, -0.25)
    loc = Localizer(calibrated, calibrated, method_params={"min_similarity": 0.5, "extent_similarity": -1}, threads=1)
    assert (loc.params.min_similarity, loc.params.extent_similarity) == (0.5, -1.0)
    for key, bad in (("min_similarity", 3.0), ("extent_similarity", 3.0), ("confident_similarity", 3.0),
                     ("confident_score", 3.0), ("query_margin", 11.0), ("reference_margin", -11.0)):
        (calibrated / "manifest.json").write_text(json.dumps({**manifest, "detector": {**manifest["detector"], key: bad}}))
        with pytest.raises(ValueError, match=key):
            Localizer(calibrated, calibrated, threads=1)


def test_reprs_are_short_and_say_what_matters():
    from vcl_fast.api import LocalizationResult, Segment
    from vcl_fast.data.features import VideoFeatures

    segment = Segment(8.361968994140625, 13.731886863708496, 0.2720634341239929, 5.65338134765625, 0.8420662879)
    assert repr(segment) == "Segment(q_start=8.362, q_end=13.732, r_start=0.272, r_end=5.653, score=0.842)"
    assert segment.q_start == 8.361968994140625  # the value keeps its precision
    result = LocalizationResult("q.mp4", "r.mp4", [segment], True, 0.8420662879, {"total": 0.4801636})
    assert repr(result) == (f"LocalizationResult(query='q.mp4', reference='r.mp4', copied=True, score=0.842, "
                            f"segments=[{segment!r}], total=0.480 s)")
    features = VideoFeatures("clip", np.zeros((21, 2, 256), np.float32), np.arange(21) * 0.5, 2.0)
    assert repr(features) == ("VideoFeatures(video_id='clip', features=21 frames x 2 tokens x 256 dims float32, "
                              "timestamps=0-10 s, fps=2)")
    assert "no frames" in repr(VideoFeatures("empty", np.zeros((0, 1, 4), np.float16), np.zeros(0), 1.0))
    assert repr(Localizer(method="tn")) == "Localizer(method='tn', backend='onnxruntime', fps=1, exact_decoding=False)"


def test_progress_reports_every_embedded_frame(tn_localizer, planted_videos):
    query, reference = planted_videos
    lengths = [tn_localizer.features(v).num_frames for v in planted_videos]
    counts: list[int] = []
    tn_localizer.localize(query, reference, progress=counts.append)
    assert sum(counts) == sum(lengths) and all(n > 0 for n in counts)
    counts.clear()
    frames = np.zeros((5, 32, 32, 3), np.uint8)
    tn_localizer.localize_many(frames, [reference, np.ones((3, 2, 16), np.float32)], progress=counts.append)
    assert sum(counts) == 5 + lengths[1]  # frames and files are embedded; features are not
    counts.clear()
    tn_localizer.features(query, progress=counts.append)
    assert sum(counts) == lengths[0]
