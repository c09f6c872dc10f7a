"""ONNX export: manifest, checker, parity with torch under ONNX Runtime, manifest validation, the CLI."""
import json
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from localize_fixtures import exported_micro_model, micro_detector, micro_extractor  # noqa: E402
from vcl_fast.cli import main  # noqa: E402
from vcl_fast.runtime.manifest import (  # noqa: E402
    COMPONENT_KEYS, MANIFEST_FILE, ManifestError, load_component, read_manifest, sha256_file,
)

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return exported_micro_model(tmp_path_factory)


def _session(path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_manifest_describes_the_export(model_dir):
    import onnx

    manifest = read_manifest(model_dir)
    extractor, detector = micro_extractor(), micro_detector()
    assert manifest["opset"] == 17
    assert set(manifest["versions"]) >= {"vcl_fast", "torch", "onnx"}
    assert manifest["versions"]["torch"] == torch.__version__
    assert manifest["simplifier"].startswith(("onnxsim", "onnx "))
    for name in ("extractor", "detector"):
        entry = manifest[name]
        assert set(COMPONENT_KEYS[name]) <= set(entry)
        assert entry["sha256"] == sha256_file(model_dir / entry["file"])
        assert entry["max_abs_diff"] < TOLERANCE
        onnx.checker.check_model(onnx.load(str(model_dir / entry["file"])), full_check=True)
    ext = manifest["extractor"]
    assert (ext["input_size"], ext["num_tokens"], ext["dim"]) == (32, 2, 16)
    assert ext["mean"] == list(extractor.config.mean) and ext["std"] == list(extractor.config.std)
    assert "255" in ext["preprocessing"]
    det = manifest["detector"]
    assert (det["input_size"], det["strides"], det["num_classes"], det["min_similarity"], det["extent_similarity"],
            det["confident_similarity"], det["confident_score"], det["transpose_fusion_iou"], det["query_margin"],
            det["reference_margin"], det["merge_overlap"]) == (64, [8, 16, 32], 1, -1.0, -1.0, -1.0, 1.0, -1.0, 0.0, 0.0,
                                                               -1.0)
    assert (det["chunk_length"], det["chunk_overlap"]) == (1200, 0)  # the paper's tiling unless told
    assert load_component(model_dir, "extractor").spec.num_tokens == extractor.config.num_tokens
    assert load_component(model_dir / "detector.onnx", "detector").spec.num_anchors == detector(
        torch.zeros(1, 3, 64, 64)).shape[1]


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_extractor_parity_with_torch(model_dir, batch):
    model = micro_extractor()
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(batch))
    with torch.inference_mode():
        expected = model(x).numpy()
    found = _session(model_dir / "extractor.onnx").run(["features"], {"images": x.numpy()})[0]
    assert found.shape == expected.shape == (batch, 2, 16)
    assert np.abs(found - expected).max() < TOLERANCE


@pytest.mark.parametrize("batch", [1, 3])
def test_detector_raw_output_parity_with_torch(model_dir, batch):
    model = micro_detector()
    x = torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(batch)) * 2 - 1
    with torch.inference_mode():
        expected = model(x).numpy()
    found = _session(model_dir / "detector.onnx").run(["raw"], {"images": x.numpy()})[0]
    assert found.shape == expected.shape == (batch, 84, 6)
    assert np.abs(found - expected).max() < TOLERANCE


def test_export_restores_the_model_state(tmp_path):
    from vcl_fast.export.onnx import export_extractor

    model = micro_extractor().train()
    model.set_fused_attn(True)
    export_extractor(model, tmp_path / "e.onnx")
    assert model.training
    assert all(block.attn.fused_attn for block in model.blocks)


