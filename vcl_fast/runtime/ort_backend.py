"""ONNX Runtime backend (the default): runs exported models, torch-free.

Sessions use the CPU execution provider, or the CUDA one for ``device="cuda[:N]"`` (``"auto"`` picks CUDA
when this onnxruntime build has it). ``InferenceSession.run`` is thread-safe, so one session serves
concurrent calls. ``threads`` sets the intra-op thread count (None: onnxruntime's default, all cores).
The intra-op threads do not spin while waiting for work: the Localizer decodes video in another thread at the
same time, and spinning threads would take its core (bench/README.md, "End-to-end localize").
"""
from __future__ import annotations

import os

import numpy as np

from vcl_fast.runtime.base import Detector, Extractor, parse_device
from vcl_fast.runtime.manifest import ExportedComponent, load_component

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
SPINNING = ("session.intra_op.allow_spinning", "0")  # session config entry: intra-op threads never spin


def providers(device: str) -> list:
    """Execution providers for ``device``; ValueError when CUDA is asked for but this build lacks it."""
    import onnxruntime as ort

    kind, index = parse_device(device)
    available = ort.get_available_providers()
    if kind == "auto":
        kind = "cuda" if CUDA_PROVIDER in available else "cpu"
    if kind == "cpu":
        return [CPU_PROVIDER]
    if CUDA_PROVIDER not in available:
        raise ValueError(f"device {device!r}: this onnxruntime has no CUDA execution provider (it has "
                         f"{', '.join(available)}); install onnxruntime-gpu or use device='cpu'")
    return [(CUDA_PROVIDER, {"device_id": index}), CPU_PROVIDER]


def create_session(path: str | os.PathLike, device: str = "cpu", threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` for the model file ``path``."""
    import onnxruntime as ort

    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.add_session_config_entry(SPINNING[0], SPINNING[1])
    chosen = providers(device)
    try:
        return ort.InferenceSession(str(path), options, providers=chosen)
    except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: onnxruntime cannot load the model ({message}); re-export it") from None


class OrtExtractor(Extractor):
    """Exported extractor on an ONNX Runtime session."""

    def __init__(self, component: ExportedComponent, device: str = "cpu", threads: int | None = None,
                 batch_size: int = 16):
        super().__init__(component.spec, batch_size)
        self.session = create_session(component.path, device, threads)
        self.input_name, self.output_name = component.input_name, component.output_name

    def _forward(self, images: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: images})[0]


class OrtDetector(Detector):
    """Exported detector on an ONNX Runtime session."""

    def __init__(self, component: ExportedComponent, device: str = "cpu", threads: int | None = None):
        super().__init__(component.spec)
        self.session = create_session(component.path, device, threads)
        self.input_name, self.output_name = component.input_name, component.output_name

    def run(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        if len(images) == 0:  # onnxruntime cannot reshape an empty batch in the head
            return self.empty_output()
        return self.session.run([self.output_name], {self.input_name: images})[0]


def load_extractor(source: str | os.PathLike, device: str = "cpu", threads: int | None = None,
                   batch_size: int = 16) -> OrtExtractor:
    """The extractor of an exported model directory (or its ``extractor.onnx``)."""
    return OrtExtractor(load_component(source, "extractor"), device, threads, batch_size)


def load_detector(source: str | os.PathLike, device: str = "cpu", threads: int | None = None) -> OrtDetector:
    """The detector of an exported model directory (or its ``detector.onnx``)."""
    return OrtDetector(load_component(source, "detector"), device, threads)
