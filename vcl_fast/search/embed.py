"""The "embed a video -> VideoFeatures" seam of the search, its two implementations, and input listing.

An embedder is a picklable callable ``embedder(path) -> VideoFeatures`` with a ``describe() -> dict`` that
says which features it makes (recorded in the index manifest, so queries are embedded the same way and a
library never mixes features of two models). Workers (one per Ray actor) each hold one embedder; heavy
state (the model) is loaded on the first call, so an embedder pickles cheaply.

- :class:`ExtractorEmbedder`: video file (or image folder) -> frames sampled at ``fps`` by PyAV -> the RTR
  extractor (torch) -> ``(L, T, 256)`` float32 features.
- :class:`FeatureFileLoader`: precomputed features, ``<dir>/<video_id>.npy`` (the per-video layout of
  :mod:`vcl_fast.data.features`, with its ``meta.json`` and timestamp sidecars).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from vcl_fast.data.features import VideoFeatures, list_video_ids, load_video_features
from vcl_fast.search.library import VideoSource

VIDEO_SUFFIXES = frozenset({
    ".mp4", ".mkv", ".avi", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts", ".gif",
})


def list_videos(spec: str | os.PathLike) -> list[VideoSource]:
    """Videos named by ``spec``: a video file, a directory (its files with a video suffix, not recursive) or
    a text file listing one video path per line (relative paths are relative to the list; blank lines and
    lines starting with ``#`` are skipped). The id of a video is its file name without the suffix."""
    spec = Path(spec)
    if spec.is_file() and spec.suffix.lower() in VIDEO_SUFFIXES:
        paths = [spec]
    elif spec.is_dir():
        paths = sorted(p for p in spec.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not paths:
            raise ValueError(f"{spec}: no video files (suffixes {', '.join(sorted(VIDEO_SUFFIXES))})")
    elif spec.is_file():
        lines = [line.strip() for line in spec.read_text().splitlines()]
        paths = [spec.parent / line for line in lines if line and not line.startswith("#")]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise FileNotFoundError(f"{spec} lists {len(missing)} missing videos, first {missing[0]}")
    else:
        raise FileNotFoundError(f"{spec}: no such directory or list file")
    return [VideoSource(path.stem if path.is_file() else path.name, str(path)) for path in paths]


def list_feature_files(directory: str | os.PathLike) -> list[VideoSource]:
    """The ``<video_id>.npy`` feature files of a per-video feature directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such feature directory")
    ids = list_video_ids(directory)
    if not ids:
        raise ValueError(f"{directory}: no <video_id>.npy feature files")
    return [VideoSource(video_id, str(directory / f"{video_id}.npy")) for video_id in ids]


@dataclasses.dataclass(frozen=True)
class FeatureFileLoader:
    """Embedder for precomputed features: ``<dir>/<video_id>.npy`` -> that video's VideoFeatures."""

    def __call__(self, path: str | os.PathLike) -> VideoFeatures:
        path = Path(path)
        return load_video_features(path.parent, path.stem)

    def describe(self) -> dict:
        return {"kind": "features"}


class ExtractorEmbedder:
    """Embedder running an RTR extractor saved with ``vcl_fast.models.weights.save_extractor``.

    weights: the extractor directory; fps: frames sampled per second; batch_size: frames per forward pass;
    device: ``"auto"`` (CUDA when torch sees a GPU, else CPU), ``"cpu"`` or ``"cuda[:N]"``.
    """

    def __init__(self, weights: str | os.PathLike, fps: float = 1.0, batch_size: int = 32, device: str = "auto"):
        self.weights = Path(weights).resolve()
        if not (self.weights / "config.json").is_file():
            raise FileNotFoundError(f"{weights}: not an extractor directory (no config.json)")
        if not fps > 0 or batch_size < 1:
            raise ValueError(f"fps must be positive and batch_size >= 1, got {fps} and {batch_size}")
        self.fps, self.batch_size, self.device = float(fps), int(batch_size), device
        self._model = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}

    def describe(self) -> dict:
        return {"kind": "rtr", "weights": str(self.weights), "fps": self.fps}

    def _loaded(self):
        if self._model is None:
            import torch

            from vcl_fast.models.weights import load_extractor

            device = self.device
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            self._model = load_extractor(self.weights).to(device)
        return self._model

    def __call__(self, path: str | os.PathLike) -> VideoFeatures:
        from PIL import Image

        from vcl_fast.models.extract import extract_features
        from vcl_fast.video import iter_frames

        model = self._loaded()
        device = next(model.parameters()).device
        features, timestamps = [], []
        for chunk in iter_frames(path, self.fps, model.config.img_size, chunk_size=self.batch_size):
            images = [Image.fromarray(frame) for frame in chunk.frames]
            features.append(extract_features(model, images, self.batch_size, device))
            timestamps.append(chunk.timestamps)
        return VideoFeatures(Path(path).stem, np.concatenate(features), np.concatenate(timestamps), self.fps)


def embedder_from_description(description: dict, device: str = "auto"):
    """The embedder a manifest's ``embedder`` entry describes (``FeatureFileLoader`` for precomputed ones)."""
    kind = description.get("kind")
    if kind == "rtr":
        return ExtractorEmbedder(description["weights"], description["fps"], device=device)
    if kind == "features":
        return FeatureFileLoader()
    raise ValueError(f"unknown embedder description {description!r}")