def test_fallback_simplifier_without_onnxsim(tmp_path, monkeypatch):
    from vcl_fast.export.onnx import export_onnx

    monkeypatch.setitem(sys.modules, "onnxsim", None)  # import blocked
    export_onnx(tmp_path, extractor=micro_extractor())
    manifest = read_manifest(tmp_path)
    assert "shape inference" in manifest["simplifier"]
    assert manifest["extractor"]["max_abs_diff"] < TOLERANCE
    assert "detector" not in manifest
    with pytest.raises(ManifestError, match="holds no detector.*re-export"):
        load_component(tmp_path, "detector")


def test_failed_export_writes_nothing(tmp_path):
    from vcl_fast.export.onnx import export_onnx
    from vcl_fast.models.yolox import build_detector

    out = tmp_path / "out"
    with pytest.raises(ValueError, match="decode_in_inference"):
        export_onnx(out, micro_extractor(), build_detector("micro", decode_in_inference=True))
    assert list(tmp_path.iterdir()) == []  # no output folder, no staging folder left
    with pytest.raises(ValueError, match="nothing to export"):
        export_onnx(out)
    with pytest.raises(TypeError, match="unknown calibrated settings \\['min_similarty'\\]"):
        export_onnx(out, micro_extractor(), micro_detector(), min_similarty=0.9)
    assert list(tmp_path.iterdir()) == []


def test_export_replaces_an_earlier_export_and_refuses_other_folders(tmp_path):
    from vcl_fast.export.onnx import export_onnx

    out = tmp_path / "out"
    export_onnx(out, micro_extractor(), micro_detector())
    (out / "stale.engine").write_bytes(b"old")
    export_onnx(out, extractor=micro_extractor())
    assert sorted(p.name for p in out.iterdir()) == ["extractor.onnx", "manifest.json"]  # replaced as a whole
    assert "detector" not in read_manifest(out)
    load_component(out, "extractor")
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        export_onnx(other, extractor=micro_extractor())
    assert [p.name for p in other.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "out"]


def _copy_export(model_dir, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(model_dir, target)
    return target


def _edit_manifest(directory, change):
    path = directory / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("opset"), r"missing keys \['opset'\]"),
    (lambda m: m.update(format_version=99), "format_version 99"),
    (lambda m: m.update(format="something"), "not a vcl_fast exported-model manifest"),
    (lambda m: m["extractor"].pop("dim"), r"lacks keys \['dim'\]"),
    (lambda m: m["extractor"].update(sha256="0" * 64), "SHA-256 differs"),
    (lambda m: m["extractor"].update(num_tokens=0), "bad extractor entry"),
    (lambda m: m["extractor"].update(file="gone.onnx"), "gone.onnx: missing"),
])
def test_manifest_problems_say_to_reexport(model_dir, tmp_path, change, message):
    directory = _copy_export(model_dir, tmp_path)
    _edit_manifest(directory, change)
    with pytest.raises(ManifestError, match=message) as info:
        load_component(directory, "extractor")
    assert "re-export" in str(info.value)


