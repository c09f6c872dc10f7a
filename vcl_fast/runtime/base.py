"""What every runtime backend provides: a frame extractor with ``embed`` and a detector with ``run``.

``Extractor.embed(frames uint8 (N, H, W, 3)) -> float32 (N, T, D)`` preprocesses in numpy
(:mod:`vcl_fast.runtime.preprocess`) and runs the model in batches of ``batch_size`` frames; a backend only
implements ``_forward(images float32 (B, 3, S, S)) -> (B, T, D)``. ``Detector.run(images float32
(B, 3, S, S)) -> raw (B, A, 5 + C)`` is the Runner of :func:`vcl_fast.detect.localizer.localize_maps`.
Both are safe to call from several threads at once (they keep no per-call state).
"""
from __future__ import annotations

import numpy as np

from vcl_fast.runtime.preprocess import blank_images, check_frames, preprocess_frames
from vcl_fast.runtime.specs import DetectorSpec, ExtractorSpec


def parse_device(device: str) -> tuple[str, int]:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` -> ``(kind, index)`` with kind cpu/cuda/auto."""
    if not isinstance(device, str):
        raise TypeError(f"device must be a string ('cpu', 'cuda', 'cuda:N' or 'auto'), got {type(device).__name__}")
    kind, _, index = device.strip().lower().partition(":")
    if kind in ("cpu", "auto") and not index:
        return kind, 0
    if kind == "cuda" and (not index or index.isdigit()):
        return kind, int(index or 0)
    raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'")


def check_batch_size(batch_size: int) -> None:
    """ValueError unless ``batch_size`` (frames per model call) is a positive int."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


class Extractor:
    """Frames -> features; subclasses run the model (``_forward``)."""

    def __init__(self, spec: ExtractorSpec, batch_size: int = 16):
        check_batch_size(batch_size)
        self.spec = spec
        self.batch_size = batch_size

    def _forward(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB frames -> (N, T, D) float32 unit-norm features (regional tokens, CLS last);
        blank frames (:func:`~vcl_fast.runtime.preprocess.blank_images`) get zero features."""
        frames = check_frames(frames)
        spec = self.spec
        out = np.empty((len(frames), spec.num_tokens, spec.dim), dtype=np.float32)
        for start in range(0, len(frames), self.batch_size):
            images = preprocess_frames(frames[start:start + self.batch_size], spec.input_size, spec.mean, spec.std)
            features = np.asarray(self._forward(images))
            if features.shape != (len(images), spec.num_tokens, spec.dim):
                raise ValueError(f"the extractor returned shape {features.shape} for {len(images)} images; "
                                 f"its spec says ({len(images)}, {spec.num_tokens}, {spec.dim})")
            out[start:start + len(images)] = features
            out[start + np.flatnonzero(blank_images(images, spec.std))] = 0.0
        return out


class Detector:
    """Rendered similarity maps -> raw YOLOX outputs; subclasses implement ``run``."""

    def __init__(self, spec: DetectorSpec):
        self.spec = spec

    def run(self, images: np.ndarray) -> np.ndarray:
        """(B, 3, S, S) float32 -> raw (B, A, 5 + C) float32."""
        raise NotImplementedError

    def empty_output(self) -> np.ndarray:
        """The raw outputs of an empty batch: (0, A, 5 + C) float32."""
        return np.zeros((0, self.spec.num_anchors, 5 + self.spec.num_classes), np.float32)
