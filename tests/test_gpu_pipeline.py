"""The GPU pipeline's stages against the CPU path they replace.

Here (CPU): the device-side preprocessing, tile rendering, decoding and NMS run on torch CPU tensors through
the same functions and are compared with vcl_fast.runtime.preprocess / vcl_fast.detect.render /
vcl_fast.detect.localizer. With a GPU (``cuda`` marker): the same comparisons on the device, and the whole
pipeline (torch, ONNX Runtime CUDA and, with TensorRT, engines) against the CPU Localizer.
"""
import itertools

import numpy as np
import pytest
import torch

from localize_fixtures import micro_model_dir  # noqa: F401  (fixture)
from vcl_fast._ext import cuda_available
from vcl_fast.detect.decode import anchor_points
from vcl_fast.detect.localizer import DetectionSettings, localize_maps
from vcl_fast.detect.render import bicubic_matrix, render_maps
from vcl_fast.runtime.gpu_pipeline import (
    GpuPipeline,
    bicubic_matrices,
    blank_images_device,
    localize_maps_device,
    preprocess_frames_device,
    render_tiles,
    tile_table,
)
from vcl_fast.runtime.preprocess import BLANK_FRAME_STD, blank_images, preprocess_frames
from vcl_fast.runtime.specs import ExtractorSpec

SPEC = ExtractorSpec(32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 2, 16)
SIZE = 64  # detector input of the fake detector below: 84 anchors
# float32 matmuls sum in another order than the numpy taps / per-map products: a few ulps of the values.
RENDER_TOLERANCE = 2e-6
PREPROCESS_TOLERANCE = 2e-5  # normalised values reach ~2.6; the resized ones are sums of up to ~20 taps of 255
BOX_TOLERANCE = 1e-4  # frames
# GPU vs CPU: cuDNN/cuBLAS kernels round differently from the CPU ones (~1e-6 relative in the features,
# ~1e-5 in raw detector outputs), which moves boxes by well under 1e-3 frames.
GPU_BOX_TOLERANCE = 1e-3


def devices():
    """"cpu", and "cuda" (marked ``cuda``) where a GPU and the CUDA build of the extension are present."""
    gpu = cuda_available() and torch.cuda.is_available()
    return ["cpu"] + ([pytest.param("cuda", marks=pytest.mark.cuda)] if gpu else [])


def needs_cuda():
    if not (cuda_available() and torch.cuda.is_available()):
        pytest.skip("needs a CUDA GPU and the CUDA build of vcl_fast._C")


def fake_raw(images: np.ndarray) -> np.ndarray:
    """A deterministic stand-in for the detector (numpy): fixed raw outputs for the 84 anchors at 64 px, shifted
    by each image's mean (so the rendering feeds through), with confidences mostly above 0.1."""
    rng = np.random.default_rng(7)
    anchors = len(anchor_points(SIZE))
    base = np.concatenate([rng.uniform(-0.5, 0.5, (anchors, 2)), rng.uniform(-1.0, 2.5, (anchors, 2)),
                           rng.uniform(-2.0, 3.0, (anchors, 1)), rng.uniform(0.0, 3.0, (anchors, 1))], axis=1)
    means = images.reshape(len(images), -1).mean(axis=1, dtype=np.float64)
    return (base[None] + 0.25 * means[:, None, None]).astype(np.float32)


