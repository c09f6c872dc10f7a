"""TensorRT engines: what runs without TensorRT (metadata checks and their messages, profiles, precision
checks, parser-error reporting, INT8 calibration data and cache, the export command's messages) and, where
TensorRT and a GPU are present (``tensorrt`` marker), building, loading and running engines against ONNX
Runtime on the CPU.

Tolerances against ONNX Runtime (CPU, float32) on the micro models: fp32 engines 1e-3 (TensorRT picks other
kernels and may use TF32 off by default: about 1e-5 in practice), fp16 engines 2e-2 on unit-norm features and
on raw detector outputs (float16 keeps ~3 significant digits through a dozen layers).
"""
import json
import sys

import numpy as np
import pytest
from PIL import Image

from localize_fixtures import micro_model_dir  # noqa: F401  (fixture)
from vcl_fast.cli import main
from vcl_fast.runtime import get_backend
from vcl_fast.runtime import tensorrt_runtime
from vcl_fast.runtime.engine_metadata import (
    DeviceInfo,
    EngineMetadata,
    EngineMismatchError,
    check_engine,
    engine_paths,
    read_engine_metadata,
    write_engine_metadata,
)
from vcl_fast.runtime.manifest import load_component, sha256_file
from vcl_fast.runtime.preprocess import preprocess_frames
from vcl_fast.runtime.specs import DetectorSpec, ExtractorSpec
from vcl_fast.runtime.tensorrt_build import (
    BatchRange,
    CalibrationFeed,
    build_engines,
    calibration_cache_path,
    check_precision,
    frame_batches,
    map_batches,
    parser_errors,
    profile_shapes,
)

H100 = DeviceInfo("NVIDIA H100 80GB HBM3", (9, 0))
A100 = DeviceInfo("NVIDIA A100-SXM4-40GB", (8, 0))
FP32_TOLERANCE, FP16_TOLERANCE = 1e-3, 2e-2


def metadata(**changes) -> EngineMetadata:
    values = dict(component="extractor", tensorrt_version="10.3.0", gpu_name=H100.name, compute_capability=(9, 0),
                  precision="fp16", input="images", output="features",
                  profile={"min": (1, 3, 32, 32), "opt": (16, 3, 32, 32), "max": (64, 3, 32, 32)},
                  onnx_sha256="a" * 64, engine_sha256="", calibration_cache=None)
    values.update(changes)
    return EngineMetadata(**values)


@pytest.fixture
def engine_dir(tmp_path):
    """A directory with a fake extractor.engine (some bytes) and metadata that matches it."""
    engine, meta_path = engine_paths(tmp_path, "extractor")
    engine.write_bytes(b"serialized engine bytes")
    write_engine_metadata(meta_path, metadata(engine_sha256=sha256_file(engine)))
    return tmp_path


def check(directory, device=H100, tensorrt_version="10.3.0", onnx_sha256="a" * 64, component="extractor"):
    engine, meta_path = engine_paths(directory, "extractor")
    check_engine(read_engine_metadata(meta_path), engine, component=component, onnx_sha256=onnx_sha256,
                 device=device, tensorrt_version=tensorrt_version)


def test_metadata_round_trip_and_a_matching_engine_passes(engine_dir):
    meta = read_engine_metadata(engine_paths(engine_dir, "extractor")[1])
    assert meta.device == H100 and meta.device.sm == "sm_90"
    assert meta.profile["opt"] == (16, 3, 32, 32)
    stored = json.loads(engine_paths(engine_dir, "extractor")[1].read_text())
    assert stored["format"] == "vcl_fast.tensorrt_engine" and stored["compute_capability"] == [9, 0]
    check(engine_dir)


@pytest.mark.parametrize("changes, message", [
    ({"device": A100}, r"engine built for sm_90 \(NVIDIA H100 80GB HBM3\) with TensorRT 10\.3\.0, this is "
                       r"sm_80 \(NVIDIA A100-SXM4-40GB\) with TensorRT 10\.3\.0: rebuild with "
                       r"`vcl-fast export --format trt`"),
    ({"tensorrt_version": "10.8.0"}, r"built for sm_90 .* with TensorRT 10\.3\.0, this is sm_90 .* with TensorRT "
                                     r"10\.8\.0: rebuild"),
    ({"onnx_sha256": "b" * 64}, r"built from another extractor\.onnx .* re-exported\); rebuild"),
    ({"component": "detector"}, r"this engine is the extractor, not the detector; rebuild"),
])
def test_mismatches_say_what_differs_and_to_rebuild(engine_dir, changes, message):
    with pytest.raises(EngineMismatchError, match=message):
        check(engine_dir, **changes)


