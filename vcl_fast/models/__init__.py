"""Trainable models (PyTorch): the RTR feature extractor and the YOLOX detector.

``build_extractor`` and ``build_detector`` load torch on first use only, so importing this package (and the
torch-free inference path beside it) never needs torch.
"""
from __future__ import annotations

from typing import Any

__all__ = ["build_detector", "build_extractor"]


def __getattr__(name: str) -> Any:
    if name == "build_extractor":
        from vcl_fast.models.rtr import build_extractor

        return build_extractor
    if name == "build_detector":
        from vcl_fast.models.yolox import build_detector

        return build_detector
    raise AttributeError(f"module 'vcl_fast.models' has no attribute {name!r}")
