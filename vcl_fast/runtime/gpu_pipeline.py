"""Frames to segments on one CUDA stream: the whole localization pipeline on the GPU, batched across pairs.

::

    frames uint8 (N, H, W, 3) on the device
      -> resize + normalise on the device: the extractor's Pillow-style bilinear filter
         (vcl_fast.runtime.preprocess.bilinear_taps) as two matmuls             preprocess_frames_device
      -> extractor (TensorRT engine, ONNX Runtime CUDA or torch) -> features (N, T, D) on the device
      -> the similarity maps of every pair in one call of the compiled kernel   vcl_fast.ops.similarity_maps
      -> tiles of at most chunk_length frames (as vcl_fast.detect.localizer cuts them), rendered to S x S on the
         device: the bicubic taps of vcl_fast.detect.render as zero-padded matrices, two batched matmuls
                                                                                 render_tiles
      -> detector -> raw outputs (B, A, 5 + C) -> decode and threshold on the device  tile_detections
      -> one compiled segment NMS call over all tiles (groups = tile, the numpy path's rule)
      -> only the kept boxes cross to the host (then tile offsets are added and boxes split by pair).

Numbers match the CPU path (:func:`vcl_fast.detect.localizer.localize_maps` with numpy rendering) up to
float32 rounding (summation order; TF32 matmuls, if a user enables them, break this). The functions take torch
tensors on any device: on CPU tensors they run the same code, which is how the tests check them without a
GPU. Besides the final boxes the host only reads counts: the similarity kernel's finite-feature flags, the
number of detections above the threshold and the NMS kept count.

:class:`GpuPipeline` runs on a stream of its own (it waits for the caller's stream on entry and makes the
caller's stream wait for it on exit). Its model runners (``runner(images float32 (B, 3, S, S)) -> output``
on the device, attribute ``max_batch``): :class:`TensorRTRunner` (engines of ``vcl-fast export --format trt``,
optional CUDA graphs), :class:`OrtCudaRunner` (exported ONNX files on ONNX Runtime's CUDA execution provider,
IO binding on the pipeline's stream) and :class:`TorchDeviceRunner` (trained modules, for training users).
"""
from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from typing import Any, Callable, Sequence

import numpy as np
import torch

from vcl_fast.config import replace_fields
from vcl_fast.detect.localizer import (DetectionSettings, boxes_per_map, chunk_spans, detection_settings, postprocess,
                                      tile_floor, with_transposed_view)
from vcl_fast.detect.render import bicubic_taps
from vcl_fast.runtime.preprocess import BLANK_FRAME_STD, bilinear_taps
from vcl_fast.runtime.specs import ExtractorSpec

DeviceRunner = Callable[[torch.Tensor], torch.Tensor]
TILE_COLUMNS = 5  # tile table: pair, q0, r0, q_len, r_len


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on ``device`` without synchronising the stream: pinned staging, asynchronous copy on the
    current stream (for tensors used on that stream only)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cpu":
        return tensor
    return tensor.pin_memory().to(device, non_blocking=True)


@lru_cache(maxsize=32)
def _bilinear_matrix(in_size: int, out_size: int, device: torch.device) -> torch.Tensor:
    """(out_size, in_size) float32 on ``device``: the extractor's resize filter as a matrix (uploaded once,
    synchronously, so any stream may use the cached tensor)."""
    index, weight = bilinear_taps(in_size, out_size)
    matrix = np.zeros((out_size, in_size), np.float32)
    np.add.at(matrix, (np.repeat(np.arange(out_size), index.shape[1]), index.ravel()), weight.ravel())
    return torch.from_numpy(matrix).to(device)


