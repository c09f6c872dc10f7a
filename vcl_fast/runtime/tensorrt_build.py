"""TensorRT engines from an exported model directory: ``vcl-fast export --format trt`` and :func:`build_engines`.

An engine directory is an exported model directory (``extractor.onnx``, ``detector.onnx``, ``manifest.json``,
see :mod:`vcl_fast.runtime.manifest`) plus, per component, ``<component>.engine`` and its metadata
``<component>.engine.json`` (:mod:`vcl_fast.runtime.engine_metadata`), and the files builds reuse:

- ``timing.cache``: TensorRT's tactic timing cache, read before and written after every build (or the file
  given as ``timing_cache``), so a rebuild or the second component skips timing tactics it already timed;
- ``<component>.<sha12>.int8.cache``: the INT8 calibration cache of the ONNX file whose SHA-256 starts with
  ``sha12``; when it exists the calibration data is not read again.

:class:`EngineBuilder` follows TensorRT's samples: it logs every input and output of the parsed network,
reports every ONNX parser error (:class:`OnnxParseError`), sets precision flags after checking that the GPU
has fast FP16/INT8 (tensor cores; TensorRT 10.5 deprecated ``platform_has_fast_fp16`` in favour of asking
CUDA, i.e. the compute capability), gives the input one optimisation profile (batch min/opt/max, the
extractor's frames or the detector's maps) and raises exceptions, never exits.

INT8 uses TensorRT's entropy calibrator (``IInt8EntropyCalibrator2``) in batches of the profile's opt
size (TensorRT calibrates at the calibration profile's opt shape): the extractor is calibrated on a
folder of frames (``calib_dir``, preprocessed exactly as at inference), the detector on synthetic planted-copy
similarity maps (:mod:`vcl_fast.data.synthetic_maps`, the kind it is trained on) rendered as at inference.
Written against the TensorRT 10 Python API (implicit quantisation by calibration is deprecated there since 10.1
and, with the FP16/INT8 builder flags, removed in TensorRT 11, where only fp32 builds).
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from vcl_fast.atomic import atomic_write
from vcl_fast.runtime.engine_metadata import (
    PRECISIONS,
    DeviceInfo,
    EngineMetadata,
    engine_paths,
    write_engine_metadata,
)
from vcl_fast.runtime.manifest import COMPONENTS, MANIFEST_FILE, ExportedComponent, load_component, read_manifest
from vcl_fast.runtime.specs import DetectorSpec, ExtractorSpec

log = logging.getLogger("vcl_fast.tensorrt")
TIMING_CACHE_FILE = "timing.cache"
CALIBRATION_MAPS = 64  # synthetic similarity maps the detector is calibrated on
# Tensor cores: FP16 from Volta (sm_70), INT8 from Turing / Xavier (sm_72).
FAST_PRECISION_SINCE = {"fp16": (7, 0), "int8": (7, 2)}


class OnnxParseError(ValueError):
    """TensorRT's ONNX parser rejected the model; the message lists every parser error."""


class EngineBuildError(RuntimeError):
    """TensorRT could not build an engine (the message holds TensorRT's own error messages)."""


@dataclass(frozen=True)
class BatchRange:
    """Batch sizes of an optimisation profile: the engine accepts ``min``..``max``, tuned for ``opt``."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        values = (self.min, self.opt, self.max)
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        if not ints or not 1 <= self.min <= self.opt <= self.max:
            raise ValueError(f"batch sizes must be ints with 1 <= min <= opt <= max, got min={self.min}, "
                             f"opt={self.opt}, max={self.max}")


# Extractor: frames per call (the Localizer embeds 16 at a time); detector: rendered maps per call
# (DetectionSettings.batch_size is 16).
DEFAULT_BATCHES = {"extractor": BatchRange(1, 16, 64), "detector": BatchRange(1, 16, 32)}


def profile_shapes(input_size: int, batches: BatchRange) -> dict[str, tuple[int, ...]]:
    """Optimisation profile of an input ``(B, 3, S, S)``: ``{"min": ..., "opt": ..., "max": ...}`` shapes."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise ValueError(f"input_size must be a positive int, got {input_size!r}")
    return {key: (batch, 3, input_size, input_size)
            for key, batch in (("min", batches.min), ("opt", batches.opt), ("max", batches.max))}


