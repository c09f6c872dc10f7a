"""What a TensorRT engine was built for, stored beside it (``extractor.engine.json``), and the load-time check.

A serialized TensorRT engine runs only on the GPU architecture (compute capability) and with the TensorRT
version it was built with, and only matches the ONNX file it was built from. ``vcl-fast export --format trt``
writes, next to each ``<component>.engine``::

    {"format": "vcl_fast.tensorrt_engine", "format_version": 1, "component": "extractor",
     "tensorrt_version": "10.3.0", "gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": [9, 0],
     "precision": "fp16", "input": "images", "output": "features",
     "profile": {"min": [1, 3, 384, 384], "opt": [16, 3, 384, 384], "max": [64, 3, 384, 384]},
     "onnx_sha256": ..., "engine_sha256": ..., "calibration_cache": null}

:func:`check_engine` compares it with the running GPU and TensorRT, the engine file and the exported ONNX
file before the engine is deserialised, and raises :class:`EngineMismatchError` saying what differs and to
rebuild. Torch-free and TensorRT-free (the facts about the running system are passed in).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from vcl_fast.atomic import atomic_write
from vcl_fast.runtime.manifest import read_format_json, sha256_file

FORMAT = "vcl_fast.tensorrt_engine"
FORMAT_VERSION = 1
ENGINE_SUFFIX = ".engine"
METADATA_SUFFIX = ".engine.json"
PRECISIONS = ("fp32", "fp16", "int8")
PROFILE_KEYS = ("min", "opt", "max")
REBUILD = "rebuild with `vcl-fast export --format trt`"


class EngineMismatchError(ValueError):
    """An engine that cannot run here as it is (the message says what differs and to rebuild)."""


@dataclass(frozen=True)
class DeviceInfo:
    """The GPU an engine is built for or runs on."""

    name: str
    compute_capability: tuple[int, int]

    @property
    def sm(self) -> str:
        """``"sm_90"`` for compute capability 9.0."""
        return f"sm_{self.compute_capability[0]}{self.compute_capability[1]}"


@dataclass(frozen=True)
class EngineMetadata:
    """The facts of one built engine (see the module docstring for the JSON form)."""

    component: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    precision: str
    input: str
    output: str
    profile: dict[str, tuple[int, ...]]  # "min" / "opt" / "max" -> input shape (B, 3, S, S)
    onnx_sha256: str
    engine_sha256: str
    calibration_cache: str | None = None  # file name of the INT8 calibration cache used, beside the engine

    @property
    def device(self) -> DeviceInfo:
        return DeviceInfo(self.gpu_name, self.compute_capability)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["compute_capability"] = list(self.compute_capability)
        values["profile"] = {key: list(self.profile[key]) for key in PROFILE_KEYS}
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **values}


def engine_paths(directory: str | os.PathLike, component: str) -> tuple[Path, Path]:
    """(``DIR/<component>.engine``, ``DIR/<component>.engine.json``)."""
    directory = Path(directory)
    return directory / f"{component}{ENGINE_SUFFIX}", directory / f"{component}{METADATA_SUFFIX}"


def write_engine_metadata(path: str | os.PathLike, metadata: EngineMetadata) -> None:
    """Write ``metadata`` as JSON to ``path`` (atomically)."""
    with atomic_write(path) as handle:
        json.dump(metadata.to_dict(), handle, indent=2)
        handle.write("\n")


def _shape(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, int) and v >= 1 for v in value):
        raise ValueError(f"{what} must be a list of positive ints, got {value!r}")
    return tuple(value)


def read_engine_metadata(path: str | os.PathLike) -> EngineMetadata:
    """The metadata JSON at ``path``, every field checked; EngineMismatchError saying to rebuild otherwise."""
    values = read_format_json(Path(path), FORMAT, FORMAT_VERSION, EngineMismatchError,
                              "no engine metadata (the engine was not built by vcl_fast or the build was interrupted)",
                              "vcl_fast engine metadata", REBUILD)
    try:
        profile = values["profile"]
        if not isinstance(profile, dict):
            raise ValueError(f"profile must be an object with keys {PROFILE_KEYS}, got {profile!r}")
        capability = values["compute_capability"]
        if not (isinstance(capability, list) and len(capability) == 2 and all(isinstance(v, int) for v in capability)):
            raise ValueError(f"compute_capability must be [major, minor], got {capability!r}")
        if values["precision"] not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {values['precision']!r}")
        text = {key: values[key] for key in ("component", "tensorrt_version", "gpu_name", "input", "output",
                                              "onnx_sha256", "engine_sha256")}
        for key, value in text.items():
            if not isinstance(value, str) or not value:
                raise ValueError(f"{key} must be a non-empty string, got {value!r}")
        cache = values.get("calibration_cache")
        if cache is not None and not isinstance(cache, str):
            raise ValueError(f"calibration_cache must be a file name or null, got {cache!r}")
        return EngineMetadata(
            precision=values["precision"], compute_capability=(capability[0], capability[1]),
            profile={key: _shape(profile.get(key), f"profile.{key}") for key in PROFILE_KEYS},
            calibration_cache=cache, **text)
    except KeyError as exc:
        raise EngineMismatchError(f"{path}: missing key {exc.args[0]!r}; {REBUILD}") from None
    except ValueError as exc:
        raise EngineMismatchError(f"{path}: {exc}; {REBUILD}") from None


def check_engine(metadata: EngineMetadata, engine_path: str | os.PathLike, *, component: str, onnx_sha256: str,
                 device: DeviceInfo, tensorrt_version: str) -> None:
    """EngineMismatchError unless the engine at ``engine_path`` can run here: it is the ``component`` built
    from the ONNX file with SHA-256 ``onnx_sha256``, the file is the one built (same SHA-256), and it was
    built for this GPU architecture with this TensorRT version (engines are not portable across either)."""
    engine_path = Path(engine_path)
    if metadata.component != component:
        raise EngineMismatchError(f"{engine_path}: this engine is the {metadata.component}, not the {component}; "
                                  f"{REBUILD}")
    if not engine_path.is_file():
        raise EngineMismatchError(f"{engine_path}: missing; {REBUILD}")
    if metadata.compute_capability != device.compute_capability or metadata.tensorrt_version != tensorrt_version:
        raise EngineMismatchError(
            f"{engine_path}: engine built for {metadata.device.sm} ({metadata.gpu_name}) with TensorRT "
            f"{metadata.tensorrt_version}, this is {device.sm} ({device.name}) with TensorRT {tensorrt_version}: "
            f"{REBUILD}")
    if metadata.onnx_sha256 != onnx_sha256:
        raise EngineMismatchError(f"{engine_path}: built from another {component}.onnx than the one in this "
                                  f"directory (SHA-256 differs; the model was re-exported); {REBUILD}")
    if sha256_file(engine_path) != metadata.engine_sha256:
        raise EngineMismatchError(f"{engine_path}: SHA-256 differs from its metadata (file changed or build "
                                  f"interrupted); {REBUILD}")
