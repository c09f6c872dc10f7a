"""Video copy localization in a few lines::

    from vcl_fast import Localizer

    loc = Localizer()                        # the embedded default model, ONNX Runtime on the CPU
    result = loc.localize("query.mp4", "reference.mp4")
    for s in result.segments:                # seconds
        print(s.q_start, s.q_end, s.r_start, s.r_end, s.score)

Videos (files or image folders) are sampled at ``fps`` frames per second and streamed through the decoder
in chunks of ``batch_size`` frames; a background thread decodes the files of a call one after the other
while the extractor embeds the chunks already decoded (so memory stays bounded for long videos: at most
``DECODE_AHEAD_FRAMES`` decoded frames waiting, in whole chunks and at least one, plus the two chunks being
decoded and embedded, at the source resolution). Frames are then resized and
normalised exactly as frame arrays are (:mod:`vcl_fast.runtime.preprocess`), so a file and its decoded
frames give the same features. Each sampled frame becomes T feature vectors; the similarity map of
two videos is the max cosine over token pairs (:func:`vcl_fast.ops.similarity_maps`; above ``WHOLE_MAP_CELLS``
cells per call the YOLOX detector reads it tile by tile instead, :class:`vcl_fast.ops.LazySimilarityMap`, so
long videos never hold a whole map; its cost then counts under ``localize``); copied segments are
found in it by the YOLOX detector (:func:`vcl_fast.detect.localizer.localize_maps`) or a classical localizer
(``method="tn"``, ``"dp"``, ``"hv"``, ``"dtw"``; :mod:`vcl_fast.eval.localizers`).

Thread safety: a :class:`Localizer` keeps no per-call state, and its backends' sessions/modules may be run
from several threads at once, so one instance can serve concurrent ``features`` / ``localize`` /
``localize_many`` calls (each call decodes its own videos).
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence, Union

import numpy as np

from vcl_fast.data.features import VideoFeatures
from vcl_fast.detect.localizer import DetectionSettings, detection_settings, localize_maps
from vcl_fast.eval.localizers import LOCALIZERS, LocalizerParams, get_localizer, localizer_params
from vcl_fast.runtime import BACKENDS, get_backend
from vcl_fast.runtime.base import Extractor, check_batch_size, parse_device
from vcl_fast.runtime.manifest import MANIFEST_FILE, default_model_dir, read_manifest
from vcl_fast.video.records import DecodedFrames

if TYPE_CHECKING:
    from vcl_fast.ops import LazySimilarityMap

METHODS = ("yolox", *LOCALIZERS)
STAGES = ("decode", "extract", "similarity", "localize", "total")
# Decoded frames waiting for the extractor at most (rounded down to whole chunks, at least one). A few chunks of
# slack let the decoder run on through stretches that decode slowly (bench/README.md, "End-to-end localize").
DECODE_AHEAD_FRAMES = 16
# A call whose similarity maps hold more cells than this (256 MiB of float32) gives the YOLOX detector lazy maps
# (vcl_fast.ops.LazySimilarityMap), computed tile by tile, unless the maps are to be returned.
WHOLE_MAP_CELLS = 2**26

# A video: a file or image folder path, frames (L, H, W, 3) uint8, features (L, T, D) / (L, D) float,
# or a VideoFeatures record.
VideoInput = Union[str, os.PathLike, np.ndarray, VideoFeatures]
# Called with the number of frames the extractor has just embedded (a progress bar's ``update``).
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Segment:
    """A copied segment: query ``[q_start, q_end)`` matches reference ``[r_start, r_end)``, seconds."""

    q_start: float
    q_end: float
    r_start: float
    r_end: float
    score: float

    def to_dict(self) -> dict:
        return {"q_start": self.q_start, "q_end": self.q_end, "r_start": self.r_start, "r_end": self.r_end,
                "score": self.score}

    def __repr__(self) -> str:  # to the millisecond: the values themselves keep full precision
        return (f"Segment(q_start={self.q_start:.3f}, q_end={self.q_end:.3f}, r_start={self.r_start:.3f}, "
                f"r_end={self.r_end:.3f}, score={self.score:.3f})")


@dataclass(frozen=True)
class LocalizationResult:
    """Copies of ``query`` in ``reference``: segments (seconds, by decreasing score), the video-level verdict
    ``copied`` (any segment found) and ``score`` (best segment score, 0 when none), the (Q, R) float32
    similarity map when asked for with the times its rows and columns span (``map_edges``: ``(Q + 1,)`` and
    ``(R + 1,)`` float64 seconds, :func:`frame_edges`; row ``i`` is the query from ``map_edges[0][i]`` to
    ``map_edges[0][i + 1]``), and seconds spent per stage (``STAGES``; for ``localize_many`` the stages run
    batched, so every result carries the timings of the whole call). Decoding overlaps extraction: ``decode``
    counts the seconds spent waiting for decoded frames, not the decoder's own time."""

    query: str
    reference: str
    segments: list[Segment]
    copied: bool
    score: float
    timings: dict[str, float]
    similarity: np.ndarray | None = field(default=None, repr=False, compare=False)
    map_edges: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def boxes(self) -> np.ndarray:
        """Segments as (N, 5) float64 ``[q_start, r_start, q_end, r_end, score]`` seconds (prediction files)."""
        rows = [[s.q_start, s.r_start, s.q_end, s.r_end, s.score] for s in self.segments]
        return np.asarray(rows, dtype=np.float64).reshape(-1, 5)

    def to_dict(self) -> dict:
        """The JSON form: ``{"query", "reference", "copied", "score", "segments": [...], "timings"}``."""
        return {"query": self.query, "reference": self.reference, "copied": self.copied, "score": self.score,
                "segments": [s.to_dict() for s in self.segments], "timings": dict(self.timings)}

    def __repr__(self) -> str:
        total = self.timings.get("total")
        took = f", total={total:.3f} s" if total is not None else ""
        return (f"LocalizationResult(query={self.query!r}, reference={self.reference!r}, copied={self.copied}, "
                f"score={self.score:.3f}, segments={self.segments!r}{took})")