def check_precision(precision: str, device: DeviceInfo) -> None:
    """ValueError for an unknown precision, or one the GPU has no fast (tensor-core) support for."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    since = FAST_PRECISION_SINCE.get(precision)
    if since is not None and device.compute_capability < since:
        raise ValueError(f"{device.name} ({device.sm}) has no fast {precision.upper()} (tensor cores from "
                         f"sm_{since[0]}{since[1]}); build with --precision fp32")


def format_parser_error(error) -> str:
    """One TensorRT ``ParserError`` as ``node N 'name' (Op): CODE: description``."""
    where = f"node {error.node()}"
    if error.node_name():
        where += f" {error.node_name()!r}"
    if error.node_operator():
        where += f" ({error.node_operator()})"
    return f"{where}: {error.code()}: {error.desc()}"


def parser_errors(parser) -> list[str]:
    """Every error the ONNX parser recorded, formatted (``format_parser_error``)."""
    return [format_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]


def calibration_cache_path(directory: str | os.PathLike, component: ExportedComponent, name: str) -> Path:
    """``DIR/<name>.<first 12 hex of the ONNX SHA-256>.int8.cache``: a cache only ever serves its own model."""
    return Path(directory) / f"{name}.{component.sha256[:12]}.int8.cache"


class CalibrationFeed:
    """What TensorRT's INT8 calibrator asks for, without TensorRT: batches on the device and the cache file.

    ``batches`` yields float32 (batch_size, 3, S, S) arrays (or is None when only the cache is used);
    ``upload`` copies one to the device and returns its address (it must stay valid until the next call).
    """

    def __init__(self, batches: Iterator[np.ndarray] | None, batch_size: int, cache_path: str | os.PathLike,
                 upload: Callable[[np.ndarray], int]):
        self.batches, self.batch_size, self.cache_path, self.upload = batches, batch_size, Path(cache_path), upload
        self.count = 0  # batches handed out

    def get_batch(self, names: Sequence[str]) -> list[int] | None:
        """Device addresses of the next batch, one per input name; None when the data is exhausted."""
        if len(names) != 1:
            raise ValueError(f"calibration feeds one input, the network has {list(names)}")
        batch = next(self.batches, None) if self.batches is not None else None
        if batch is None:
            return None
        if batch.shape[0] != self.batch_size:
            raise ValueError(f"calibration batch {self.count} holds {batch.shape[0]} items, expected {self.batch_size}")
        self.count += 1
        log.info("INT8 calibration batch %d (%d items)", self.count, self.batch_size)
        return [self.upload(np.ascontiguousarray(batch, dtype=np.float32))]

    def read_cache(self) -> bytes | None:
        """The cache file's bytes, or None when there is none (TensorRT then calibrates from batches)."""
        if self.cache_path.is_file():
            log.info("INT8 calibration: using %s", self.cache_path)
            return self.cache_path.read_bytes()
        return None

    def write_cache(self, data: bytes) -> None:
        with atomic_write(self.cache_path, "wb") as handle:
            handle.write(bytes(data))
        log.info("INT8 calibration cache written to %s", self.cache_path)


def frame_batches(frame_dir: str | os.PathLike, spec: ExtractorSpec, batch_size: int) -> Iterator[np.ndarray]:
    """Full batches (batch_size, 3, S, S) float32 of the images in ``frame_dir`` (sorted, recursive), each
    preprocessed as at inference (:func:`vcl_fast.runtime.preprocess.preprocess_frames`); the remainder
    that does not fill a batch is left out. ValueError when there is not one full batch."""
    from vcl_fast.data.images import list_images, load_image
    from vcl_fast.runtime.preprocess import preprocess_frames

    files = list_images(frame_dir)
    if len(files) < batch_size:
        raise ValueError(f"{frame_dir}: INT8 calibration needs at least {batch_size} frames, found {len(files)}")
    usable = len(files) - len(files) % batch_size
    log.info("INT8 calibration of the extractor on %d frames of %s", usable, frame_dir)
    batch = np.empty((batch_size, 3, spec.input_size, spec.input_size), np.float32)
    for i, path in enumerate(files[:usable]):
        frame = np.asarray(load_image(path), dtype=np.uint8)
        batch[i % batch_size] = preprocess_frames(frame[None], spec.input_size, spec.mean, spec.std)[0]
        if i % batch_size == batch_size - 1:
            yield batch.copy()


def map_batches(spec: DetectorSpec, batch_size: int, count: int = CALIBRATION_MAPS, seed: int = 0
                ) -> Iterator[np.ndarray]:
    """``count // batch_size`` batches of synthetic planted-copy similarity maps rendered as at inference
    (:func:`vcl_fast.detect.render.render_maps`): (batch_size, 3, S, S) float32, deterministic in ``seed``."""
    from vcl_fast.data.synthetic_maps import planted_copy_samples
    from vcl_fast.detect.render import render_maps

    samples = planted_copy_samples(count - count % batch_size, seed)
    for start in range(0, len(samples), batch_size):
        yield render_maps([s.sim for s in samples[start:start + batch_size]], spec.input_size)