def test_same_architecture_other_gpu_name_is_accepted(engine_dir):
    check(engine_dir, device=DeviceInfo("NVIDIA H100 PCIe", (9, 0)))


def test_changed_or_missing_engine_file(engine_dir):
    engine = engine_paths(engine_dir, "extractor")[0]
    engine.write_bytes(b"another engine")
    with pytest.raises(EngineMismatchError, match="SHA-256 differs from its metadata"):
        check(engine_dir)
    engine.unlink()
    with pytest.raises(EngineMismatchError, match="extractor.engine: missing; rebuild"):
        check(engine_dir)


@pytest.mark.parametrize("edit, message", [
    (lambda d: None, "no engine metadata"),
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: {**d, "format": "other"}, "not vcl_fast engine metadata"),
    (lambda d: {**d, "format_version": 2}, "format_version 2 is not the version"),
    (lambda d: {k: v for k, v in d.items() if k != "gpu_name"}, "missing key 'gpu_name'"),
    (lambda d: {**d, "compute_capability": "9.0"}, r"compute_capability must be \[major, minor\]"),
    (lambda d: {**d, "precision": "fp8"}, "precision must be one of"),
    (lambda d: {**d, "profile": {"min": [1, 3, 32, 32], "opt": [0, 3], "max": [4, 3, 32, 32]}},
     "profile.opt must be a list of positive ints"),
    (lambda d: {**d, "tensorrt_version": ""}, "tensorrt_version must be a non-empty string"),
    (lambda d: {**d, "calibration_cache": 3}, "calibration_cache must be a file name or null"),
])
def test_bad_metadata_files_say_to_rebuild(engine_dir, edit, message):
    path = engine_paths(engine_dir, "extractor")[1]
    edited = edit(json.loads(path.read_text()))
    if edited is None:
        path.unlink()
    else:
        path.write_text(edited if isinstance(edited, str) else json.dumps(edited))
    with pytest.raises(EngineMismatchError, match=message + r".*rebuild with `vcl-fast export --format trt`"):
        read_engine_metadata(path)


def test_profile_shapes_and_batch_ranges():
    assert profile_shapes(384, BatchRange(1, 16, 64)) == {"min": (1, 3, 384, 384), "opt": (16, 3, 384, 384),
                                                          "max": (64, 3, 384, 384)}
    assert profile_shapes(640, BatchRange(4, 4, 4))["max"] == (4, 3, 640, 640)
    for bad in ((0, 1, 1), (2, 1, 4), (1, 8, 4), (1.0, 2, 4), (True, 2, 4)):
        with pytest.raises(ValueError, match="1 <= min <= opt <= max"):
            BatchRange(*bad)
    with pytest.raises(ValueError, match="input_size must be a positive int"):
        profile_shapes(0, BatchRange(1, 1, 1))


def test_precision_needs_tensor_cores():
    for precision in ("fp32", "fp16", "int8"):
        check_precision(precision, H100)
    check_precision("fp32", DeviceInfo("Tesla P100", (6, 0)))
    with pytest.raises(ValueError, match=r"Tesla P100 \(sm_60\) has no fast FP16 .* --precision fp32"):
        check_precision("fp16", DeviceInfo("Tesla P100", (6, 0)))
    with pytest.raises(ValueError, match=r"no fast INT8"):
        check_precision("int8", DeviceInfo("Tesla V100", (7, 0)))
    with pytest.raises(ValueError, match="precision must be one of fp32, fp16, int8"):
        check_precision("bf16", H100)


class FakeParserError:
    """The accessors of tensorrt.ParserError."""

    def __init__(self, node, name, op, code, desc):
        self.values = node, name, op, code, desc

    def node(self): return self.values[0]  # noqa: E704
    def node_name(self): return self.values[1]  # noqa: E704
    def node_operator(self): return self.values[2]  # noqa: E704
    def code(self): return self.values[3]  # noqa: E704
    def desc(self): return self.values[4]  # noqa: E704


class FakeParser:
    def __init__(self, errors):
        self.errors = errors

    @property
    def num_errors(self):
        return len(self.errors)

    def get_error(self, i):
        return self.errors[i]


