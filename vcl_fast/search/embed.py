"""The "embed a video -> VideoFeatures" seam of the search, its two implementations, and input listing.

An embedder is a picklable callable ``embedder(path) -> VideoFeatures`` with ``describe() -> dict``, which
says which features it makes (recorded in the index manifest, so queries are embedded the same way and a
library never mixes features of two models), and ``load()``, which loads its heavy state (the model) and
raises when it cannot, before any video is read. Workers (one per Ray actor) each hold one embedder; the
model is not pickled, so an embedder travels cheaply and each worker loads its own.

- :class:`LocalizerEmbedder`: video file (or image folder) -> ``vcl_fast.api.Localizer.features`` (frames
  sampled at ``fps``, the extractor on ONNX Runtime or torch) -> ``(L, T, D)`` features with timestamps.
- :class:`FeatureFileLoader`: precomputed features, ``<dir>/<video_id>.npy`` (the per-video layout of
  :mod:`vcl_fast.data.features`, with its ``meta.json`` and timestamp sidecars).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from vcl_fast.data.features import VideoFeatures, list_video_ids, load_video_features
from vcl_fast.search.library import VideoSource
from vcl_fast.video.records import VIDEO_SUFFIXES



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
        raise FileNotFoundError(f"{spec}: no such file or directory (a video, a folder of videos or a list file)")
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

    def load(self) -> None:
        """Nothing to load."""


@dataclasses.dataclass(frozen=True)
class LocalizerSpec:
    """The arguments of a :class:`vcl_fast.api.Localizer`, as a picklable record, so that every worker (a
    Ray actor on any node) builds its own. extractor / detector: exported model directories or ONNX files
    (``backend="onnxruntime"``), weight directories or checkpoints (``backend="torch"``), as paths every
    worker can read; None takes the embedded default model. method_params: ``((key, value), ...)``.
    exact_decoding: see :class:`~vcl_fast.api.Localizer` (it changes the features a little)."""

    extractor: str | None = None
    detector: str | None = None
    backend: str = "onnxruntime"
    device: str = "cpu"
    fps: float = 1.0
    method: str = "yolox"
    method_params: tuple[tuple[str, Any], ...] = ()
    batch_size: int = 16
    threads: int | None = None
    exact_decoding: bool = False

    def build(self):
        from vcl_fast.api import Localizer

        return Localizer(self.extractor, self.detector, backend=self.backend, device=self.device, fps=self.fps,
                         method=self.method, method_params=dict(self.method_params), batch_size=self.batch_size,
                         threads=self.threads, exact_decoding=self.exact_decoding)


class LocalizerEmbedder:
    """Embedder: ``Localizer.features(path)`` (decode at ``spec.fps``, run the extractor) of the Localizer
    ``spec`` describes (its detector is not loaded)."""

    def __init__(self, spec: LocalizerSpec = LocalizerSpec()):
        self.spec = dataclasses.replace(spec, detector=None, method="tn", method_params=())
        self._localizer = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_localizer": None}

    def describe(self) -> dict:
        """What makes the features: backend, extractor (None: the embedded default model), fps and decoding."""
        return {"kind": "localizer", "backend": self.spec.backend, "extractor": self.spec.extractor,
                "fps": self.spec.fps, "exact_decoding": self.spec.exact_decoding}

    def load(self):
        """The Localizer (built once)."""
        if self._localizer is None:
            self._localizer = self.spec.build()
        return self._localizer

    def __call__(self, path: str | os.PathLike) -> VideoFeatures:
        return self.load().features(path)


def embedder_from_description(description: dict, **runtime: Any):
    """The embedder a manifest's ``embedder`` entry describes; ``runtime``: LocalizerSpec fields that do not
    change the features (device, threads, batch_size). ``FeatureFileLoader`` for precomputed features. A library
    described without ``exact_decoding`` was built before draft decoding existed, so its queries decode exactly."""
    kind = description.get("kind")
    if kind == "localizer":
        return LocalizerEmbedder(LocalizerSpec(description["extractor"], backend=description["backend"],
                                               fps=description["fps"],
                                               exact_decoding=description.get("exact_decoding", True), **runtime))
    if kind == "features":
        return FeatureFileLoader()
    raise ValueError(f"unknown embedder description {description!r}")