def _entropy_calibrator(trt, feed: CalibrationFeed):
    """A ``trt.IInt8EntropyCalibrator2`` that delegates to ``feed``."""

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self):
            return feed.batch_size

        def get_batch(self, names):
            return feed.get_batch(names)

        def read_calibration_cache(self):
            return feed.read_cache()

        def write_calibration_cache(self, cache):
            feed.write_cache(bytes(cache))

    return EntropyCalibrator()


class EngineBuilder:
    """Parses ONNX files into TensorRT networks and builds serialized engines (TensorRT 10 Python API).

    One builder serves several builds (the timing cache file is shared by them). ``workspace_gib`` caps the
    scratch memory tactics may use; ``device`` is the CUDA device the engines are built (and timed) on.
    """

    def __init__(self, workspace_gib: float = 4.0, device: int = 0, verbose: bool = False):
        from vcl_fast.runtime.tensorrt_runtime import trt_logger, cuda_call, cudart, current_device, import_tensorrt

        if not workspace_gib > 0:
            raise ValueError(f"workspace_gib must be > 0, got {workspace_gib!r}")
        self.trt = import_tensorrt()
        cuda_call(cudart().cudaSetDevice(device))
        self.device = current_device(device)
        self.workspace_bytes = int(workspace_gib * 2**30)
        self.logger = trt_logger(self.trt, verbose)
        self.builder = self.trt.Builder(self.logger)

    def parse(self, onnx_path: str | os.PathLike):
        """The network of an ONNX file (the parser is returned too: the network refers to its weights).
        Logs every input and output; OnnxParseError listing every parser error."""
        network = self.builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
        parser = self.trt.OnnxParser(network, self.logger)
        parsed = parser.parse_from_file(str(onnx_path))
        errors = parser_errors(parser)
        if not parsed or errors:
            listed = "; ".join(f"[{i + 1}/{len(errors)}] {e}" for i, e in enumerate(errors)) or "no error recorded"
            raise OnnxParseError(f"{onnx_path}: TensorRT's ONNX parser failed with {len(errors)} error(s): {listed}")
        for kind, count, get in (("input", network.num_inputs, network.get_input),
                                 ("output", network.num_outputs, network.get_output)):
            for i in range(count):
                tensor = get(i)
                log.info("%s: network %s %r shape %s dtype %s", Path(onnx_path).name, kind, tensor.name,
                         tuple(tensor.shape), tensor.dtype)
        return network, parser

    def build(self, component: ExportedComponent, name: str, out_dir: str | os.PathLike, precision: str,
              batches: BatchRange, timing_cache: str | os.PathLike, calibration: CalibrationFeed | None = None
              ) -> EngineMetadata:
        """Build the engine of ``component`` (``name``: extractor or detector) into ``out_dir``, write it and
        its metadata (atomically, metadata last) and update the timing cache; returns the metadata."""
        from vcl_fast.runtime.manifest import sha256_file

        trt = self.trt
        check_precision(precision, self.device)
        if precision != "fp32" and not hasattr(trt.BuilderFlag, precision.upper()):
            raise ValueError(f"TensorRT {trt.__version__} has no BuilderFlag.{precision.upper()} (removed in "
                             f"TensorRT 11); build --precision {precision} with TensorRT 10, or fp32")
        if precision == "int8" and calibration is None:
            raise ValueError("--precision int8 needs calibration data (calib_dir) or a calibration cache")
        network, _parser = self.parse(component.path)
        inputs = [network.get_input(i).name for i in range(network.num_inputs)]
        outputs = [network.get_output(i).name for i in range(network.num_outputs)]
        if inputs != [component.input_name] or outputs != [component.output_name]:
            raise ValueError(f"{component.path}: network inputs {inputs} / outputs {outputs}, the manifest says "
                             f"{component.input_name!r} -> {component.output_name!r}; re-export the model")
        shapes = profile_shapes(component.spec.input_size, batches)
        config = self.builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_bytes)
        profile = self.builder.create_optimization_profile()
        profile.set_shape(component.input_name, shapes["min"], shapes["opt"], shapes["max"])
        config.add_optimization_profile(profile)
        log.info("%s: profile %s min %s opt %s max %s, precision %s", name, component.input_name, shapes["min"],
                 shapes["opt"], shapes["max"], precision)
        if precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)  # int8: layers without INT8 kernels fall back to FP16
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            calibrator = _entropy_calibrator(trt, calibration)  # referenced here until the build returns
            config.int8_calibrator = calibrator
            config.set_calibration_profile(profile)
        timing_cache = Path(timing_cache)
        cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
        if not config.set_timing_cache(cache, ignore_mismatch=False):
            raise EngineBuildError(f"{timing_cache}: TensorRT rejected the timing cache (another TensorRT version "
                                   "or GPU?); delete it and build again")
        self.logger.errors.clear()
        serialized = self.builder.build_serialized_network(network, config)
        if serialized is None:
            raise EngineBuildError(f"TensorRT could not build the {name} engine: "
                                   f"{'; '.join(self.logger.errors) or 'no reason given (see the log)'}")
        with atomic_write(timing_cache, "wb") as handle:
            handle.write(bytes(config.get_timing_cache().serialize()))
        engine_path, metadata_path = engine_paths(out_dir, name)
        metadata_path.unlink(missing_ok=True)  # a half-replaced engine must not look valid
        with atomic_write(engine_path, "wb") as handle:
            handle.write(bytes(serialized))
        metadata = EngineMetadata(
            component=name, tensorrt_version=trt.__version__, gpu_name=self.device.name,
            compute_capability=self.device.compute_capability, precision=precision, input=component.input_name,
            output=component.output_name, profile=shapes, onnx_sha256=component.sha256,
            engine_sha256=sha256_file(engine_path),
            calibration_cache=calibration.cache_path.name if precision == "int8" else None)
        write_engine_metadata(metadata_path, metadata)
        log.info("%s: wrote %s (%.1f MiB)", name, engine_path, engine_path.stat().st_size / 2**20)
        return metadata


