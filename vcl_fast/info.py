"""Environment report: version, compiled core status, SIMD level, CUDA, optional backends."""
from __future__ import annotations

import importlib.metadata
import os
import platform

from vcl_fast import __version__
from vcl_fast._ext import extension, extension_error

OPTIONAL_BACKENDS = ("torch", "onnxruntime", "tensorrt", "av", "faiss", "timm", "safetensors")


def _package_version(name: str) -> str | None:
    dist = {"av": "av", "faiss": "faiss-cpu"}.get(name, name)
    for candidate in (dist, name, "faiss-gpu" if name == "faiss" else None):
        if candidate is None:
            continue
        try:
            return importlib.metadata.version(candidate)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _default_model() -> dict | None:
    """Where the embedded default model is, its size on disk and its inputs and outputs; None in a build without."""
    from vcl_fast.runtime.manifest import ManifestError, default_model_dir, read_manifest

    try:
        directory = default_model_dir()
        manifest = read_manifest(directory)
    except ManifestError:
        return None
    extractor, detector = manifest["extractor"], manifest["detector"]
    return {
        "path": str(directory),
        "megabytes": round(sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) / 2**20, 1),
        "extractor": {key: extractor[key] for key in ("input_size", "num_tokens", "dim")},
        "detector": {key: detector[key] for key in ("input_size", "min_similarity", "confident_similarity",
                                                     "confident_score") if key in detector},
    }


def collect() -> dict:
    """All facts as a JSON-ready dict."""
    ext = extension()
    info: dict = {
        "vcl_fast": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "extension": "loaded" if ext is not None else f"unavailable ({extension_error()})",
        "simd_level": ext.simd_level() if ext else None,
        "cpu_simd_level": ext.cpu_simd_level() if ext else None,
        "simd_override": os.environ.get("VCL_FAST_SIMD"),
        "cuda_compiled": bool(ext and ext.cuda_compiled()),
        "cuda_devices": ext.cuda_device_count() if ext else 0,
        "backends": {name: _package_version(name) for name in OPTIONAL_BACKENDS},
        "default_model": _default_model(),
    }
    return info


def format_report(info: dict) -> str:
    """Human-readable lines of ``collect()``'s dict."""
    lines = [
        f"vcl_fast        {info['vcl_fast']}  (Python {info['python']}, {info['platform']})",
        f"extension       {info['extension']}",
        f"SIMD in use     {info['simd_level']} (CPU supports {info['cpu_simd_level']}"
        + (f", VCL_FAST_SIMD={info['simd_override']}" if info["simd_override"] else "")
        + ")",
        f"CUDA kernels    {'compiled in' if info['cuda_compiled'] else 'not compiled'}",
        f"GPUs visible    {info['cuda_devices']}",
        "backends        "
        + ", ".join(f"{k} {v}" if v else f"{k} (not installed)" for k, v in info["backends"].items()),
    ]
    model = info["default_model"]
    if model is None:
        lines.append("default model   none in this build (pass a model, or run `vcl-fast export`)")
    else:
        extractor, detector = model["extractor"], model["detector"]
        lines.append(f"default model   {model['path']} ({model['megabytes']} MB): extractor {extractor['input_size']} px, "
                     f"{extractor['num_tokens']} tokens x {extractor['dim']} dims; detector {detector['input_size']} px"
                     + (f", similarity floor {detector['min_similarity']}" if "min_similarity" in detector else ""))
    return "\n".join(lines)
