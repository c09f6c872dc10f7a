"""The compiled core loads, reports its SIMD level and CUDA status, and `vcl-fast info` works."""
import json
import subprocess
import sys

import pytest

from vcl_fast._ext import extension, extension_error
from vcl_fast.cli import main


def test_extension_loads():
    assert extension() is not None, extension_error()


def test_simd_level_can_be_selected():
    ext = extension()
    best = ext.cpu_simd_level()
    try:
        assert ext.set_simd_level("scalar") == "scalar"
        assert ext.set_simd_level("avx512") in ("scalar", "avx2", "avx512")
        with pytest.raises(ValueError, match="SIMD level"):
            ext.set_simd_level("sse9")
    finally:
        ext.set_simd_level(best)
    assert ext.simd_level() == best


def test_cuda_device_count_never_raises():
    ext = extension()
    assert ext.cuda_device_count() >= 0
    if not ext.cuda_compiled():
        assert ext.cuda_device_count() == 0


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["extension"] == "loaded"
    assert info["simd_level"] in ("scalar", "avx2", "avx512")
    assert set(info["backends"]) >= {"torch", "onnxruntime", "tensorrt"}
    model = info["default_model"]
    assert model["extractor"] == {"input_size": 112, "num_tokens": 2, "dim": 256} and 0 < model["megabytes"] < 50
    assert model["detector"]["input_size"] == 256


def test_info_without_an_embedded_model(capsys, monkeypatch, tmp_path):
    import vcl_fast.runtime.manifest as manifest

    monkeypatch.setattr(manifest, "DEFAULT_MODEL_DIR", tmp_path)
    assert main(["info"]) == 0
    assert "default model   none in this build" in capsys.readouterr().out


def test_python_m_info_runs():
    out = subprocess.run([sys.executable, "-m", "vcl_fast", "info"], capture_output=True, text=True, check=True)
    assert "SIMD in use" in out.stdout