def test_every_parser_error_is_reported():
    errors = [FakeParserError(12, "/blocks.0/attn/Softmax", "Softmax", "UNSUPPORTED_NODE", "no kernel"),
              FakeParserError(-1, "", "", "INVALID_GRAPH", "bad graph"),
              FakeParserError(40, "Head", "Conv", "INVALID_NODE", "weights missing")]
    assert parser_errors(FakeParser(errors)) == [
        "node 12 '/blocks.0/attn/Softmax' (Softmax): UNSUPPORTED_NODE: no kernel",
        "node -1: INVALID_GRAPH: bad graph",
        "node 40 'Head' (Conv): INVALID_NODE: weights missing"]
    assert parser_errors(FakeParser([])) == []


SPEC = ExtractorSpec(32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 2, 16)


def write_frames(folder, count, rng):
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(count):
        frame = rng.integers(0, 256, (24 + i, 40, 3), dtype=np.uint8)  # sizes differ
        Image.fromarray(frame).save(folder / f"frame_{i:03d}.png")
        frames.append(frame)
    return frames


def test_frame_batches_preprocess_every_frame_and_drop_the_remainder(tmp_path):
    frames = write_frames(tmp_path / "frames" / "sub", 11, np.random.default_rng(0))
    (tmp_path / "frames" / "notes.txt").write_text("not an image")
    batches = list(frame_batches(tmp_path / "frames", SPEC, 4))
    assert len(batches) == 2 and all(b.shape == (4, 3, 32, 32) and b.dtype == np.float32 for b in batches)
    expected = np.concatenate([preprocess_frames(f[None], 32, SPEC.mean, SPEC.std) for f in frames[:8]])
    np.testing.assert_array_equal(np.concatenate(batches), expected)
    with pytest.raises(ValueError, match="needs at least 12 frames, found 11"):
        next(frame_batches(tmp_path / "frames", SPEC, 12))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        next(frame_batches(tmp_path / "empty", SPEC, 4))


def test_map_batches_are_rendered_synthetic_maps():
    spec = DetectorSpec(64, (8, 16, 32), 1)
    batches = list(map_batches(spec, 8, count=20, seed=3))
    assert len(batches) == 2 and all(b.shape == (8, 3, 64, 64) and b.dtype == np.float32 for b in batches)
    assert all(np.isfinite(b).all() and (b[:, 0] == b[:, 1]).all() for b in batches)
    again = list(map_batches(spec, 8, count=20, seed=3))
    np.testing.assert_array_equal(batches[1], again[1])
    assert np.abs(batches[0]).max() <= 1.5  # cosine maps, bicubic overshoot only


def test_calibration_feed_hands_out_batches_then_none_and_keeps_the_cache(tmp_path):
    uploaded = []

    def upload(array):
        uploaded.append(array)
        return 1000 + len(uploaded)

    data = iter([np.zeros((4, 3, 8, 8), np.float32), np.ones((4, 3, 8, 8), np.float64)])
    cache = tmp_path / "extractor.0123456789ab.int8.cache"
    feed = CalibrationFeed(data, 4, cache, upload)
    assert feed.read_cache() is None
    assert feed.get_batch(["images"]) == [1001] and feed.get_batch(["images"]) == [1002]
    assert feed.get_batch(["images"]) is None and feed.count == 2
    assert uploaded[1].dtype == np.float32 and uploaded[1].flags.c_contiguous
    with pytest.raises(ValueError, match="feeds one input"):
        feed.get_batch(["a", "b"])
    feed.write_cache(memoryview(b"TRT-1003-EntropyCalibration2\nimages: 3c010a14\n"))
    assert feed.read_cache() == b"TRT-1003-EntropyCalibration2\nimages: 3c010a14\n"
    assert [p.name for p in tmp_path.iterdir()] == [cache.name]  # written atomically, nothing else left
    assert CalibrationFeed(None, 4, cache, upload).get_batch(["images"]) is None  # cache-only build
    wrong = CalibrationFeed(iter([np.zeros((3, 3, 8, 8), np.float32)]), 4, cache, upload)
    with pytest.raises(ValueError, match="holds 3 items, expected 4"):
        wrong.get_batch(["images"])


def test_calibration_cache_is_named_after_its_onnx_file(micro_model_dir, tmp_path):
    component = load_component(micro_model_dir, "extractor")
    path = calibration_cache_path(tmp_path, component, "extractor")
    assert path.parent == tmp_path and path.name == f"extractor.{component.sha256[:12]}.int8.cache"
    assert component.sha256 == sha256_file(component.path)


def test_grown_capacity():
    assert tensorrt_runtime.grown_capacity(0, 100) == 150
    assert tensorrt_runtime.grown_capacity(150, 100) == 150
    assert tensorrt_runtime.grown_capacity(150, 150) == 150
    assert tensorrt_runtime.grown_capacity(150, 151) == 226


def block_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)


