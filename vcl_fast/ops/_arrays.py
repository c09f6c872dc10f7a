"""Array-kind dispatch shared by the ops: numpy, torch (CPU/CUDA), CuPy and ``__cuda_array_interface__``.

CPU inputs reach the kernels as numpy arrays (torch CPU tensors convert without copying); GPU inputs reach
them as device pointers plus the stream of the framework they came from.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

NUMPY, TORCH_CPU, TORCH_CUDA, CUPY, CUDA_INTERFACE = "numpy", "torch_cpu", "torch_cuda", "cupy", "cuda_interface"


@dataclass(frozen=True)
class DeviceView:
    """A GPU array seen through ``__cuda_array_interface__``: pointer, shape, byte strides, dtype."""

    ptr: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in bytes, always filled in (C order when the producer gave none)
    dtype: np.dtype

    @property
    def is_c_contiguous(self) -> bool:
        expected, step = [], self.dtype.itemsize
        for n in reversed(self.shape):
            expected.append(step)
            step *= max(n, 1)
        return all(s == e or n == 1 for s, e, n in zip(self.strides, reversed(expected), self.shape))


def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _is_cupy(x: Any) -> bool:
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(x, cupy.ndarray)


def array_kind(x: Any, name: str = "array") -> str:
    """One of NUMPY, TORCH_CPU, TORCH_CUDA, CUPY, CUDA_INTERFACE; TypeError for anything else."""
    if isinstance(x, np.ndarray):
        return NUMPY
    if _is_torch(x):
        if x.device.type == "cpu":
            return TORCH_CPU
        if x.device.type == "cuda":
            return TORCH_CUDA
        raise TypeError(f"{name}: torch tensors on device '{x.device}' are not supported; use CPU or CUDA")
    if _is_cupy(x):
        return CUPY
    if hasattr(x, "__cuda_array_interface__"):
        return CUDA_INTERFACE
    raise TypeError(
        f"{name} must be a numpy array, a torch tensor or a CUDA array (CuPy, __cuda_array_interface__), "
        f"got {type(x).__name__}"
    )


def is_gpu(kind: str) -> bool:
    return kind in (TORCH_CUDA, CUPY, CUDA_INTERFACE)


def to_numpy(x: Any) -> np.ndarray:
    """A numpy view of a numpy array or torch CPU tensor (no copy; bfloat16 becomes float32)."""
    if isinstance(x, np.ndarray):
        return x
    if x.dtype == sys.modules["torch"].bfloat16:
        x = x.float()
    return x.detach().numpy()


def like_input(result: np.ndarray, kind: str) -> Any:
    """Return a CPU result as the caller's kind (numpy array or torch CPU tensor, sharing memory)."""
    if kind == TORCH_CPU:
        return sys.modules["torch"].from_numpy(result)
    return result


def device_view(x: Any) -> DeviceView:
    """Pointer/shape/strides/dtype of a GPU array."""
    cai = x.__cuda_array_interface__
    dtype = np.dtype(cai["typestr"])
    shape = tuple(int(n) for n in cai["shape"])
    strides = cai.get("strides")
    if strides is None:
        acc, out = dtype.itemsize, []
        for n in reversed(shape):
            out.append(acc)
            acc *= max(n, 1)
        strides = tuple(reversed(out))
    ptr = int(cai["data"][0]) if cai["data"] else 0
    return DeviceView(ptr, shape, tuple(int(s) for s in strides), dtype)


def current_stream(x: Any, kind: str) -> int:
    """The CUDA stream handle the caller's framework is using for ``x`` (0 = legacy default stream)."""
    if kind == TORCH_CUDA:
        torch = sys.modules["torch"]
        return int(torch.cuda.current_stream(x.device).cuda_stream)
    if kind == CUPY:
        return int(sys.modules["cupy"].cuda.get_current_stream().ptr)
    stream = x.__cuda_array_interface__.get("stream")
    return int(stream) if stream else 0


