"""TensorRT backend: built engines (``vcl-fast export --format trt``) run with named tensors and
``execute_async_v3`` on a CUDA stream, torch-free.

Device memory, pinned host memory, streams and CUDA graphs go through cuda-python (``cuda.bindings.runtime``,
NVIDIA's maintained bindings of the CUDA runtime API), not pycuda: pycuda has no wheels and compiles against
the driver library at install time (so it cannot even be installed on a build machine without a GPU), and it
manages its own CUDA context (``pycuda.autoinit``) beside the runtime's primary context that torch, ONNX
Runtime and our kernels share. cuda-python ships wheels, imports without a GPU and works in the primary
context, so an engine, torch tensors and the compiled kernels can share one device and one stream.

:class:`TrtEngine` holds one deserialised engine (one input, one output, dynamic batch) and one execution
context. Two ways to run it:

- ``execute(batch, input_ptr, output_ptr, stream)``: device pointers on a caller's stream, nothing copied
  (the GPU pipeline, :mod:`vcl_fast.runtime.gpu_pipeline`, passes torch tensors this way);
- ``run(images)``: numpy in, numpy out through pinned and device buffers kept between calls (reallocated,
  larger, only when a larger batch arrives) on the engine's own stream (the registry backend below).

With ``cuda_graphs=True`` each (batch, input address, output address) is captured once as a CUDA graph and
replayed after (TensorRT needs one ordinary launch after a shape change before capture; a graph is only used
on a non-default stream). ``load_extractor`` / ``load_detector`` are the backend entry points of
:mod:`vcl_fast.runtime` (sources: engine directories); they check the engine metadata
(:mod:`vcl_fast.runtime.engine_metadata`) against this GPU and TensorRT before deserialising.
One lock serialises the calls of an engine (an execution context runs one inference at a time).
"""
from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from vcl_fast.runtime.base import Detector, Extractor, parse_device
from vcl_fast.runtime.engine_metadata import (
    DeviceInfo,
    EngineMetadata,
    check_engine,
    engine_paths,
    read_engine_metadata,
)
from vcl_fast.runtime.manifest import ExportedComponent, load_component

log = logging.getLogger("vcl_fast.tensorrt")
MAX_GRAPHS = 8  # captured CUDA graphs kept per engine (least recently used dropped first)
GROWTH = 1.5  # a buffer that must grow is reallocated this much larger than needed, to grow rarely


def import_tensorrt():
    """The ``tensorrt`` module; ImportError with one line saying what to do when it is not importable."""
    try:
        import tensorrt
    except Exception as exc:  # missing, or a broken install (e.g. a stub package whose libraries never arrived)
        reason = "no 'tensorrt' Python package" if isinstance(exc, ImportError) else f"{type(exc).__name__}: {exc}"
        raise ImportError(f"TensorRT is not importable in this environment ({reason}); install TensorRT 10 for "
                          "this CUDA version, or use ONNX (`--format onnx`, the onnxruntime backend)") from None
    return tensorrt


def cudart():
    """``cuda.bindings.runtime`` (cuda-python)."""
    from cuda.bindings import runtime

    return runtime


def cuda_call(result):
    """Unpack a cuda-python ``(error, *values)`` result: the value(s), or RuntimeError naming the error."""
    rt = cudart()
    error, values = result[0], result[1:]
    if error != rt.cudaError_t.cudaSuccess:
        message = rt.cudaGetErrorString(error)[1].decode()
        raise RuntimeError(f"CUDA error {error.name}: {message}")
    return values[0] if len(values) == 1 else (values or None)


def current_device(index: int = 0) -> DeviceInfo:
    """Name and compute capability of CUDA device ``index``."""
    props = cuda_call(cudart().cudaGetDeviceProperties(index))
    name = props.name.decode(errors="replace").rstrip("\x00") if isinstance(props.name, bytes) else str(props.name)
    return DeviceInfo(name, (int(props.major), int(props.minor)))


def grown_capacity(capacity: int, needed: int) -> int:
    """Bytes to allocate for ``needed`` bytes in a buffer of ``capacity``: unchanged when it fits,
    else ``GROWTH`` times ``needed``."""
    return capacity if needed <= capacity else int(needed * GROWTH)