def test_without_tensorrt_the_command_says_so_in_one_line(micro_model_dir, tmp_path, capsys, monkeypatch):
    block_tensorrt(monkeypatch)
    out = tmp_path / "engines"
    assert main(["export", "--format", "trt", "--onnx", str(micro_model_dir), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vcl-fast export: error: TensorRT is not importable") and len(err.splitlines()) == 1
    assert "install TensorRT 10" in err and not out.exists()


def test_export_command_argument_errors(micro_model_dir, tmp_path, capsys):
    out = str(tmp_path / "o")
    assert main(["export", "--onnx", str(micro_model_dir), "-o", out]) == 2
    assert "--onnx, --precision and --calib are for --format trt" in capsys.readouterr().err
    assert main(["export", "--format", "trt", "--onnx", str(micro_model_dir), "--extractor", out, "-o", out]) == 2
    assert "do not also pass --extractor" in capsys.readouterr().err
    assert main(["export", "--format", "trt", "--onnx", str(tmp_path / "nothing"), "-o", out]) == 2
    assert "nothing: no such model directory" in capsys.readouterr().err
    assert main(["export", "--format", "trt", "-o", out]) == 2
    assert "or --onnx DIR" in capsys.readouterr().err
    assert main(["export", "--format", "trt", "--extractor", str(micro_model_dir), "--precision", "int8",
                 "-o", out]) == 2
    assert "int8 needs --calib DIR" in capsys.readouterr().err
    assert main(["export", "--format", "trt", "--onnx", str(micro_model_dir), "--calib", str(tmp_path / "no"),
                 "-o", out]) == 2
    assert "no such calibration frame directory" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_build_engines_checks_arguments_before_needing_tensorrt(micro_model_dir, tmp_path, monkeypatch):
    block_tensorrt(monkeypatch)
    with pytest.raises(ValueError, match="precision must be one of fp32, fp16, int8"):
        build_engines(micro_model_dir, tmp_path, "fp8")
    with pytest.raises(ValueError, match="int8 needs --calib DIR"):
        build_engines(micro_model_dir, tmp_path, "int8")
    with pytest.raises(FileNotFoundError, match="no such calibration frame directory"):
        build_engines(micro_model_dir, tmp_path, "int8", tmp_path / "frames")
    with pytest.raises(ValueError, match="unknown components"):
        build_engines(micro_model_dir, tmp_path, batches={"tracker": BatchRange(1, 1, 1)})
    with pytest.raises(ValueError, match="no manifest"):
        build_engines(tmp_path, tmp_path)
    with pytest.raises(ImportError, match="TensorRT is not importable"):
        build_engines(micro_model_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_backend_registry_names_tensorrt(micro_model_dir, monkeypatch):
    with pytest.raises(ValueError, match="runs on a CUDA device"):
        tensorrt_runtime.load_extractor(micro_model_dir, "cpu")
    block_tensorrt(monkeypatch)
    with pytest.raises(ImportError, match="needs the 'tensorrt' package"):
        get_backend("tensorrt")


# ------------------------------------------------------------------------------ with TensorRT and a GPU


@pytest.fixture(scope="module")
def trt():
    trt = pytest.importorskip("tensorrt")
    from vcl_fast._ext import cuda_available

    if not cuda_available():
        pytest.skip("needs a CUDA GPU and the CUDA build of vcl_fast._C")
    return trt


@pytest.fixture(scope="module")
def engines(trt, micro_model_dir, tmp_path_factory):
    """fp32 and fp16 engine directories of the micro models."""
    root = tmp_path_factory.mktemp("engines")
    for precision in ("fp32", "fp16"):
        build_engines(micro_model_dir, root / precision, precision)
    return root


def ort_reference(micro_model_dir):
    ort = get_backend("onnxruntime")
    return ort.load_extractor(micro_model_dir, "cpu", 1), ort.load_detector(micro_model_dir, "cpu", 1)


@pytest.mark.tensorrt
@pytest.mark.cuda
@pytest.mark.parametrize("precision, tolerance", [("fp32", FP32_TOLERANCE), ("fp16", FP16_TOLERANCE)])
def test_engines_match_onnxruntime(engines, micro_model_dir, precision, tolerance):
    backend = get_backend("tensorrt")
    extractor = backend.load_extractor(engines / precision, "cuda", batch_size=5)
    detector = backend.load_detector(engines / precision, "cuda")
    ort_extractor, ort_detector = ort_reference(micro_model_dir)
    rng = np.random.default_rng(0)
    for n in (1, 7, 2):  # grows the buffers, then reuses them for a smaller batch
        frames = rng.integers(0, 256, (n, 48, 64, 3), dtype=np.uint8)
        np.testing.assert_allclose(extractor.embed(frames), ort_extractor.embed(frames), atol=tolerance, rtol=0)
        maps = rng.uniform(-1, 1, (n, 3, 64, 64)).astype(np.float32)
        np.testing.assert_allclose(detector.run(maps), ort_detector.run(maps), atol=tolerance, rtol=0)
    meta = read_engine_metadata(engine_paths(engines / precision, "extractor")[1])
    assert meta.precision == precision
    assert meta.compute_capability == tensorrt_runtime.current_device().compute_capability
    assert (engines / precision / "timing.cache").stat().st_size > 0


@pytest.mark.tensorrt
@pytest.mark.cuda
def test_cuda_graphs_give_the_same_outputs(engines):
    meta_path = engine_paths(engines / "fp32", "detector")
    meta = read_engine_metadata(meta_path[1])
    plain = tensorrt_runtime.TrtEngine(meta_path[0], meta)
    graphed = tensorrt_runtime.TrtEngine(meta_path[0], meta, cuda_graphs=True)
    maps = np.random.default_rng(1).uniform(-1, 1, (4, 3, 64, 64)).astype(np.float32)
    for batch in (maps, maps[:2], maps, maps[:2]):  # captures, then replays
        np.testing.assert_array_equal(graphed.run(batch), plain.run(batch))
    assert len(graphed._graphs) == 2
    with pytest.raises(ValueError, match="outside the engine's profile"):
        plain.run(np.zeros((33, 3, 64, 64), np.float32))


@pytest.mark.tensorrt
@pytest.mark.cuda
def test_int8_calibrates_once_then_reuses_the_cache(trt, micro_model_dir, tmp_path):
    frames = tmp_path / "frames"
    write_frames(frames, 40, np.random.default_rng(2))
    batches = {"extractor": BatchRange(1, 8, 16), "detector": BatchRange(1, 8, 16)}
    build_engines(micro_model_dir, tmp_path / "a", "int8", frames, batches=batches)
    caches = sorted(p.name for p in (tmp_path / "a").glob("*.int8.cache"))
    assert len(caches) == 2
    meta = read_engine_metadata(engine_paths(tmp_path / "a", "extractor")[1])
    assert meta.precision == "int8" and meta.calibration_cache in caches
    build_engines(micro_model_dir, tmp_path / "a", "int8", batches=batches)  # no frames needed any more


@pytest.mark.tensorrt
@pytest.mark.cuda
def test_engine_from_another_gpu_or_model_is_refused(engines, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(engines / "fp32", copy)
    meta_path = engine_paths(copy, "extractor")[1]
    values = json.loads(meta_path.read_text())
    values["compute_capability"] = [7, 5] if values["compute_capability"] != [7, 5] else [8, 0]
    meta_path.write_text(json.dumps(values))
    with pytest.raises(EngineMismatchError, match="engine built for sm_.* this is sm_.*: rebuild"):
        tensorrt_runtime.load_extractor(copy, "cuda")


@pytest.mark.tensorrt
@pytest.mark.cuda
def test_parser_errors_are_raised_not_printed(trt, tmp_path):
    from vcl_fast.runtime.tensorrt_build import EngineBuilder, OnnxParseError

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage that is no protobuf")
    with pytest.raises(OnnxParseError, match=r"broken\.onnx: TensorRT's ONNX parser failed with \d+ error"):
        EngineBuilder().parse(broken)


@pytest.mark.tensorrt
@pytest.mark.cuda
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_gpu_pipeline_on_engines_matches_the_cpu_localizer(engines, micro_model_dir, cuda_graphs):
    from localize_fixtures import QUERY_PHOTOS, REFERENCE_PHOTOS, photo_frames

    from vcl_fast.api import Localizer
    from vcl_fast.runtime.gpu_pipeline import GpuPipeline

    params = {"conf_threshold": 0.0}
    query, reference = photo_frames(QUERY_PHOTOS, 2), photo_frames(REFERENCE_PHOTOS, 2)
    expected = Localizer(micro_model_dir, micro_model_dir, method_params=params).localize(query, reference)
    found = GpuPipeline.from_engines(engines / "fp32", cuda_graphs=cuda_graphs, **params).localize(query, reference)
    rows = np.array([[s.q_start, s.r_start, s.q_end, s.r_end, s.score] for s in expected.segments])
    assert len(found) == len(rows) > 0
    np.testing.assert_allclose(found, rows, atol=FP32_TOLERANCE, rtol=0)