def gpu_empty(shape: tuple[int, ...], dtype: Any, like: Any, kind: str) -> Any:
    """A new uninitialised GPU array on the same device and framework as ``like``."""
    if kind == TORCH_CUDA:
        torch = sys.modules["torch"]
        torch_dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.int64): torch.int64,
                       np.dtype(np.int32): torch.int32, np.dtype(np.uint64): torch.uint64}[np.dtype(dtype)]
        return torch.empty(shape, dtype=torch_dtype, device=like.device)
    if kind == CUPY:
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(like.device.id):
            return cupy.empty(shape, dtype=dtype)
    raise TypeError(
        "results for generic __cuda_array_interface__ inputs cannot be allocated; pass torch or CuPy arrays"
    )


def gpu_contiguous(x: Any, kind: str) -> Any:
    """A C-contiguous version of a torch/CuPy GPU array (no copy when it already is)."""
    if kind == TORCH_CUDA:
        return x.contiguous()
    if kind == CUPY:
        return sys.modules["cupy"].ascontiguousarray(x)
    if not device_view(x).is_c_contiguous:
        raise ValueError("non-contiguous __cuda_array_interface__ inputs are not supported; pass torch or CuPy")
    return x


_DTYPE_NAMES: dict[Any, str] = {}  # numpy's dtype.name is slow (microseconds); memoised per dtype


def dtype_name(x: Any) -> str:
    """The element type of any supported array as a plain name: 'float32', 'float16', 'bfloat16', ..."""
    if _is_torch(x):
        return str(x.dtype).removeprefix("torch.")
    dtype = x.dtype if isinstance(x, np.ndarray) or _is_cupy(x) else np.dtype(x.__cuda_array_interface__["typestr"])
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = dtype.name
    return name


def device_index(x: Any, kind: str) -> int:
    """The CUDA device index of a torch CUDA tensor or CuPy array."""
    if kind == TORCH_CUDA:
        return int(x.device.index)
    if kind == CUPY:
        return int(x.device.id)
    raise TypeError("the CUDA device of generic __cuda_array_interface__ inputs is unknown; pass torch or CuPy arrays")


def gpu_concat(arrays: list[Any], kind: str) -> Any:
    """The torch/CuPy GPU arrays joined along their first axis (one new C-contiguous array)."""
    if kind == TORCH_CUDA:
        return sys.modules["torch"].cat(arrays)
    if kind == CUPY:
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(arrays[0].device.id):
            return cupy.concatenate(arrays)
    raise TypeError("generic __cuda_array_interface__ inputs cannot be joined; pass torch or CuPy arrays")


def gpu_from_host(host: np.ndarray, like: Any, kind: str) -> Any:
    """A copy of a (small) host array on the device and framework of ``like``, ordered on its current stream."""
    if kind == TORCH_CUDA:
        return sys.modules["torch"].from_numpy(np.ascontiguousarray(host)).to(like.device)
    if kind == CUPY:
        cupy = sys.modules["cupy"]
        with cupy.cuda.Device(like.device.id):
            return cupy.asarray(host)
    raise TypeError("generic __cuda_array_interface__ inputs have no framework to copy with; pass torch or CuPy arrays")


def gpu_to_host(x: Any, kind: str) -> np.ndarray:
    """A numpy copy of a torch/CuPy GPU array (waits for the work that produces it)."""
    if kind == TORCH_CUDA:
        return x.cpu().numpy()
    if kind == CUPY:
        return sys.modules["cupy"].asnumpy(x)
    raise TypeError("generic __cuda_array_interface__ inputs cannot be copied back; pass torch or CuPy arrays")


def gpu_as_contiguous(x: Any, dtype: Any, kind: str) -> Any:
    """A C-contiguous ``dtype`` version of a torch/CuPy GPU array (no copy when it already is one)."""
    if kind == TORCH_CUDA:
        torch = sys.modules["torch"]
        torch_dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.int64): torch.int64}[np.dtype(dtype)]
        return x.detach().to(torch_dtype).contiguous()
    if kind == CUPY:
        return sys.modules["cupy"].ascontiguousarray(x, dtype=dtype)
    raise TypeError("only torch and CuPy GPU arrays can be converted; pass one of those")


def array_module(x: Any, kind: str) -> Any:
    """The numpy-compatible module of a numpy or CuPy array (numpy or cupy)."""
    if kind == NUMPY:
        return np
    if kind == CUPY:
        return sys.modules["cupy"]
    raise TypeError(f"{kind} arrays have no numpy-compatible module; use numpy or CuPy arrays")
