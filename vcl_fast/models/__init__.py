"""Trainable models (PyTorch): the YOLOX detector for similarity maps."""
from vcl_fast.models.yolox import build_detector

__all__ = ["build_detector"]