def test_changed_model_file_and_missing_manifest(model_dir, tmp_path):
    directory = _copy_export(model_dir, tmp_path)
    with open(directory / "detector.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ManifestError, match="SHA-256 differs.*re-export"):
        load_component(directory, "detector")
    with pytest.raises(ManifestError, match="not the extractor"):
        load_component(directory / "detector.onnx", "extractor")
    (directory / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON.*re-export"):
        read_manifest(directory)
    (directory / MANIFEST_FILE).unlink()
    with pytest.raises(ManifestError, match="no manifest.*re-export"):
        read_manifest(directory)
    with pytest.raises(FileNotFoundError):
        load_component(tmp_path / "nowhere", "extractor")


def test_export_command(tmp_path, capsys):
    from vcl_fast.models.detector_io import save_detector
    from vcl_fast.models.weights import save_extractor

    save_extractor(micro_extractor(), tmp_path / "ext")
    save_detector(micro_detector(), tmp_path / "det")
    out = tmp_path / "out"
    assert main(["export", "--format", "onnx", "--extractor", str(tmp_path / "ext"), "--detector",
                 str(tmp_path / "det"), "-o", str(out), "--min-similarity", "0.8", "--extent-similarity", "0.75",
                 "--confident-similarity", "0.7", "--confident-score", "0.6", "--transpose-fusion-iou", "0.55",
                 "--query-margin", "0.5", "--reference-margin", "-0.25", "--merge-overlap", "0.3",
                 "--chunk-length", "64", "--chunk-overlap", "32"]) == 0
    assert {p.name for p in out.iterdir()} == {"extractor.onnx", "detector.onnx", "manifest.json"}
    assert load_component(out, "extractor").spec.dim == 16
    spec = load_component(out, "detector").spec
    assert (spec.min_similarity, spec.extent_similarity, spec.confident_similarity, spec.confident_score,
            spec.transpose_fusion_iou, spec.query_margin, spec.reference_margin, spec.merge_overlap) == (
        0.8, 0.75, 0.7, 0.6, 0.55, 0.5, -0.25, 0.3)
    assert (spec.chunk_length, spec.chunk_overlap) == (64, 32)
    from vcl_fast.detect.localizer import detection_settings

    assert (detection_settings(spec).chunk_length, detection_settings(spec).chunk_overlap) == (64, 32)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["detector"]["chunk_length"], manifest["detector"]["chunk_overlap"]  # an export made before them
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert (load_component(out, "detector").spec.chunk_length, load_component(out, "detector").spec.chunk_overlap) \
        == (1200, 0)
    manifest["detector"]["chunk_length"] = 64.5
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="bad detector entry .*chunk_length must be an int"):
        load_component(out, "detector")
    capsys.readouterr()
    assert main(["export", "--detector", str(tmp_path / "det"), "-o", str(tmp_path / "o1"), "--chunk-length", "64",
                 "--chunk-overlap", "64"]) == 2
    assert "chunk_overlap an int in [0, chunk_length)" in capsys.readouterr().err
    assert main(["export", "--detector", str(tmp_path / "det"), "-o", str(tmp_path / "o1"), "--min-similarity", "2"]) == 2
    assert "min_similarity is a cosine in [-1, 1]" in capsys.readouterr().err
    assert main(["export", "--detector", str(tmp_path / "det"), "-o", str(tmp_path / "o1"), "--extent-similarity",
                 "-3"]) == 2
    assert "extent_similarity is a cosine in [-1, 1]" in capsys.readouterr().err
    assert main(["export", "--detector", str(tmp_path / "det"), "-o", str(tmp_path / "o1"), "--confident-score",
                 "1.5"]) == 2
    assert "confident_score is a detector score in [0, 1]" in capsys.readouterr().err
    assert main(["export", "--detector", str(tmp_path / "det"), "-o", str(tmp_path / "o1"), "--transpose-fusion-iou",
                 "0"]) == 2
    assert "transpose_fusion_iou is a share in (0, 1] or -1 (off)" in capsys.readouterr().err
    assert main(["export", "--detector", str(tmp_path / "det"), "-o", str(tmp_path / "o1"), "--merge-overlap",
                 "1.5"]) == 2
    assert "merge_overlap is a share in (0, 1] or -1 (off)" in capsys.readouterr().err
    assert main(["export", "--detector", str(tmp_path / "det"), "-o", str(tmp_path / "o1"), "--reference-margin",
                 "12"]) == 2
    assert "reference_margin is a number of frames in [-10, 10]" in capsys.readouterr().err

    assert main(["export", "--extractor", str(tmp_path / "missing"), "-o", str(tmp_path / "o2")]) == 2
    assert "missing: no such model directory" in capsys.readouterr().err
    assert main(["export", "-o", str(tmp_path / "o3")]) == 2
    assert "nothing to export" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


def test_export_trt_says_when_tensorrt_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert main(["export", "--format", "trt", "--extractor", str(tmp_path), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "TensorRT is not importable" in err and len(err.strip().splitlines()) == 1