def fake_raw_torch(images: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(fake_raw(images.cpu().numpy())).to(images.device)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("n, height, width", list(itertools.product([1, 3], [1, 17, 32, 48], [1, 32, 77])))
def test_preprocess_on_device_matches_numpy(device, n, height, width):
    frames = np.random.default_rng(height * width + n).integers(0, 256, (n, height, width, 3), dtype=np.uint8)
    expected = preprocess_frames(frames, SPEC.input_size, SPEC.mean, SPEC.std)
    found = preprocess_frames_device(torch.from_numpy(frames).to(device), SPEC)
    assert found.dtype == torch.float32 and found.device.type == device
    np.testing.assert_allclose(found.cpu().numpy(), expected, atol=PREPROCESS_TOLERANCE, rtol=0)


def test_preprocess_on_device_non_contiguous_and_bad_input():
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 40, 64, 3), dtype=np.uint8))
    view = frames[::2, :, ::2]
    np.testing.assert_allclose(preprocess_frames_device(view, SPEC).numpy(),
                               preprocess_frames(np.ascontiguousarray(view.numpy()), 32, SPEC.mean, SPEC.std),
                               atol=PREPROCESS_TOLERANCE, rtol=0)
    with pytest.raises(ValueError, match="uint8"):
        preprocess_frames_device(frames.float(), SPEC)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        preprocess_frames_device(frames[0], SPEC)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("n", [0, 1, 9])
def test_blank_images_on_device_matches_numpy(device, n):
    rng = np.random.default_rng(n)
    spreads = rng.uniform(0, 2 * BLANK_FRAME_STD, (n, 3))  # grey levels per channel, around the threshold
    pattern = rng.standard_normal((n, 3, 16, 16))
    pattern /= pattern.std(axis=(2, 3), keepdims=True)
    images = (pattern * (spreads / (255 * np.asarray(SPEC.std)))[..., None, None]).astype(np.float32)
    expected = blank_images(images, SPEC.std)
    found = blank_images_device(torch.from_numpy(images).to(device), SPEC.std)
    assert found.dtype == torch.bool and found.device.type == device
    np.testing.assert_array_equal(found.cpu().numpy(), expected)
    view = torch.from_numpy(images).to(device)[:, :, ::2, ::3]
    np.testing.assert_array_equal(blank_images_device(view, SPEC.std).cpu().numpy(),
                                  blank_images(images[:, :, ::2, ::3], SPEC.std))
    half = torch.from_numpy(images).to(device).half()
    np.testing.assert_array_equal(blank_images_device(half, SPEC.std).cpu().numpy(),
                                  blank_images(images.astype(np.float16), SPEC.std))


@pytest.mark.parametrize("lengths, size", [([1], 8), ([3, 1200, 640, 7], 64), ([2, 5, 5], 640)])
def test_bicubic_matrices_are_render_matrices_zero_padded(lengths, size):
    padded = max(lengths) + 3
    found = bicubic_matrices(np.array(lengths), padded, size, torch.device("cpu")).numpy()
    for matrix, n in zip(found, lengths):
        np.testing.assert_array_equal(matrix[:, :n], bicubic_matrix(n, size))
        assert not matrix[:, n:].any()


def test_tile_table_follows_the_chunking_of_localize_maps():
    table = tile_table([(5, 130), (0, 4), (120, 50)], chunk_length=50)
    expected = [(0, 0, 0, 5, 50), (0, 0, 50, 5, 50), (0, 0, 100, 5, 30),
                (2, 0, 0, 50, 50), (2, 50, 0, 50, 50), (2, 100, 0, 20, 50)]
    np.testing.assert_array_equal(table, expected)
    assert tile_table([], 50).shape == (0, 5)
    overlapping = tile_table([(100, 30)], chunk_length=64, chunk_overlap=32)
    np.testing.assert_array_equal(overlapping, [(0, 0, 0, 64, 30), (0, 32, 0, 64, 30), (0, 36, 0, 64, 30)])


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("shapes, size", [
    ([(1, 1)], 32), ([(7, 3), (3, 7), (50, 50)], 64), ([(64, 64), (2, 130), (130, 2)], 64), ([(40, 23)], 640)])
def test_render_tiles_matches_render_maps(device, shapes, size):
    rng = np.random.default_rng(len(shapes) * size)
    maps = [rng.uniform(-1, 1, shape).astype(np.float32) for shape in shapes]
    tiles = tile_table(shapes, chunk_length=1200)
    found = render_tiles([torch.from_numpy(m).to(device) for m in maps], tiles, size)
    assert found.shape == (len(maps), 3, size, size) and found.is_contiguous()
    np.testing.assert_allclose(found.cpu().numpy(), render_maps(maps, size), atol=RENDER_TOLERANCE, rtol=0)