def preprocess_frames_device(frames: torch.Tensor, spec: ExtractorSpec) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB frames (torch, any device) -> (N, 3, S, S) float32 extractor input: the numbers
    of :func:`vcl_fast.runtime.preprocess.preprocess_frames` (same filter, same normalisation), in matmuls."""
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"frames must be (N, H, W, 3) uint8 RGB, got {tuple(frames.shape)} {frames.dtype}")
    size, (height, width) = spec.input_size, frames.shape[1:3]
    x = frames.permute(0, 3, 1, 2).float()
    rows = _bilinear_matrix(height, size, frames.device) if height != size else None
    cols = _bilinear_matrix(width, size, frames.device).T if width != size else None
    # Resize the longer side first: the second product then runs over the shorter one.
    if cols is not None and width >= height:
        x = x @ cols
        cols = None
    if rows is not None:
        x = rows @ x
    if cols is not None:
        x = x @ cols
    mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
    scale = to_device((1 / (255 * std)).reshape(3, 1, 1), frames.device)
    shift = to_device((mean / std).reshape(3, 1, 1), frames.device)
    return x * scale - shift


def blank_images_device(images: torch.Tensor, std: Sequence[float]) -> torch.Tensor:
    """(N,) bool on the images' device: :func:`vcl_fast.runtime.preprocess.blank_images` of (N, C, S, S)
    float images normalised with per-channel ``std``."""
    if images.shape[0] == 0:  # torch warns about the degrees of freedom of an empty reduction
        return torch.zeros(0, dtype=torch.bool, device=images.device)
    spread = images.flatten(2).double().std(dim=-1, correction=0)
    scale = torch.tensor([255.0 * s for s in std], dtype=torch.float64, device=images.device)
    return (spread * scale < BLANK_FRAME_STD).all(dim=1)


def tile_table(shapes: Sequence[tuple[int, int]], chunk_length: int, chunk_overlap: int = 0) -> np.ndarray:
    """(n_tiles, 5) int64 ``[pair, q0, r0, q_len, r_len]``: every map cut into tiles as
    :func:`vcl_fast.detect.localizer.localize_maps` cuts them (:func:`~vcl_fast.detect.localizer.chunk_spans`), in
    its order (pairs, then query chunks, then reference chunks)."""
    rows = [(pair, q0, r0, q1 - q0, r1 - r0)
            for pair, (n_q, n_r) in enumerate(shapes)
            for q0, q1 in chunk_spans(int(n_q), chunk_length, chunk_overlap)
            for r0, r1 in chunk_spans(int(n_r), chunk_length, chunk_overlap)]
    return np.array(rows, dtype=np.int64).reshape(-1, TILE_COLUMNS)


def runnable_tiles(maps: Sequence[torch.Tensor], tiles: np.ndarray, floor: float) -> np.ndarray:
    """The rows of ``tiles`` whose block of its map holds a cell at ``floor`` or above
    (:func:`~vcl_fast.detect.localizer.tile_floor`; all rows for -inf)."""
    if floor == -np.inf or not len(tiles):
        return tiles
    peaks = torch.stack([maps[pair][q0:q0 + q_len, r0:r0 + r_len].amax()
                         for pair, q0, r0, q_len, r_len in tiles.tolist()]).float().cpu().numpy()
    return tiles[peaks >= floor]


def bicubic_matrices(lengths: np.ndarray, padded: int, size: int, device: torch.device) -> torch.Tensor:
    """(B, size, padded) float32: per length L the (size, L) bicubic resize matrix of
    :func:`vcl_fast.detect.render.bicubic_matrix`, zero in columns L..padded - 1, built on the device from
    the uploaded taps (4 per output row)."""
    taps = [bicubic_taps(int(n), size) for n in lengths]
    index = np.stack([t[0] for t in taps]) if taps else np.zeros((0, size, 4), np.int64)
    weight = np.stack([t[1] for t in taps]) if taps else np.zeros((0, size, 4), np.float32)
    matrices = torch.zeros((len(lengths), size, padded), dtype=torch.float32, device=device)
    return matrices.scatter_add_(2, to_device(index, device), to_device(weight, device))


def render_tiles(maps: Sequence[torch.Tensor], tiles: np.ndarray, size: int) -> torch.Tensor:
    """Detector input (B, 3, S, S) float32 of the tiles ``tiles`` (rows of ``tile_table``) of ``maps``:
    each tile zero-padded to the batch's largest, then ``W_q @ tile @ W_r^T`` as two batched matmuls."""
    device = maps[int(tiles[0, 0])].device
    q_lens, r_lens = tiles[:, 3], tiles[:, 4]
    q_pad, r_pad = int(q_lens.max()), int(r_lens.max())
    padded = torch.zeros((len(tiles), q_pad, r_pad), dtype=torch.float32, device=device)
    for b, (pair, q0, r0, q_len, r_len) in enumerate(tiles.tolist()):
        padded[b, :q_len, :r_len] = maps[pair][q0:q0 + q_len, r0:r0 + r_len]
    w_q = bicubic_matrices(q_lens, q_pad, size, device)
    w_r = bicubic_matrices(r_lens, r_pad, size, device).transpose(1, 2)
    rendered = torch.bmm(torch.bmm(w_q, padded), w_r) if r_pad < q_pad else torch.bmm(w_q, torch.bmm(padded, w_r))
    return rendered.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