class Localizer:
    """Finds copied segments between videos.

    extractor, detector: for ``backend="onnxruntime"`` exported model directories (``vcl-fast export``) or
    their ONNX files; for ``backend="torch"`` weight directories, checkpoints or modules. None takes the
    embedded default model (onnxruntime only; another backend without ``extractor`` takes features only),
    except that ``detector=None`` with ``extractor`` an exported
    directory that holds a detector too takes that detector (``Localizer("my_export")`` runs both parts of
    ``my_export``). The detector is loaded only for ``method="yolox"``.
    device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``. fps: frames sampled per second of video (and
    the rate assumed for feature arrays). method: ``"yolox"`` or a classical localizer (``tn``, ``dp``,
    ``hv``, ``dtw``). method_params: overrides of :class:`~vcl_fast.detect.localizer.DetectionSettings`
    (``conf_threshold``, ``nms_threshold``, ``chunk_length``, ``batch_size``, ``min_similarity``,
    ``extent_similarity``, ``confident_similarity``, ``confident_score``, ``transpose_fusion_iou``,
    ``query_margin``, ``reference_margin``, ``merge_overlap``: default the exported model's calibrated ones) for yolox, or of the classical method's VCSL-tuned parameters.
    batch_size: frames decoded and embedded per step (None: :func:`default_batch_size` of ``device``).
    threads: intra-op threads of the backend (None: its default, except that an onnxruntime extractor gets
    :func:`default_extractor_threads`, leaving a core to the decoding thread). The extractor is loaded on first use (:attr:`extractor`), so a Localizer that is
    only given features never loads it; a missing extractor path fails here already.
    exact_decoding: decode video files at their full size. By default the decoders that can (MPEG-1/2/4, MS-MPEG-4,
    H.263, MJPEG...) decode at a reduced size that stays at least the extractor's input size
    (``iter_frames(draft=...)``): faster, and the features move little (bench/README.md, "Draft decoding").

    One instance may serve concurrent calls from several threads (see the module docstring).
    """

    def __init__(self, extractor: Any = None, detector: Any = None, *, backend: str = "onnxruntime",
                 device: str = "cpu", fps: float = 1.0, method: str = "yolox",
                 method_params: Mapping[str, Any] | None = None, batch_size: int | None = None,
                 threads: int | None = None, exact_decoding: bool = False):
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a positive number of frames per second, got {fps!r}")
        if not isinstance(method, str) or method.lower() not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
        if not isinstance(exact_decoding, bool):
            raise TypeError(f"exact_decoding must be True or False, got {exact_decoding!r}")
        self.fps = float(fps)
        self.exact_decoding = exact_decoding
        self.method = method.lower()
        self.backend = backend
        runtime = get_backend(backend)
        batch_size = default_batch_size(device) if batch_size is None else batch_size
        check_batch_size(batch_size)
        if extractor is None and backend != "onnxruntime":
            self._load_extractor = functools.partial(_no_extractor, backend)
        else:
            source = self._source(extractor, "extractor")
            if isinstance(source, (str, os.PathLike)) and not Path(source).exists():
                raise FileNotFoundError(f"{source}: no such extractor (model directory or file)")
            extractor_threads = default_extractor_threads() if threads is None and backend == "onnxruntime" else threads
            self._load_extractor = functools.partial(runtime.load_extractor, source, device, extractor_threads,
                                                     batch_size)
        self._extractor: Extractor | None = None
        self._extractor_lock = threading.Lock()
        params = dict(method_params or {})
        self.params: DetectionSettings | LocalizerParams
        if self.method == "yolox":
            if detector is None:
                detector = exported_detector_beside(extractor)
            self.detector = runtime.load_detector(self._source(detector, "detector"), device, threads)
            self.params = detection_settings(self.detector.spec, params)
        else:
            self.detector = None
            self.params = localizer_params(self.method, params)

    def __repr__(self) -> str:
        return (f"Localizer(method={self.method!r}, backend={self.backend!r}, fps={self.fps:g}, "
                f"exact_decoding={self.exact_decoding})")

    def _source(self, given: Any, component: str) -> Any:
        if given is not None:
            return given
        if self.backend != "onnxruntime":
            raise ValueError(f"the {self.backend} backend needs {component}= ({BACKENDS[self.backend].sources}); "
                             "the embedded default model is for the onnxruntime backend")
        return default_model_dir()

    @property
    def extractor(self) -> Extractor:
        """The frame feature extractor, loaded by the first call that needs it (once, also under threads)."""
        if self._extractor is None:
            with self._extractor_lock:
                if self._extractor is None:
                    self._extractor = self._load_extractor()
        return self._extractor

    # ------------------------------------------------------------------------------------------ features

    def features(self, video: VideoInput, video_id: str | None = None, progress: Progress | None = None
                 ) -> VideoFeatures:
        """Features of one video (see ``VideoInput``), with timestamps in seconds. ``progress``: called with the
        number of frames each extractor batch embedded (e.g. a progress bar's ``update``)."""
        return self._all_features([video], [video_id], _new_timings(), progress)[0][0]

    def _all_features(self, videos: list[VideoInput], video_ids: list[str | None], timings: dict[str, float],
                      progress: Progress | None) -> list[tuple[VideoFeatures, str]]:
        """(features, name of the video for results) of each video; adds the decode/extract seconds to
        ``timings``. The files among ``videos`` are decoded one after the other in a background thread, up to
        :func:`decode_ahead` chunks ahead of the extractor (:mod:`vcl_fast.video.prefetch`)."""
        from vcl_fast.video.prefetch import prefetch

        paths = [v for v in videos if isinstance(v, (str, os.PathLike))]  # as given: errors name them so
        decoding: contextlib.AbstractContextManager[Iterator[DecodedFrames | None]] = contextlib.nullcontext(iter(()))
        if paths:
            batch_size = self.extractor.batch_size
            decoding = prefetch(self._decoded_chunks(paths, batch_size), decode_ahead(batch_size))
        with decoding as chunks:
            return [self._features(video, video_id, chunks, timings, progress)
                    for video, video_id in zip(videos, video_ids)]

    def _decoded_chunks(self, paths: list[str | os.PathLike], chunk_size: int) -> Iterator[DecodedFrames | None]:
        """The frame chunks of each video in turn, each video followed by None."""
        from vcl_fast.video import iter_frames

        draft = None if self.exact_decoding else self.extractor.spec.input_size
        for path in paths:
            yield from iter_frames(path, self.fps, chunk_size=chunk_size, draft=draft)
            yield None

    def _features(self, video: VideoInput, video_id: str | None, chunks: Iterator[DecodedFrames | None],
                  timings: dict[str, float], progress: Progress | None) -> tuple[VideoFeatures, str]:
        """(features, name) of one video; a file's frames are the next chunks of ``chunks``."""
        if isinstance(video, VideoFeatures):
            return video, video.video_id
        if isinstance(video, (str, os.PathLike)):
            return self._stream_features(Path(video), video_id, chunks, timings, progress), str(video)
        if not isinstance(video, np.ndarray):
            raise TypeError(f"a video is a path, a frame array (L, H, W, 3) uint8, a feature array (L, T, D) "
                            f"or VideoFeatures; got {type(video).__name__}")
        name = video_id or "video"
        if video.dtype == np.uint8:
            try:
                features = self._embed(video, timings, progress)
            except ValueError as exc:  # a bad frame array: say which input it is
                raise ValueError(f"{name}: {exc}") from None
        elif np.issubdtype(video.dtype, np.floating) and video.ndim in (2, 3):
            features = video[:, None, :] if video.ndim == 2 else video
            if features.dtype not in (np.float32, np.float16):
                features = features.astype(np.float32)
        else:
            raise ValueError(f"{name}: an array must be frames (L, H, W, 3) uint8 or features (L, T, D) float, "
                             f"got {video.dtype} {video.shape}")
        return VideoFeatures.from_fps(name, features, self.fps), name

    def _stream_features(self, path: Path, video_id: str | None, chunks: Iterator[DecodedFrames | None],
                         timings: dict[str, float], progress: Progress | None) -> VideoFeatures:
        parts, stamps, end = [], [], None
        while True:
            start = time.perf_counter()
            chunk = next(chunks)
            timings["decode"] += time.perf_counter() - start
            if chunk is None:
                break
            parts.append(self._embed(chunk.frames, timings, progress))
            stamps.append(chunk.timestamps)
            end = chunk.end
        return VideoFeatures(video_id or path.stem or path.name, np.concatenate(parts), np.concatenate(stamps),
                             self.fps, end)

    def _embed(self, frames: np.ndarray, timings: dict[str, float], progress: Progress | None) -> np.ndarray:
        """The extractor's features of ``frames``; adds the seconds to ``timings`` and reports the frames."""
        start = time.perf_counter()
        features = self.extractor.embed(frames)
        timings["extract"] += time.perf_counter() - start
        if progress is not None:
            progress(len(frames))
        return features

    # ---------------------------------------------------------------------------------------- localize

    def localize(self, query: VideoInput, reference: VideoInput, return_map: bool = False,
                 progress: Progress | None = None) -> LocalizationResult:
        """Copied segments of ``query`` in ``reference`` (seconds); ``return_map`` keeps the similarity map;
        ``progress`` as for :meth:`features`."""
        return self._localize(query, [reference], return_map, ["reference"], progress)[0]

    def localize_many(self, query: VideoInput, references: Sequence[VideoInput], return_map: bool = False,
                      progress: Progress | None = None) -> list[LocalizationResult]:
        """One query against many references: one batched similarity call, one batched detector pass."""
        if not isinstance(references, (list, tuple)):
            raise TypeError(f"references must be a list or tuple of videos, got {type(references).__name__}")
        return self._localize(query, list(references), return_map,
                              [f"references[{i}]" for i in range(len(references))], progress)

    def _localize(self, query: VideoInput, references: list[VideoInput], return_map: bool,
                  roles: list[str], progress: Progress | None) -> list[LocalizationResult]:
        from vcl_fast.ops import LazySimilarityMap, similarity_maps

        timings = _new_timings()
        begin = time.perf_counter()
        (q, q_name), *refs = self._all_features([query, *references], ["query", *roles], timings, progress)
        query_label = "the query's" if q_name == "query" else f"the query's ({q_name})"
        for r, r_name in refs:
            if r.num_frames and q.num_frames and r.dim != q.dim:
                raise ValueError(f"{r_name}: its features have {r.dim} dims but {query_label} have {q.dim}; both "
                                 "must come from the same extractor")
        videos = [q, *(r for r, _ in refs)]
        dtype = np.float16 if all(v.features.dtype == np.float16 for v in videos) else np.float32
        start = time.perf_counter()
        query_features = q.features.astype(dtype, copy=False)
        reference_features = [r.features.astype(dtype, copy=False) for r, _ in refs]
        cells = sum(q.num_frames * r.num_frames for r, _ in refs)
        if self.method == "yolox" and not return_map and cells > WHOLE_MAP_CELLS:
            maps = [LazySimilarityMap(query_features, features) for features in reference_features]
        else:
            try:
                maps = similarity_maps(query_features, reference_features)
            except ValueError:
                _raise_for_non_finite([(q, q_name), *refs])
                raise
        timings["similarity"] += time.perf_counter() - start
        start = time.perf_counter()
        boxes = self._detect(maps)
        timings["localize"] += time.perf_counter() - start
        timings["total"] = time.perf_counter() - begin
        return [_result(q, q_name, r, r_name, found, np.asarray(sim) if return_map else None, timings)
                for (r, r_name), found, sim in zip(refs, boxes, maps)]  # maps to return are never lazy

    def _detect(self, maps: Sequence[np.ndarray | LazySimilarityMap]) -> list[np.ndarray]:
        """(N, 5) boxes ``[q_s, r_s, q_e, r_e, score]`` in frames per map (lazy maps for yolox only)."""
        if isinstance(self.params, DetectionSettings):
            return localize_maps(maps, self.detector.run, self.params)
        run = get_localizer(self.method).run
        return [run(np.asarray(m), self.params) for m in maps]