def test_render_tiles_reads_non_contiguous_views_of_larger_maps():
    big = np.random.default_rng(1).uniform(-1, 1, (90, 70)).astype(np.float32)
    tiles = tile_table([big.shape], chunk_length=40)
    found = render_tiles([torch.from_numpy(big).T.contiguous().T], tiles, 32)
    views = [big[q0:q0 + q, r0:r0 + r] for _, q0, r0, q, r in tiles]
    np.testing.assert_allclose(found.numpy(), render_maps(views, 32), atol=RENDER_TOLERANCE, rtol=0)


def segment_rows(result, fps: float) -> np.ndarray:
    """A LocalizationResult's segments as (N, 5) ``[q_s, r_s, q_e, r_e, score]`` in frames."""
    return np.array([[s.q_start * fps, s.r_start * fps, s.q_end * fps, s.r_end * fps, s.score]
                     for s in result.segments]).reshape(-1, 5)


def assert_same_detections(found, expected):
    assert len(found) == len(expected)
    for f, e in zip(found, expected):
        assert f.shape == e.shape and f.dtype == np.float32
        np.testing.assert_allclose(f, e, atol=BOX_TOLERANCE, rtol=0)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("min_similarity, fusion", [(-1.0, -1.0), (0.95, -1.0), (-1.0, 0.55)])
@pytest.mark.parametrize("shapes, chunk, overlap, batch", [
    ([(30, 40)], 1200, 0, 16),
    ([(120, 70), (5, 5), (0, 9), (61, 130)], 50, 0, 3),  # several tiles per map, an empty map, ragged batches
    ([(64, 64)] * 5, 64, 0, 2),
    ([(120, 70), (61, 130), (20, 20)], 40, 20, 3),  # overlapping tiles: pieces joined across them
])
def test_localize_maps_device_matches_cpu_path(device, shapes, chunk, overlap, batch, min_similarity, fusion):
    rng = np.random.default_rng(sum(q * r for q, r in shapes))
    maps = [rng.uniform(-0.2, 1, shape).astype(np.float32) for shape in shapes]
    maps = [np.minimum(m, 0.9) if m.shape == (20, 20) else m for m in maps]  # below the floor 0.95: not run
    settings = DetectionSettings(input_size=SIZE, chunk_length=chunk, chunk_overlap=overlap, batch_size=batch,
                                 conf_threshold=0.3, nms_threshold=0.3, min_similarity=min_similarity,
                                 transpose_fusion_iou=fusion)
    expected = localize_maps(maps, fake_raw, settings)
    found = localize_maps_device([torch.from_numpy(m).to(device) for m in maps], fake_raw_torch, settings)
    assert sum(len(e) for e in expected) > 10  # the fake detector finds plenty, NMS has work to do
    assert_same_detections(found, expected)


def test_localize_maps_device_edge_cases():
    settings = DetectionSettings(input_size=SIZE)
    assert localize_maps_device([], fake_raw_torch, settings) == []
    empty = localize_maps_device([torch.zeros(0, 4), torch.zeros(3, 0)], fake_raw_torch, settings)
    assert [e.shape for e in empty] == [(0, 5), (0, 5)]
    nothing = DetectionSettings(input_size=SIZE, conf_threshold=1.0)
    assert localize_maps_device([torch.ones(8, 8)], fake_raw_torch, nothing)[0].shape == (0, 5)
    with pytest.raises(ValueError, match="2-D"):
        localize_maps_device([torch.ones(2, 2, 2)], fake_raw_torch, settings)
    with pytest.raises(ValueError, match="the detector returned shape"):
        localize_maps_device([torch.ones(8, 8)], lambda x: torch.zeros(2, 84, 6), settings)


