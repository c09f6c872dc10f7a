"""ONNX export of the RTR extractor and the YOLOX detector, with a manifest the runtime loads.

- Extractor: input ``images`` float32 (B, 3, S, S), normalised as the manifest's ``preprocessing`` says;
  output ``features`` float32 (B, T, D), unit vectors, CLS last. Exported with explicit softmax attention
  (the model's fused-attention switch off) so any opset >= 17 runtime runs it.
- Detector: input ``images`` float32 (B, 3, S, S) (rendered similarity maps); output ``raw`` (B, A, 5 + C)
  head outputs, decoded outside the graph (:mod:`vcl_fast.detect.decode`).

Batch is a dynamic axis in both. Each file is exported with the TorchScript-based exporter (constant
folding on), checked with ``onnx.checker`` (full check), simplified with onnxsim when it is installed
(``pip install vcl_fast[export]``) or else run through onnx's strict shape inference, and compared with the
torch model on CPU with ONNX Runtime at another batch size than the one exported: the maximal absolute
difference goes into the manifest and must stay below ``1e-4`` (detector: ``1e-4 x max(1, max |output|)``).
Everything is written to a staging directory first (:func:`vcl_fast.atomic.atomic_directory`), which
takes the place of the output directory only once all passed; an earlier export there is replaced as a whole.
"""
from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from vcl_fast.atomic import atomic_directory, check_new_directory
from vcl_fast.export import OPSET
from vcl_fast.runtime.manifest import FORMAT, FORMAT_VERSION, MANIFEST_FILE, sha256_file
from vcl_fast.runtime.specs import CALIBRATED_FIELDS, TILING_FIELDS, check_calibrated, check_tiling

EXTRACTOR_FILE = "extractor.onnx"
DETECTOR_FILE = "detector.onnx"
TOLERANCE = 1e-4
EXPORT_BATCH, CHECK_BATCH = 2, 3
PREPROCESSING = ("RGB uint8 frames -> resized to input_size x input_size (squashed, no crop; Pillow-style "
                 "anti-aliased bilinear, vcl_fast.runtime.preprocess) -> x / 255 -> (x - mean) / std per channel "
                 "-> (B, 3, S, S) float32")
DETECTOR_OUTPUTS = ("raw YOLOX head outputs (B, A, 5 + num_classes) per anchor [tx, ty, tw, th, obj_logit, "
                    "cls_logits], anchors stride by stride, row-major; decode with vcl_fast.detect.decode")


def simplify(model):
    """(simplified ``onnx.ModelProto``, description of the tool used)."""
    import onnx

    try:
        import onnxsim
    except ImportError:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
        return inferred, f"onnx {onnx.__version__} shape inference (constant folding by the exporter)"
    simplified, ok = onnxsim.simplify(model)
    if not ok:
        raise ValueError("onnxsim could not validate the simplified model")
    return simplified, f"onnxsim {onnxsim.__version__}"


def _export_file(model: torch.nn.Module, example: torch.Tensor, path: Path, output_name: str, opset: int) -> str:
    """Export, check and simplify ``model`` into ``path``; returns the simplifier's description."""
    import onnx

    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of the dynamo one, which needs onnxscript.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*legacy TorchScript-based ONNX")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=opset,
                          input_names=["images"], output_names=[output_name], do_constant_folding=True,
                          dynamic_axes={"images": {0: "batch"}, output_name: {0: "batch"}})
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    proto, simplifier = simplify(proto)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return simplifier


def max_abs_diff(model: torch.nn.Module, path: Path, example: torch.Tensor, output_name: str) -> tuple[float, float]:
    """(max |torch - ONNX Runtime|, max |torch|) of ``model`` and the exported file on ``example`` (CPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a correctness check: one thread avoids oversubscribing busy machines
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = model(example).float().numpy()
    found = session.run([output_name], {"images": example.numpy()})[0]
    if found.shape != expected.shape:
        raise ValueError(f"{path.name}: ONNX Runtime gives shape {found.shape}, torch {expected.shape}")
    return float(np.abs(found - expected).max()), float(np.abs(expected).max())


@contextlib.contextmanager
def _export_mode(model: torch.nn.Module, fused_attn: bool | None = None):
    """CPU, eval mode (and the extractor's attention switch) during export; restored afterwards."""
    device = next(model.parameters()).device
    training = model.training
    previous = model.blocks[0].attn.fused_attn if fused_attn is not None and len(model.blocks) else None
    model.cpu().eval()
    if fused_attn is not None:
        model.set_fused_attn(fused_attn)
    try:
        yield model
    finally:
        if previous is not None:
            model.set_fused_attn(previous)
        model.to(device).train(training)


def _random(shape: tuple[int, ...], seed: int, low: float, high: float) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator) * (high - low) + low


def export_extractor(model: torch.nn.Module, path: str | os.PathLike, opset: int = OPSET) -> dict:
    """Export an RTR extractor to ``path`` (written in place; see :func:`export_onnx` for a whole directory).
    Returns its manifest entry (without file name and hash)."""
    config = model.config
    path = Path(path)
    shape = (3, config.img_size, config.img_size)
    with _export_mode(model, fused_attn=False):
        simplifier = _export_file(model, _random((EXPORT_BATCH, *shape), 0, -2.0, 2.0), path, "features", opset)
        diff, _ = max_abs_diff(model, path, _random((CHECK_BATCH, *shape), 1, -2.0, 2.0), "features")
    if not diff < TOLERANCE:
        raise ValueError(f"{path.name}: the ONNX extractor differs from torch by {diff:.3g} (> {TOLERANCE})")
    return {"input": "images", "output": "features", "input_size": config.img_size, "mean": list(config.mean),
            "std": list(config.std), "num_tokens": config.num_tokens, "dim": config.out_dim,
            "preprocessing": PREPROCESSING, "max_abs_diff": diff, "simplifier": simplifier}