def _copy_export(onnx_dir: Path, out_dir: Path) -> None:
    """Copy an exported model directory's ONNX files and manifest into ``out_dir`` (manifest last)."""
    manifest = read_manifest(onnx_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_FILE).unlink(missing_ok=True)
    for name in COMPONENTS:
        if isinstance(manifest.get(name), dict):
            shutil.copy2(onnx_dir / manifest[name]["file"], out_dir / manifest[name]["file"])
    shutil.copy2(onnx_dir / MANIFEST_FILE, out_dir / MANIFEST_FILE)


def build_engines(onnx_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, precision: str = "fp16",
                  calib_dir: str | os.PathLike | None = None, *, batches: dict[str, BatchRange] | None = None,
                  workspace_gib: float = 4.0, timing_cache: str | os.PathLike | None = None, device: int = 0,
                  verbose: bool = False) -> dict[str, Path]:
    """Build a TensorRT engine for every model of the exported directory ``onnx_dir``.

    Engines go into ``out_dir`` (default: ``onnx_dir``; otherwise the ONNX files and manifest are copied there
    too, so it is a complete engine directory). ``precision``: fp32, fp16 or int8; int8 calibrates the
    extractor on the images of ``calib_dir`` unless its calibration cache exists. ``batches``: per component
    the profile's batch range (default ``DEFAULT_BATCHES``). Returns ``{component: engine path}``. ImportError
    when TensorRT is missing, ValueError for bad arguments or models, EngineBuildError when TensorRT fails.
    """
    onnx_dir = Path(onnx_dir)
    out_dir = onnx_dir if out_dir is None else Path(out_dir)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    batches = {**DEFAULT_BATCHES, **(batches or {})}
    unknown = set(batches) - set(COMPONENTS)
    if unknown:
        raise ValueError(f"batches names unknown components {sorted(unknown)}; use {COMPONENTS}")
    manifest = read_manifest(onnx_dir)
    names = [name for name in COMPONENTS if isinstance(manifest.get(name), dict)]
    components = {name: load_component(onnx_dir, name) for name in names}  # verifies every ONNX file's SHA-256
    if precision == "int8":
        if "extractor" in components and calib_dir is None \
                and not calibration_cache_path(out_dir, components["extractor"], "extractor").is_file():
            raise ValueError("--precision int8 needs --calib DIR (a folder of video frames) to calibrate the "
                             "extractor (or its calibration cache from an earlier build)")
        if calib_dir is not None and not Path(calib_dir).is_dir():
            raise FileNotFoundError(f"{calib_dir}: no such calibration frame directory")
    from vcl_fast.runtime.tensorrt_runtime import DeviceBuffer

    builder = EngineBuilder(workspace_gib, device, verbose)
    if out_dir.resolve() != onnx_dir.resolve():
        _copy_export(onnx_dir, out_dir)
        components = {name: load_component(out_dir, name) for name in names}
    timing_cache = out_dir / TIMING_CACHE_FILE if timing_cache is None else Path(timing_cache)
    built = {}
    buffer = DeviceBuffer()
    try:
        for name, component in components.items():
            feed = None
            if precision == "int8":
                cache = calibration_cache_path(out_dir, component, name)
                size = batches[name].opt  # TensorRT calibrates at the calibration profile's opt shape
                if name == "extractor":
                    data = None if cache.is_file() else frame_batches(calib_dir, component.spec, size)
                else:
                    data = map_batches(component.spec, size)
                feed = CalibrationFeed(data, size, cache, buffer.upload)
            builder.build(component, name, out_dir, precision, batches[name], timing_cache, feed)
            built[name] = engine_paths(out_dir, name)[0]
    finally:
        buffer.free()
    return built
