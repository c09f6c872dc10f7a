"""The embedded default model (vcl_fast/assets/default_model, docs/model_card.md): complete, small, its ONNX
files agree with the shipped torch weights, and it localizes the README example pair."""
from pathlib import Path

import numpy as np
import pytest

from vcl_fast.runtime.manifest import DEFAULT_MODEL_DIR, load_component, read_manifest

REPO = Path(__file__).resolve().parents[1]
FILES = ["detector.onnx", "detector/config.json", "detector/model.safetensors", "extractor.onnx",
         "extractor/config.json", "extractor/model.safetensors", "manifest.json"]


def test_default_model_is_complete_verified_and_small():
    files = [p for p in DEFAULT_MODEL_DIR.rglob("*") if p.is_file()]
    assert sorted(p.relative_to(DEFAULT_MODEL_DIR).as_posix() for p in files) == FILES
    assert sum(p.stat().st_size for p in files) < 50 * 2**20
    assert read_manifest(DEFAULT_MODEL_DIR)["opset"] >= 17
    extractor = load_component(DEFAULT_MODEL_DIR, "extractor")  # checks every key and the SHA-256
    detector = load_component(DEFAULT_MODEL_DIR, "detector")
    assert (extractor.spec.num_tokens, extractor.spec.dim, detector.spec.num_classes) == (2, 256, 1)


def test_onnx_files_match_the_torch_weights(torch_one_thread):
    from vcl_fast.runtime import get_backend

    ort, torch_backend = get_backend("onnxruntime"), get_backend("torch")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(5, 90, 160, 3), dtype=np.uint8)
    onnx_features = ort.load_extractor(DEFAULT_MODEL_DIR, threads=1).embed(frames)
    torch_features = torch_backend.load_extractor(DEFAULT_MODEL_DIR / "extractor").embed(frames)
    np.testing.assert_allclose(onnx_features, torch_features, atol=1e-4)
    images = rng.uniform(-1, 1, size=(2, 3, 256, 256)).astype(np.float32)
    onnx_raw = ort.load_detector(DEFAULT_MODEL_DIR, threads=1).run(images)
    torch_raw = torch_backend.load_detector(DEFAULT_MODEL_DIR / "detector").run(images)
    np.testing.assert_allclose(onnx_raw, torch_raw, atol=1e-4 * max(1.0, float(np.abs(torch_raw).max())))


@pytest.fixture(scope="module")
def mpeg4_query(tmp_path_factory):
    """examples/query.mp4 at 640 x 360 in MPEG-4 part 2 (AVI): a codec the draft decoding decodes at half size."""
    from vcl_fast.video import read_frames, write_video

    path = tmp_path_factory.mktemp("mpeg4") / "query.avi"
    write_video(path, read_frames(REPO / "examples" / "query.mp4", 25.0, size=(640, 360)).frames, 25.0)
    return path


@pytest.mark.parametrize("query", ["query.mp4", "mpeg4"])
@pytest.mark.parametrize("exact_decoding", [False, True])
def test_default_model_localizes_the_readme_example(query, exact_decoding, mpeg4_query):
    """examples/query.mp4 shows examples/reference.mp4 (0-5.3 s) edited at 8.0-13.3 s (make_examples.py)."""
    from vcl_fast import Localizer

    query = mpeg4_query if query == "mpeg4" else REPO / "examples" / query
    result = Localizer(threads=1, exact_decoding=exact_decoding).localize(query, REPO / "examples" / "reference.mp4")
    assert result.copied and len(result.segments) == 1

    def iou(a0, a1, b0, b1):
        return max(0.0, min(a1, b1) - max(a0, b0)) / (max(a1, b1) - min(a0, b0))

    best = result.segments[0]
    assert iou(best.q_start, best.q_end, 8.0, 13.3) > 0.7 and iou(best.r_start, best.r_end, 0.0, 5.3) > 0.7


def test_draft_decoding_moves_the_features_little(mpeg4_query):
    """The default draft decoding (MPEG-4 at half size) against decoding every pixel: cosine >= 0.98 per frame."""
    from vcl_fast import Localizer

    draft = Localizer(threads=1).features(mpeg4_query).features
    exact = Localizer(threads=1, exact_decoding=True).features(mpeg4_query).features
    assert draft.shape == exact.shape and not np.array_equal(draft, exact)
    assert (draft * exact).sum(-1).min() >= 0.98


def test_default_model_finds_copies_in_long_videos():
    """The detector was trained on maps of about a minute: the manifest has it read long maps in half-overlapping
    64-frame tiles, so a 20-frame copy in 40-minute videos is found, and a 2,400-frame one is one segment
    (with the paper's 1,200-frame tiles neither was found: bench/README.md, "Long videos")."""
    from vcl_fast import Localizer
    from vcl_fast.data.boxes import box_iou
    from vcl_fast.data.features import VideoFeatures

    assert (read_manifest(DEFAULT_MODEL_DIR)["detector"]["chunk_length"],
            read_manifest(DEFAULT_MODEL_DIR)["detector"]["chunk_overlap"]) == (64, 32)
    rng = np.random.default_rng(0)

    def unrelated(frames):  # frames that match nothing (random directions: cosines near 0)
        features = rng.standard_normal((frames, 2, 256)).astype(np.float32)
        return features / np.linalg.norm(features, axis=-1, keepdims=True)

    query, reference = unrelated(2600), unrelated(2600)
    query[100:2500] = reference[50:2450] + 0.02 * rng.standard_normal((2400, 2, 256)).astype(np.float32)
    query[2530:2550] = reference[1000:1020]
    times = np.arange(2600.0)
    result = Localizer().localize(VideoFeatures("q", query, times, 1.0), VideoFeatures("r", reference, times, 1.0))
    truth = np.array([[100, 50, 2500, 2450], [2530, 1000, 2550, 1020]], np.float64)
    assert len(result.segments) == 2
    found = result.boxes()[:, :4]  # seconds = frames at 1 fps, [q_start, r_start, q_end, r_end]
    assert all(box_iou(copy, found).max() > 0.8 for copy in truth)