def tile_detections(raw: torch.Tensor, tiles: np.ndarray, settings: DetectionSettings
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thresholded detections of one batch, on the device of ``raw``: boxes (N, 4) in frames within their
    tile, confidence (N,), objectness (N,), index of the tile in the batch (N,) int64 — the rules of
    ``vcl_fast.detect.localizer`` (confidence = objectness x best class probability >= conf_threshold,
    x = reference axis, boxes clipped to the tile, empty boxes dropped)."""
    from vcl_fast.models.yolox import decode_raw_outputs

    boxes, obj, cls = decode_raw_outputs(raw.float(), settings.input_size)
    conf = obj * cls.amax(dim=-1)
    sizes = to_device(tiles[:, 3:5].astype(np.float32), raw.device)  # (B, 2) q_len, r_len
    q_len, r_len = sizes[:, 0:1], sizes[:, 1:2]
    q_scale, r_scale = q_len / settings.input_size, r_len / settings.input_size
    cx, cy, w, h = boxes.unbind(-1)
    frames = torch.stack([(cy - h / 2) * q_scale, (cx - w / 2) * r_scale,
                          (cy + h / 2) * q_scale, (cx + w / 2) * r_scale], dim=-1)
    limits = torch.cat([sizes, sizes], dim=1)[:, None, :]
    frames = torch.minimum(frames.clamp_min(0), limits)
    keep = (conf >= settings.conf_threshold) & (frames[..., 2] > frames[..., 0]) & (frames[..., 3] > frames[..., 1])
    tile_idx, anchor_idx = keep.nonzero(as_tuple=True)
    return frames[tile_idx, anchor_idx], conf[tile_idx, anchor_idx], obj[tile_idx, anchor_idx], tile_idx


def localize_maps_device(maps: Sequence[torch.Tensor], run: DeviceRunner,
                         settings: DetectionSettings = DetectionSettings()) -> list[np.ndarray]:
    """:func:`vcl_fast.detect.localizer.localize_maps` with every step on the maps' device: (Q, R) float32
    torch maps -> per map a numpy (N, 5) float32 ``[q_start, r_start, q_end, r_end, score]`` in frames, by
    decreasing confidence. ``run(images (B, 3, S, S)) -> raw (B, A, 5 + C)`` on the same device; its output
    is consumed before the next call, so a runner may reuse one output buffer."""
    for i, m in enumerate(maps):
        if m.ndim != 2:
            raise ValueError(f"map {i} must be a 2-D (Q, R) tensor, got shape {tuple(m.shape)}")
    found = with_transposed_view(maps, lambda views: detect_maps_device(views, run, settings), settings)
    return [postprocess(f, m, settings) for f, m in zip(found, maps)]


def detect_maps_device(maps: Sequence[torch.Tensor], run: DeviceRunner, settings: DetectionSettings
                       ) -> list[np.ndarray]:
    """:func:`vcl_fast.detect.localizer.detect_maps` on the maps' device: per map the detector's (N, 5) float32
    numpy boxes in frames after the per-tile NMS, by decreasing confidence."""
    from vcl_fast.ops import segment_nms

    tiles = tile_table([tuple(m.shape) for m in maps], settings.chunk_length, settings.chunk_overlap)
    tiles = runnable_tiles(maps, tiles, tile_floor(settings))
    if not len(tiles):
        return [np.zeros((0, 5), np.float32) for _ in maps]
    parts = []
    for start in range(0, len(tiles), settings.batch_size):
        batch = tiles[start:start + settings.batch_size]
        raw = run(render_tiles(maps, batch, settings.input_size))
        if raw.ndim != 3 or raw.shape[0] != len(batch):
            raise ValueError(f"the detector returned shape {tuple(raw.shape)} for {len(batch)} images; "
                             "expected raw outputs (B, A, 5 + num_classes)")
        frames, conf, obj, idx = tile_detections(raw, batch, settings)
        parts.append((frames, conf, obj, idx + start))
    frames, conf, obj, tile_ids = (torch.cat(p) for p in zip(*parts))
    keep = segment_nms(frames, conf, settings.nms_threshold, groups=tile_ids)
    keep = keep[torch.argsort(-conf[keep], stable=True)]
    # One copy to the host: float64 holds the float32 boxes and scores and the tile ids exactly.
    kept = torch.cat([frames[keep, :].double(), obj[keep, None].double(), tile_ids[keep, None].double()], dim=1)
    kept = kept.cpu().numpy()
    tile_of_kept = kept[:, 5].astype(np.int64)
    found = kept[:, :5].astype(np.float32)
    found[:, :4] += tiles[tile_of_kept][:, [1, 2, 1, 2]].astype(np.float32)
    return boxes_per_map(found, tiles[tile_of_kept, 0], tile_of_kept, len(maps))


class TorchDeviceRunner:
    """A torch module as a device runner (float32 eager, or float16 autocast on CUDA with ``amp``)."""

    def __init__(self, model: torch.nn.Module, device: torch.device, amp: bool = False, max_batch: int = 64):
        self.model = model.to(device).eval()
        self.device, self.amp, self.max_batch = device, amp and device.type == "cuda", max_batch

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            return self.model(images).float()


class TensorRTRunner:
    """A TensorRT engine (:class:`vcl_fast.runtime.tensorrt_runtime.TrtEngine`) as a device runner: binds the
    input tensor's memory and one output buffer reused across calls (grown for larger batches), runs on
    torch's current stream."""

    def __init__(self, engine, device: torch.device):
        dtypes = {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16}
        if engine.input_dtype not in dtypes or engine.output_dtype not in dtypes:
            raise ValueError(f"engine tensors are {engine.input_dtype} -> {engine.output_dtype}; "
                             "the GPU pipeline feeds float32 or float16")
        self.engine, self.device, self.max_batch = engine, device, engine.max_batch
        self.input_dtype, self.output_dtype = dtypes[engine.input_dtype], dtypes[engine.output_dtype]
        self._output = torch.empty(0, dtype=self.output_dtype, device=device)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.input_dtype).contiguous()
        shape = self.engine.output_shape(images.shape[0])
        count = int(np.prod(shape))
        if self._output.numel() < count:
            self._output = torch.empty(count, dtype=self.output_dtype, device=self.device)
        output = self._output[:count].view(shape)
        self.engine.execute(images.shape[0], images.data_ptr(), output.data_ptr(),
                            torch.cuda.current_stream(self.device).cuda_stream)
        return output


