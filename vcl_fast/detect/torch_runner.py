"""Runs a YOLOX torch module as a detection runner: numpy images in, numpy raw outputs out."""
from __future__ import annotations

import numpy as np
import torch


class TorchRunner:
    """``runner(images float32 (B, 3, S, S)) -> raw outputs float32 (B, A, 5 + C)`` on ``device``
    (CUDA runs in float16 autocast when ``amp``)."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", amp: bool = False):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.amp = amp and self.device.type == "cuda"

    @torch.inference_mode()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(self.device)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            raw = self.model(x)
        return raw.float().cpu().numpy()

    @property
    def input_size(self) -> int:
        return self.model.config.input_size

    @classmethod
    def from_path(cls, path, device: str = "cpu", amp: bool = False) -> "TorchRunner":
        """Runner of the detector at ``path`` (model directory or reference-layout .pth)."""
        from vcl_fast.models.detector_io import load_detector

        return cls(load_detector(path), device, amp)
