"""The manifest of an exported model directory, and the embedded default model's location.

An exported model directory holds ``extractor.onnx`` and/or ``detector.onnx`` and ``manifest.json``::

    {"format": "vcl_fast.exported_model", "format_version": 1, "opset": 17, "simplifier": "onnxsim 0.4.36",
     "versions": {"vcl_fast": ..., "torch": ..., "onnx": ...},
     "extractor": {"file": "extractor.onnx", "sha256": ..., "input": "images", "output": "features",
                   "input_size": S, "mean": [3], "std": [3], "num_tokens": T, "dim": D, "preprocessing": text,
                   "max_abs_diff": torch-vs-ONNX-Runtime difference measured at export},
     "detector": {"file": "detector.onnx", "sha256": ..., "input": "images", "output": "raw",
                  "input_size": S, "strides": [8, 16, 32], "num_classes": 1, "outputs": text, "max_abs_diff": ...,
                  "min_similarity": cosine floor, "extent_similarity": extent-fit cosine,
                  "confident_similarity": the floor of detections scored >= "confident_score",
                  "transpose_fusion_iou": IoU of the fusion with the transposed map's boxes,
                  "query_margin", "reference_margin": frames added to each end of a box on either axis,
                  "merge_overlap": share of the smaller of two overlapping boxes from which they merge (all
                  eight optional; absent: -1, -1, -1, 1, -1, 0, 0 and -1, i.e. off)}}

Loading checks every key, the format version and each file's SHA-256; any problem is a
:class:`ManifestError` that says to re-export. Torch-free.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, overload

from vcl_fast.runtime.specs import CALIBRATED_FIELDS, TILING_FIELDS, DetectorSpec, ExtractorSpec

MANIFEST_FILE = "manifest.json"
FORMAT = "vcl_fast.exported_model"
FORMAT_VERSION = 1
COMPONENTS = ("extractor", "detector")
TOP_KEYS = ("format", "format_version", "opset", "simplifier", "versions")
COMPONENT_KEYS = {
    "extractor": ("file", "sha256", "input", "output", "input_size", "mean", "std", "num_tokens", "dim"),
    "detector": ("file", "sha256", "input", "output", "input_size", "strides", "num_classes"),
}
# Where the package's own model lives (absent until a default model is exported into it).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "default_model"
REEXPORT = "re-export it with `vcl-fast export --format onnx`"


class ManifestError(ValueError):
    """An exported model directory that cannot be used as it is (the message says what to do)."""


Spec = TypeVar("Spec", ExtractorSpec, DetectorSpec)


@dataclass(frozen=True)
class ExportedComponent(Generic[Spec]):
    """One model of an exported directory: its ONNX file (and that file's verified SHA-256), tensor names and
    spec (an :class:`ExtractorSpec` or a :class:`DetectorSpec`)."""

    path: Path
    input_name: str
    output_name: str
    spec: Spec
    sha256: str


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_format_json(path: Path, fmt: str, version: int, error: type[Exception], absent: str, kind: str,
                     remedy: str) -> dict:
    """A JSON object written by vcl_fast: ``error`` (whose message ends with ``remedy``) when the file is
    absent (saying ``absent``), not JSON, not ``kind`` (its ``format`` is not ``fmt``) or of another version."""
    if not path.is_file():
        raise error(f"{path}: {absent}; {remedy}")
    try:
        values = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid JSON ({exc}); {remedy}") from None
    if not isinstance(values, dict) or values.get("format") != fmt:
        raise error(f"{path}: not {kind} (format must be {fmt!r}); {remedy}")
    if values.get("format_version") != version:
        raise error(f"{path}: format_version {values.get('format_version')!r} is not the version this vcl_fast "
                    f"reads ({version}); {remedy}")
    return values


def read_manifest(directory: str | os.PathLike) -> dict:
    """``DIR/manifest.json`` checked for the format, its version and the top-level keys."""
    path = Path(directory) / MANIFEST_FILE
    manifest = read_format_json(path, FORMAT, FORMAT_VERSION, ManifestError,
                                f"no manifest; {Path(directory)} is not an exported model directory",
                                "a vcl_fast exported-model manifest", REEXPORT)
    missing = [key for key in TOP_KEYS if key not in manifest]
    if missing:
        raise ManifestError(f"{path}: missing keys {missing}; {REEXPORT}")
    return manifest


@overload
def load_component(source: str | os.PathLike, component: Literal["extractor"]) -> ExportedComponent[ExtractorSpec]:
    ...


@overload
def load_component(source: str | os.PathLike, component: Literal["detector"]) -> ExportedComponent[DetectorSpec]:
    ...


@overload
def load_component(source: str | os.PathLike, component: str) -> ExportedComponent[Any]:
    ...


def load_component(source: str | os.PathLike, component: str) -> ExportedComponent[Any]:
    """The ``extractor`` or ``detector`` of an exported directory (``source``: the directory, or the
    component's ONNX file in it), with its file's SHA-256 verified."""
    if component not in COMPONENTS:
        raise ValueError(f"component must be one of {COMPONENTS}, got {component!r}")
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such exported model directory or file")
    directory = source.parent if source.is_file() else source
    manifest = read_manifest(directory)
    where = directory / MANIFEST_FILE
    entry = manifest.get(component)
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: this export holds no {component}; {REEXPORT} with --{component}")
    missing = [key for key in COMPONENT_KEYS[component] if key not in entry]
    if missing:
        raise ManifestError(f"{where}: {component} entry lacks keys {missing}; {REEXPORT}")
    path = directory / entry["file"]
    if source.is_file() and source.name != path.name:
        raise ManifestError(f"{source}: not the {component} of {where} (that is {entry['file']})")
    if not path.is_file():
        raise ManifestError(f"{path}: missing ({component} listed in {where}); {REEXPORT}")
    if sha256_file(path) != entry["sha256"]:
        raise ManifestError(f"{path}: SHA-256 differs from {where} (file changed or export interrupted); {REEXPORT}")
    spec: ExtractorSpec | DetectorSpec
    try:
        if component == "extractor":
            spec = ExtractorSpec(int(entry["input_size"]), tuple(entry["mean"]), tuple(entry["std"]),
                                 int(entry["num_tokens"]), int(entry["dim"]))
        else:
            carried: dict[str, Any] = {name: float(entry.get(name, off)) for name, off in CALIBRATED_FIELDS.items()}
            carried.update({name: entry.get(name, default) for name, default in TILING_FIELDS.items()})
            spec = DetectorSpec(int(entry["input_size"]), tuple(entry["strides"]), int(entry["num_classes"]), **carried)
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"{where}: bad {component} entry ({exc}); {REEXPORT}") from None
    return ExportedComponent(path, str(entry["input"]), str(entry["output"]), spec, entry["sha256"])


def default_model_dir() -> Path:
    """The embedded default model's directory; ManifestError when this build has none."""
    if not (DEFAULT_MODEL_DIR / MANIFEST_FILE).is_file():
        raise ManifestError("no embedded default model in this build: pass extractor=/detector= paths "
                            "or run `vcl-fast export`")
    return DEFAULT_MODEL_DIR
