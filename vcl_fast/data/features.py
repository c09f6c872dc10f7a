"""Typed per-video feature records and their two on-disk forms.

:class:`VideoFeatures` holds one video's frame features ``(L, T, D)`` (L sampled frames, T tokens per frame,
e.g. CLS + Regional Token, D dims; float32 or float16), their timestamps ``(L,)`` float64 seconds (strictly
increasing), the nominal sampling rate ``fps`` and, when known, the time the video ends (``end``, seconds).

Per-video files (one feature set = one directory, ``<root>/features/<dataset>/<name>/``, see
:func:`feature_dir`):
- ``<video_id>.npy``: the ``(L, T, D)`` array (an ``(L, D)`` array, the layout VCSL distributes, reads as T=1);
- ``meta.json``: ``{"fps": f}``, one sampling rate for the whole directory (1 fps when absent), and ``"source"``:
  what made the features (an extractor's identity) when a directory is kept as a cache
  (:func:`claim_feature_dir`);
- ``<video_id>.timestamps.npy``: float64 ``(L,)`` seconds, written only when the timestamps are not the
  implied ``arange(L) / fps``, or ``(L + 1,)``: the timestamps then the video's end; without it the timestamps
  are implied by fps and the end is unknown.

Single-file store (:class:`FeatureStore`) for many videos, built once from an iterable (to add videos,
write a new store from ``itertools.chain(old_store, new_videos)``). Layout, little-endian:
``b"VCLFEAT1"`` magic, padding to 64 bytes, all frames' features ``(sum L, T, D)``, timestamps
``(sum L,)`` float64, frame offsets ``(num_videos + 1,)`` int64 (each section 64-byte aligned), a JSON header
(ids, per-video fps and end (null: unknown), dtype, T, D, section offsets) and a 24-byte footer (header offset
and length as uint64, magic). Opening reads only the footer, header and offsets and memory-maps the rest, so a 10,000-video store
opens in milliseconds; records returned are read-only views.
"""
from __future__ import annotations

import dataclasses
import json
import os
import struct
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from vcl_fast.atomic import atomic_write

FEATURE_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))


@dataclasses.dataclass(frozen=True)
class VideoFeatures:
    """One video's features ``(L, T, D)`` float32/float16, timestamps ``(L,)`` float64 seconds, fps > 0, and
    ``end``: the time (seconds, after the last timestamp) the video ends, or None when unknown (the last frame
    is then taken to last ``1 / fps``)."""

    video_id: str
    features: np.ndarray
    timestamps: np.ndarray
    fps: float
    end: float | None = None

    def __post_init__(self):
        if not isinstance(self.video_id, str) or not self.video_id:
            raise ValueError(f"video_id must be a non-empty string, got {self.video_id!r}")
        features = self.features
        if not isinstance(features, np.ndarray):
            raise TypeError(f"video {self.video_id}: features must be a numpy array, got {type(features).__name__}")
        if features.dtype not in FEATURE_DTYPES:
            raise TypeError(f"video {self.video_id}: features must be float32 or float16, got {features.dtype}")
        if features.ndim != 3:
            raise ValueError(f"video {self.video_id}: features must be shaped (L, T, D), got {features.shape}")
        timestamps = np.asarray(self.timestamps, dtype=np.float64)
        if timestamps.shape != (features.shape[0],):
            raise ValueError(
                f"video {self.video_id}: timestamps must be shaped ({features.shape[0]},) like the frames, "
                f"got {timestamps.shape}"
            )
        if not np.isfinite(timestamps).all() or np.any(np.diff(timestamps) <= 0):
            raise ValueError(f"video {self.video_id}: timestamps must be finite and strictly increasing")
        fps = float(self.fps)
        if not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"video {self.video_id}: fps must be a positive number, got {self.fps!r}")
        if self.end is not None:
            end = float(self.end)
            if not np.isfinite(end) or (len(timestamps) and end <= timestamps[-1]):
                raise ValueError(f"video {self.video_id}: end must be a finite time after the last timestamp or "
                                 f"None, got {self.end!r}")
            object.__setattr__(self, "end", end)
        object.__setattr__(self, "timestamps", timestamps)
        object.__setattr__(self, "fps", fps)

    def __repr__(self) -> str:  # the shape, not the numbers
        length, tokens, dim = self.features.shape
        span = f"{self.timestamps[0]:g}-{self.timestamps[-1]:g} s" if length else "no frames"
        span += "" if self.end is None else f", end={self.end:g} s"
        return (f"VideoFeatures(video_id={self.video_id!r}, features={length} frames x {tokens} tokens x {dim} "
                f"dims {self.features.dtype}, timestamps={span}, fps={self.fps:g})")

    @classmethod
    def from_fps(cls, video_id: str, features: np.ndarray, fps: float = 1.0) -> "VideoFeatures":
        """Record with timestamps ``arange(L) / fps`` (frame i sampled at i / fps seconds)."""
        return cls(video_id, features, implied_timestamps(len(features), fps), fps)

    @property
    def num_frames(self) -> int:
        return self.features.shape[0]

    @property
    def num_tokens(self) -> int:
        return self.features.shape[1]

    @property
    def dim(self) -> int:
        return self.features.shape[2]


