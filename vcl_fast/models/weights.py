"""Extractor weights on disk: ``DIR/model.safetensors`` + ``DIR/config.json`` (the :class:`RTRConfig`).

Both files are written atomically. Loading checks every tensor name and shape against the architecture
the config describes and names each mismatch.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Mapping

import torch

from vcl_fast.atomic import atomic_save, atomic_write
from vcl_fast.config import config_from_dict
from vcl_fast.models.rtr import RegionalTokenViT, RTRConfig

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "vcl_fast.rtr/1"


def check_state_dict(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], source: str,
                     hint: str = "") -> None:
    """Raise ValueError listing missing names, unexpected names and shape mismatches of ``found``."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    misshaped = [f"{k}: {tuple(found[k].shape)} in {source}, model expects {tuple(v.shape)}"
                 for k, v in expected.items() if k in found and tuple(found[k].shape) != tuple(v.shape)]
    if missing or unexpected or misshaped:
        def show(name: str, items: list[str]) -> str:
            head = ", ".join(items[:8]) + (f", ... ({len(items) - 8} more)" if len(items) > 8 else "")
            return f"{len(items)} {name} [{head}]" if items else f"0 {name}"

        raise ValueError(f"{source} does not match the model: {show('missing', missing)}; "
                         f"{show('unexpected', unexpected)}; {show('mis-shaped', misshaped)}.{' ' + hint if hint else ''}")


def save_extractor(model: RegionalTokenViT, directory: str | os.PathLike) -> Path:
    """Write ``model``'s weights (float32, contiguous) and config into ``directory``; returns the directory."""
    from safetensors.torch import save_file

    directory = Path(directory)
    state = {name: t.detach().to("cpu", torch.float32).contiguous() for name, t in model.state_dict().items()}
    config = {"format": FORMAT, **dataclasses.asdict(model.config)}
    atomic_save(directory / WEIGHTS_FILE, lambda path: save_file(state, path, metadata={"format": FORMAT}))
    with atomic_write(directory / CONFIG_FILE) as handle:
        json.dump(config, handle, indent=2)
    return directory


def load_config(directory: str | os.PathLike) -> RTRConfig:
    """Read ``DIR/config.json`` into an :class:`RTRConfig`."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no extractor config at {path}; expected a directory written by save_extractor")
    raw = json.loads(path.read_text())
    if raw.pop("format", None) != FORMAT:
        raise ValueError(f"{path} is not an RTR extractor config (format must be {FORMAT!r})")
    try:
        return config_from_dict(RTRConfig, raw)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def load_extractor(directory: str | os.PathLike, map_location: str = "cpu") -> RegionalTokenViT:
    """Build the model described by ``DIR/config.json`` and load ``DIR/model.safetensors`` into it (eval mode)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    model = RegionalTokenViT(load_config(directory))
    path = directory / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no extractor weights at {path}")
    state = load_file(str(path), device=map_location)
    check_state_dict(model.state_dict(), state, str(path))
    model.load_state_dict(state)
    return model.eval()
