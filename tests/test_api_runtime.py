"""Runtime backends: numpy preprocessing vs Pillow, ONNX Runtime vs torch features, registry and devices,
and the torch-free ONNX Runtime path (checked in a subprocess with torch's import blocked)."""
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vcl_fast.runtime import BACKENDS, available_backends, get_backend
from vcl_fast.runtime.base import parse_device
from vcl_fast.runtime.base import Extractor
from vcl_fast.runtime.preprocess import (BLANK_FRAME_STD, bilinear_taps, blank_images, preprocess_frames,
                                        preprocess_frames_numpy, preprocess_frames_reference)
from vcl_fast.runtime.specs import ExtractorSpec

REPO = Path(__file__).resolve().parents[1]
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# Pillow rounds to uint8 after each of its two passes: at most one grey level apart from the float result.
GREY_LEVEL_TOLERANCE = 1.01 / 255 / min(STD)


@pytest.mark.parametrize("in_size, out_size", list(itertools.product([1, 2, 7, 32, 33, 100, 257], [1, 4, 32, 112])))
def test_bilinear_taps_are_normalised_and_in_range(in_size, out_size):
    index, weight = bilinear_taps(in_size, out_size)
    assert index.shape == weight.shape and index.shape[0] == out_size
    np.testing.assert_allclose(weight.sum(axis=1), 1, atol=1e-6)
    assert index.min() >= 0 and index.max() < in_size
    if in_size == out_size:
        np.testing.assert_array_equal(index[np.arange(out_size), weight.argmax(axis=1)], np.arange(out_size))


@pytest.mark.parametrize("n, height, width, size", list(itertools.product(
    [0, 1, 3], [1, 17, 32, 48, 360], [1, 32, 64, 641], [4, 32, 112])))
def test_preprocess_matches_pillow(n, height, width, size):
    frames = np.random.default_rng(height * width + n).integers(0, 256, (n, height, width, 3), dtype=np.uint8)
    found = preprocess_frames(frames, size, MEAN, STD)
    expected = preprocess_frames_reference(frames, size, MEAN, STD)
    assert found.shape == expected.shape == (n, 3, size, size) and found.dtype == np.float32
    if n:
        assert np.abs(found - expected).max() <= GREY_LEVEL_TOLERANCE


@pytest.mark.parametrize("n, height, width, size", list(itertools.product(
    [0, 1, 5], [1, 2, 31, 112, 240, 529], [1, 3, 112, 320, 721], [1, 7, 112])))
def test_compiled_preprocess_is_the_numpy_reference_bit_for_bit(n, height, width, size):
    pytest.importorskip("vcl_fast._C")
    frames = np.random.default_rng(height + width * n).integers(0, 256, (n, height, width, 3), dtype=np.uint8)
    found = preprocess_frames(frames, size, MEAN, STD)
    expected = preprocess_frames_numpy(frames, size, MEAN, STD)
    assert found.shape == expected.shape == (n, 3, size, size) and found.dtype == np.float32
    np.testing.assert_array_equal(found.view(np.uint32), expected.view(np.uint32))
    view = frames[:, ::-2, 1::2]  # non-contiguous (negative strides)
    if view.shape[1] and view.shape[2]:
        mean, std = (0.5, 0.4, 0.3), (0.2, 0.3, 0.4)
        np.testing.assert_array_equal(preprocess_frames(view, size, mean, std).view(np.uint32),
                                      preprocess_frames_numpy(view, size, mean, std).view(np.uint32))


def test_preprocess_falls_back_to_numpy_without_the_extension(monkeypatch):
    import vcl_fast._ext as ext

    monkeypatch.setattr(ext, "_loaded", True)
    monkeypatch.setattr(ext, "_module", None)
    monkeypatch.setattr(ext, "_error", "ImportError: test")
    monkeypatch.setattr(ext, "_warned", set())
    frames = np.random.default_rng(3).integers(0, 256, (2, 40, 30, 3), dtype=np.uint8)
    with pytest.warns(RuntimeWarning, match="preprocess_frames: compiled kernel unavailable"):
        found = preprocess_frames(frames, 16, MEAN, STD)
    np.testing.assert_array_equal(found, preprocess_frames_numpy(frames, 16, MEAN, STD))


def test_compiled_preprocess_checks_its_arguments():
    ext = pytest.importorskip("vcl_fast._C")
    frames = np.zeros((1, 8, 8, 3), np.uint8)
    index, weight = bilinear_taps(8, 4)
    scale = shift = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="rows needs taps"):
        ext.preprocess_frames_cpu(frames, 4, None, None, index, weight, scale, shift)
    with pytest.raises(ValueError, match="out of range"):
        ext.preprocess_frames_cpu(frames, 4, index + 8, weight, index, weight, scale, shift)
    with pytest.raises(ValueError, match=r"\(size, K\)"):
        ext.preprocess_frames_cpu(frames, 4, index[:2], weight, index, weight, scale, shift)
    with pytest.raises(ValueError, match="3 values"):
        ext.preprocess_frames_cpu(frames, 4, index, weight, index, weight, scale[:2], shift)