class OrtCudaRunner:
    """An exported ONNX model on ONNX Runtime's CUDA execution provider as a device runner: IO binding of the
    input tensor and of one output buffer reused across calls, on the stream given at creation."""

    def __init__(self, component, device: torch.device, stream: int, max_batch: int = 64):
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ValueError("this onnxruntime has no CUDAExecutionProvider; install onnxruntime-gpu")
        options = {"device_id": device.index or 0, "user_compute_stream": str(stream)}
        self.session = ort.InferenceSession(str(component.path), providers=[("CUDAExecutionProvider", options)])
        self.input_name, self.output_name = component.input_name, component.output_name
        self.device, self.max_batch = device, max_batch
        self.item_shape = _output_item_shape(component.spec)
        self._output = torch.empty(0, dtype=torch.float32, device=device)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = images.float().contiguous()
        shape = (images.shape[0], *self.item_shape)
        count = int(np.prod(shape))
        if self._output.numel() < count:
            self._output = torch.empty(count, dtype=torch.float32, device=self.device)
        output = self._output[:count].view(shape)
        binding = self.session.io_binding()
        index = self.device.index or 0
        binding.bind_input(self.input_name, "cuda", index, np.float32, tuple(images.shape), images.data_ptr())
        binding.bind_output(self.output_name, "cuda", index, np.float32, shape, output.data_ptr())
        self.session.run_with_iobinding(binding)
        return output