class DeviceBuffer:
    """Device memory (cudaMalloc) that grows on demand; ``ptr`` is 0 while nothing is allocated."""

    def __init__(self):
        self.ptr, self.capacity = 0, 0

    def reserve(self, nbytes: int) -> bool:
        """Make room for ``nbytes``; True when the buffer moved (its old address is invalid)."""
        capacity = grown_capacity(self.capacity, nbytes)
        if capacity == self.capacity:
            return False
        self.free()
        self.ptr, self.capacity = int(cuda_call(cudart().cudaMalloc(capacity))), capacity
        return True

    def upload(self, array: np.ndarray) -> int:
        """Copy a host array into the buffer (synchronously); returns the device address."""
        array = np.ascontiguousarray(array)
        self.reserve(array.nbytes)
        rt = cudart()
        cuda_call(rt.cudaMemcpy(self.ptr, array.ctypes.data, array.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice))
        return self.ptr

    def free(self) -> None:
        if self.ptr:
            cuda_call(cudart().cudaFree(self.ptr))
        self.ptr, self.capacity = 0, 0


class PinnedBuffer:
    """Page-locked host memory (cudaMallocHost) that grows on demand, seen as a numpy array."""

    def __init__(self):
        self.ptr, self.capacity = 0, 0

    def reserve(self, nbytes: int) -> None:
        capacity = grown_capacity(self.capacity, nbytes)
        if capacity != self.capacity:
            self.free()
            self.ptr, self.capacity = int(cuda_call(cudart().cudaMallocHost(capacity))), capacity

    def view(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A numpy array of ``shape`` and ``dtype`` over the start of the buffer (reserve first)."""
        import ctypes

        count = int(np.prod(shape))
        raw = (ctypes.c_byte * (count * np.dtype(dtype).itemsize)).from_address(self.ptr)
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)

    def free(self) -> None:
        if self.ptr:
            cuda_call(cudart().cudaFreeHost(self.ptr))
        self.ptr, self.capacity = 0, 0


def trt_logger(trt, verbose: bool = False):
    """A ``trt.ILogger`` that forwards TensorRT's messages to the ``vcl_fast.tensorrt`` logger and keeps the
    errors (``.errors``) so exceptions can say why a build or deserialisation failed."""
    severity = trt.ILogger.Severity
    levels = {severity.INTERNAL_ERROR: logging.ERROR, severity.ERROR: logging.ERROR,
              severity.WARNING: logging.WARNING, severity.INFO: logging.INFO, severity.VERBOSE: logging.DEBUG}

    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, level, message):
            if level in (severity.INTERNAL_ERROR, severity.ERROR):
                self.errors.append(message)
            if level != severity.VERBOSE or verbose:
                log.log(levels.get(level, logging.INFO), "TensorRT: %s", message)

    return Logger()


class TrtEngine:
    """A deserialised engine with one input and one output tensor and a dynamic batch dimension."""

    def __init__(self, engine_path: str | os.PathLike, metadata: EngineMetadata, device_index: int = 0,
                 cuda_graphs: bool = False):
        trt = import_tensorrt()
        rt = cudart()
        cuda_call(rt.cudaSetDevice(device_index))
        self.metadata, self.device_index, self.cuda_graphs = metadata, device_index, cuda_graphs
        self._logger = trt_logger(trt)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"{engine_path}: TensorRT cannot deserialise the engine: "
                               f"{'; '.join(self._logger.errors) or 'no reason given'}")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if inputs != [metadata.input] or outputs != [metadata.output]:
            raise ValueError(f"{engine_path}: engine tensors are inputs {inputs}, outputs {outputs}; its metadata "
                             f"says {metadata.input!r} -> {metadata.output!r}")
        self.input_name, self.output_name = metadata.input, metadata.output
        minimum, _, maximum = self.engine.get_tensor_profile_shape(self.input_name, 0)
        self.min_batch, self.max_batch = int(minimum[0]), int(maximum[0])
        self.input_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input_name)))
        self.output_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output_name)))
        self.item_shape = tuple(int(d) for d in maximum[1:])
        self.context = self.engine.create_execution_context()
        self.stream = int(cuda_call(rt.cudaStreamCreate()))
        self._lock = threading.Lock()
        self._batch = None
        self._graphs: OrderedDict[tuple[int, int, int, int], object] = OrderedDict()
        self._host_in, self._host_out = PinnedBuffer(), PinnedBuffer()
        self._device_in, self._device_out = DeviceBuffer(), DeviceBuffer()

    def _set_batch(self, batch: int) -> None:
        if not self.min_batch <= batch <= self.max_batch:
            raise ValueError(f"batch of {batch} outside the engine's profile [{self.min_batch}, {self.max_batch}]; "
                             f"split the input or rebuild with a larger maximum batch")
        if batch != self._batch:
            if not self.context.set_input_shape(self.input_name, (batch, *self.item_shape)):
                raise RuntimeError(f"TensorRT rejected input shape {(batch, *self.item_shape)}: "
                                   f"{'; '.join(self._logger.errors[-3:])}")
            self._batch = batch

    def output_shape(self, batch: int) -> tuple[int, ...]:
        """Shape of the output for an input batch of ``batch``."""
        with self._lock:
            self._set_batch(batch)
            return tuple(int(d) for d in self.context.get_tensor_shape(self.output_name))

    def execute(self, batch: int, input_ptr: int, output_ptr: int, stream: int) -> None:
        """Enqueue one inference on ``stream``: input (batch, *item_shape) at ``input_ptr`` -> output at
        ``output_ptr`` (both device addresses of C-contiguous buffers of the engine's dtypes)."""
        with self._lock:
            self._execute(batch, input_ptr, output_ptr, stream)

    def _execute(self, batch: int, input_ptr: int, output_ptr: int, stream: int) -> None:
        self._set_batch(batch)
        self.context.set_tensor_address(self.input_name, input_ptr)
        self.context.set_tensor_address(self.output_name, output_ptr)
        if not self.cuda_graphs or stream == 0:
            self._enqueue(stream)
            return
        key = (batch, input_ptr, output_ptr, stream)
        graph = self._graphs.get(key)
        if graph is None:
            self._enqueue(stream)  # this call's result; also lets TensorRT finish its shape-dependent setup
            self._capture(key, stream)
        else:
            self._graphs.move_to_end(key)
            cuda_call(cudart().cudaGraphLaunch(graph, stream))

    def _enqueue(self, stream: int) -> None:
        if not self.context.execute_async_v3(stream):
            raise RuntimeError(f"TensorRT execute_async_v3 failed: {'; '.join(self._logger.errors[-3:])}")

    def _capture(self, key: tuple[int, int, int, int], stream: int) -> None:
        rt = cudart()
        cuda_call(rt.cudaStreamBeginCapture(stream, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))
        launched = self.context.execute_async_v3(stream)
        graph = cuda_call(rt.cudaStreamEndCapture(stream))
        try:
            if not launched:
                raise RuntimeError(f"TensorRT could not be captured in a CUDA graph: "
                                   f"{'; '.join(self._logger.errors[-3:])}; run without cuda_graphs")
            self._graphs[key] = cuda_call(rt.cudaGraphInstantiate(graph, 0))
        finally:
            cuda_call(rt.cudaGraphDestroy(graph))
        while len(self._graphs) > MAX_GRAPHS:
            cuda_call(rt.cudaGraphExecDestroy(self._graphs.popitem(last=False)[1]))

    def _drop_graphs(self) -> None:
        while self._graphs:
            cuda_call(cudart().cudaGraphExecDestroy(self._graphs.popitem()[1]))

    def run(self, images: np.ndarray) -> np.ndarray:
        """numpy (B, *item_shape) -> numpy output (a new array), through the engine's reused buffers."""
        images = np.asarray(images)
        if images.ndim != 1 + len(self.item_shape) or tuple(images.shape[1:]) != self.item_shape:
            raise ValueError(f"expected input (B, {', '.join(map(str, self.item_shape))}), got {images.shape}")
        rt = cudart()
        batch = len(images)
        with self._lock:
            self._set_batch(batch)
            out_shape = tuple(int(d) for d in self.context.get_tensor_shape(self.output_name))
            in_bytes = batch * int(np.prod(self.item_shape)) * self.input_dtype.itemsize
            out_bytes = int(np.prod(out_shape)) * self.output_dtype.itemsize
            moved_in = self._device_in.reserve(in_bytes)
            moved_out = self._device_out.reserve(out_bytes)
            if moved_in or moved_out:
                self._drop_graphs()  # captured graphs hold the old addresses
            self._host_in.reserve(in_bytes)
            self._host_out.reserve(out_bytes)
            np.copyto(self._host_in.view(images.shape, self.input_dtype), images, casting="same_kind")
            cuda_call(rt.cudaMemcpyAsync(self._device_in.ptr, self._host_in.ptr, in_bytes,
                                         rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream))
            self._execute(batch, self._device_in.ptr, self._device_out.ptr, self.stream)
            cuda_call(rt.cudaMemcpyAsync(self._host_out.ptr, self._device_out.ptr, out_bytes,
                                         rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream))
            cuda_call(rt.cudaStreamSynchronize(self.stream))
            return self._host_out.view(out_shape, self.output_dtype).copy()

    def close(self) -> None:
        """Free the buffers, graphs and stream (the engine object is released with this instance)."""
        with self._lock:
            self._drop_graphs()
            for buffer in (self._host_in, self._host_out, self._device_in, self._device_out):
                buffer.free()
            if self.stream:
                cuda_call(cudart().cudaStreamDestroy(self.stream))
                self.stream = 0

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown or a lost device: nothing left to release
            pass


def load_engine(source: str | os.PathLike, component: str, device_index: int = 0, cuda_graphs: bool = False
                ) -> tuple[TrtEngine, ExportedComponent]:
    """The ``component`` engine of an engine directory (``source``: the directory or a file in it), checked
    against its metadata, the exported ONNX file and this GPU and TensorRT first."""
    source = Path(source)
    directory = source.parent if source.is_file() else source
    exported = load_component(directory, component)
    engine_path, metadata_path = engine_paths(directory, component)
    metadata = read_engine_metadata(metadata_path)
    trt = import_tensorrt()
    device = current_device(device_index)
    check_engine(metadata, engine_path, component=component, onnx_sha256=exported.sha256, device=device,
                 tensorrt_version=trt.__version__)
    if metadata.gpu_name != device.name:
        log.warning("%s: built on %s, running on %s (same architecture %s); rebuild for best speed",
                    engine_path, metadata.gpu_name, device.name, device.sm)
    return TrtEngine(engine_path, metadata, device_index, cuda_graphs), exported


def _device_index(device: str) -> int:
    kind, index = parse_device(device)
    if kind == "cpu":
        raise ValueError("the tensorrt backend runs on a CUDA device; use device='cuda[:N]' or another backend")
    return index


class TrtExtractor(Extractor):
    """Extractor engine; frames are preprocessed in numpy (:class:`~vcl_fast.runtime.base.Extractor`)."""

    def __init__(self, engine: TrtEngine, component: ExportedComponent, batch_size: int = 16):
        super().__init__(component.spec, min(batch_size, engine.max_batch))
        self.engine = engine

    def _forward(self, images: np.ndarray) -> np.ndarray:
        return self.engine.run(images)


class TrtDetector(Detector):
    """Detector engine: rendered maps (B, 3, S, S) -> raw outputs (B, A, 5 + C), in engine-sized batches."""

    def __init__(self, engine: TrtEngine, component: ExportedComponent):
        super().__init__(component.spec)
        self.engine = engine

    def run(self, images: np.ndarray) -> np.ndarray:
        step = self.engine.max_batch
        parts = [self.engine.run(images[i:i + step]) for i in range(0, len(images), step)]
        return np.concatenate(parts) if parts else self.empty_output()


def load_extractor(source: str | os.PathLike, device: str = "cuda", threads: int | None = None,
                   batch_size: int = 16) -> TrtExtractor:
    """The extractor engine of an engine directory (``threads`` is ignored: the engine runs on the GPU)."""
    engine, component = load_engine(source, "extractor", _device_index(device))
    return TrtExtractor(engine, component, batch_size)


def load_detector(source: str | os.PathLike, device: str = "cuda", threads: int | None = None) -> TrtDetector:
    """The detector engine of an engine directory (``threads`` is ignored)."""
    engine, component = load_engine(source, "detector", _device_index(device))
    return TrtDetector(engine, component)