def export_detector(model: torch.nn.Module, path: str | os.PathLike, opset: int = OPSET) -> dict:
    """Export a YOLOX detector (raw outputs) to ``path``; returns its manifest entry (without file and hash)."""
    if getattr(model, "decode_in_inference", False):
        raise ValueError("export the detector with decode_in_inference=False (raw outputs)")
    size = model.config.input_size
    path = Path(path)
    with _export_mode(model):
        # Rendered similarity maps hold cosine values in [-1, 1].
        simplifier = _export_file(model, _random((EXPORT_BATCH, 3, size, size), 0, -1.0, 1.0), path, "raw", opset)
        diff, scale = max_abs_diff(model, path, _random((CHECK_BATCH, 3, size, size), 1, -1.0, 1.0), "raw")
    if not diff < TOLERANCE * max(1.0, scale):
        raise ValueError(f"{path.name}: the ONNX detector differs from torch by {diff:.3g} "
                         f"(> {TOLERANCE} x max(1, {scale:.3g}))")
    return {"input": "images", "output": "raw", "input_size": size, "strides": list(model.head.strides),
            "num_classes": model.config.num_classes, "outputs": DETECTOR_OUTPUTS, "max_abs_diff": diff,
            "simplifier": simplifier}


def _versions() -> dict:
    import onnx
    import onnxruntime

    from vcl_fast import __version__

    return {"vcl_fast": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def export_onnx(out_dir: str | os.PathLike, extractor: str | os.PathLike | torch.nn.Module | None = None,
                detector: str | os.PathLike | torch.nn.Module | None = None, opset: int = OPSET,
                chunk_length: int = TILING_FIELDS["chunk_length"], chunk_overlap: int = TILING_FIELDS["chunk_overlap"],
                **calibrated: float) -> Path:
    """Export an extractor and/or a detector (modules, or their weight directories / checkpoints) into
    ``out_dir`` as ``extractor.onnx``, ``detector.onnx`` and ``manifest.json``; returns the manifest path.
    ``calibrated``: the detector's post-processing settings calibrated for its extractor (e.g. with
    ``bench/eval_reserved.py calibrate`` on validation sets), recorded in the manifest, any of
    ``CALIBRATED_FIELDS`` (see ``DetectionSettings``): ``min_similarity`` (the cosine floor),
    ``extent_similarity`` (the cosine boxes are fitted to), ``confident_similarity`` with ``confident_score``
    (the lower floor of detections scored at least that), ``transpose_fusion_iou`` (fuse the boxes of each map
    and of its transpose at this IoU), ``query_margin`` and ``reference_margin`` (frames added to each end of a
    box), ``merge_overlap`` (merge two boxes whose intersection covers this share of the smaller); the ones not
    given are off. TypeError for any other name. ``chunk_length`` and ``chunk_overlap``: the tiles (frames) long
    maps are cut into for the detector, recorded too (the map sizes it was trained on; see ``DetectionSettings``).

    ``out_dir`` must be absent, an empty folder or an earlier export (a folder holding ``manifest.json``),
    which is replaced as a whole, anything else in it included; FileExistsError for any other folder."""
    from vcl_fast.models.detector_io import load_detector
    from vcl_fast.models.weights import load_extractor

    if extractor is None and detector is None:
        raise ValueError("nothing to export: give an extractor and/or a detector")
    if not isinstance(opset, int) or opset < 17:
        raise ValueError(f"opset must be an int >= 17 (LayerNormalization), got {opset!r}")
    unknown = sorted(set(calibrated) - set(CALIBRATED_FIELDS))
    if unknown:
        raise TypeError(f"export_onnx() got unknown calibrated settings {unknown}; known: {sorted(CALIBRATED_FIELDS)}")
    calibrated = {name: float(calibrated.get(name, off)) for name, off in CALIBRATED_FIELDS.items()}
    check_calibrated(SimpleNamespace(**calibrated))
    tiling = {"chunk_length": chunk_length, "chunk_overlap": chunk_overlap}
    check_tiling(SimpleNamespace(**tiling))
    if isinstance(extractor, (str, os.PathLike)):
        extractor = load_extractor(extractor)
    if isinstance(detector, (str, os.PathLike)):
        detector = load_detector(detector)
    out_dir = Path(out_dir)
    if out_dir.exists() and not (out_dir / MANIFEST_FILE).is_file():
        check_new_directory(out_dir)
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "opset": opset, "versions": _versions()}
    with atomic_directory(out_dir, replace=True) as staging:
        simplifiers = []
        for name, file, model, export in (("extractor", EXTRACTOR_FILE, extractor, export_extractor),
                                          ("detector", DETECTOR_FILE, detector, export_detector)):
            if model is None:
                continue
            entry = export(model, staging / file, opset)
            simplifiers.append(entry.pop("simplifier"))
            manifest[name] = {"file": file, "sha256": sha256_file(staging / file), **entry}
        if detector is not None:
            manifest["detector"].update(calibrated, **tiling)
        manifest["simplifier"] = simplifiers[0]
        with open(staging / MANIFEST_FILE, "w") as handle:
            json.dump(manifest, handle, indent=2)
            handle.write("\n")
    return out_dir / MANIFEST_FILE