def micro_models():
    from localize_fixtures import micro_detector, micro_extractor

    return micro_extractor(), micro_detector()


def test_pipeline_on_cpu_matches_the_localizer(torch_one_thread):
    """The whole GpuPipeline on CPU tensors (torch runners) against the Localizer's numpy path."""
    from localize_fixtures import QUERY_PHOTOS, REFERENCE_PHOTOS, photo_frames

    from vcl_fast.api import Localizer

    extractor, detector = micro_models()
    params = {"conf_threshold": 0.0, "chunk_length": 20, "batch_size": 4}
    query, reference = photo_frames(QUERY_PHOTOS, 2), photo_frames(REFERENCE_PHOTOS, 2)
    pipeline = GpuPipeline.from_torch(extractor, detector, device="cpu", **params)
    localizer = Localizer(extractor, detector, backend="torch", method_params=params)
    expected_features = localizer.extractor.embed(query)
    np.testing.assert_allclose(pipeline.features(query).numpy(), expected_features, atol=1e-4, rtol=0)
    found = pipeline.localize_many(query, [reference, query[:7]])
    expected = localizer.localize_many(query, [reference, query[:7]])
    for boxes, result in zip(found, expected):
        assert len(boxes) == len(result.segments) > 0
        # Features differ by float rounding (matmul resize vs taps); boxes agree to ~2e-6 frames here.
        np.testing.assert_allclose(boxes, segment_rows(result, localizer.fps), atol=BOX_TOLERANCE, rtol=0)


def test_pipeline_gives_blank_frames_zero_features_like_the_localizer(torch_one_thread):
    from localize_fixtures import QUERY_PHOTOS, photo_frames

    from vcl_fast.api import Localizer

    extractor, detector = micro_models()
    frames = photo_frames(QUERY_PHOTOS, 1)[:4].copy()
    frames[1], frames[3] = 0, 255  # black and white
    found = GpuPipeline.from_torch(extractor, detector, device="cpu").features(frames).numpy()
    expected = Localizer(extractor, detector, backend="torch").extractor.embed(frames)
    assert np.all(found[[1, 3]] == 0) and np.all(np.abs(found[[0, 2]]).sum(axis=(1, 2)) > 0)
    np.testing.assert_allclose(found, expected, atol=1e-4, rtol=0)


def test_pipeline_rejects_bad_input():
    extractor, detector = micro_models()
    pipeline = GpuPipeline.from_torch(extractor, detector, device="cpu")
    with pytest.raises(TypeError, match="references must be a list"):
        pipeline.localize_many(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="frames .* uint8 or features"):
        pipeline.localize(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8), np.int32))
    with pytest.raises(ValueError, match="H, W >= 1"):
        pipeline.features(np.zeros((2, 0, 8, 3), np.uint8))
    with pytest.raises(TypeError, match="torch tensor or numpy"):
        pipeline.features([[1]])
    with pytest.raises(ValueError, match="input_size"):
        GpuPipeline.from_torch(extractor, detector, device="cpu", input_size=128)
    with pytest.raises(ValueError, match="needs a CUDA device"):
        GpuPipeline.from_onnx("nowhere", device="cpu")