def _output_item_shape(spec) -> tuple[int, ...]:
    """Per-item output shape of a model from its spec: (T, D) for an extractor, (A, 5 + C) for a detector."""
    if isinstance(spec, ExtractorSpec):
        return spec.num_tokens, spec.dim
    return spec.num_anchors, 5 + spec.num_classes


class GpuPipeline:
    """Frames (or features) of a query and its references -> copied segments, everything on one device.

    extractor, detector: device runners (``TorchDeviceRunner``, ``TensorRTRunner``, ``OrtCudaRunner``);
    spec: the extractor's preprocessing; settings: detection settings (``batch_size`` is capped by the
    detector's ``max_batch``); device: where everything runs (``cuda[:N]``; CPU works too, for tests);
    batch_size: frames preprocessed and embedded per extractor call (capped by its ``max_batch``).
    Build one with :meth:`from_engines`, :meth:`from_onnx` or :meth:`from_torch`.
    """

    def __init__(self, extractor: DeviceRunner, detector: DeviceRunner, spec: ExtractorSpec,
                 settings: DetectionSettings, device: str | torch.device = "cuda", batch_size: int = 32,
                 stream: Any = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.device = torch.device(device)
        self.extractor, self.detector, self.spec = extractor, detector, spec
        self.batch_size = min(batch_size, getattr(extractor, "max_batch", batch_size))
        self.settings = replace_fields(settings, batch_size=min(settings.batch_size,
                                                                getattr(detector, "max_batch", settings.batch_size)))
        self.stream = stream if stream is not None or self.device.type == "cpu" else torch.cuda.Stream(self.device)

    @contextlib.contextmanager
    def _on_stream(self):
        """Run the block on the pipeline's stream, ordered after (and before) the caller's stream's work."""
        if self.stream is None:
            yield
            return
        caller = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(caller)
        with torch.cuda.stream(self.stream):
            yield
        caller.wait_stream(self.stream)

    def _as_device(self, video: Any, what: str) -> torch.Tensor:
        if isinstance(video, np.ndarray):
            video = torch.from_numpy(video)
        if not isinstance(video, torch.Tensor):
            raise TypeError(f"{what} must be a torch tensor or numpy array, got {type(video).__name__}")
        return video.to(self.device, non_blocking=True)

    @torch.inference_mode()
    def features(self, frames: Any) -> torch.Tensor:
        """(N, H, W, 3) uint8 RGB frames (torch on any device, or numpy) -> (N, T, D) float32 features on the
        pipeline's device."""
        with self._on_stream():
            features = self._features(self._as_device(frames, "frames"))
        if self.stream is not None:
            features.record_stream(torch.cuda.current_stream(self.device))  # the caller frees it on its stream
        return features

    def _features(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or 0 in frames.shape[1:3]:
            raise ValueError(f"frames must be (N, H, W, 3) uint8 RGB with H, W >= 1, got {tuple(frames.shape)} "
                             f"{frames.dtype}")
        spec = self.spec
        out = torch.empty((len(frames), spec.num_tokens, spec.dim), dtype=torch.float32, device=self.device)
        for start in range(0, len(frames), self.batch_size):
            images = preprocess_frames_device(frames[start:start + self.batch_size], spec)
            result = self.extractor(images)
            if tuple(result.shape) != (len(images), spec.num_tokens, spec.dim):
                raise ValueError(f"the extractor returned shape {tuple(result.shape)} for {len(images)} images; "
                                 f"its spec says ({len(images)}, {spec.num_tokens}, {spec.dim})")
            out[start:start + len(images)] = result
            out[start:start + len(images)][blank_images_device(images, spec.std)] = 0.0
        return out

    def _video_features(self, video: Any, what: str) -> torch.Tensor:
        """Features of one video given as frames (uint8, 4-D) or as features (float, (L, T, D))."""
        x = self._as_device(video, what)
        if x.dtype == torch.uint8:
            return self._features(x)
        if x.ndim != 3 or not x.dtype.is_floating_point:
            raise ValueError(f"{what} must be frames (L, H, W, 3) uint8 or features (L, T, D) float, "
                             f"got {tuple(x.shape)} {x.dtype}")
        return x.float()

    @torch.inference_mode()
    def localize_many(self, query: Any, references: Sequence[Any]) -> list[np.ndarray]:
        """Copies of ``query`` in each of ``references`` (frames uint8 (L, H, W, 3) or features float (L, T, D),
        torch or numpy): one similarity call for all pairs, detector batches across pairs, one NMS call.
        Returns per reference a numpy (N, 5) float32 ``[q_start, r_start, q_end, r_end, score]`` in frames."""
        from vcl_fast.ops import similarity_maps

        if not isinstance(references, (list, tuple)):
            raise TypeError(f"references must be a list or tuple of videos, got {type(references).__name__}")
        with self._on_stream():
            q = self._video_features(query, "query")
            refs = [self._video_features(r, f"references[{i}]") for i, r in enumerate(references)]
            maps = similarity_maps(q, refs)
            return localize_maps_device(maps, self.detector, self.settings)

    def localize(self, query: Any, reference: Any) -> np.ndarray:
        """``localize_many(query, [reference])[0]``."""
        return self.localize_many(query, [reference])[0]

    @classmethod
    def from_engines(cls, directory: str | os.PathLike, device: str = "cuda", cuda_graphs: bool = False,
                     **settings: Any) -> "GpuPipeline":
        """The TensorRT engines of an engine directory (``vcl-fast export --format trt``); ``settings``
        override :class:`~vcl_fast.detect.localizer.DetectionSettings` fields."""
        from vcl_fast.runtime.tensorrt_runtime import load_engine

        torch_device = _cuda_device(device)
        extractor, exported = load_engine(directory, "extractor", torch_device.index, cuda_graphs)
        detector, detector_exported = load_engine(directory, "detector", torch_device.index, cuda_graphs)
        return cls(TensorRTRunner(extractor, torch_device), TensorRTRunner(detector, torch_device), exported.spec,
                   detection_settings(detector_exported.spec, settings), torch_device)

    @classmethod
    def from_onnx(cls, directory: str | os.PathLike, device: str = "cuda", **settings: Any) -> "GpuPipeline":
        """The exported ONNX models of ``directory`` on ONNX Runtime's CUDA execution provider."""
        from vcl_fast.runtime.manifest import load_component

        torch_device = _cuda_device(device)
        stream = torch.cuda.Stream(torch_device)
        extractor, detector = load_component(directory, "extractor"), load_component(directory, "detector")
        return cls(OrtCudaRunner(extractor, torch_device, stream.cuda_stream),
                   OrtCudaRunner(detector, torch_device, stream.cuda_stream), extractor.spec,
                   detection_settings(detector.spec, settings), torch_device, stream=stream)

    @classmethod
    def from_torch(cls, extractor: torch.nn.Module, detector: torch.nn.Module, device: str = "cuda",
                   amp: bool = False, **settings: Any) -> "GpuPipeline":
        """Trained torch modules (an RTR extractor and a raw-output YOLOX), float32 or ``amp`` float16."""
        from vcl_fast.runtime.specs import DetectorSpec

        torch_device = torch.device(device)
        config = extractor.config
        spec = ExtractorSpec(config.img_size, config.mean, config.std, config.num_tokens, config.out_dim)
        detector_spec = DetectorSpec(detector.config.input_size, detector.head.strides, detector.config.num_classes)
        return cls(TorchDeviceRunner(extractor, torch_device, amp), TorchDeviceRunner(detector, torch_device, amp),
                   spec, detection_settings(detector_spec, settings), torch_device)


def _cuda_device(device: str) -> torch.device:
    torch_device = torch.device(device)
    if torch_device.type != "cuda" or not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: the GPU pipeline needs a CUDA device that torch can see")
    return torch.device("cuda", torch_device.index or 0)