def test_preprocess_non_contiguous_and_exact_size():
    frames = np.random.default_rng(0).integers(0, 256, (4, 40, 64, 3), dtype=np.uint8)
    view = frames[::2, :, ::2]  # (2, 40, 32, 3), strided
    np.testing.assert_allclose(preprocess_frames(view, 32, MEAN, STD),
                               preprocess_frames(np.ascontiguousarray(view), 32, MEAN, STD))
    square = frames[:, :32, :32]
    expected = (square.transpose(0, 3, 1, 2) / 255 - np.array(MEAN)[:, None, None]) / np.array(STD)[:, None, None]
    np.testing.assert_allclose(preprocess_frames(square, 32, MEAN, STD), expected, atol=1e-6)


def blank_test_frames(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(12, 40, 56, 3) uint8 frames and which are blank: one colour (black, white, grey, random), one colour with
    +-1 grey level of noise, one channel varying, a gradient, a dark scene, random pixels."""
    frames, blank = [], []
    for colour in ([0, 0, 0], [255, 255, 255], [128, 128, 128], rng.integers(0, 256, 3)):
        frames.append(np.broadcast_to(np.asarray(colour, np.uint8), (40, 56, 3)))
        blank.append(True)
    noisy = np.clip(100 + rng.integers(-1, 2, (2, 40, 56, 3)), 0, 255).astype(np.uint8)
    frames += list(noisy)
    blank += [True, True]
    one_channel = np.full((40, 56, 3), 30, np.uint8)
    one_channel[:, :28, 2] = 60
    gradient = np.broadcast_to(np.linspace(0, 255, 56).astype(np.uint8)[None, :, None], (40, 56, 3))
    dark = np.full((40, 56, 3), 8, np.uint8)
    dark[10:30, 20:40] = 24
    frames += [one_channel, gradient, dark] + list(rng.integers(0, 256, (3, 40, 56, 3), dtype=np.uint8))
    blank += [False] * 6
    return np.stack(frames), np.asarray(blank)


@pytest.mark.parametrize("count", [0, 1, 5, 12])
def test_blank_images_finds_frames_of_one_colour(count):
    frames, blank = blank_test_frames(np.random.default_rng(count))
    order = np.random.default_rng(count + 1).permutation(len(frames))[:count]
    images = preprocess_frames(frames[order], 32, MEAN, STD)
    found = blank_images(images, STD)
    assert found.dtype == bool and found.shape == (count,)
    np.testing.assert_array_equal(found, blank[order])
    np.testing.assert_array_equal(blank_images(images[:, :, ::2, 1::3], STD), found)  # non-contiguous
    np.testing.assert_array_equal(blank_images(images.astype(np.float16), STD), found)  # reduced precision


def test_blank_images_threshold_is_in_grey_levels_per_channel():
    half = np.where(np.arange(64) % 2, 1.0, -1.0).reshape(1, 8, 8)  # standard deviation 1
    for spread, expected in ((BLANK_FRAME_STD * 0.99, True), (BLANK_FRAME_STD * 1.01, False)):
        images = np.zeros((1, 3, 8, 8), np.float32)
        images[0, 1] = half * spread / (255 * STD[1])  # one channel spreads `spread` grey levels
        assert blank_images(images, STD)[0] == expected
    with pytest.raises(ValueError, match=r"\(N, C, S, S\)"):
        blank_images(np.zeros((3, 8, 8), np.float32), STD)


class _ConstantExtractor(Extractor):
    """Every image -> the same unit features (a stand-in model)."""

    def _forward(self, images: np.ndarray) -> np.ndarray:
        spec = self.spec
        return np.full((len(images), spec.num_tokens, spec.dim), 1 / np.sqrt(spec.dim), np.float32)


@pytest.mark.parametrize("batch_size", [1, 4, 16])
def test_embed_gives_blank_frames_zero_features(batch_size):
    from vcl_fast.ops import similarity_map

    frames, blank = blank_test_frames(np.random.default_rng(3))
    features = _ConstantExtractor(ExtractorSpec(32, MEAN, STD, 2, 8), batch_size).embed(frames)
    assert features.shape == (len(frames), 2, 8)
    np.testing.assert_array_equal(np.abs(features).sum(axis=(1, 2)) == 0, blank)
    sim = similarity_map(features, features)
    assert np.all(sim[blank] == 0) and np.all(sim[:, blank] == 0)
    np.testing.assert_allclose(sim[np.ix_(~blank, ~blank)], 1.0, atol=1e-6)


@pytest.mark.parametrize("frames, error, message", [
    ([[1]], TypeError, "numpy array"),
    (np.zeros((2, 8, 8, 3), np.float32), TypeError, "uint8"),
    (np.zeros((8, 8, 3), np.uint8), ValueError, r"\(N, H, W, 3\)"),
    (np.zeros((2, 8, 8, 4), np.uint8), ValueError, r"\(N, H, W, 3\)"),
    (np.zeros((2, 0, 8, 3), np.uint8), ValueError, "H, W >= 1"),
])
def test_preprocess_rejects_bad_frames(frames, error, message):
    with pytest.raises(error, match=message):
        preprocess_frames(frames, 32, MEAN, STD)


def test_registry_and_devices():
    assert set(BACKENDS) == {"onnxruntime", "torch", "tensorrt"}
    assert set(available_backends()) <= set(BACKENDS)
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'"):
        get_backend("tensorflow")
    assert parse_device("cpu") == ("cpu", 0) and parse_device("CUDA:1") == ("cuda", 1)
    assert parse_device("auto") == ("auto", 0)
    for bad in ("gpu", "cuda:x", "cpu:0"):
        with pytest.raises(ValueError, match="unknown device"):
            parse_device(bad)
    with pytest.raises(TypeError):
        parse_device(0)


def test_missing_backend_package_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match="needs the 'onnxruntime' package"):
        get_backend("onnxruntime")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from localize_fixtures import exported_micro_model

    return exported_micro_model(tmp_path_factory)


def test_ort_and_torch_backends_agree(model_dir):
    from localize_fixtures import micro_detector, micro_extractor

    ort_backend, torch_backend = get_backend("onnxruntime"), get_backend("torch")
    frames = np.random.default_rng(1).integers(0, 256, (7, 48, 64, 3), dtype=np.uint8)
    a = ort_backend.load_extractor(model_dir, "cpu", 1, batch_size=3)
    b = torch_backend.load_extractor(micro_extractor(), "cpu", None, batch_size=5)
    assert a.spec == b.spec
    fa, fb = a.embed(frames), b.embed(frames)
    assert fa.shape == (7, 2, 16) and fa.dtype == np.float32
    assert np.abs(fa - fb).max() < 1e-4
    assert a.embed(frames[:0]).shape == (0, 2, 16)
    assert a.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"

    images = np.random.default_rng(2).uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)
    c = ort_backend.load_detector(model_dir / "detector.onnx", "cpu", 1)
    d = torch_backend.load_detector(micro_detector(), "cpu")
    assert c.spec == d.spec
    assert np.abs(c.run(images) - d.run(images)).max() < 1e-4
    empty = c.run(images[:0])  # onnxruntime itself fails to reshape an empty batch
    assert empty.shape == (0, *d.run(images).shape[1:]) and empty.dtype == np.float32


def test_backend_argument_errors(model_dir):
    import onnxruntime

    ort_backend = get_backend("onnxruntime")
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(ValueError, match="no CUDA execution provider"):
            ort_backend.load_extractor(model_dir, "cuda")
    with pytest.raises(ValueError, match="threads must be a positive int"):
        ort_backend.load_extractor(model_dir, "cpu", 0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        ort_backend.load_extractor(model_dir, "cpu", 1, batch_size=0)
    torch_backend = get_backend("torch")
    with pytest.raises(TypeError, match="RegionalTokenViT"):
        torch_backend.load_extractor(object())
    from vcl_fast.models.yolox import build_detector

    with pytest.raises(ValueError, match="raw outputs"):
        torch_backend.load_detector(build_detector("micro", decode_in_inference=True))


NO_TORCH_SCRIPT = """
import json, sys
sys.modules["torch"] = None  # any import of torch now fails
from vcl_fast import Localizer
from vcl_fast.cli import build_parser

build_parser()  # every command module loads without torch
model, query, reference = sys.argv[1:4]
yolox = Localizer(model, model, threads=1, method_params={"conf_threshold": 0.0})
tn = Localizer(model, method="tn", threads=1)
out = {"yolox": yolox.localize(query, reference).to_dict(), "tn": tn.localize(query, reference).to_dict()}
loaded = sorted(name for name, module in sys.modules.items() if name.split(".")[0] == "torch" and module)
print(json.dumps({"results": out, "torch_modules": loaded}))
"""


def test_onnxruntime_path_runs_without_torch(model_dir, tmp_path):
    from localize_fixtures import write_planted_pair
    from vcl_fast.api import Localizer

    query, reference = write_planted_pair(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", NO_TORCH_SCRIPT, str(model_dir), str(query), str(reference)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["torch_modules"] == []
    here = Localizer(model_dir, model_dir, threads=1, method_params={"conf_threshold": 0.0}).localize(query, reference)
    assert len(report["results"]["yolox"]["segments"]) == len(here.segments) > 0
    for found, expected in zip(report["results"]["yolox"]["segments"], here.segments):
        assert found == pytest.approx(expected.to_dict(), abs=1e-6)
