"""PyTorch backend (for training users): runs trained models from their weight directories, or models
already in memory, with the same numpy preprocessing as the exported ones. Float32 inference under
``torch.inference_mode``; concurrent calls are safe (the modules are in eval mode and keep no state).
``threads`` calls ``torch.set_num_threads`` (process-wide).
"""
from __future__ import annotations

import os

import numpy as np
import torch

from vcl_fast.detect.torch_runner import TorchRunner
from vcl_fast.runtime.base import Detector, Extractor, parse_device
from vcl_fast.runtime.specs import DetectorSpec, ExtractorSpec


def torch_device(device: str) -> torch.device:
    """``"cpu"``, ``"cuda[:N]"`` or ``"auto"`` as a torch device; ValueError when CUDA is not available."""
    kind, index = parse_device(device)
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: torch sees no CUDA device; use device='cpu'")
    return torch.device("cpu") if kind == "cpu" else torch.device("cuda", index)


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    torch.set_num_threads(threads)


class TorchExtractor(Extractor):
    """An RTR extractor module (``vcl_fast.models.rtr.RegionalTokenViT``) on ``device``."""

    def __init__(self, model: torch.nn.Module, device: str = "cpu", batch_size: int = 16):
        config = model.config
        super().__init__(ExtractorSpec(config.img_size, config.mean, config.std, config.num_tokens, config.out_dim),
                         batch_size)
        self.device = torch_device(device)
        self.model = model.to(self.device).eval()

    @torch.inference_mode()
    def _forward(self, images: np.ndarray) -> np.ndarray:
        return self.model(torch.from_numpy(images).to(self.device)).float().cpu().numpy()


class TorchDetector(Detector):
    """A YOLOX module (``vcl_fast.models.yolox.YOLOX`` or ``YOLOXEnsemble``, raw outputs) on ``device``."""

    def __init__(self, model: torch.nn.Module, device: str = "cpu"):
        if getattr(model, "decode_in_inference", False):
            raise ValueError("the detector decodes its outputs (decode_in_inference=True); "
                             "pass one that returns raw outputs")
        super().__init__(DetectorSpec(model.config.input_size, model.head.strides, model.config.num_classes))
        self.runner = TorchRunner(model, torch_device(device))

    def run(self, images: np.ndarray) -> np.ndarray:
        return self.runner(images)


def _module(source, load, kind: type | tuple[type, ...], what: str) -> torch.nn.Module:
    """``source`` loaded with ``load`` when it is a path; TypeError unless the result is a ``kind``."""
    if isinstance(source, (str, os.PathLike)):
        source = load(source)
    if not isinstance(source, kind):
        raise TypeError(f"the torch backend's {what}, got {type(source).__name__}")
    return source


def load_extractor(source: str | os.PathLike | torch.nn.Module, device: str = "cpu", threads: int | None = None,
                   batch_size: int = 16) -> TorchExtractor:
    """An extractor from a weight directory (``vcl_fast.models.weights.save_extractor``) or a module."""
    from vcl_fast.models.rtr import RegionalTokenViT
    from vcl_fast.models.weights import load_extractor as load_weights

    _set_threads(threads)
    model = _module(source, load_weights, RegionalTokenViT, "extractor is a weight directory or a RegionalTokenViT")
    return TorchExtractor(model, device, batch_size)


def load_detector(source: str | os.PathLike | torch.nn.Module, device: str = "cpu",
                  threads: int | None = None) -> TorchDetector:
    """A detector from a model directory or reference-layout checkpoint
    (``vcl_fast.models.detector_io.load_detector``) or a module."""
    from vcl_fast.models.detector_io import load_detector as load_weights
    from vcl_fast.models.yolox import YOLOX, YOLOXEnsemble

    _set_threads(threads)
    model = _module(source, load_weights, (YOLOX, YOLOXEnsemble),
                    "detector is a model directory, a checkpoint, or a YOLOX or YOLOXEnsemble module")
    return TorchDetector(model, device)
