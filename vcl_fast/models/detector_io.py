"""Saving and loading YOLOX detectors.

A model directory holds ``model.safetensors`` (the state dict, reference key names) and ``config.json``
(``{"format": "vcl_fast.yolox", "model": YOLOXConfig fields, ...}``). A plain PyTorch checkpoint in the
reference layout (``.pth``/``.pt``, as the paper's release: the state dict itself or under ``"model"``;
a DataParallel ``module.`` prefix is stripped) loads too, strictly: every mismatch is listed.
An ensemble (:class:`~vcl_fast.models.yolox.YOLOXEnsemble`, made by :func:`combine_detectors`) is a model
directory too: its config adds ``"members": M`` and its state dict holds each member's under ``members.i.``.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from vcl_fast.atomic import atomic_directory, atomic_save, atomic_write, check_new_directory
from vcl_fast.models.weights import check_state_dict
from vcl_fast.models.yolox import YOLOX, YOLOXConfig, YOLOXEnsemble, build_yolox, model_config

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "vcl_fast.yolox"


def save_detector(model: YOLOX | YOLOXEnsemble, directory: str | Path, extra: dict | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` (plus ``extra`` entries; ``"members"`` for an ensemble)
    atomically; returns the dir."""
    from safetensors.torch import save_file

    directory = Path(directory)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    members = {"members": len(model.members)} if isinstance(model, YOLOXEnsemble) else {}
    atomic_save(directory / WEIGHTS_FILE, lambda path: save_file(state, path, metadata={"format": FORMAT}))
    with atomic_write(directory / CONFIG_FILE) as f:
        json.dump({"format": FORMAT, "model": model.config.to_dict(), **members, **(extra or {})}, f, indent=2)
    return directory


def combine_detectors(paths: list[str | Path], directory: str | Path) -> Path:
    """Save the ensemble of the detectors at ``paths`` (model directories or reference ``.pth`` files of one
    architecture, at least 2; no ensembles) into ``directory`` (absent or empty; written whole or not at all),
    with their paths recorded; returns the dir."""
    directory = check_new_directory(directory)
    members = [load_detector(path) for path in paths]
    for path, member in zip(paths, members):
        if isinstance(member, YOLOXEnsemble):
            raise ValueError(f"{path}: already an ensemble of {len(member.members)} detectors; "
                             "combine the detectors it was made of")
    ensemble = YOLOXEnsemble(members)
    with atomic_directory(directory) as staging:
        save_detector(ensemble, staging, extra={"combined": [str(p) for p in paths]})
    return directory


def _read_torch_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's text (several lines) advises weights_only=False, not ours to take
        raise ValueError(f"{path}: not a PyTorch weights file (torch.load(weights_only=True) cannot read it: not "
                         "written by torch.save, or holding objects besides tensors)") from None
    except Exception as exc:  # truncated files, other formats
        first_line = next(iter(str(exc).strip().splitlines()), "")
        raise ValueError(f"{path}: not a readable PyTorch weights file ({type(exc).__name__}: {first_line})") from exc
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict (name -> tensor), optionally under 'model'")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_detector(path: str | Path, config: YOLOXConfig | None = None) -> YOLOX | YOLOXEnsemble:
    """A detector in eval mode from a model directory (a YOLOX, or a YOLOXEnsemble when its config lists
    ``members``), or from a reference-layout ``.pth``/``.pt`` file whose architecture is ``config`` (default:
    the paper's YOLOX-s). For a directory, ``config`` (when given) must equal the saved one."""
    path = Path(path)
    if path.is_dir():
        config_path = path / CONFIG_FILE
        if not config_path.is_file() or not (path / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{path}: a detector directory needs {CONFIG_FILE} and {WEIGHTS_FILE}")
        info = json.loads(config_path.read_text())
        if info.get("format") != FORMAT:
            raise ValueError(f"{config_path}: format is {info.get('format')!r}, expected {FORMAT!r}")
        saved = YOLOXConfig.from_dict(info["model"])
        if config is not None and config != saved:
            raise ValueError(f"{path}: the saved detector is {saved}, not the requested {config}; "
                             "choose the matching preset or model.* overrides")
        config = saved
        members = info.get("members", 1)
        if isinstance(members, bool) or not isinstance(members, int) or members < 1:
            raise ValueError(f"{config_path}: members must be a positive int, got {members!r}")
        from safetensors.torch import load_file

        state = load_file(str(path / WEIGHTS_FILE))
    elif path.is_file():
        config = config or model_config("paper")
        members = 1
        state = _read_torch_checkpoint(path)
    else:
        raise FileNotFoundError(f"{path}: no such detector directory or checkpoint file")
    model = build_yolox(config) if members == 1 else YOLOXEnsemble([build_yolox(config) for _ in range(members)])
    check_state_dict(model.state_dict(), state, str(path),
                     hint="Check the preset (e.g. paper = YOLOX-s with 1 class) or pass matching config overrides.")
    model.load_state_dict(state, strict=True)
    return model.eval()