def implied_timestamps(num_frames: int, fps: float) -> np.ndarray:
    """``arange(num_frames) / fps`` as float64 seconds."""
    return np.arange(num_frames, dtype=np.float64) / float(fps)


# ------------------------------------------------------------------------------------ per-video files


def feature_dir(root: str | os.PathLike, dataset: str, name: str) -> Path:
    """Directory of one feature set: ``<root>/features/<dataset>/<name>``."""
    return Path(root) / "features" / dataset / name


def _check_video_id(video_id: str) -> None:
    if not video_id or "/" in video_id or "\\" in video_id or video_id.startswith(".") or "\0" in video_id:
        raise ValueError(f"video id {video_id!r} cannot name a file (empty, starts with '.' or holds a path separator)")


def _directory_fps(directory: Path) -> float | None:
    meta = directory / "meta.json"
    if not meta.exists():
        return None
    try:
        fps = float(json.loads(meta.read_text())["fps"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{meta}: expected {{\"fps\": <number>}}: {exc}") from None
    return fps


def claim_feature_dir(directory: str | os.PathLike, fps: float, source: str) -> Path:
    """``directory`` as the home of features sampled at ``fps`` by ``source`` (an extractor's identity), so that
    later runs may reuse them: made with a ``meta.json`` saying so when absent. ValueError when it holds features
    of another rate or source, or of an unrecorded one, so that one model's features never mix with another's."""
    directory = Path(directory)
    meta = directory / "meta.json"
    if not meta.exists():
        if directory.is_dir() and list_video_ids(directory):
            raise ValueError(f"{directory}: holds features but no meta.json saying what made them; choose another "
                             "folder")
        with atomic_write(meta) as handle:
            json.dump({"fps": fps, "source": source}, handle)
        return directory
    try:
        recorded = json.loads(meta.read_text())
        made = (float(recorded["fps"]), recorded.get("source"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{meta}: expected {{\"fps\": <number>, \"source\": <text>}}: {exc}") from None
    if made != (float(fps), source):
        raise ValueError(f"{directory}: holds features of {made[1] or 'an unrecorded extractor'} at {made[0]:g} fps, "
                         f"not of {source} at {fps:g} fps; choose another folder")
    return directory


def save_video_features(directory: str | os.PathLike, video: VideoFeatures) -> Path:
    """Write ``<directory>/<video_id>.npy`` (and the timestamps sidecar when they are not implied by fps or the
    video's end is known).

    The directory's ``meta.json`` fps is created from the first video; a video with another fps is an error.
    Returns the path of the ``.npy`` file. Writes are atomic.
    """
    _check_video_id(video.video_id)
    directory = Path(directory)
    fps = _directory_fps(directory)
    if fps is None:
        with atomic_write(directory / "meta.json") as handle:
            json.dump({"fps": video.fps}, handle)
    elif fps != video.fps:
        raise ValueError(f"{directory}: holds features at {fps} fps, video {video.video_id} is at {video.fps} fps")
    path = directory / f"{video.video_id}.npy"
    with atomic_write(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(video.features))
    sidecar = directory / f"{video.video_id}.timestamps.npy"
    if video.end is None and np.array_equal(video.timestamps, implied_timestamps(video.num_frames, video.fps)):
        sidecar.unlink(missing_ok=True)
    else:
        with atomic_write(sidecar, "wb") as handle:
            np.save(handle, video.timestamps if video.end is None else np.append(video.timestamps, video.end))
    return path


def load_video_features(directory: str | os.PathLike, video_id: str, mmap: bool = False) -> VideoFeatures:
    """Read one video of a feature directory; ``mmap`` memory-maps the array (read-only)."""
    _check_video_id(video_id)
    directory = Path(directory)
    path = directory / f"{video_id}.npy"
    if not path.exists():
        raise KeyError(f"unknown video id {video_id!r}: {path} does not exist")
    features = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    if features.ndim == 2:
        features = features[:, None, :]
    if features.ndim != 3:
        raise ValueError(f"{path}: features must be shaped (L, T, D) or (L, D), got {features.shape}")
    fps = _directory_fps(directory) or 1.0
    sidecar = directory / f"{video_id}.timestamps.npy"
    timestamps = np.load(sidecar, allow_pickle=False) if sidecar.exists() else implied_timestamps(len(features), fps)
    end = None
    if timestamps.ndim == 1 and len(timestamps) == len(features) + 1:  # the timestamps, then the video's end
        timestamps, end = timestamps[:-1], float(timestamps[-1])
    try:
        return VideoFeatures(video_id, features, timestamps, fps, end)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{path}: {exc}") from None


def list_video_ids(directory: str | os.PathLike) -> list[str]:
    """Sorted ids of the videos in a feature directory."""
    return sorted(
        p.name[: -len(".npy")] for p in Path(directory).glob("*.npy") if not p.name.endswith(".timestamps.npy")
    )


# --------------------------------------------------------------------------------- single-file store

_MAGIC = b"VCLFEAT1"
_FOOTER = struct.Struct("<QQ8s")
_ALIGN = 64


def _pad(handle, position: int) -> int:
    padding = -position % _ALIGN
    handle.write(b"\0" * padding)
    return position + padding


class FeatureStore:
    """Read-only, memory-mapped features of many videos in one file (layout in the module docstring).

    ``store[video_id]`` -> :class:`VideoFeatures` (views into the mapped file); ``video_ids``, ``len``,
    ``in`` and iteration (records in file order). Unknown ids raise KeyError.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        size = self.path.stat().st_size
        with open(self.path, "rb") as handle:
            if size < len(_MAGIC) + _FOOTER.size or handle.read(len(_MAGIC)) != _MAGIC:
                raise ValueError(f"{self.path}: not a vcl_fast feature store (bad magic)")
            handle.seek(size - _FOOTER.size)
            header_offset, header_length, magic = _FOOTER.unpack(handle.read(_FOOTER.size))
            if magic != _MAGIC or header_offset + header_length + _FOOTER.size != size:
                raise ValueError(f"{self.path}: truncated or corrupt feature store (bad footer)")
            handle.seek(header_offset)
            try:
                header = json.loads(handle.read(header_length))
            except ValueError:
                raise ValueError(f"{self.path}: corrupt feature store header") from None
        if header.get("version") != 1:
            raise ValueError(f"{self.path}: unsupported feature store version {header.get('version')!r}")
        self.dtype = np.dtype(header["dtype"])
        self.num_tokens, self.dim = int(header["num_tokens"]), int(header["dim"])
        self.video_ids: tuple[str, ...] = tuple(header["video_ids"])
        self._fps = header["fps"]
        self._ends = header.get("ends") or [None] * len(header["video_ids"])  # stores written before ends: unknown
        self._index = {video_id: k for k, video_id in enumerate(self.video_ids)}
        total = int(header["num_frames"])
        n = len(self.video_ids)
        self._offsets = np.fromfile(self.path, dtype="<i8", count=n + 1, offset=header["offsets_offset"])
        self._features: np.ndarray
        self._timestamps: np.ndarray
        if total:
            self._features = np.memmap(self.path, self.dtype, "r", header["features_offset"], (total, self.num_tokens, self.dim))
            self._timestamps = np.memmap(self.path, "<f8", "r", header["timestamps_offset"], (total,))
        else:
            self._features = np.zeros((0, self.num_tokens, self.dim), self.dtype)
            self._timestamps = np.zeros(0)

    def __len__(self) -> int:
        return len(self.video_ids)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._index

    def __getitem__(self, video_id: str) -> VideoFeatures:
        k = self._index.get(video_id)
        if k is None:
            raise KeyError(f"unknown video id {video_id!r} in feature store {self.path} ({len(self)} videos)")
        start, end = self._offsets[k], self._offsets[k + 1]
        return VideoFeatures(video_id, self._features[start:end], self._timestamps[start:end], self._fps[k],
                             self._ends[k])

    def __iter__(self) -> Iterator[VideoFeatures]:
        return (self[video_id] for video_id in self.video_ids)

    @staticmethod
    def write(path: str | os.PathLike, videos: Iterable[VideoFeatures]) -> "FeatureStore":
        """Build a store from ``videos`` (streamed; one pass) atomically; returns it opened.

        All videos must share T, D and dtype; ids must be unique; at least one video.
        """
        ids: list[str] = []
        seen: set[str] = set()
        fps: list[float] = []
        ends: list[float | None] = []
        timestamps: list[np.ndarray] = []
        layout = None
        with atomic_write(path, "wb") as handle:
            handle.write(_MAGIC)
            position = _pad(handle, len(_MAGIC))
            features_offset = position
            for video in videos:
                if not isinstance(video, VideoFeatures):
                    raise TypeError(f"feature store entries must be VideoFeatures, got {type(video).__name__}")
                shape = (video.num_tokens, video.dim, video.features.dtype)
                layout = layout or shape
                if shape != layout:
                    raise ValueError(
                        f"video {video.video_id}: (T, D, dtype) = {shape[:2]}, {shape[2]} differs from the store's "
                        f"{layout[:2]}, {layout[2]}"
                    )
                if video.video_id in seen:
                    raise ValueError(f"video {video.video_id} appears twice in the feature store input")
                seen.add(video.video_id)
                ids.append(video.video_id)
                fps.append(video.fps)
                ends.append(video.end)
                timestamps.append(video.timestamps)
                data = np.ascontiguousarray(video.features, dtype=video.features.dtype.newbyteorder("<"))
                handle.write(data.reshape(-1).view(np.uint8))
                position += data.nbytes
            if layout is None:
                raise ValueError("a feature store needs at least one video")
            lengths = np.array([len(t) for t in timestamps], dtype=np.int64)
            offsets = np.zeros(len(ids) + 1, dtype="<i8")
            np.cumsum(lengths, out=offsets[1:])
            sections = {}
            for name, array in (("timestamps", np.concatenate(timestamps).astype("<f8")), ("offsets", offsets)):
                position = _pad(handle, position)
                sections[f"{name}_offset"] = position
                handle.write(array.tobytes())
                position += array.nbytes
            header = json.dumps({
                "format": "vcl_fast feature store", "version": 1, "dtype": np.dtype(layout[2]).newbyteorder("<").str,
                "num_tokens": layout[0], "dim": layout[1], "num_frames": int(offsets[-1]),
                "video_ids": ids, "fps": fps, "ends": ends, "features_offset": features_offset, **sections,
            }).encode()
            handle.write(header)
            handle.write(_FOOTER.pack(position, len(header), _MAGIC))
        return FeatureStore(path)