def _raise_for_non_finite(videos: list[tuple[VideoFeatures, str]]) -> None:
    """ValueError naming the first of ``videos`` (features, name) whose features hold NaN or infinite values (the
    similarity kernels flag them but know the videos only by position)."""
    for video, name in videos:
        if not np.isfinite(video.features).all():
            raise ValueError(f"{name}: its features contain NaN or infinite values; similarity maps need finite "
                             "features") from None


def _no_extractor(backend: str) -> Extractor:
    """What a Localizer of a backend other than onnxruntime built without ``extractor=`` does when asked to embed
    frames: ValueError saying what to pass."""
    raise ValueError(f"this Localizer has no extractor to embed frames with: the {backend} backend needs "
                     f"extractor= ({BACKENDS[backend].sources}); without one it takes features only")


def exported_detector_beside(extractor: Any) -> Path | None:
    """``extractor`` as a Path when it is a directory whose manifest lists a detector, else None (a directory
    without a manifest, a file, a module); a manifest that cannot be read raises ManifestError saying why."""
    if not isinstance(extractor, (str, os.PathLike)) or not (Path(extractor) / MANIFEST_FILE).is_file():
        return None
    return Path(extractor) if isinstance(read_manifest(extractor).get("detector"), dict) else None


def default_batch_size(device: str) -> int:
    """Frames per decoded chunk and extractor call by default: 4 for ``device="cpu"``, else 16. On a CPU a frame
    costs the extractor about the same in any batch, and small chunks let it start on a video sooner and leave
    less to embed after the decoder has finished (0.42-0.51 s against 0.56-0.58 s per reserved pair on the
    2-core build machine, bench/README.md, "Default model end to end"); a GPU is used better by larger batches."""
    return 4 if parse_device(device)[0] == "cpu" else 16


