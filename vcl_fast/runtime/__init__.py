"""Runtime backends: run exported or trained models behind one interface (:mod:`vcl_fast.runtime.base`).

``BACKENDS`` maps a backend name to the module that implements it and the package it needs. A backend module
defines ``load_extractor(source, device, threads, batch_size) -> Extractor`` and
``load_detector(source, device, threads) -> Detector``; adding a backend is one entry here plus its module
(TensorRT: :mod:`vcl_fast.runtime.tensorrt_runtime`). Backend modules are imported on first use, so
``vcl_fast.runtime`` itself needs neither torch nor onnxruntime nor TensorRT.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Backend:
    """A registered backend: its module and the package it needs."""

    name: str
    module: str
    requires: str
    sources: str  # what ``extractor=`` / ``detector=`` take, for error messages and --help


BACKENDS: dict[str, Backend] = {
    "onnxruntime": Backend("onnxruntime", "vcl_fast.runtime.ort_backend", "onnxruntime",
                           "exported model directories (`vcl-fast export --format onnx`)"),
    "torch": Backend("torch", "vcl_fast.runtime.torch_backend", "torch",
                     "trained weight directories (or in-memory models)"),
    "tensorrt": Backend("tensorrt", "vcl_fast.runtime.tensorrt_runtime", "tensorrt",
                        "engine directories (`vcl-fast export --format trt`)"),
}


def available_backends() -> list[str]:
    """Names of the backends whose package is installed."""
    return [name for name, b in BACKENDS.items() if importlib.util.find_spec(b.requires) is not None]


def get_backend(name: str) -> ModuleType:
    """The module of backend ``name``; ValueError for unknown names, ImportError naming the missing package."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    backend = BACKENDS[name]
    if importlib.util.find_spec(backend.requires) is None:
        raise ImportError(f"the {name} backend needs the {backend.requires!r} package, which is not installed")
    return importlib.import_module(backend.module)