def test_gpu_bench_rooflines_and_targets():
    from vcl_fast.bench_gpu import E2E_CASE, TORCH_EAGER, Roofline, similarity_roofline, targets_report
    from vcl_fast.benchmark import BenchResult

    one = similarity_roofline(600, 600)
    assert one.flops == 2 * 1200 * 1200 * 256 and one.bytes == 2 * 1200 * 256 * 2 + 600 * 600 * 4
    batched = similarity_roofline(600, 600, pairs=1000)
    assert batched.flops == 1000 * one.flops and batched.bytes == (600 + 600_000) * 2 * 256 * 2 + 1000 * 600 * 600 * 4
    assert Roofline(1e12, 1e9).seconds(1e15, 1e12) == 1e-3 and Roofline(1e12, 1e8).seconds(1e15, 1e12) == 1e-3
    results = [BenchResult("sim", "vcl_fast CUDA", 2e-3, 2e-3, 5), BenchResult("sim", "torch", 1e-3, 1e-3, 5),
               BenchResult("big", "vcl_fast CUDA", 1e-3, 1e-3, 5),
               BenchResult(E2E_CASE, "GpuPipeline TensorRT fp16", 0.1, 0.1, 5),
               BenchResult(E2E_CASE, "GpuPipeline torch eager fp32", 0.3, 0.3, 5),
               BenchResult(E2E_CASE, f"Localizer {TORCH_EAGER}", 0.6, 0.6, 5)]
    report = targets_report(results, {"sim": Roofline(1e12, 1e9), "big": Roofline(1e12, 1e9)}, (1e15, 1e12))
    assert "1000 TFLOP/s, memory 1000 GB/s" in report
    assert "sim: 2000.0 us, roofline 1000.0 us -> 50% of roofline (target >= 70%): MISSED" in report
    assert "big: 1000.0 us, roofline 1000.0 us -> 100% of roofline (target >= 70%): met" in report
    assert "end to end: GpuPipeline TensorRT fp16 160.0 pairs/s = 6.0x Localizer torch eager fp32 (target >= 5x): met" \
        in report
    assert "torch" not in report.split("\n")[1]  # only our kernel is held to the roofline


def test_gpu_bench_suite_says_why_it_skips(capsys):
    from vcl_fast.bench_gpu import unavailable
    from vcl_fast.cli import main

    if unavailable() is None:
        pytest.skip("a GPU is present: the suite runs (bench/bench_gpu.py)")
    assert main(["bench", "--suite", "gpu"]) == 0
    assert capsys.readouterr().out.strip() == f"gpu suite skipped: {unavailable()}"


# ----------------------------------------------------------------------------------------------- on a GPU


@pytest.mark.cuda
def test_pipeline_torch_cuda_matches_cpu(torch_one_thread):
    needs_cuda()
    from localize_fixtures import QUERY_PHOTOS, REFERENCE_PHOTOS, photo_frames

    extractor, detector = micro_models()
    params = {"conf_threshold": 0.0, "chunk_length": 20, "batch_size": 4}
    query, reference = photo_frames(QUERY_PHOTOS, 2), photo_frames(REFERENCE_PHOTOS, 2)
    cpu = GpuPipeline.from_torch(extractor, detector, device="cpu", **params).localize_many(query, [reference])
    extractor, detector = micro_models()
    gpu = GpuPipeline.from_torch(extractor, detector, device="cuda", **params)
    found = gpu.localize_many(torch.from_numpy(query).cuda(), [torch.from_numpy(reference).cuda()])
    assert len(found[0]) == len(cpu[0]) > 0
    np.testing.assert_allclose(found[0], cpu[0], atol=GPU_BOX_TOLERANCE, rtol=0)


@pytest.mark.cuda
def test_pipeline_onnxruntime_cuda_matches_cpu(micro_model_dir, torch_one_thread):
    needs_cuda()
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime without the CUDA execution provider")
    from localize_fixtures import QUERY_PHOTOS, REFERENCE_PHOTOS, photo_frames

    from vcl_fast.api import Localizer

    params = {"conf_threshold": 0.0}
    query, reference = photo_frames(QUERY_PHOTOS, 2), photo_frames(REFERENCE_PHOTOS, 2)
    expected = Localizer(micro_model_dir, micro_model_dir, method_params=params).localize(query, reference)
    found = GpuPipeline.from_onnx(micro_model_dir, **params).localize(query, reference)
    assert len(found) == len(expected.segments) > 0
    np.testing.assert_allclose(found, segment_rows(expected, 1.0), atol=GPU_BOX_TOLERANCE, rtol=0)