def decode_ahead(batch_size: int) -> int:
    """Chunks of ``batch_size`` frames the decoding thread may hold ready for the extractor."""
    return max(1, DECODE_AHEAD_FRAMES // batch_size)


def default_extractor_threads() -> int:
    """Intra-op threads of an onnxruntime extractor by default: the cores this process may use, less the one
    the decoding thread runs on (at least 1). On the shared 2-core build machine one thread beside the decoder
    beats two that contend with it (bench/README.md, "End-to-end localize"); the features are the same."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)


def _new_timings() -> dict[str, float]:
    return {stage: 0.0 for stage in STAGES}


def frame_edges(video: VideoFeatures) -> np.ndarray:
    """``(L + 1,)`` float64 seconds where ``video``'s frames start, and where the last one ends: frame i starts at
    ``timestamps[i]``; the last lasts ``1 / fps``, or until the video ends when that is sooner, so that no
    segment runs past the end of its video. ``[0.0]`` for a video of no frame."""
    if not video.num_frames:
        return np.zeros(1)
    last_end = video.timestamps[-1] + 1 / video.fps
    return np.append(video.timestamps, last_end if video.end is None else min(video.end, last_end))


def frames_to_seconds(positions: np.ndarray, video: VideoFeatures) -> np.ndarray:
    """Frame positions (fractional; frame i spans [i, i + 1)) -> seconds on ``video``'s frame edges
    (:func:`frame_edges`)."""
    edges = frame_edges(video)
    return np.interp(positions, np.arange(len(edges), dtype=np.float64), edges)


def _result(q: VideoFeatures, q_name: str, r: VideoFeatures, r_name: str, boxes: np.ndarray,
            similarity: np.ndarray | None, timings: dict[str, float]) -> LocalizationResult:
    segments = []
    if len(boxes):
        boxes = np.asarray(boxes, dtype=np.float64)
        q_s, q_e = frames_to_seconds(boxes[:, [0, 2]], q).T
        r_s, r_e = frames_to_seconds(boxes[:, [1, 3]], r).T
        segments = [Segment(*(float(v) for v in row)) for row in zip(q_s, q_e, r_s, r_e, boxes[:, 4])]
    score = max((s.score for s in segments), default=0.0)
    edges = None if similarity is None else (frame_edges(q), frame_edges(r))
    return LocalizationResult(q_name, r_name, segments, bool(segments), score, dict(timings), similarity, edges)
